"""Rendering many files: ``lactose render PRESET IN_DIR OUT_DIR [--jobs N]`` and
:func:`render_files`, in this process or on any ``concurrent.futures.Executor``.
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

from lactose_audio.atomic import deferred_directory_sync
from lactose_audio.errors import DataError, LactoseError, ParameterError

#: Files :func:`render_files` picks from a folder by default.
DEFAULT_PATTERN = "*.wav"

#: Most files per task sent to an executor: a task of a few files costs one round trip instead
#: of one per file, and small enough tasks keep the workers' loads even at the end.
MAX_CHUNK_FILES = 4


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
    """Render several files (one task): :func:`_render_task` per file, the output
    directories fsync'ed once at the end of the chunk
    (:func:`lactose_audio.atomic.deferred_directory_sync`)."""
    with deferred_directory_sync():
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
    warming: set[Future],
    work_here: bool,
) -> Iterator[tuple[str, str | None]]:
    """Outcomes of ``tasks`` rendered on ``executor`` (and here if ``work_here``), as they end.

    Files go out in chunks (``submit_chunk``) taken from the front of the list, a quarter of
    each worker's share of what remains and at most :data:`MAX_CHUNK_FILES`: chunks shrink to
    one file as the list drains, so the workers and this process end together (with fixed
    chunks of 4, this process sat idle for the last two chunks queued to a worker: ~90 ms of
    a 1.4 s run). With a known number of workers, at most two chunks per worker wait in the
    executor, and a worker still warming up (its :func:`_warm_worker` task, in ``warming``,
    submitted by the caller) holds one chunk, which it starts as soon as it is warm (waiting
    for the warm-up to end first left a forked worker idle for this process's first chunk,
    ~50 ms); whenever files remain, this process renders a chunk itself (``run_chunk``, from
    the end of the list) instead of waiting.
    """
    workers = getattr(executor, "_max_workers", None)  # ProcessPoolExecutor, ThreadPoolExecutor
    slots = (workers + (1 if work_here else 0)) if workers else 1
    pending = collections.deque(tasks)

    def take(from_end: bool) -> list[tuple[str, str]]:
        size = max(1, min(MAX_CHUNK_FILES, len(pending) // (4 * slots)))
        if from_end:
            return [pending.pop() for _ in range(size)][::-1]
        return [pending.popleft() for _ in range(size)]

    warming = set(warming)
    ready = 0 if warming else (workers or 0)
    in_flight: set[Future] = set()
    while pending or in_flight:
        warm = {f for f in warming if f.done()}
        warming -= warm
        ready += sum(1 for f in warm if f.exception() is None)
        limit = 2 * ready + len(warming) if workers else len(pending)
        while pending and len(in_flight) < limit:
            in_flight.add(submit_chunk(take(from_end=False)))
        if pending and (work_here or not (in_flight or warming)):
            yield from run_chunk(take(from_end=True))
            done = {f for f in in_flight if f.done()}
        elif in_flight:
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        else:  # no worker is ready yet
            wait(warming, return_when=FIRST_COMPLETED)
            continue
        in_flight -= done
        for future in done:
            yield from future.result()


class _NoBar:
    """The progress bar's interface when none is shown (importing tqdm costs ~40 ms)."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        return None


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
    workers = getattr(executor, "_max_workers", None)
    # the workers start (fork) and warm up while this process renders its first chunk
    warming = (
        {executor.submit(_warm_worker, text, source, options) for _ in range(workers)}
        if executor is not None and work_here and workers and tasks
        else set()
    )
    show = sys.stderr.isatty() if progress is None else bool(progress)
    if show:
        from tqdm import tqdm

        bar: Any = tqdm(total=len(tasks), unit="file", file=sys.stderr)
    else:
        bar = _NoBar()

    def run_chunk(chunk: list[tuple[str, str]]) -> list[tuple[str, str | None]]:
        return _render_chunk(text, source, chunk, options)

    def submit_chunk(chunk: list[tuple[str, str]]) -> Future:
        return executor.submit(_render_chunk, text, source, chunk, options)

    with bar:
        if executor is None:
            outcomes = (
                outcome
                for i in range(0, len(tasks), MAX_CHUNK_FILES)
                for outcome in run_chunk(tasks[i : i + MAX_CHUNK_FILES])
            )
        else:
            outcomes = _scheduled(tasks, executor, run_chunk, submit_chunk, warming, work_here)
        for src, problem in outcomes:
            if problem is None:
                result.written.append(Path(destination[src]))
            else:
                result.failed.append((Path(src), problem))
            bar.update(1)
    result.written.sort()
    result.failed.sort()
    return result
