"""Plots a user looks at: what the effect learned, how training went, how close the model is.

Every ``plot_*`` function renders a PNG in memory and writes it atomically
(:func:`lactose_audio.atomic.atomic_write_bytes`): a failed plot never leaves a truncated
file, and an existing file at ``path`` is untouched unless the new one is complete. The
matching ``*_figure`` functions return the :class:`matplotlib.figure.Figure` instead (for
notebooks). Figures are headless (:mod:`lactose_audio.figures`).

This module draws the training and audio-comparison plots and writes the whole report
(:func:`write_report`); the effect plot lives in :mod:`lactose_audio.effect_plot`, the curve
data and checks behind the plots in :mod:`lactose_audio.analysis`. Their public names are
re-exported here (``lactose_audio.report.transfer_curves`` keeps working).

Importing this module imports neither TensorFlow nor matplotlib; they are imported by the
functions that need them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lactose_audio.analysis import (
    DEFAULT_EXCERPT_SECONDS,
    DEFAULT_SAMPLE_RATE,
    FLOOR_DB,
    PHASES,
    RESPONSE_N_FFT,
    audio_pair,
    check_sample_rate,
    excerpt_length,
    finite_1d,
    loudest_window,
    magnitude_responses,
    range_labels,
    transfer_curves,
    validate_history,
)
from lactose_audio.effect_plot import (
    EFFECT_PANEL_IN,
    EFFECT_TITLE_IN,
    MAX_LEGEND_RANGES,
    effect_figure,
    plot_effect,
    unpack_effect,
)
from lactose_audio.errors import DataError, ParameterError
from lactose_audio.figures import DPI, new_figure, save_png
from lactose_audio.losses import esr

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

    from lactose_audio.chains import Chain
    from lactose_audio.presets import Effect

TRAINING_SIZE_IN = (10.0, 7.0)
SPECTROGRAM_SIZE_IN = (16.0, 5.0)
WAVEFORM_SIZE_IN = (12.0, 6.0)
DEFAULT_WAVEFORM_MS = 30.0

_SPECTROGRAM_RANGE_DB = 90.0
_DIFFERENCE_LIMIT_DB = 20.0


# ---- training ------------------------------------------------------------------------------


def training_figure(history: Sequence[Mapping[str, Any]]) -> Figure:
    """The figure of :func:`plot_training` (see there), for notebooks."""
    rows = validate_history(history)
    steps = np.array([r["step"] for r in rows], np.float64)
    loss = np.array([r["loss"] for r in rows], np.float64)
    val = [(r["step"], r["val_esr"]) for r in rows if r.get("val_esr") is not None]
    boundary = next((r["step"] for r in rows if r["phase"] == "ranges"), None)
    seconds = max(float(r["seconds"]) for r in rows)

    fig = new_figure(TRAINING_SIZE_IN)
    ax_loss, ax_val = fig.subplots(2, 1, sharex=True)
    ax_loss.plot(steps, loss, color="tab:blue", linewidth=1.2, label="training loss", gid="loss")
    ax_loss.set_yscale("log" if np.all(loss > 0) else "linear")
    ax_loss.set_ylabel("training loss")
    if val:
        v_steps = np.array([s for s, _ in val], np.float64)
        v_esr = np.array([e for _, e in val], np.float64)
        ax_val.plot(
            v_steps,
            v_esr,
            "o-",
            color="tab:orange",
            markersize=3,
            linewidth=1.2,
            label="validation ESR",
            gid="val_esr",
        )
        ax_val.set_yscale("log" if np.all(v_esr > 0) else "linear")
        best = int(np.argmin(v_esr))
        ax_val.plot(
            [v_steps[best]],
            [v_esr[best]],
            marker="*",
            markersize=14,
            color="tab:red",
            linestyle="none",
            label=f"best ESR {v_esr[best]:.4g} at step {int(v_steps[best])}",
            gid="best_val_esr",
        )
    else:
        ax_val.text(
            0.5,
            0.5,
            "no validation ESR recorded",
            transform=ax_val.transAxes,
            ha="center",
            va="center",
            color="0.4",
        )
    ax_val.set_ylabel("validation ESR")
    ax_val.set_xlabel("step")
    for ax in (ax_loss, ax_val):
        if boundary is not None:
            ax.axvline(
                boundary,
                color="0.3",
                linestyle="--",
                linewidth=1.0,
                label=f"ranges start (step {boundary})",
                gid="phase_boundary",
            )
            ax.axvspan(steps.min(), boundary, color="0.9", zorder=0)
        ax.grid(True, which="both", alpha=0.3)
        handles, _ = ax.get_legend_handles_labels()
        if handles:
            ax.legend(fontsize=8, loc="upper right")
    phases = "unconditioned fit (shaded), then per-range fine-tuning"
    if boundary is None:
        phases = f"{rows[0]['phase']} phase only"
    fig.suptitle(
        f"training: {len(rows)} records up to step {int(steps.max())}, {seconds:.1f} s; {phases}",
        fontsize=11,
    )
    return fig


def plot_training(history: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Training loss and validation ESR over steps (log y), phases and best ESR marked.

    Top panel: the training loss per recorded step. Bottom panel: the validation ESR where
    it was measured, the best (lowest) one starred and named in the legend. A dashed
    vertical line marks the first step of the per-range phase; the unconditioned phase
    before it is shaded.

    Args:
        history: Records ``{"step": int, "seconds": float, "phase": "unconditioned" |
            "ranges", "loss": float, "val_esr": float | None}`` (plotted in step order).
        path: PNG file to write (atomically).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ParameterError: On an empty history or a malformed record (names the record and field).
        DataError: ``path`` cannot be written (an existing file is left untouched).
    """
    return save_png(training_figure(history), path)


