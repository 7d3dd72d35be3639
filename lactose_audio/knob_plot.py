"""The knob plot: every parameter of every stage that follows a control, against the control.

One panel per (stage, parameter): the parameter's physical value as the knob moves over its
captured settings, computed exactly as rendering does (:func:`lactose_audio.knobs.stage_rows`:
interpolated in the parameter's declared scaling between the settings around each value),
with the captured settings as dots. A 2-D bank (a knob and a signal key) has one line per
range of its key. Log-scaled parameters (Hz, ``q``) get a log axis, on which their
interpolation is a straight line. Importing this module imports neither TensorFlow nor
matplotlib.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lactose_audio.analysis import range_labels
from lactose_audio.effect_plot import unpack_effect
from lactose_audio.errors import ParameterError
from lactose_audio.figures import new_figure, save_png
from lactose_audio.knobs import stage_rows
from lactose_audio.params import raw_to_physical_np

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

KNOB_PANEL_IN = (4.2, 3.0)
"""Size of one (stage, parameter) panel of :func:`plot_knobs` (inches); up to 3 columns."""
KNOB_POINTS = 201
"""Knob values drawn between the first and last captured setting (plus the settings)."""


def knob_values(stage: Any, values: np.ndarray) -> np.ndarray:
    """Physical parameters of a control-following stage at each knob value.

    Args:
        stage: A stage following a control (alone or with a signal key).
        values: Knob values ``[n]`` within the captured settings.

    Returns:
        float64 ``[n, rows, n_params]``: ``rows`` = 1 for a knob alone, the key's ranges for a
        2-D bank.
    """
    params, n = stage.block.params, stage.block.n_params
    return np.stack(
        [raw_to_physical_np(params, stage_rows(stage, float(v))[:, :n]) for v in values]
    )


def knob_figure(effect_or_chain: Any) -> Figure:
    """The figure of :func:`plot_knobs` (see there), for notebooks."""
    chain, name, _, _ = unpack_effect(effect_or_chain)
    panels = [
        (index, stage, column)
        for index, stage in enumerate(chain.stages)
        if stage.control_key is not None
        for column in range(stage.block.n_params)
    ]
    if not panels:
        raise ParameterError("no stage follows a control (knob): nothing to plot against one")
    from matplotlib import colormaps

    n_cols = min(3, len(panels))
    n_rows = math.ceil(len(panels) / n_cols)
    fig = new_figure((KNOB_PANEL_IN[0] * n_cols, KNOB_PANEL_IN[1] * n_rows + 0.6))
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    cmap = colormaps["viridis"]
    for ax, (index, stage, column) in zip(axes, panels, strict=False):
        control, spec = stage.control_key, stage.block.params[column]
        settings = np.asarray(control.settings)
        grid = np.union1d(np.linspace(settings[0], settings[-1], KNOB_POINTS), settings)
        curves = knob_values(stage, grid)[:, :, column]  # [n, rows]
        dots = knob_values(stage, settings)[:, :, column]
        rows = curves.shape[1]
        labels = range_labels(stage.edges) if stage.knob is not None else [None]
        for r in range(rows):
            color = cmap(0.45 if rows == 1 else 0.9 * r / (rows - 1))
            ax.plot(grid, curves[:, r], color=color, label=labels[r])
            ax.plot(settings, dots[:, r], "o", color=color, markersize=4)
        if spec.scaling == "log":
            ax.set_yscale("log")
        unit = f" ({spec.unit})" if spec.unit else ""
        ax.set_xlabel(f"{control.name} (dots: captured settings)")
        ax.set_ylabel(f"{spec.name}{unit}")
        ax.set_title(f"{index + 1}. {stage.block.name}: {spec.name}", fontsize=10)
        ax.grid(True, alpha=0.3)
        if rows > 1:
            ax.legend(fontsize=6, loc="best", framealpha=0.8)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    knobs = ", ".join(dict.fromkeys(stage.control for _, stage, _ in panels))
    fig.suptitle(f"{name or 'effect'}: parameters against {knobs}", fontsize=12)
    return fig


def plot_knobs(effect_or_chain: Any, path: str | os.PathLike[str]) -> Path:
    """Plot every parameter of every control-following stage against its control.

    Args:
        effect_or_chain: An :class:`~lactose_audio.presets.Effect` or a chain with knobs.
        path: PNG file to write (atomically).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ParameterError: No stage follows a control.
        DataError: ``path`` cannot be written (an existing file is left untouched).
    """
    return save_png(knob_figure(effect_or_chain), path)


__all__ = ["KNOB_PANEL_IN", "KNOB_POINTS", "knob_figure", "knob_values", "plot_knobs"]
