"""Plots a user looks at: what the effect learned, how training went, how close the model is.

Every ``plot_*`` function renders a PNG in memory and writes it atomically
(:func:`lactose_audio.audio_io.atomic_write_bytes`): a failed plot never leaves a truncated
file, and an existing file at ``path`` is untouched unless the new one is complete. The
matching ``*_figure`` functions return the :class:`matplotlib.figure.Figure` instead (for
notebooks). Figures are drawn with matplotlib's Agg canvas attached to the figure itself, so
the plots work headless and never change the backend of the caller's ``pyplot`` session.

The curve data is exposed as plain arrays, computed by the blocks' own code (never a copy of
the DSP): :func:`transfer_curves` runs a memoryless block's kernel on an input ramp with each
range's physical parameters; :func:`magnitude_responses` evaluates a linear filter's
``response`` per range.

Importing this module imports neither TensorFlow nor matplotlib; they are imported by the
functions that need them.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lactose_audio.errors import DataError, ParameterError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

    from lactose_audio.chains import Chain, Stage
    from lactose_audio.presets import Effect
    from lactose_audio.ranges import RangeEdges

DPI = 100
"""Resolution of every PNG (pixels per inch): a figure of ``w x h`` inches is ``100 w x 100 h``."""
EFFECT_PANEL_IN = (6.0, 3.8)
"""Size of one stage panel of :func:`plot_effect` (inches); panels sit in up to 2 columns."""
EFFECT_TITLE_IN = 0.6
"""Height added to the effect figure for its overall title (inches)."""
TRAINING_SIZE_IN = (10.0, 7.0)
SPECTROGRAM_SIZE_IN = (16.0, 5.0)
WAVEFORM_SIZE_IN = (12.0, 6.0)
DEFAULT_SAMPLE_RATE = 44100
DEFAULT_EXCERPT_SECONDS = 4.0
DEFAULT_WAVEFORM_MS = 30.0
RESPONSE_N_FFT = 2**16
"""FFT grid of :func:`magnitude_responses` (0.67 Hz bins at 44.1 kHz), then interpolated."""
MAX_LEGEND_RANGES = 10
"""Up to this many ranges are named in a legend; more get a colorbar of the range edges."""
FLOOR_DB = -240.0
PHASES = ("unconditioned", "ranges")

_TRANSFER_POINTS = 401
_RESPONSE_POINTS = 512
_RESPONSE_SPAN_DB = 72.0
_SPECTROGRAM_RANGE_DB = 90.0
_DIFFERENCE_LIMIT_DB = 20.0


# ---- curve data (numpy out, block code inside) --------------------------------------------


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
    x = _finite_1d(x, "x")
    _check_rate(sample_rate)
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
    _check_rate(sample_rate)
    freqs = _finite_1d(freqs_hz, "freqs_hz")
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


# ---- effect ----------------------------------------------------------------------------------


def effect_figure(effect_or_chain: Effect | Chain, sample_rate: float | None = None) -> Figure:
    """The figure of :func:`plot_effect` (see there), for notebooks."""
    chain, name, coverage, default_rate = _unpack_effect(effect_or_chain)
    rate = float(default_rate if sample_rate is None else sample_rate)
    _check_rate(rate)
    stages = chain.stages
    if not stages:
        raise ParameterError("the chain has no stages: nothing to plot")
    flagged = _flagged_per_stage(stages, coverage)

    from matplotlib import colormaps

    n = len(stages)
    n_cols = 1 if n == 1 else 2
    n_rows = math.ceil(n / n_cols)
    fig = _new_figure((EFFECT_PANEL_IN[0] * n_cols, EFFECT_PANEL_IN[1] * n_rows + EFFECT_TITLE_IN))
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    cmap = colormaps["viridis"]
    for i, (stage, ax, stage_flagged) in enumerate(zip(stages, axes, flagged, strict=False)):
        n_ranges = stage.n_ranges
        colors = [
            cmap(0.45 if n_ranges == 1 else 0.9 * k / (n_ranges - 1)) for k in range(n_ranges)
        ]
        labels = range_labels(stage.edges)
        if stage.block.is_linear:
            _draw_response(ax, stage, rate, colors, labels, stage_flagged)
        elif stage.block.uses_dry:
            _draw_values(ax, stage, colors, labels, stage_flagged)
        else:
            _draw_transfer(ax, stage, rate, colors, labels, stage_flagged)
        ax.set_title(f"{i + 1}. {_stage_title(stage)}", fontsize=10)
        ax.grid(True, alpha=0.3)
        if n_ranges > MAX_LEGEND_RANGES:
            _range_colorbar(fig, ax, stage, colors)
        handles, names = ax.get_legend_handles_labels()
        if handles:
            ax.legend(handles, names, fontsize=7, loc="best", framealpha=0.8)
    for ax in axes[n:]:
        ax.set_visible(False)
    title = f"{name or 'effect'}: {n} stage{'s' if n != 1 else ''}, shown at {rate:g} Hz"
    if any(any(f) for f in flagged):
        title += "  (dashed: flagged range, too little training data)"
    fig.suptitle(title, fontsize=12)
    return fig


def plot_effect(
    effect_or_chain: Effect | Chain, path: str | os.PathLike[str], sample_rate: float | None = None
) -> Path:
    """Plot every stage of an effect, one panel per stage, one curve per range.

    Memoryless stages (waveshapers, gain) show their static transfer curve ``y = f(x)`` for
    ``x`` in ``[-1, 1]`` (:func:`transfer_curves`), with ``y = x`` dotted for reference and,
    for stages keyed on the sample value, the effective curve (each ``x`` through its own
    range's parameters) in black. Linear filters show their magnitude response in dB over
    20 Hz .. Nyquist on a log frequency axis (:func:`magnitude_responses`). Ranges are
    coloured low (dark) to high (light) and named by their bounds in the key's unit in the
    legend (or a colorbar beyond ``MAX_LEGEND_RANGES`` ranges); ranges flagged by the
    effect's coverage as having seen too little training data are dashed and marked
    "(flagged)".

    Args:
        effect_or_chain: An :class:`~lactose_audio.presets.Effect` (name, coverage and sample
            rate are used) or a :class:`~lactose_audio.chains.Chain`.
        path: PNG file to write (atomically).
        sample_rate: Hz for filter responses and kernels; default: the effect's rate, else
            44100.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ParameterError: Nothing to plot, or coverage that does not match the stages.
        DataError: ``path`` cannot be written (an existing file is left untouched).
    """
    return _save(effect_figure(effect_or_chain, sample_rate), path)


def _unpack_effect(obj: Any) -> tuple[Chain, str, list[Any], float]:
    if hasattr(obj, "chain") and hasattr(obj, "coverage"):
        rate = getattr(obj, "sample_rate", None) or DEFAULT_SAMPLE_RATE
        return obj.chain, str(getattr(obj, "name", "") or ""), list(obj.coverage or []), rate
    if hasattr(obj, "stages"):
        return obj, "", [], DEFAULT_SAMPLE_RATE
    raise ParameterError(f"expected an Effect or a Chain to plot, got {type(obj).__name__}")


def _flagged_per_stage(stages: Sequence[Stage], coverage: list[Any]) -> list[list[bool]]:
    if not coverage:
        return [[False] * stage.n_ranges for stage in stages]
    if len(coverage) != len(stages):
        raise ParameterError(
            f"coverage lists {len(coverage)} stages but the chain has {len(stages)}"
        )
    out = []
    for i, (entry, stage) in enumerate(zip(coverage, stages, strict=True)):
        flagged = list(entry.get("flagged", [])) if isinstance(entry, Mapping) else None
        if flagged is None or len(flagged) != stage.n_ranges:
            raise ParameterError(
                f"coverage[{i}].flagged must list {stage.n_ranges} booleans (one per range of "
                f"stage {stage.block.name}), got {flagged!r}"
            )
        out.append([bool(f) for f in flagged])
    return out


def _stage_title(stage: Stage) -> str:
    if not stage.keyed:
        return f"{stage.block.name}: unconditioned"
    unit = stage.edges.unit or "key units"
    return (
        f"{stage.block.name}: keyed on {stage.key.kind} ({unit}, {stage.key.rate} rate), "
        f"{stage.n_ranges} ranges"
    )


def _range_style(k: int, colors, labels, flagged, many: bool) -> dict[str, Any]:
    is_flagged = bool(flagged[k])
    if many:  # the colorbar names the ranges; the legend only explains the dashes, once
        label = "flagged (dashed)" if is_flagged and k == flagged.index(True) else None
    else:
        label = labels[k] + (" (flagged)" if is_flagged else "")
    return {
        "color": colors[k],
        "linestyle": "--" if is_flagged else "-",
        "linewidth": 1.6,
        "label": label,
        "gid": f"range-{k}{'-flagged' if is_flagged else ''}",
    }


def _draw_transfer(ax, stage: Stage, rate: float, colors, labels, flagged) -> None:
    x = np.linspace(-1.0, 1.0, _TRANSFER_POINTS)
    curves = transfer_curves(stage, x, rate)
    many = stage.n_ranges > MAX_LEGEND_RANGES
    ax.plot(x, x, color="0.6", linestyle=":", linewidth=1.0, label="y = x", gid="identity")
    for k, curve in enumerate(curves):
        ax.plot(x, curve, **_range_style(k, colors, labels, flagged, many))
    if stage.keyed and stage.key.kind == "sample" and stage.control_rate == "sample":
        from lactose_audio.ranges import range_index

        effective = curves[range_index(x, stage.edges), np.arange(x.size)]
        ax.plot(x, effective, color="black", linewidth=1.0, label="effective", gid="effective")
    ax.set_xlim(-1.0, 1.0)
    ax.set_xlabel("input (linear)")
    ax.set_ylabel("output (linear)")


def _draw_values(ax, stage: Stage, colors, labels, flagged) -> None:
    """A stage that blends with the chain's input (``mix``) has no transfer curve of its own:
    its parameters, one bar per range (hatched: flagged), grouped per parameter."""
    values = stage.physical()  # [n_ranges, n_params]
    n_ranges, n_params = values.shape
    width = 0.8 / n_ranges
    many = n_ranges > MAX_LEGEND_RANGES
    for k in range(n_ranges):
        style = _range_style(k, colors, labels, flagged, many)
        ax.bar(
            np.arange(n_params) + (k - (n_ranges - 1) / 2) * width,
            values[k],
            width,
            color=style["color"],
            hatch="//" if flagged[k] else None,
            label=style["label"],
            gid=style["gid"],
        )
    specs = stage.block.params
    ax.set_xticks(np.arange(n_params))
    ax.set_xticklabels([f"{p.name} ({p.unit})" if p.unit else p.name for p in specs])
    ax.set_ylim(min(0.0, min(p.minimum for p in specs)), max(p.maximum for p in specs))
    ax.set_ylabel("value")


def _draw_response(ax, stage: Stage, rate: float, colors, labels, flagged) -> None:
    nyquist = 0.5 * rate
    low = min(20.0, 0.5 * nyquist)
    freqs = np.geomspace(low, nyquist, _RESPONSE_POINTS)
    responses = magnitude_responses(stage, freqs, rate)
    many = stage.n_ranges > MAX_LEGEND_RANGES
    for k, row in enumerate(responses):
        ax.semilogx(freqs, row, **_range_style(k, colors, labels, flagged, many))
    top = float(responses.max())
    bottom = max(float(responses.min()), top - _RESPONSE_SPAN_DB)
    ax.set_ylim(bottom - 3.0, top + 3.0)
    ax.set_xlim(low, nyquist)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("magnitude (dB)")


def _range_colorbar(fig, ax, stage: Stage, colors) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import BoundaryNorm, ListedColormap

    n = stage.n_ranges
    mappable = ScalarMappable(BoundaryNorm(np.arange(n + 1) - 0.5, n), ListedColormap(colors))
    bar = fig.colorbar(mappable, ax=ax, pad=0.01)
    bar.set_ticks(np.arange(n - 1) + 0.5)
    bar.set_ticklabels([f"{e:.4g}" for e in stage.edges.edges], fontsize=6)
    bar.set_label(f"{stage.key.kind} range edges ({stage.edges.unit})", fontsize=8)


# ---- training ------------------------------------------------------------------------------


def training_figure(history: Sequence[Mapping[str, Any]]) -> Figure:
    """The figure of :func:`plot_training` (see there), for notebooks."""
    rows = _validate_history(history)
    steps = np.array([r["step"] for r in rows], np.float64)
    loss = np.array([r["loss"] for r in rows], np.float64)
    val = [(r["step"], r["val_esr"]) for r in rows if r.get("val_esr") is not None]
    boundary = next((r["step"] for r in rows if r["phase"] == "ranges"), None)
    seconds = max(float(r["seconds"]) for r in rows)

    fig = _new_figure(TRAINING_SIZE_IN)
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
    return _save(training_figure(history), path)


def _validate_history(history: Any) -> list[dict[str, Any]]:
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


# ---- audio comparisons ---------------------------------------------------------------------


def spectrogram_figure(
    target: Any, prediction: Any, sample_rate: float, seconds: float | None = None
) -> Figure:
    """The figure of :func:`plot_spectrograms` (see there), for notebooks."""
    target, prediction = _audio_pair(target, prediction, sample_rate)
    excerpt = _excerpt_length(target.size, sample_rate, seconds)
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

    fig = _new_figure(SPECTROGRAM_SIZE_IN)
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
        f"{_esr(target, prediction):.4g}",
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
    return _save(spectrogram_figure(target, prediction, sample_rate, seconds), path)


def waveform_figure(
    target: Any,
    prediction: Any,
    sample_rate: float,
    milliseconds: float = DEFAULT_WAVEFORM_MS,
) -> Figure:
    """The figure of :func:`plot_waveforms` (see there), for notebooks."""
    target, prediction = _audio_pair(target, prediction, sample_rate)
    if not (isinstance(milliseconds, int | float) and math.isfinite(milliseconds)) or (
        milliseconds <= 0
    ):
        raise ParameterError(f"milliseconds must be > 0 ms, got {milliseconds!r}")
    if target.size < 2:
        raise ParameterError(f"need at least 2 samples for a waveform, got {target.size}")
    length = max(2, min(target.size, int(round(milliseconds * 1e-3 * sample_rate))))
    start = _loudest_window(target, length)
    t_ms = (start + np.arange(length)) * (1e3 / sample_rate)
    tgt, pred = target[start : start + length], prediction[start : start + length]

    fig = _new_figure(WAVEFORM_SIZE_IN)
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
        f"{start / sample_rate:.3f} s); ESR there {_esr(tgt, pred):.4g}",
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
    return _save(waveform_figure(target, prediction, sample_rate, milliseconds), path)


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
    _validate_history(history)
    _audio_pair(target, prediction, sample_rate)
    _unpack_effect(effect)
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


# ---- helpers -------------------------------------------------------------------------------


def _new_figure(size_in: tuple[float, float]) -> Figure:
    """A pyplot-free figure on an Agg canvas (headless; the caller's backend is untouched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size_in, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Render ``fig`` to PNG bytes in memory, then write them atomically to ``path``."""
    from lactose_audio.audio_io import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def _check_rate(sample_rate: Any) -> None:
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, int | float | np.number)
        or not math.isfinite(float(sample_rate))
        or sample_rate <= 0
    ):
        raise ParameterError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}")


