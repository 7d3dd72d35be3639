"""The graph's frame-wise FFT filter in numpy, for rendering filter groups with no recursion.

Filter groups the recursive engine cannot run (``fir_eq``, plugin ``LinearFilter`` s) are
rendered as the training graph computes them (:func:`lactose_audio.blocks.base.design_fir`,
:func:`lactose_audio.blocks.base.frame_filter`): each frame's response on the ``n_fft`` grid,
designed into a FIR of ``n_fft - hop - crossfade`` taps, the first ``crossfade_length(hop)``
samples of each frame crossfaded from the previous frame's filter, overlap-added. Same
algorithm, float64 / complex128 instead of float32 / complex64. No TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lactose_audio.blocks.base import applied_ir_length, crossfade_length


def design_fir_np(response: np.ndarray, n_fft: int, hop_size: int) -> np.ndarray:
    """:func:`~lactose_audio.blocks.base.design_fir` in numpy.

    Args:
        response: complex ``[..., n_fft // 2 + 1]`` on the FFT grid.
        n_fft: FFT size.
        hop_size: Frame length in samples.

    Returns:
        complex128 ``[..., n_fft // 2 + 1]``: the spectrum of the truncated FIR.
    """
    impulse = np.fft.irfft(response, n=n_fft)
    return np.fft.rfft(impulse[..., : applied_ir_length(n_fft, hop_size)], n=n_fft)


@dataclass
class FrameFilterState:
    """Streaming state of one frame filter: what earlier blocks owe the next frames.

    Attributes:
        tail: float64 ``[(m - 1) * hop]`` (``m = ceil(n_fft / hop)``).
        last: complex128 ``[n_bins]``: the previous frame's FIR spectrum.
        started: Whether a previous call processed frames (then its last filter fades out).
    """

    tail: np.ndarray
    last: np.ndarray | None = None
    started: bool = False
    fade_in: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def silence(cls, hop_size: int, n_fft: int) -> FrameFilterState:
        """Silence before the first frame."""
        m = -(-n_fft // hop_size)
        c = crossfade_length(hop_size)
        fade = 0.5 - 0.5 * np.cos(math.pi * (np.arange(c) + 0.5) / c)
        return cls(np.zeros((m - 1) * hop_size), None, False, fade)


def frame_filter_np(
    frames: np.ndarray, spectra: np.ndarray, n_fft: int, state: FrameFilterState, varying: bool
) -> np.ndarray:
    """Filter each frame with its FIR and overlap-add (see ``blocks.base.frame_filter``).

    Args:
        frames: float ``[n_frames, hop]``.
        spectra: complex ``[n_frames or 1, n_bins]`` from :func:`design_fir_np`.
        n_fft: FFT size.
        state: Updated in place (carried to the next call).
        varying: False when ``spectra`` is one static filter for every frame and call.

    Returns:
        float32 ``[n_frames, hop]``.
    """
    n_frames, hop = frames.shape
    m = -(-n_fft // hop)
    frames = np.asarray(frames, np.float64)
    if n_frames == 0:
        return np.zeros((0, hop), np.float32)
    tail = state.tail
    if not varying:
        spectrum = np.fft.rfft(frames, n=n_fft) * spectra
    else:
        c = crossfade_length(hop)
        head = frames[:, :c]
        faded_out = head - head * state.fade_in  # g_f
        weights = np.ones(n_frames)
        weights[0] = 1.0 if state.started else 0.0
        kept = head - faded_out * weights[:, None]
        carried = np.concatenate([faded_out[1:], np.zeros((1, c))], axis=0)
        blocks_in = np.concatenate([kept, frames[:, c:], carried], axis=1)
        spectrum = np.fft.rfft(blocks_in, n=n_fft) * spectra
        if state.started:  # h_{-1} * g_0: the first frame's head, through the previous filter
            owed = np.fft.irfft(np.fft.rfft(faded_out[0], n=n_fft) * state.last, n=n_fft)
            tail = tail + owed[: (m - 1) * hop]
        state.last = spectra[min(n_frames, spectra.shape[0]) - 1]
    blocks = np.fft.irfft(spectrum, n=n_fft)  # [F, n_fft]
    timeline = np.zeros((n_frames + m - 1) * hop)
    for j in range(m):
        part = blocks[:, j * hop : min((j + 1) * hop, n_fft)]
        if part.shape[1] < hop:
            part = np.pad(part, ((0, 0), (0, hop - part.shape[1])))
        timeline[j * hop : j * hop + n_frames * hop] += part.reshape(-1)
    timeline[: (m - 1) * hop] += tail
    state.tail = timeline[n_frames * hop :].copy()
    state.started = True
    return timeline[: n_frames * hop].reshape(n_frames, hop).astype(np.float32)


__all__ = ["FrameFilterState", "design_fir_np", "frame_filter_np"]
