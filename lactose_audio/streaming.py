"""Files in constant memory: block-wise render and evaluation (issue 13).

``lactose render`` and ``lactose eval`` read their inputs block by block
(:class:`lactose_audio.audio_io.AudioReader`, 65536 samples a block), push each block through
a :class:`lactose_audio.render.RenderStream` and write or score the output as it comes
(:func:`lactose_audio.audio_io.write_audio_blocks`: a temporary file renamed at the end, so a
failed or interrupted render leaves no partial output). Memory is bounded by the block size,
the pitch key's delay line (a few seconds) and the excerpts named below, not by the file's
length; the output equals the whole-file render (:func:`lactose_audio.render.render`).

Evaluation: ESR, pre-emphasised ESR and SNR are running sums over the whole pair
(:class:`lactose_audio.losses.RunningErrors`); the MR-STFT distance is computed on the first
:data:`MR_STFT_SECONDS` of the aligned pair; the pair's checks (silence, clipping, latency
estimate) run on its first :data:`EXCERPT_SECONDS`. Files shorter than these give exactly the
whole-file numbers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from lactose_audio.audio_io import DEFAULT_BLOCK_SIZE, AudioReader, write_audio_blocks
from lactose_audio.errors import DataError

#: Seconds of the aligned pair the MR-STFT figure of ``lactose eval`` is computed on.
MR_STFT_SECONDS = 10.0

#: Seconds at the start of a pair that are validated and used to estimate the latency.
EXCERPT_SECONDS = 30.0

__all__ = [
    "EXCERPT_SECONDS",
    "MR_STFT_SECONDS",
    "RenderSummary",
    "evaluate_stream",
    "render_stream",
]


@dataclass
class RenderSummary:
    """What :func:`render_stream` wrote.

    Attributes:
        n_samples: samples written (the input's length).
        sample_rate: Hz.
        peak: largest absolute output sample (before any clipping to an integer subtype).
        seconds: wall time of reading, rendering and writing, s.
    """

    n_samples: int
    sample_rate: int
    peak: float
    seconds: float


def _rendered(stream, blocks: Iterator[np.ndarray], name: str) -> Iterator[np.ndarray]:
    """Output blocks of ``stream`` fed ``blocks`` (then flushed); refuses non-finite output."""

    def checked(out: np.ndarray) -> np.ndarray:
        if not np.all(np.isfinite(out)):
            raise DataError(f"{name}: the effect produced non-finite samples; nothing written")
        return out

    for block in blocks:
        out = stream.process(block)
        if out.size:
            yield checked(out)
    out = stream.flush()
    if out.size:
        yield checked(out)


def render_stream(
    effect: Any,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    mix: float = 1.0,
    channel: int | None = None,
    subtype: str | None = None,
    engine: str | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    controls: dict[str, float] | None = None,
) -> RenderSummary:
    """Render a file through ``effect`` block by block into ``output_path`` (atomically).

    Args:
        effect: a loaded :class:`~lactose_audio.presets.Effect`.
        input_path: audio file (mono, or ``channel`` of a multi-channel file).
        output_path: destination (``.wav``/``.flac``/``.aiff``).
        mix: wet fraction in ``[0, 1]``.
        channel: 0-based channel of a multi-channel input.
        subtype: output subtype (see :func:`lactose_audio.audio_io.write_audio`).
        engine: render engine (``None``: the default).
        block_size: samples read per block.
        controls: values of the preset's knobs (``{"gain": 3.7}``).

    Returns:
        A :class:`RenderSummary`.

    Raises:
        DataError: unreadable, unstreamable (not seekable) or non-finite input; non-finite
            output; the output cannot be written. Nothing is left at ``output_path`` (an
            existing file there is kept).
        ParameterError: bad options.
    """
    from lactose_audio.render import DEFAULT_ENGINE, RenderStream

    start = time.perf_counter()
    peak = 0.0
    with AudioReader(input_path, channel) as reader:
        stream = RenderStream(
            effect.chain,
            reader.sample_rate,
            mix=mix,
            engine=engine or DEFAULT_ENGINE,
            controls=controls,
        )

        def tracked() -> Iterator[np.ndarray]:
            nonlocal peak
            for out in _rendered(stream, reader.blocks(block_size), os.fspath(input_path)):
                peak = max(peak, float(np.max(np.abs(out))))
                yield out

        n_written = write_audio_blocks(output_path, tracked(), reader.sample_rate, subtype)
        sample_rate = reader.sample_rate
    return RenderSummary(n_written, sample_rate, peak, time.perf_counter() - start)


def evaluate_stream(
    effect: Any,
    dry_path: str | os.PathLike,
    wet_path: str | os.PathLike,
    *,
    channel: int | None = None,
    latency: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    controls: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Metrics of ``effect`` on a dry/wet pair, reading both files block by block.

    The pair is checked and (when ``latency`` is None) aligned on its first
    :data:`EXCERPT_SECONDS` with :func:`lactose_audio.data.pair_from_arrays`, the lengths from
    the files' headers; then the aligned dry is rendered block by block and compared with the
    aligned wet as it comes. Both files must have one sample rate (``--resample`` is handled by
    the caller, in memory).

    Args:
        effect: a loaded :class:`~lactose_audio.presets.Effect`.
        dry_path: the effect's input recording.
        wet_path: the same audio through the effect.
        channel: 0-based channel for multi-channel files.
        latency: known latency, samples (positive = wet lags dry); None to estimate it.
        block_size: samples read per block.
        controls: the knobs' values (a knob preset).

    Returns:
        ``{"esr", "esr_pre_emphasis", "mr_stft", "snr_db", "latency_samples", "n_samples",
        "sample_rate"}`` (as :func:`lactose_audio.losses.evaluate`, plus the alignment).

    Raises:
        DataError: as :func:`lactose_audio.data.load_pair`, or a file cannot be streamed.
    """
    from lactose_audio.data import DEFAULT_MAX_LATENCY, pair_from_arrays
    from lactose_audio.losses import RunningErrors, mr_stft_distance
    from lactose_audio.render import DEFAULT_ENGINE, RenderStream

    dry_name, wet_name = os.fspath(dry_path), os.fspath(wet_path)
    with AudioReader(dry_path, channel) as dry, AudioReader(wet_path, channel) as wet:
        sample_rate = dry.sample_rate
        if wet.sample_rate != sample_rate:
            raise DataError(
                f"{wet_name}: sample rate {wet.sample_rate} Hz does not match {dry_name} "
                f"({sample_rate} Hz); pass --resample to convert the wet to {sample_rate} Hz"
            )
        tolerance = max(DEFAULT_MAX_LATENCY, abs(latency) if latency is not None else 0)
        difference = wet.n_samples - dry.n_samples
        if abs(difference) > tolerance:
            raise DataError(
                f"{wet_name}: {wet.n_samples} samples but {dry_name} has {dry.n_samples}; "
                f"lengths differ by {abs(difference)} samples, more than the latency window "
                f"of {tolerance} samples (trim the files or raise --max-latency)"
            )
        n_excerpt = int(EXCERPT_SECONDS * sample_rate)
        excerpt = pair_from_arrays(
            dry.read(0, n_excerpt),
            wet.read(0, n_excerpt),
            sample_rate,
            latency=latency,
            dry_name=dry_name,
            wet_name=wet_name,
        )
        lag = excerpt.latency_samples
        del excerpt
        dry_start, wet_start = max(0, -lag), max(0, lag)
        n = min(dry.n_samples - dry_start, wet.n_samples - wet_start)
        if n < 1:
            raise DataError(f"{wet_name}: nothing left after removing a latency of {lag} samples")
        stream = RenderStream(effect.chain, sample_rate, engine=DEFAULT_ENGINE, controls=controls)
        targets = wet.blocks(block_size, wet_start, wet_start + n)
        errors = RunningErrors()
        n_stft = int(MR_STFT_SECONDS * sample_rate)
        stft_target, stft_prediction = [], []
        held = np.zeros(0, np.float32)  # wet samples waiting for their prediction
        blocks = dry.blocks(block_size, dry_start, dry_start + n)
        for prediction in _rendered(stream, blocks, dry_name):
            while held.size < prediction.size:
                held = np.concatenate([held, next(targets)])
            target, held = held[: prediction.size], held[prediction.size :]
            if errors.n_samples < n_stft:
                keep = n_stft - errors.n_samples
                stft_target.append(target[:keep])
                stft_prediction.append(prediction[:keep])
            errors.update(target, prediction)
    metrics: dict[str, Any] = errors.metrics()
    metrics["mr_stft"] = mr_stft_distance(
        np.concatenate(stft_target), np.concatenate(stft_prediction)
    )
    metrics = {k: metrics[k] for k in ("esr", "esr_pre_emphasis", "mr_stft", "snr_db")}
    metrics.update(latency_samples=int(lag), n_samples=int(n), sample_rate=int(sample_rate))
    return metrics