def _finite_1d(values: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be numbers, got {type(values).__name__}") from None
    if array.ndim != 1:
        raise ParameterError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ParameterError(f"{name} must be finite (got NaN or inf)")
    return array


def _audio_pair(target: Any, prediction: Any, sample_rate: Any) -> tuple[np.ndarray, np.ndarray]:
    _check_rate(sample_rate)
    target = _finite_1d(target, "target")
    prediction = _finite_1d(prediction, "prediction")
    if target.shape != prediction.shape:
        raise ParameterError(
            f"target and prediction must have the same length, got {target.size} and "
            f"{prediction.size} samples"
        )
    if target.size == 0:
        raise ParameterError("target and prediction are empty")
    return target, prediction


def _excerpt_length(n_samples: int, sample_rate: float, seconds: float | None) -> int:
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


def _loudest_window(audio: np.ndarray, length: int) -> int:
    """Start of the ``length``-sample window with the most energy (hop ``length // 2``)."""
    if audio.size <= length:
        return 0
    hop = max(1, length // 2)
    starts = np.arange(0, audio.size - length + 1, hop)
    energy = np.cumsum(np.concatenate([[0.0], audio**2]))
    return int(starts[np.argmax(energy[starts + length] - energy[starts])])


def _esr(target: np.ndarray, prediction: np.ndarray) -> float:
    """Error-to-signal ratio ``sum((p - t)^2) / sum(t^2)`` (inf for a silent target)."""
    energy = float(np.sum(target**2))
    error = float(np.sum((prediction - target) ** 2))
    return error / energy if energy > 0 else (0.0 if error == 0 else math.inf)


__all__ = [
    "effect_figure",
    "magnitude_responses",
    "plot_effect",
    "plot_spectrograms",
    "plot_training",
    "plot_waveforms",
    "range_labels",
    "spectrogram_figure",
    "training_figure",
    "transfer_curves",
    "waveform_figure",
    "write_report",
]