# ---- audio comparisons ---------------------------------------------------------------------


def spectrogram_figure(
    target: Any, prediction: Any, sample_rate: float, seconds: float | None = None
) -> Figure:
    """The figure of :func:`plot_spectrograms` (see there), for notebooks."""
    target, prediction = audio_pair(target, prediction, sample_rate)
    excerpt = excerpt_length(target.size, sample_rate, seconds)
    target, prediction = target[:excerpt], prediction[:excerpt]
    if excerpt < 64:
        raise ParameterError(f"need at least 64 samples for a spectrogram, got {excerpt}")

    from scipy.signal import stft

    n_fft = min(2048 if sample_rate >= 32000 else 1024, 2 ** int(math.log2(excerpt)))
    kwargs = {
        "fs": float(sample_rate),
        "nperseg": n_fft,
        "noverlap": 3 * n_fft // 4,
        "boundary": None,
        "padded": False,
    }  # no zero-padded edge frames (fake clicks)
    freqs, times, z_target = stft(target, **kwargs)
    _, _, z_model = stft(prediction, **kwargs)
    db_target = 20.0 * np.log10(np.abs(z_target[1:]) + 1e-12)  # bin 0 has no place on log axis
    db_model = 20.0 * np.log10(np.abs(z_model[1:]) + 1e-12)
    freqs = freqs[1:]
    vmax = float(max(db_target.max(), db_model.max()))
    vmin = vmax - _SPECTROGRAM_RANGE_DB
    difference = np.maximum(db_model, vmin) - np.maximum(db_target, vmin)

    fig = new_figure(SPECTROGRAM_SIZE_IN)
    axes = fig.subplots(1, 3, sharex=True, sharey=True)
    common = {"shading": "auto", "rasterized": True}
    for ax, data, title, gid in (
        (axes[0], db_target, "target (wet recording)", "target"),
        (axes[1], db_model, "model", "model"),
    ):
        mesh = ax.pcolormesh(
            times, freqs, data, vmin=vmin, vmax=vmax, cmap="magma", gid=gid, **common
        )
        ax.set_title(title)
    fig.colorbar(mesh, ax=axes[:2], label="magnitude (dB, same scale)", pad=0.01)
    diff_mesh = axes[2].pcolormesh(
        times,
        freqs,
        difference,
        vmin=-_DIFFERENCE_LIMIT_DB,
        vmax=_DIFFERENCE_LIMIT_DB,
        cmap="RdBu_r",
        gid="difference",
        **common,
    )
    axes[2].set_title("model − target")
    fig.colorbar(diff_mesh, ax=axes[2], label="dB", pad=0.01)
    for ax in axes:
        ax.set_yscale("log")
        ax.set_ylim(max(20.0, float(freqs[0])), 0.5 * float(sample_rate))
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (Hz)")
    fig.suptitle(
        f"first {excerpt / sample_rate:.2f} s, STFT {n_fft} samples; ESR over the excerpt "
        f"{esr(target, prediction, eps=0.0):.4g}",
        fontsize=11,
    )
    return fig


def plot_spectrograms(
    target: Any,
    prediction: Any,
    sample_rate: float,
    path: str | os.PathLike[str],
    seconds: float | None = None,
) -> Path:
    """Target vs model log-magnitude spectrograms and their difference, side by side.

    Both spectrograms share one dB colour scale (90 dB below the louder one's peak); the
    third panel is ``model dB - target dB`` (each floored at the bottom of the scale, so
    silence in both is 0 dB), red where the model is louder, blue where it is quieter.

    Args:
        target: The wet recording, float ``[n_samples]``.
        prediction: The model's output for the same dry input, float ``[n_samples]``.
        sample_rate: Hz.
        path: PNG file to write (atomically).
        seconds: Length of the excerpt from the start; default 4 s (or the whole signal).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ParameterError: Shapes differ, not 1-D, non-finite, fewer than 64 samples, or a
            non-positive ``seconds`` or ``sample_rate``.
        DataError: ``path`` cannot be written (an existing file is left untouched).
    """
    return save_png(spectrogram_figure(target, prediction, sample_rate, seconds), path)


