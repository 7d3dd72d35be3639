"""The numbers behind the plots of :mod:`lactose_audio.report`: curve data and checks.

The curve data is computed by the blocks' own code (never a copy of the DSP):
:func:`transfer_curves` runs a memoryless block's kernel on an input ramp with each range's
physical parameters; :func:`magnitude_responses` evaluates a linear filter's ``response`` per
range. The rest validates what the plots are given (sample rates, audio pairs, training
history) and picks what they show (the loudest excerpt; its ESR is
:func:`lactose_audio.losses.esr` with ``eps=0``: ``inf`` for a silent excerpt with any error).

Importing this module imports neither TensorFlow nor matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lactose_audio.errors import ParameterError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from lactose_audio.chains import Stage
    from lactose_audio.ranges import RangeEdges

DEFAULT_SAMPLE_RATE = 44100
RESPONSE_N_FFT = 2**16
"""FFT grid of :func:`magnitude_responses` (0.67 Hz bins at 44.1 kHz), then interpolated."""
FLOOR_DB = -240.0
PHASES = ("unconditioned", "ranges")
DEFAULT_EXCERPT_SECONDS = 4.0


def range_labels(edges: RangeEdges) -> list[str]:
    """One label per range, in the key's unit: ``["< -40 dBFS", "-40..-20 dBFS", "≥ -20 dBFS"]``.

    Ranges are half-open ``[e_k, e_k+1)`` (:func:`lactose_audio.ranges.range_index`); a single
    range is labelled ``"all"``.
    """
    unit = f" {edges.unit}" if edges.unit else ""
    values = [f"{e:.4g}" for e in edges.edges]
    if not values:
        return ["all"]
    inner = [f"{lo}..{hi}{unit}" for lo, hi in zip(values[:-1], values[1:], strict=True)]
    return [f"< {values[0]}{unit}", *inner, f"≥ {values[-1]}{unit}"]


def transfer_curves(stage: Stage, x: Any, sample_rate: float = DEFAULT_SAMPLE_RATE) -> np.ndarray:
    """Static transfer curve ``y = f(x)`` of a memoryless stage, one row per range.

    Runs the block's own kernel on ``x`` with every range's physical parameters
    (:meth:`~lactose_audio.chains.Stage.physical`), all ranges in one call.

    Args:
        stage: A stage whose block is not a linear filter (waveshaper, gain, ...).
        x: Input values, ``[n_x]`` (e.g. a ramp over ``[-1, 1]``).
        sample_rate: Hz, passed to the kernel.

    Returns:
        float64 ``[n_ranges, n_x]``.

    Raises:
        ParameterError: For a linear filter stage (use :func:`magnitude_responses`) or a
            non-finite or non-1-D ``x``.
    """
    block = stage.block
    if block.is_linear:
        raise ParameterError(
            f"stage {block.name} is a linear filter: it has a frequency response "
            "(magnitude_responses), not a transfer curve"
        )
    if block.uses_dry:
        raise ParameterError(
            f"stage {block.name} blends with the chain's input: it has no transfer curve of "
            "its own (see its parameter values)"
        )
    x = finite_1d(x, "x")
    check_sample_rate(sample_rate)
    physical = stage.physical()
    n_ranges = physical.shape[0]
    if x.size == 0:
        return np.zeros((n_ranges, 0))

    controls = {
        spec.name: physical[:, i : i + 1]  # [n_ranges, 1]
        for i, spec in enumerate(block.params)
    }
    ramp = np.ascontiguousarray(np.broadcast_to(x.astype(np.float32), (n_ranges, x.size)))
    out = block.kernel_np(ramp, controls, float(sample_rate))  # the renderer's kernel
    return np.asarray(out, np.float64).reshape(n_ranges, x.size)


def magnitude_responses(
    stage: Stage,
    freqs_hz: Any,
    sample_rate: float = DEFAULT_SAMPLE_RATE,
    n_fft: int = RESPONSE_N_FFT,
) -> np.ndarray:
    """Magnitude response in dB of a linear filter stage, one row per range.

    Evaluates the block's ``response`` (the analytic response, float64) on an ``n_fft`` grid
    with every range's physical parameters and interpolates the dB magnitude linearly to
    ``freqs_hz``. The FIR a chain applies matches it to the tolerance stated in
    :mod:`lactose_audio.blocks.filters`.

    Args:
        stage: A stage whose block is a :class:`~lactose_audio.blocks.base.LinearFilter`.
        freqs_hz: Frequencies in Hz, ``[n_freqs]``, within ``0 .. sample_rate / 2``.
        sample_rate: Hz.
        n_fft: Size of the evaluation grid (bins ``sample_rate / n_fft`` Hz apart).

    Returns:
        float64 ``[n_ranges, n_freqs]`` in dB (floored at -240 dB).

    Raises:
        ParameterError: For a non-linear stage, or frequencies outside ``0 .. Nyquist``.
    """
    block = stage.block
    if not block.is_linear:
        raise ParameterError(
            f"stage {block.name} is not a linear filter: it has a transfer curve "
            "(transfer_curves), not a frequency response"
        )
    check_sample_rate(sample_rate)
    freqs = finite_1d(freqs_hz, "freqs_hz")
    nyquist = 0.5 * float(sample_rate)
    if freqs.size and (freqs.min() < 0.0 or freqs.max() > nyquist):
        raise ParameterError(
            f"freqs_hz must be between 0 Hz and Nyquist ({nyquist:g} Hz), got "
            f"{freqs.min():g} .. {freqs.max():g} Hz"
        )
    if int(n_fft) < 2:
        raise ParameterError(f"n_fft must be >= 2, got {n_fft}")
    n_fft = int(n_fft)
    physical = stage.physical()
    n_ranges = physical.shape[0]

    controls = {spec.name: physical[:, i] for i, spec in enumerate(block.params)}  # [n_ranges]
    response = np.asarray(block.response(controls, float(sample_rate), n_fft))
    response = np.broadcast_to(response, (n_ranges, n_fft // 2 + 1))
    magnitude_db = 20.0 * np.log10(np.maximum(np.abs(response), 10.0 ** (FLOOR_DB / 20.0)))
    grid = np.arange(n_fft // 2 + 1) * (float(sample_rate) / n_fft)
    return np.stack([np.interp(freqs, grid, row) for row in magnitude_db])


def validate_history(history: Any) -> list[dict[str, Any]]:
    if isinstance(history, Mapping | str | bytes) or not isinstance(history, Sequence):
        raise ParameterError(
            f"history must be a list of training records, got {type(history).__name__}"
        )
    if not history:
        raise ParameterError("history is empty: there is no training record to plot")
    rows = []
    for i, record in enumerate(history):
        if not isinstance(record, Mapping):
            raise ParameterError(f"history[{i}] must be a dict, got {type(record).__name__}")
        missing = [k for k in ("step", "seconds", "phase", "loss") if k not in record]
        if missing:
            raise ParameterError(f"history[{i}] is missing {', '.join(missing)}")
        step = record["step"]
        if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
            raise ParameterError(f"history[{i}].step must be an integer >= 0, got {step!r}")
        if record["phase"] not in PHASES:
            raise ParameterError(
                f"history[{i}].phase must be one of {', '.join(PHASES)}, got {record['phase']!r}"
            )
        for name in ("seconds", "loss", "val_esr"):
            value = record.get(name)
            if name == "val_esr" and value is None:
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float | np.number)
                or not math.isfinite(float(value))
            ):
                raise ParameterError(f"history[{i}].{name} must be a finite number, got {value!r}")
        rows.append(dict(record))
    rows.sort(key=lambda r: r["step"])
    return rows


def check_sample_rate(sample_rate: Any) -> None:
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, int | float | np.number)
        or not math.isfinite(float(sample_rate))
        or sample_rate <= 0
    ):
        raise ParameterError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}")


def finite_1d(values: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be numbers, got {type(values).__name__}") from None
    if array.ndim != 1:
        raise ParameterError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ParameterError(f"{name} must be finite (got NaN or inf)")
    return array


def audio_pair(target: Any, prediction: Any, sample_rate: Any) -> tuple[np.ndarray, np.ndarray]:
    check_sample_rate(sample_rate)
    target = finite_1d(target, "target")
    prediction = finite_1d(prediction, "prediction")
    if target.shape != prediction.shape:
        raise ParameterError(
            f"target and prediction must have the same length, got {target.size} and "
            f"{prediction.size} samples"
        )
    if target.size == 0:
        raise ParameterError("target and prediction are empty")
    return target, prediction


def excerpt_length(n_samples: int, sample_rate: float, seconds: float | None) -> int:
    if seconds is None:
        seconds = DEFAULT_EXCERPT_SECONDS
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float | np.number)
        or not math.isfinite(float(seconds))
        or seconds <= 0
    ):
        raise ParameterError(f"seconds must be > 0 s, got {seconds!r}")
    return min(n_samples, max(1, int(round(float(seconds) * float(sample_rate)))))


def loudest_window(audio: np.ndarray, length: int) -> int:
    """Start of the ``length``-sample window with the most energy (hop ``length // 2``)."""
    if audio.size <= length:
        return 0
    hop = max(1, length // 2)
    starts = np.arange(0, audio.size - length + 1, hop)
    energy = np.cumsum(np.concatenate([[0.0], audio**2]))
    return int(starts[np.argmax(energy[starts + length] - energy[starts])])


__all__ = [
    "DEFAULT_EXCERPT_SECONDS",
    "DEFAULT_SAMPLE_RATE",
    "FLOOR_DB",
    "PHASES",
    "RESPONSE_N_FFT",
    "audio_pair",
    "check_sample_rate",
    "excerpt_length",
    "finite_1d",
    "loudest_window",
    "magnitude_responses",
    "range_labels",
    "transfer_curves",
    "validate_history",
]
