"""Losses and metrics: ESR, pre-emphasis, multi-resolution STFT (ddsp), SNR.

The TF functions are what training minimises; the numpy ones are what ``lactose eval``
and the benchmarks report, with the same definitions.

ESR (error-to-signal ratio, Wright & Välimäki 2019): ``sum((y - ŷ)²) / sum(y²)``; 0 is a
perfect model, 1 is as bad as outputting silence. Pre-emphasis: the first-order highpass
``y[n] - coefficient * y[n - 1]`` applied to target and prediction before the ESR, which
weights the high frequencies where distortion is audible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lactose_audio.errors import ParameterError

DEFAULT_PRE_EMPHASIS = 0.85
DEFAULT_FFT_SIZES = (2048, 1024, 512, 256, 128)
_EPS = 1e-10


def _check_pair(target: np.ndarray, prediction: np.ndarray) -> None:
    if target.shape != prediction.shape:
        raise ParameterError(
            f"target and prediction must have the same shape, got {target.shape} and "
            f"{prediction.shape}"
        )


def pre_emphasis(audio: np.ndarray, coefficient: float = DEFAULT_PRE_EMPHASIS) -> np.ndarray:
    """First-order pre-emphasis ``y[n] = x[n] - c * x[n-1]`` along the last axis (x[-1] = 0).

    Args:
        audio: ``[..., n_samples]``.
        coefficient: ``c`` in [0, 1).

    Returns:
        ``[..., n_samples]``, float64.
    """
    audio = np.asarray(audio, dtype=np.float64)
    out = audio.copy()
    out[..., 1:] -= coefficient * audio[..., :-1]
    return out


def esr(
    target: np.ndarray,
    prediction: np.ndarray,
    pre_emphasis_coefficient: float = 0.0,
    *,
    eps: float = _EPS,
) -> float:
    """Error-to-signal ratio ``sum((y - ŷ)²) / (sum(y²) + eps)`` (optionally pre-emphasised).

    THE numpy ESR: ``lactose eval``, the reports' plots, the capture report and the benchmarks
    all call it (training minimises :func:`esr_tf`, the same formula in TensorFlow).

    Args:
        target: ``[..., n_samples]`` the recorded wet signal ``y``.
        prediction: same shape, the model's output ``ŷ``.
        pre_emphasis_coefficient: 0 for plain ESR, e.g. 0.85 for pre-emphasised ESR.
        eps: Added to the target's energy. The default (1e-10) keeps the ratio finite: a
            silent target gives ``error / 1e-10`` (0 for a silent prediction). ``eps=0``
            gives ``inf`` for a silent target with any error and 0 when the prediction is
            silent too (what the plots print for a silent excerpt).

    Returns:
        The ESR (dimensionless, ≥ 0), computed in float64.
    """
    target = np.asarray(target, dtype=np.float64)
    prediction = np.asarray(prediction, dtype=np.float64)
    _check_pair(target, prediction)
    if pre_emphasis_coefficient:
        target = pre_emphasis(target, pre_emphasis_coefficient)
        prediction = pre_emphasis(prediction, pre_emphasis_coefficient)
    return esr_ratio(*error_energy(target, prediction), eps=eps)


def error_energy(target: np.ndarray, prediction: np.ndarray) -> tuple[float, float]:
    """``(sum((y - ŷ)²), sum(y²))`` in float64: the two sums an ESR is the ratio of."""
    target = np.asarray(target, dtype=np.float64)
    prediction = np.asarray(prediction, dtype=np.float64)
    return float(np.sum((target - prediction) ** 2)), float(np.sum(target**2))


def esr_ratio(error: float, energy: float, eps: float = _EPS) -> float:
    """``error / (energy + eps)`` (see :func:`esr` for ``eps``; ``0 / 0`` is 0)."""
    denominator = float(energy) + eps
    if denominator > 0.0:
        return float(error) / denominator
    return 0.0 if error == 0.0 else math.inf


def snr_db(target: np.ndarray, prediction: np.ndarray) -> float:
    """Signal-to-noise ratio of the prediction in dB: ``-10 log10(ESR)``."""
    return float(-10.0 * np.log10(max(esr(target, prediction), 1e-30)))


class RunningErrors:
    """ESR, pre-emphasised ESR and SNR of a long pair, from running sums over its blocks.

    ``update(target, prediction)`` with consecutive blocks, then ``metrics()``: the same
    numbers as :func:`esr` (plain and with :data:`DEFAULT_PRE_EMPHASIS`) and :func:`snr_db`
    over the concatenated signals (float64 sums; the pre-emphasis filter carries the previous
    block's last sample), in memory independent of the length.
    """

    def __init__(self, pre_emphasis_coefficient: float = DEFAULT_PRE_EMPHASIS) -> None:
        self.coefficient = float(pre_emphasis_coefficient)
        self.n_samples = 0
        self._sums = np.zeros(4)  # error², target², pre-emphasised error², target²
        self._last = np.zeros(2)  # previous target and prediction sample (0 before the start)

    def update(self, target: np.ndarray, prediction: np.ndarray) -> None:
        """Add a block: ``target`` and ``prediction`` float ``[n]`` (the next samples)."""
        target = np.asarray(target, dtype=np.float64)
        prediction = np.asarray(prediction, dtype=np.float64)
        _check_pair(target, prediction)
        if target.size == 0:
            return
        c = self.coefficient
        t_pe = target - c * np.concatenate([[self._last[0]], target[:-1]])
        p_pe = prediction - c * np.concatenate([[self._last[1]], prediction[:-1]])
        self._sums += [*error_energy(target, prediction), *error_energy(t_pe, p_pe)]
        self._last = np.array([target[-1], prediction[-1]])
        self.n_samples += target.size

    def metrics(self) -> dict[str, float]:
        """``{"esr", "esr_pre_emphasis", "snr_db"}`` of everything added so far."""
        value = esr_ratio(self._sums[0], self._sums[1])
        return {
            "esr": value,
            "esr_pre_emphasis": esr_ratio(self._sums[2], self._sums[3]),
            "snr_db": float(-10.0 * np.log10(max(value, 1e-30))),
        }


def mr_stft_distance(
    target: np.ndarray, prediction: np.ndarray, fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES
) -> float:
    """Multi-resolution STFT distance (ddsp ``SpectralLoss``: linear + log magnitudes, L1).

    Computed in numpy (``lactose eval`` imports no TensorFlow); equals ddsp's
    :func:`spectral_loss` (what training uses) to float32 rounding (tested).

    Args:
        target: ``[n_samples]`` or ``[batch, n_samples]``.
        prediction: same shape.
        fft_sizes: STFT sizes (75 % overlap, as ddsp).

    Returns:
        The loss value (dimensionless; 0 for identical signals).
    """
    target = np.atleast_2d(np.asarray(target, dtype=np.float32))
    prediction = np.atleast_2d(np.asarray(prediction, dtype=np.float32))
    _check_pair(target, prediction)
    total = 0.0
    for size in fft_sizes:
        t, p = _stft_magnitude(target, int(size)), _stft_magnitude(prediction, int(size))
        total += float(np.mean(np.abs(t - p)))
        total += float(np.mean(np.abs(_safe_log(t) - _safe_log(p))))
    return total


def _stft_magnitude(audio: np.ndarray, size: int) -> np.ndarray:
    """``|STFT|`` as ddsp's ``compute_mag`` (``tf.signal.stft``: periodic Hann window, hop
    ``size / 4``, end padded with zeros to ``ceil(n / hop)`` frames), numpy float64.

    Args:
        audio: ``[batch, n_samples]``.
        size: Frame and FFT size (a power of 2).

    Returns:
        ``[batch, n_frames, size // 2 + 1]``.
    """
    hop = size // 4
    n = audio.shape[-1]
    n_frames = -(-n // hop)
    padded = np.zeros((audio.shape[0], (n_frames - 1) * hop + size))
    padded[:, :n] = audio
    index = np.arange(n_frames)[:, None] * hop + np.arange(size)[None, :]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(size) / size)
    return np.abs(np.fft.rfft(padded[:, index] * window, n=size))


def _safe_log(x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """ddsp's ``safe_log``: ``log(x)``, with ``eps`` where ``x <= 0``."""
    return np.log(np.where(x <= 0.0, eps, x))


def spectral_loss(fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES):
    """ddsp's multi-resolution ``SpectralLoss`` (linear and log magnitude, L1, mean)."""
    from lactose_audio._ddsp import ddsp

    return ddsp.losses.SpectralLoss(
        fft_sizes=tuple(fft_sizes), loss_type="L1", mag_weight=1.0, logmag_weight=1.0
    )


def esr_tf(target, prediction, pre_emphasis_coefficient: float = 0.0):
    """ESR in TensorFlow over a batch (one ratio over all samples), differentiable.

    Args:
        target: ``tf.Tensor [batch, n_samples]``.
        prediction: ``tf.Tensor [batch, n_samples]``.
        pre_emphasis_coefficient: 0 for plain ESR.

    Returns:
        Scalar ``tf.Tensor``.
    """
    from lactose_audio._tf import tf

    if pre_emphasis_coefficient:
        target = target[:, 1:] - pre_emphasis_coefficient * target[:, :-1]
        prediction = prediction[:, 1:] - pre_emphasis_coefficient * prediction[:, :-1]
    error = tf.reduce_sum(tf.square(target - prediction))
    return error / (tf.reduce_sum(tf.square(target)) + _EPS)


def evaluate(target: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    """All reported metrics for one prediction, as ``lactose eval`` prints them.

    Args:
        target: ``[n_samples]`` the wet recording.
        prediction: ``[n_samples]`` the model's output.

    Returns:
        ``{"esr", "esr_pre_emphasis", "mr_stft", "snr_db"}``.
    """
    return {
        "esr": esr(target, prediction),
        "esr_pre_emphasis": esr(target, prediction, DEFAULT_PRE_EMPHASIS),
        "mr_stft": mr_stft_distance(target, prediction),
        "snr_db": snr_db(target, prediction),
    }
