"""File-level operations behind ``lactose render``, ``lactose eval`` and ``lactose inspect``.

Each takes paths, validates them (one-line :class:`~lactose_audio.errors.LactoseError`
on bad input), calls the library and returns what the CLI prints. Many files at once:
:mod:`lactose_audio.batch`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from lactose_audio.errors import ParameterError


def render_file(
    preset: str | os.PathLike,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    mix: float = 1.0,
    channel: int | None = None,
    subtype: str | None = None,
    engine: str | None = None,
    controls: dict[str, float] | None = None,
) -> str:
    """Render ``input_path`` through ``preset`` into ``output_path`` (written atomically).

    The file is streamed (:func:`lactose_audio.streaming.render_stream`): memory does not
    depend on its length, and the output equals the whole-file render.

    Args:
        preset: a preset file or a shipped preset's name.
        input_path: audio file (any format/subtype soundfile reads; mono or ``channel``).
        output_path: where to write; ``.wav``/``.flac``/``.aiff``; 32-bit float by default.
        mix: 0 (input) … 1 (effect).
        channel: 0-based channel of a multi-channel input.
        subtype: soundfile subtype of the output (``FLOAT``, ``PCM_16``, ``PCM_24``, ...);
            ``None``: 32-bit float (24-bit integer for FLAC, which has no float).
        engine: render engine (``None``: the default, ``iir``; or ``graph``).
        controls: values of the preset's knobs (``{"gain": 3.7}``).

    Returns:
        A one-line summary.
    """
    from lactose_audio.audio_io import check_output_path
    from lactose_audio.presets import load_preset
    from lactose_audio.streaming import render_stream

    check_output_path(output_path)
    check_not_input(output_path, input_path)
    effect = load_preset(preset)
    if controls or effect.controls:
        from lactose_audio.knobs import check_controls

        check_controls(effect.chain, controls)  # before reading the audio
    # Silence, DC and one-sample files are valid input: the effect's output for them is
    # well defined (only training pairs must carry signal, lactose_audio.data.check_signal).
    # Read, rendered and written block by block: memory does not grow with the file.
    done = render_stream(
        effect,
        input_path,
        output_path,
        mix=mix,
        channel=channel,
        subtype=subtype,
        engine=engine,
        controls=controls,
    )
    sample_rate, seconds = done.sample_rate, done.seconds
    duration = done.n_samples / sample_rate
    speed = duration / seconds if seconds > 0 else float("inf")
    peak_db = 20 * np.log10(max(done.peak, 1e-12))
    return (
        f"wrote {output_path} ({duration:.2f} s at {sample_rate} Hz, peak {peak_db:.1f} dBFS, "
        f"rendered {speed:.0f}x real time)"
    )


def check_not_input(output_path: str | os.PathLike, input_path: str | os.PathLike) -> None:
    """Refuse writing over the input file (one-line ParameterError).

    Raises:
        ParameterError: ``output_path`` is ``input_path`` (same file, or same path).
    """
    same = os.path.abspath(output_path) == os.path.abspath(input_path)
    if not same and os.path.exists(output_path) and os.path.exists(input_path):
        same = os.path.samefile(output_path, input_path)
    if same:
        raise ParameterError(f"{output_path}: the output would overwrite the input file")


def evaluate_files(
    preset: str | os.PathLike,
    dry_path: str | os.PathLike,
    wet_path: str | os.PathLike,
    *,
    channel: int | None = None,
    resample: bool = False,
    latency: int | None = None,
    controls: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Metrics of ``preset`` on a dry/wet pair (aligned by the preset's stored latency).

    The pair is aligned with ``latency`` if given, else with the latency stored in the
    preset (a knob preset: the capture's at ``controls``, if one was made there), else by
    cross-correlation. ``controls``: the knobs' values (every control of a knob preset,
    checked as for rendering). Both files are streamed
    (:func:`lactose_audio.streaming.evaluate_stream`: ESR, pre-emphasis ESR and SNR over the
    whole pair, MR-STFT over its first 10 s), except with ``resample``, which loads them.

    Returns:
        ``{"esr", "esr_pre_emphasis", "mr_stft", "snr_db", "latency_samples",
        "n_samples", "sample_rate"}``.
    """
    from lactose_audio.presets import load_preset

    effect = load_preset(preset)
    if controls or effect.controls:
        from lactose_audio.knobs import check_controls

        controls = check_controls(effect.chain, controls)
    if latency is None:
        stored = effect.training.get("latency_samples")
        if controls:  # the capture made at these settings, if any
            stored = next(
                (c.get("latency_samples") for c in effect.training.get("captures", [])
                 if c.get("controls") == controls),
                None,
            )  # fmt: skip
        latency = int(stored) if isinstance(stored, int) else None
    if not resample:
        from lactose_audio.streaming import evaluate_stream

        return evaluate_stream(
            effect, dry_path, wet_path, channel=channel, latency=latency, controls=controls
        )
    # --resample converts the whole wet in memory (soxr/polyphase over the file)
    from lactose_audio.data import load_pair
    from lactose_audio.losses import evaluate

    pair = load_pair(dry_path, wet_path, channel=channel, resample=resample, latency=latency)
    prediction = effect(pair.dry, pair.sample_rate, **(controls or {}))
    metrics: dict[str, Any] = evaluate(pair.wet, prediction)
    metrics.update(
        latency_samples=int(pair.latency_samples),
        n_samples=int(len(pair.dry)),
        sample_rate=int(pair.sample_rate),
    )
    return metrics