def waveform_figure(
    target: Any,
    prediction: Any,
    sample_rate: float,
    milliseconds: float = DEFAULT_WAVEFORM_MS,
) -> Figure:
    """The figure of :func:`plot_waveforms` (see there), for notebooks."""
    target, prediction = audio_pair(target, prediction, sample_rate)
    if not (isinstance(milliseconds, int | float) and math.isfinite(milliseconds)) or (
        milliseconds <= 0
    ):
        raise ParameterError(f"milliseconds must be > 0 ms, got {milliseconds!r}")
    if target.size < 2:
        raise ParameterError(f"need at least 2 samples for a waveform, got {target.size}")
    length = max(2, min(target.size, int(round(milliseconds * 1e-3 * sample_rate))))
    start = loudest_window(target, length)
    t_ms = (start + np.arange(length)) * (1e3 / sample_rate)
    tgt, pred = target[start : start + length], prediction[start : start + length]

    fig = new_figure(WAVEFORM_SIZE_IN)
    ax_wave, ax_err = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    ax_wave.plot(t_ms, tgt, color="black", linewidth=1.4, label="target", gid="target")
    ax_wave.plot(
        t_ms, pred, color="tab:orange", linewidth=1.0, linestyle="--", label="model", gid="model"
    )
    ax_wave.set_ylabel("amplitude")
    ax_wave.legend(fontsize=8, loc="upper right")
    ax_err.plot(t_ms, pred - tgt, color="tab:red", linewidth=1.0, gid="error")
    ax_err.set_ylabel("model − target")
    ax_err.set_xlabel("time (ms)")
    for ax in (ax_wave, ax_err):
        ax.grid(True, alpha=0.3)
    fig.suptitle(
        f"loudest {length / sample_rate * 1e3:.1f} ms of the target (from "
        f"{start / sample_rate:.3f} s); ESR there {esr(tgt, pred, eps=0.0):.4g}",
        fontsize=11,
    )
    return fig


def plot_waveforms(
    target: Any,
    prediction: Any,
    sample_rate: float,
    path: str | os.PathLike[str],
    milliseconds: float = DEFAULT_WAVEFORM_MS,
) -> Path:
    """Target vs model waveform over a short excerpt, and their difference.

    The excerpt is the loudest ``milliseconds`` window of the target (where a drive's
    clipping shape is easiest to see).

    Args:
        target: The wet recording, float ``[n_samples]``.
        prediction: The model's output, float ``[n_samples]``.
        sample_rate: Hz.
        path: PNG file to write (atomically).
        milliseconds: Excerpt length in ms.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ParameterError: Shapes differ, not 1-D, non-finite, or bad ``milliseconds``.
        DataError: ``path`` cannot be written (an existing file is left untouched).
    """
    return save_png(waveform_figure(target, prediction, sample_rate, milliseconds), path)


def write_report(
    directory: str | os.PathLike[str],
    effect: Effect | Chain,
    history: Sequence[Mapping[str, Any]],
    target: Any,
    prediction: Any,
    sample_rate: float,
) -> list[Path]:
    """Write the training report: ``training.png``, ``effect.png``, ``spectrogram.png``,
    ``waveform.png``.

    Every input is validated before the first file is written, so bad input leaves the
    directory as it was.

    Args:
        directory: Folder to write into (created, with parents, if missing).
        effect: The trained :class:`~lactose_audio.presets.Effect` (or its chain).
        history: Training records, as for :func:`plot_training`.
        target: Validation wet audio, float ``[n_samples]``.
        prediction: The model's output on the matching dry audio, float ``[n_samples]``.
        sample_rate: Hz of ``target`` and ``prediction`` (also used for the effect plot).

    Returns:
        The four paths, in the order above.

    Raises:
        ParameterError: On invalid history, audio or effect.
        DataError: If the directory cannot be created or a file cannot be written.
    """
    validate_history(history)
    audio_pair(target, prediction, sample_rate)
    unpack_effect(effect)
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"{folder}: cannot create the report folder ({exc.strerror or exc})"
        ) from None
    return [
        plot_training(history, folder / "training.png"),
        plot_effect(effect, folder / "effect.png", sample_rate),
        plot_spectrograms(target, prediction, sample_rate, folder / "spectrogram.png"),
        plot_waveforms(target, prediction, sample_rate, folder / "waveform.png"),
    ]


__all__ = [
    "DEFAULT_EXCERPT_SECONDS",
    "DEFAULT_SAMPLE_RATE",
    "DEFAULT_WAVEFORM_MS",
    "DPI",
    "EFFECT_PANEL_IN",
    "EFFECT_TITLE_IN",
    "FLOOR_DB",
    "MAX_LEGEND_RANGES",
    "PHASES",
    "RESPONSE_N_FFT",
    "SPECTROGRAM_SIZE_IN",
    "TRAINING_SIZE_IN",
    "WAVEFORM_SIZE_IN",
    "audio_pair",
    "check_sample_rate",
    "effect_figure",
    "excerpt_length",
    "finite_1d",
    "loudest_window",
    "magnitude_responses",
    "plot_effect",
    "plot_spectrograms",
    "plot_training",
    "plot_waveforms",
    "range_labels",
    "spectrogram_figure",
    "training_figure",
    "transfer_curves",
    "validate_history",
    "waveform_figure",
    "write_report",
]
