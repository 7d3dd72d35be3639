"""The effect plot: what each stage learned, one panel per stage, one curve per range.

Memoryless stages show their transfer curve, linear filters their magnitude response, both
computed by :mod:`lactose_audio.analysis` with the blocks' own code. Importing this module
imports neither TensorFlow nor matplotlib.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lactose_audio.analysis import (
    DEFAULT_SAMPLE_RATE,
    check_sample_rate,
    magnitude_responses,
    range_labels,
    transfer_curves,
)
from lactose_audio.errors import ParameterError
from lactose_audio.figures import new_figure, save_png

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

    from lactose_audio.chains import Chain, Stage
    from lactose_audio.presets import Effect

EFFECT_PANEL_IN = (6.0, 3.8)
"""Size of one stage panel of :func:`plot_effect` (inches); panels sit in up to 2 columns."""
EFFECT_TITLE_IN = 0.6
"""Height added to the effect figure for its overall title (inches)."""
MAX_LEGEND_RANGES = 10
"""Up to this many ranges are named in a legend; more get a colorbar of the range edges."""
_TRANSFER_POINTS = 401
_RESPONSE_POINTS = 512
_RESPONSE_SPAN_DB = 72.0


def effect_figure(effect_or_chain: Effect | Chain, sample_rate: float | None = None) -> Figure:
    """The figure of :func:`plot_effect` (see there), for notebooks."""
    chain, name, coverage, default_rate = unpack_effect(effect_or_chain)
    rate = float(default_rate if sample_rate is None else sample_rate)
    check_sample_rate(rate)
    stages = chain.stages
    if not stages:
        raise ParameterError("the chain has no stages: nothing to plot")
    flagged = _flagged_per_stage(stages, coverage)

    from matplotlib import colormaps

    n = len(stages)
    n_cols = 1 if n == 1 else 2
    n_rows = math.ceil(n / n_cols)
    fig = new_figure((EFFECT_PANEL_IN[0] * n_cols, EFFECT_PANEL_IN[1] * n_rows + EFFECT_TITLE_IN))
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    cmap = colormaps["viridis"]
    for i, (stage, ax, stage_flagged) in enumerate(zip(stages, axes, flagged, strict=False)):
        n_ranges = stage.n_ranges
        colors = [
            cmap(0.45 if n_ranges == 1 else 0.9 * k / (n_ranges - 1)) for k in range(n_ranges)
        ]
        labels = _row_labels(stage)
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
    return save_png(effect_figure(effect_or_chain, sample_rate), path)


def unpack_effect(obj: Any) -> tuple[Chain, str, list[Any], float]:
    """``(chain, name, coverage, sample_rate)`` of an Effect or a Chain (ParameterError else)."""
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


def _row_labels(stage: Stage) -> list[str]:
    """One label per bank row: the key's range, the knob's setting, or both (a 2-D bank)."""
    control = stage.control_key
    if control is None:
        return range_labels(stage.edges)
    settings = [f"{control.name}={s:g}" for s in control.settings]
    if stage.knob is None:
        return settings
    return [f"{s}, {r}" for s in settings for r in range_labels(stage.edges)]


def _stage_title(stage: Stage) -> str:
    if not stage.keyed:
        return f"{stage.block.name}: unconditioned"
    if stage.knob is None and stage.control is not None:
        return f"{stage.block.name}: follows {stage.control}, {stage.n_ranges} settings"
    unit = stage.edges.unit or "key units"
    knob = f"{stage.knob.name} x " if stage.knob is not None else ""
    return (
        f"{stage.block.name}: keyed on {knob}{stage.key.kind} ({unit}, {stage.key.rate} rate), "
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
    if stage.control_key is not None:  # a knob's rows (2-D: setting by setting): named rows
        bar.set_ticks(np.arange(n))
        bar.set_ticklabels(_row_labels(stage), fontsize=5)
        bar.set_label("bank rows", fontsize=8)
        return
    bar.set_ticks(np.arange(n - 1) + 0.5)
    bar.set_ticklabels([f"{e:.4g}" for e in stage.edges.edges], fontsize=6)
    bar.set_label(f"{stage.key.kind} range edges ({stage.edges.unit})", fontsize=8)


__all__ = [
    "EFFECT_PANEL_IN",
    "EFFECT_TITLE_IN",
    "MAX_LEGEND_RANGES",
    "effect_figure",
    "plot_effect",
]
