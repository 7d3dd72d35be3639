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
    """Render several files in a worker (one task): :func:`_render_task` per file, the
    output directories fsync'ed once at the end of the chunk
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
