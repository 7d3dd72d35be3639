"""The numpy side of the frame grid and the audio checks every chain entry point shares.

Frame ``f`` of a chain with hop ``hop_size`` covers samples ``[f * hop, (f + 1) * hop)``;
``n_frames = ceil(n_samples / hop_size)``. No TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lactose_audio.errors import ParameterError


def frame_mean(values: np.ndarray, hop_size: int) -> np.ndarray:
    """Per-frame mean of per-sample values ``[n] -> [n_frames]`` (the last, partial frame over
    its own samples), float32."""
    values = np.asarray(values, np.float32)
    n = values.shape[-1]
    n_frames = -(-n // hop_size)
    full = (n // hop_size) * hop_size
    out = np.empty(n_frames, np.float32)
    out[: n // hop_size] = values[:full].reshape(-1, hop_size).mean(axis=1)
    if full < n:
        out[-1] = values[full:].mean()
    return out


def as_audio(audio: Any, finite: bool = True) -> np.ndarray:
    """Mono float32 ``[n_samples]``; ``finite=False`` leaves the NaN/inf check to the caller.

    Raises:
        ParameterError: If ``audio`` is not 1-D, or (``finite``) has NaN or inf samples.
    """
    array = np.asarray(audio, dtype=np.float32)
    if array.ndim != 1:
        raise ParameterError(f"audio must be mono [n_samples], got shape {array.shape}")
    if finite:
        check_finite(array)
    return array


def check_finite(array: np.ndarray) -> None:
    """Raises ParameterError if ``array`` has NaN or inf samples."""
    if not np.all(np.isfinite(array)):
        raise ParameterError("audio must be finite (got NaN or inf samples)")


def pad_to_frames(audio: np.ndarray, hop_size: int) -> np.ndarray:
    """float32 ``[n] -> [n_frames * hop_size]``, zero-padded (no copy when already whole)."""
    n = audio.shape[0]
    n_frames = -(-n // hop_size)
    if n == n_frames * hop_size:
        return np.asarray(audio, np.float32)
    out = np.zeros(n_frames * hop_size, np.float32)
    out[:n] = audio
    return out


__all__ = ["as_audio", "check_finite", "frame_mean", "pad_to_frames"]