def _format_value(value: float) -> str:
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.3e}"


def inspect_preset(
    preset: str | os.PathLike, *, plot: str | None = None, as_json: bool = False
) -> str:
    """A table of ranges × parameters with units and data coverage, per stage.

    Args:
        preset: a preset file or a shipped preset's name.
        plot: if given, a PNG path: transfer curves and filter responses per range; for a
            preset with knobs also ``<stem>-knobs.png`` next to it: every parameter of the
            control-following stages against its control (:mod:`lactose_audio.knob_plot`).
        as_json: return JSON instead of a table.

    Returns:
        The text to print.
    """
    from lactose_audio.presets import load_preset, resolve

    effect = load_preset(preset)
    document = effect.to_document()
    if plot is not None:
        from lactose_audio.audio_io import check_output_path
        from lactose_audio.report import plot_effect

        check_output_path(plot, suffixes=(".png",))
        plot_effect(effect, plot)
        if effect.controls:
            from lactose_audio.knob_plot import plot_knobs

            knobs_plot = Path(plot).with_name(f"{Path(plot).stem}-knobs.png")
            plot_knobs(effect, knobs_plot)
            plot = f"{plot}, {knobs_plot}"
    if as_json:
        return json.dumps(
            {
                "name": effect.name,
                "description": effect.description,
                "sample_rate": effect.sample_rate,
                "stages": stage_tables(effect),
                "training": effect.training,
            },
            indent=2,
        )
    lines = [
        f"{effect.name}: {effect.description}" if effect.description else effect.name,
        f"file: {resolve(preset)}  trained at {effect.sample_rate} Hz",
    ]
    training = document["training"]
    if training:
        keys = ("validation_esr", "latency_samples", "steps", "seconds")
        shown = [
            f"{k}={_format_value(v) if isinstance(v, float) else v}"
            for k in keys
            if (v := training.get(k)) is not None
        ]
        lines.append("training: " + ", ".join(shown))
    for i, table in enumerate(stage_tables(effect)):
        unit = f" {table['unit']}" if table["unit"] else ""
        lines.append("")
        key = table["key"]
        if table["control"]:  # a knob alone, or a 2-D bank (the knob and a signal key)
            key = f"control {table['control']}" + (f" + {key}" if key != "control" else "")
        lines.append(f"[{i}] {table['block']}  key={key}  ranges={len(table['rows'])}")
        names = [p for p in table["params"]]
        header = ["range", "data", *names]
        rows = []
        for row in table["rows"]:
            lo, hi = row["from"], row["to"]
            span = (
                ("-inf" if lo is None else f"{lo:.4g}")
                + " .. "
                + ("+inf" if hi is None else f"{hi:.4g}")
                + unit
            )
            if "setting" in row:
                at = f"{table['control']}={row['setting']:g}"
                span = at if table["key"] == "control" else f"{at}, {span}"
            count = f"{row['count']}{' (!)' if row['flagged'] else ''}"
            rows.append([span, count, *[_format_value(row["params"][n]) for n in names]])
        widths = [max(len(h), *(len(r[j]) for r in rows)) for j, h in enumerate(header)]
        lines.append("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
        for r in rows:
            lines.append("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
    if any(any(c["flagged"]) for c in effect.coverage):
        lines.append("")
        lines.append("(!) range saw too little training data: it keeps the unconditioned fit")
    if plot is not None:
        lines.append(f"plot: {plot}")
    return "\n".join(lines)


def stage_tables(effect) -> list[dict[str, Any]]:
    """Per stage (depth-first through nested chains, the order of ``effect.coverage``):
    block, key, unit, parameter names, and one row per range."""
    from lactose_audio.presets import key_kind

    tables = []
    for index, stage in enumerate(effect.chain.stages):
        edges = [float(e) for e in stage.edges.edges]
        bounds = [None, *edges, None]
        values = stage.physical()  # [n_ranges, n_params], physical units
        names = stage.block.param_names
        coverage = effect.coverage[index] if index < len(effect.coverage) else None
        rows = []
        per_setting = stage.edges.n_ranges if stage.knob is not None else 1
        for row in range(stage.n_ranges):  # a 2-D bank: the key's ranges, setting by setting
            r = row % stage.edges.n_ranges
            rows.append(
                {
                    "range": r,
                    "from": bounds[r],
                    "to": bounds[r + 1],
                    "count": coverage["counts"][row] if coverage else None,
                    "flagged": coverage["flagged"][row] if coverage else False,
                    "params": {n: float(values[row, j]) for j, n in enumerate(names)},
                }
            )
            if stage.control is not None:  # a knob: one row (2-D: one block) per setting
                rows[-1]["setting"] = stage.control_key.settings[row // per_setting]
        tables.append(
            {
                "block": stage.block.name,
                "key": key_kind(stage),
                "control": stage.control,
                "unit": stage.edges.unit,
                "params": {p.name: p.unit for p in stage.block.params},
                "rows": rows,
            }
        )
    return tables
