"""File-level operations behind ``lactose render``, ``lactose eval`` and ``lactose inspect``.

Each takes paths, validates them (one-line :class:`~lactose_audio.errors.LactoseError`
on bad input), calls the library and returns what the CLI prints. :func:`render_files`
renders many files, in this process or on any ``concurrent.futures.Executor``.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lactose_audio.errors import DataError, LactoseError, ParameterError

#: Files :func:`render_files` picks from a folder by default.
DEFAULT_PATTERN = "*.wav"

#: Most files per task sent to an executor: a task of a few files costs one round trip instead
#: of one per file, and small enough tasks keep the workers' loads even at the end.
MAX_CHUNK_FILES = 4


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


# ---- many files -------------------------------------------------------------------------------


@dataclass
class BatchResult:
    """What :func:`render_files` did.

    Attributes:
        written: output files written.
        skipped: outputs that existed and were kept (``overwrite=False``).
        failed: ``(input file, one-line problem)`` for every file that could not be rendered.
    """

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        """One line: how many files were written, skipped and failed."""
        text = f"rendered {len(self.written)} file(s)"
        if self.skipped:
            text += f", skipped {len(self.skipped)} existing (--overwrite to replace them)"
        if self.failed:
            text += f", {len(self.failed)} failed"
        return text


@functools.lru_cache(maxsize=4)
def effect_from_text(text: str, source: str = "preset"):
    """The :class:`~lactose_audio.presets.Effect` of a preset's JSON text, cached per process.

    :func:`render_files` sends the preset's text (not a path) to its workers, so a worker on
    another machine needs no copy of the file, and each worker process parses and builds the
    preset once, whatever the number of files it renders.
    """
    from lactose_audio.presets import validate_document

    return validate_document(json.loads(text), source)


def _render_task(
    text: str, source: str, src: str, dst: str, options: dict[str, Any]
) -> tuple[str, str | None]:
    """Render one file in a worker: ``(src, None)`` on success, else ``(src, problem)``."""
    from lactose_audio.streaming import render_stream

    try:
        effect = effect_from_text(text, source)
        os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
        render_stream(
            effect,
            src,
            dst,
            mix=options["mix"],
            channel=options["channel"],
            subtype=options["subtype"],
            engine=options["engine"],
            controls=options.get("controls"),
        )
    except LactoseError as exc:
        message = str(exc)
        return src, message if src in message else f"{src}: {message}"
    except Exception as exc:  # one bad file must not stop the others; reported with the rest
        return src, f"{src}: internal error: {type(exc).__name__}: {exc}"
    return src, None


def _render_chunk(
    text: str, source: str, pairs: list[tuple[str, str]], options: dict[str, Any]
) -> list[tuple[str, str | None]]:
    """Render several files in a worker (one task): :func:`_render_task` per file."""
    return [_render_task(text, source, src, dst, options) for src, dst in pairs]


def _warm_worker(text: str, source: str, options: dict[str, Any]) -> None:
    """A worker's first task: build the preset and load the render path (numba's kernels).

    Rendering one frame of silence loads what a worker's first file would (imports, numba's
    cached machine code, the preset's filter tables); a problem is left to the files' tasks
    to report.
    """
    from lactose_audio.render import DEFAULT_ENGINE, RenderStream

    try:
        effect = effect_from_text(text, source)
        stream = RenderStream(
            effect.chain,
            44100.0,
            engine=options["engine"] or DEFAULT_ENGINE,
            controls=options.get("controls"),
        )
        stream.process(np.zeros(effect.chain.hop_size, np.float32))
        stream.flush()
    except Exception:  # noqa: S110 - reported per file by _render_task
        pass


def _scheduled(
    tasks: list[tuple[str, str]],
    executor: Executor,
    run_chunk: Callable[[list[tuple[str, str]]], list[tuple[str, str | None]]],
    submit_chunk: Callable[[list[tuple[str, str]]], Future],
    submit_warm: Callable[[], Future],
    work_here: bool,
) -> Iterator[tuple[str, str | None]]:
    """Outcomes of ``tasks`` rendered on ``executor`` (and here if ``work_here``), as they end.

    Tasks go out in chunks of up to :data:`MAX_CHUNK_FILES` files (``submit_chunk``). With a
    known number of workers, at most two chunks per worker wait in the executor. With
    ``work_here``, this process renders the first chunk before submitting anything (a worker
    forked at the first submission then starts with the render path loaded); each worker
    first gets :func:`_warm_worker` (``submit_warm``) and files only
    once it is warm: until then, and whenever chunks remain, this process renders one itself
    (``run_chunk``, from the end of the list) instead of waiting -- a worker still starting
    never holds files that this process could have rendered.
    """
    workers = getattr(executor, "_max_workers", None)  # ProcessPoolExecutor, ThreadPoolExecutor
    slots = (workers + (1 if work_here else 0)) if workers else 1
    size = max(1, min(MAX_CHUNK_FILES, len(tasks) // (4 * slots)))
    chunks = collections.deque(tasks[i : i + size] for i in range(0, len(tasks), size))
    warming: set[Future] = set()
    ready = workers or 0
    if work_here and workers and chunks:
        # this process renders a chunk first: it loads the render path (numba's kernels), so
        # a worker forked afterwards starts warm
        yield from run_chunk(chunks.pop())
        warming = {submit_warm() for _ in range(min(workers, len(chunks)))}
        ready = 0
    in_flight: set[Future] = set()
    while chunks or in_flight:
        warm = {f for f in warming if f.done()}
        warming -= warm
        ready += sum(1 for f in warm if f.exception() is None)
        limit = 2 * ready if workers else len(chunks)
        while chunks and len(in_flight) < limit:
            in_flight.add(submit_chunk(chunks.popleft()))
        if chunks and (work_here or not (in_flight or warming)):
            yield from run_chunk(chunks.pop())
            done = {f for f in in_flight if f.done()}
        elif in_flight:
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        else:  # no worker is ready yet
            wait(warming, return_when=FIRST_COMPLETED)
            continue
        in_flight -= done
        for future in done:
            yield from future.result()


def find_inputs(folder: str | os.PathLike, pattern: str = DEFAULT_PATTERN) -> list[Path]:
    """Files under ``folder`` (recursively) whose name matches ``pattern``, sorted."""
    return sorted(p for p in Path(folder).rglob(pattern) if p.is_file())


def render_files(
    preset: Any,
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    executor: Executor | None = None,
    *,
    root: str | os.PathLike | None = None,
    pattern: str = DEFAULT_PATTERN,
    mix: float = 1.0,
    channel: int | None = None,
    subtype: str | None = None,
    engine: str | None = None,
    overwrite: bool = False,
    progress: bool | None = False,
    controls: dict[str, float] | None = None,
    work_here: bool = False,
) -> BatchResult:
    """Render many files through ``preset`` into ``out_dir``, mirroring their folder tree.

    Each output has the input's path relative to ``root`` and its extension, and is written
    atomically. A file that fails (unreadable, not audio, NaN...) is reported in the result
    and does not stop the others.

    Args:
        preset: a preset file, a shipped preset's name, or a loaded ``Effect``.
        inputs: a folder (searched recursively for ``pattern``) or a list of audio files.
        out_dir: output folder (created when the first file is written).
        executor: any :class:`concurrent.futures.Executor` (``ProcessPoolExecutor``, a Dask
            ``Client.get_executor()``, Ray's executor...); ``None`` renders in this process.
            Workers get the preset's text and build it once per process
            (:func:`effect_from_text`).
        root: the folder the outputs mirror; default: ``inputs`` if it is a folder, else the
            files' common folder.
        pattern: glob for the files of a folder, e.g. ``"*.flac"``.
        mix, channel, subtype, engine, controls: as for :func:`render_file`.
        overwrite: replace existing outputs (default: keep them, listed as skipped).
        progress: ``True`` shows a progress bar on stderr, ``None`` only on a terminal.
        work_here: with an ``executor``, this process renders files too, between handing
            tasks to the executor (``lactose render --jobs N``: ``N - 1`` worker processes and
            this one, so the workers' start-up overlaps with rendering here).

    Files go to the executor in tasks of up to :data:`MAX_CHUNK_FILES` files. With an
    executor whose number of workers is known (``ProcessPoolExecutor``), at most two tasks
    per worker are queued at a time (the rest wait here, for ``work_here``); otherwise every
    task is submitted at once.

    Returns:
        A :class:`BatchResult`.

    Raises:
        PresetError: the preset is invalid (checked once, before any file).
        ParameterError: ``out_dir`` is a file or the input folder, or a bad option.
        DataError: ``inputs`` is not a folder (nor a list of files).
    """
    from tqdm import tqdm

    from lactose_audio.presets import dumps, load_preset

    if isinstance(inputs, str | os.PathLike):
        folder = Path(inputs)
        if not folder.is_dir():
            what = (
                "is a file, not a folder (pass a list of files)"
                if folder.exists()
                else "no such folder"
            )
            raise DataError(f"{folder}: {what}")
        files = find_inputs(folder, pattern)
        root = folder if root is None else root
    else:
        files = [Path(p) for p in inputs]
        if root is None:
            parents = [os.path.abspath(p.parent) for p in files]
            root = os.path.commonpath(parents) if parents else "."
    root, out_root = Path(root).resolve(), Path(out_dir)
    if out_root.exists() and not out_root.is_dir():
        raise ParameterError(f"{out_dir}: is a file, expected an output folder")
    if out_root.resolve() == root:
        raise ParameterError(f"{out_dir}: the output folder is the input folder")
    if not out_root.parent.is_dir():
        raise ParameterError(f"{out_dir}: folder {out_root.parent} does not exist")
    if subtype is not None:
        subtype = str(subtype).upper()
    if not 0.0 <= float(mix) <= 1.0:
        raise ParameterError(f"mix must be between 0 and 1, got {mix}")
    effect = preset if hasattr(preset, "to_document") else load_preset(preset)
    text = dumps(effect.to_document())
    source = str(preset) if isinstance(preset, str | os.PathLike) else effect.name
    if controls or effect.controls:
        from lactose_audio.knobs import check_controls

        check_controls(effect.chain, controls)
    options = {
        "mix": float(mix),
        "channel": channel,
        "subtype": subtype,
        "engine": engine,
        "controls": dict(controls or {}),
    }

    result = BatchResult()
    tasks: list[tuple[str, str]] = []
    out_resolved = out_root.resolve()
    for src in files:
        full = src.resolve()
        if full.is_relative_to(out_resolved):
            continue  # an earlier run's outputs inside the input folder
        if not full.is_relative_to(root):
            raise ParameterError(f"{src}: is not inside the root folder {root}")
        dst = out_root / full.relative_to(root)
        if dst.exists() and not overwrite:
            result.skipped.append(dst)
        else:
            tasks.append((str(src), str(dst)))

    destination = dict(tasks)
    bar = tqdm(
        total=len(tasks),
        unit="file",
        file=sys.stderr,
        disable=None if progress is None else not progress,
    )

    def run_chunk(chunk: list[tuple[str, str]]) -> list[tuple[str, str | None]]:
        return _render_chunk(text, source, chunk, options)

    def submit_chunk(chunk: list[tuple[str, str]]) -> Future:
        return executor.submit(_render_chunk, text, source, chunk, options)

    def submit_warm() -> Future:
        return executor.submit(_warm_worker, text, source, options)

    with bar:
        if executor is None:
            outcomes = (_render_task(text, source, s, d, options) for s, d in tasks)
        else:
            outcomes = _scheduled(tasks, executor, run_chunk, submit_chunk, submit_warm, work_here)
        for src, problem in outcomes:
            if problem is None:
                result.written.append(Path(destination[src]))
            else:
                result.failed.append((Path(src), problem))
            bar.update(1)
    result.written.sort()
    result.failed.sort()
    return result
