"""File-level operations behind ``lactose render``, ``lactose eval`` and ``lactose inspect``.

Each takes paths, validates them (one-line :class:`~lactose_audio.errors.LactoseError`
on bad input), calls the library and returns what the CLI prints.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from lactose_audio.errors import DataError


def render_file(
    preset: str | os.PathLike,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    mix: float = 1.0,
    channel: int | None = None,
    subtype: str | None = None,
    engine: str | None = None,
) -> str:
    """Render ``input_path`` through ``preset`` into ``output_path`` (written atomically).

    Args:
        preset: a preset file or a shipped preset's name.
        input_path: audio file (any format/subtype soundfile reads; mono or ``channel``).
        output_path: where to write; ``.wav``/``.flac``/``.aiff``; 32-bit float by default.
        mix: 0 (input) … 1 (effect).
        channel: 0-based channel of a multi-channel input.
        subtype: soundfile subtype of the output (``FLOAT``, ``PCM_16``, ``PCM_24``, ...);
            ``None``: 32-bit float (24-bit integer for FLAC, which has no float).
        engine: render engine (``None``: the default, ``iir``; or ``graph``).

    Returns:
        A one-line summary.
    """
    import time

    from lactose_audio.audio_io import check_output_path, read_audio, write_audio
    from lactose_audio.data import check_signal
    from lactose_audio.presets import load_preset

    check_output_path(output_path)
    effect = load_preset(preset)
    audio, sample_rate = read_audio(input_path, channel=channel)
    check_signal(audio, str(input_path), "input")
    start = time.perf_counter()
    out = effect(audio, sample_rate, mix=mix, engine=engine)
    seconds = time.perf_counter() - start
    if not np.all(np.isfinite(out)):
        raise DataError(f"{input_path}: the effect produced non-finite samples; nothing written")
    write_audio(output_path, out, sample_rate, subtype=subtype)
    duration = len(audio) / sample_rate
    speed = duration / seconds if seconds > 0 else float("inf")
    peak_db = 20 * np.log10(max(float(np.max(np.abs(out))) if out.size else 0.0, 1e-12))
    return (
        f"wrote {output_path} ({duration:.2f} s at {sample_rate} Hz, peak {peak_db:.1f} dBFS, "
        f"rendered {speed:.0f}x real time)"
    )


def evaluate_files(
    preset: str | os.PathLike,
    dry_path: str | os.PathLike,
    wet_path: str | os.PathLike,
    *,
    channel: int | None = None,
    resample: bool = False,
    latency: int | None = None,
) -> dict[str, Any]:
    """Metrics of ``preset`` on a dry/wet pair (aligned by the preset's stored latency).

    The pair is aligned with ``latency`` if given, else with the latency stored in the
    preset, else by cross-correlation.

    Returns:
        ``{"esr", "esr_pre_emphasis", "mr_stft", "snr_db", "latency_samples",
        "n_samples", "sample_rate"}``.
    """
    from lactose_audio.data import load_pair
    from lactose_audio.losses import evaluate
    from lactose_audio.presets import load_preset

    effect = load_preset(preset)
    if latency is None:
        stored = effect.training.get("latency_samples")
        latency = int(stored) if isinstance(stored, int) else None
    pair = load_pair(dry_path, wet_path, channel=channel, resample=resample, latency=latency)
    prediction = effect(pair.dry, pair.sample_rate)
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
        plot: if given, a PNG path: transfer curves and filter responses per range.
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
        lines.append(f"[{i}] {table['block']}  key={table['key']}  ranges={len(table['rows'])}")
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
    """Per stage: block, key, unit, parameter names, and one row per range."""
    tables = []
    for index, stage in enumerate(effect.chain):
        edges = [float(e) for e in stage.edges.edges]
        bounds = [None, *edges, None]
        values = stage.physical()  # [n_ranges, n_params], physical units
        names = stage.block.param_names
        coverage = effect.coverage[index] if index < len(effect.coverage) else None
        rows = []
        for r in range(stage.edges.n_ranges):
            rows.append(
                {
                    "range": r,
                    "from": bounds[r],
                    "to": bounds[r + 1],
                    "count": coverage["counts"][r] if coverage else None,
                    "flagged": coverage["flagged"][r] if coverage else False,
                    "params": {n: float(values[r, j]) for j, n in enumerate(names)},
                }
            )
        tables.append(
            {
                "block": stage.block.name,
                "key": stage.key.kind,
                "unit": stage.edges.unit,
                "params": {p.name: p.unit for p in stage.block.params},
                "rows": rows,
            }
        )
    return tables
