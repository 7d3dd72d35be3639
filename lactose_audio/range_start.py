"""A data-driven start for each range of a keyed fit (the ranges phase).

Every range starts from the unconditioned fit: one compromise for all the data. Where the
effect differs between ranges — a resonant low-pass below a split note and a bright drive
above it, a clean sound at low levels and a crunch at high ones — a range's best parameters
can be far from that compromise, and a local optimiser started there may stay in its basin: a
low-pass left wide open by the pooled fit has almost no gradient on a range whose notes have
no energy near its corner (on a pitch split, every range's low-pass stayed at 21 kHz and the
shelves and peaks approximated the 450 Hz low-pass instead; test ESR 3.3).

:func:`start_ranges_from_data` repeats the unconditioned start's grid searches
(:mod:`lactose_audio.initialise`: the drive, then every filter corner in chain order, each
with the output level matched) *per range*, on the training audio rendered by the numpy
backend with the fit's own selections:

- with a hard "if", each sample is processed by one range's row, so the training loss (ESR
  plus pre-emphasised ESR, one normalisation over all the data) is a sum of per-range parts;
  one render per grid value (every row set to it) gives every range's part at once, and each
  range keeps the value that lowers its own part (soft bands: each sample is counted in the
  range that weighs most);
- the output level is the least-squares gain per range, in closed form from the per-range
  sums ``p·p``, ``p·t`` (plain and pre-emphasised): the loss of range ``r`` at output gain
  ``g`` is ``T_r - 2 b_r g + c_r g^2``.

A range without training data keeps its start. The trainer validates the result and keeps the
unconditioned start if it validates better (:meth:`lactose_audio.trainer.Trainer.start_ranges`).
Renders run on the training parts of the pairs only (validation blocks excluded). No
TensorFlow: the banks are read and assigned as numpy arrays; the renders and the per-range
sums are :class:`lactose_audio.piece_loss.PieceLoss`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lactose_audio.initialise import (
    CORNER_GRID_HZ,
    DRIVE_GRID_DB,
    drive_stage,
    level_stage,
    set_start_column,
)
from lactose_audio.piece_loss import PieceLoss


def _searches(chain: Any) -> list[tuple[Any, int, tuple[float, ...]]]:
    """``(stage, column, grid)``: the drive, then every filter corner in chain order."""
    stages = chain.stages
    out = []
    index = drive_stage(chain)
    if index is not None and stages[index].signal_keyed:
        stage = stages[index]
        out.append((stage, stage.block.param_names.index("gain_db"), DRIVE_GRID_DB))
    for stage in stages:
        grid = CORNER_GRID_HZ.get(stage.block.name)
        if grid and stage.signal_keyed:
            out.append((stage, stage.block.param_names.index("cutoff_hz"), grid))
    return out


def start_ranges_from_data(chain: Any, tracks: list[Any], sample_rate: float) -> bool:
    """Set each range's drive, filter corners and output level from its own training data.

    Applies to a fit whose keyed stages share one signal key and its edges (``--key
    amplitude``, ``--key pitch``), not to knob captures (their levels are matched per
    capture: :func:`lactose_audio.initialise.match_capture_levels`).

    Args:
        chain: the chain in its ranges phase (every row at the unconditioned fit); its banks
            are changed in place.
        tracks: :func:`lactose_audio.sampling.prepare_tracks` of the training pairs.
        sample_rate: Hz.

    Returns:
        True if a row changed.
    """
    keyed = [s for s in chain.stages if s.keyed]
    if not keyed or any(not s.signal_keyed or s.control_key is not None for s in keyed):
        return False
    if len({s.selection_signature() for s in keyed}) != 1:
        return False  # stages on different keys or edges: rows are not one partition
    level_index = level_stage(chain)
    level = None if level_index is None else chain.stages[level_index]
    if level is not None and not level.signal_keyed:
        level = None
    losses = PieceLoss(chain, tracks, sample_rate, keyed[0])
    trained = losses.counts > 0
    if not trained.any():
        return False

    def apply_gain(gain: np.ndarray) -> None:
        if level is None:
            return
        column = level.block.param_names.index("gain_db")
        shift = np.where(trained, 20.0 * np.log10(np.maximum(gain, 1e-6)), 0.0)
        set_start_column(level, column, level.physical()[:, column] + shift)

    matched = level is not None
    current, gain = losses(matched)
    changed = matched and bool(np.any(trained & (np.abs(gain - 1.0) > 1e-6)))
    if changed:
        apply_gain(gain)
        current, gain = losses(matched)
    for stage, column, grid in _searches(chain):
        start = stage.physical()[:, column].copy()
        best = start.copy()
        best_gain = gain
        best_loss = current.copy()
        for value in grid:
            set_start_column(stage, column, np.full(start.shape, value))
            loss, trial_gain = losses(matched)
            better = trained & np.isfinite(loss) & (loss < best_loss - 1e-12)
            best = np.where(better, stage.physical()[:, column], best)
            best_gain = np.where(better, trial_gain, best_gain)
            best_loss = np.where(better, loss, best_loss)
        set_start_column(stage, column, best)
        if np.any(best != start):
            changed = True
            apply_gain(best_gain)
        current, gain = losses(matched)
    return changed
