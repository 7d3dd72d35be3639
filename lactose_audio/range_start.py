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
TensorFlow: the banks are read and assigned as numpy arrays.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lactose_audio.initialise import (
    CORNER_GRID_HZ,
    DRIVE_GRID_DB,
    drive_stage,
    level_stage,
    set_start_column,
)
from lactose_audio.losses import DEFAULT_PRE_EMPHASIS, pre_emphasis

#: Seconds of training audio the per-range searches render (spread over the take in
#: :data:`PIECE_SECONDS` pieces, each after its filters' warm-up): a 30 s take through a
#: 10-stage chain renders in ~70 ms, and a search renders it ~30 times.
START_SECONDS = 8.0
PIECE_SECONDS = 0.5


class _RangeLoss:
    """Per-range sums of the training loss of renders of ``chain`` over pieces of ``tracks``."""

    def __init__(self, chain: Any, tracks: list[Any], sample_rate: float, keyed: Any) -> None:
        from lactose_audio.iir import NumpyBackend
        from lactose_audio.sampling import context_samples

        self.chain, self.tracks, self.sample_rate = chain, tracks, float(sample_rate)
        self.backend = NumpyBackend
        self.n_rows = keyed.n_ranges
        position = chain.stages.index(keyed)
        hop = chain.hop_size
        context = -(-context_samples(chain, int(sample_rate)) // hop) * hop
        total_samples = sum(t.n_samples for t in tracks)
        self.pieces: list[list[tuple[int, int, int, np.ndarray]]] = []
        self.rows, self.targets = [], []
        tt = np.zeros(self.n_rows)
        tt_pre = np.zeros(self.n_rows)
        total = total_pre = 0.0
        for track in tracks:
            pieces = _pieces(track.n_samples, total_samples, sample_rate, hop, context)
            rows = _sample_rows(track.selections[position], track.n_samples, hop)
            mask = track.training_mask(track.n_samples)
            wet = track.wet.astype(np.float64)
            wet_pre = pre_emphasis(wet, DEFAULT_PRE_EMPHASIS)
            # each piece with the training samples it scores (validation blocks excluded)
            pieces = [(a0, a, b, mask[a:b]) for a0, a, b in pieces]
            picked = [
                np.concatenate([v[a:b][keep] for _, a, b, keep in pieces])
                for v in (rows, wet, wet_pre)
            ]
            self.pieces.append(pieces)
            self.rows.append(picked[0])
            self.targets.append((picked[1], picked[2]))
            tt += np.bincount(picked[0], picked[1] ** 2, self.n_rows)
            tt_pre += np.bincount(picked[0], picked[2] ** 2, self.n_rows)
            total += float(picked[1] @ picked[1])
            total_pre += float(picked[2] @ picked[2])
        self.counts = sum(np.bincount(r, minlength=self.n_rows) for r in self.rows)
        self.norm = 1.0 / max(total, 1e-30), 1.0 / max(total_pre, 1e-30)
        self.floor = tt * self.norm[0] + tt_pre * self.norm[1]  # the loss of silence, per range

    def _render(self, track: Any, pieces: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
        """The prediction (plain, pre-emphasised) on ``pieces``' kept samples, float64."""
        plain, emphasised = [], []
        for a0, a, b, keep in pieces:
            sels = self.chain.slice_selections(track.selections, a0, b - a0)
            y = self.backend(self.chain, self.sample_rate).process(track.dry[a0:b], sels)
            y = y.astype(np.float64)
            plain.append(y[a - a0 :][keep])
            emphasised.append(pre_emphasis(y, DEFAULT_PRE_EMPHASIS)[a - a0 :][keep])
        return np.concatenate(plain), np.concatenate(emphasised)

    def __call__(self, matched: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(loss, gain)`` per range: the loss at the least-squares output gain and that gain
        (linear, relative to the chain's current output level); with ``matched`` False, the
        loss as the chain stands (gain 1)."""
        b = np.zeros(self.n_rows)
        c = np.zeros(self.n_rows)
        for track, pieces, rows, (wet, wet_pre) in zip(
            self.tracks, self.pieces, self.rows, self.targets, strict=True
        ):
            pred, pred_pre = self._render(track, pieces)
            if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(pred_pre))):
                return np.full(self.n_rows, math.inf), np.ones(self.n_rows)
            b += self.norm[0] * np.bincount(rows, pred * wet, self.n_rows)
            b += self.norm[1] * np.bincount(rows, pred_pre * wet_pre, self.n_rows)
            c += self.norm[0] * np.bincount(rows, pred * pred, self.n_rows)
            c += self.norm[1] * np.bincount(rows, pred_pre * pred_pre, self.n_rows)
        gain = np.ones(self.n_rows)
        if matched:
            ok = (c > 0) & (b > 0)
            gain[ok] = b[ok] / c[ok]
        loss = self.floor - 2.0 * b * gain + c * gain**2
        return loss, gain


def _pieces(
    n_samples: int, total_samples: int, sample_rate: float, hop: int, context: int
) -> list[tuple[int, int, int]]:
    """``(render_from, loss_from, end)`` pieces of a track: the whole track when the take is
    short, else this track's share of :data:`START_SECONDS` in :data:`PIECE_SECONDS` pieces
    spread evenly over it, each rendered from ``context`` samples before it (frame-aligned)."""
    share = START_SECONDS * sample_rate * n_samples / max(total_samples, 1)
    piece = max(hop, int(PIECE_SECONDS * sample_rate) // hop * hop)
    count = int(share // piece)
    if count < 1 or count * (piece + context) >= n_samples:
        return [(0, 0, n_samples)]
    frames = n_samples // hop
    starts = np.linspace(context // hop, frames - piece // hop, count).astype(int) * hop
    return [(max(0, a - context), a, min(a + piece, n_samples)) for a in starts]


def _sample_rows(selection: Any, n_samples: int, hop_size: int) -> np.ndarray:
    """int ``[n_samples]``: the row that weighs most at each sample (frame rows repeated)."""
    lower = np.asarray(selection.lower).reshape(-1)
    upper = np.asarray(selection.upper).reshape(-1)
    frac = np.asarray(selection.frac).reshape(-1)
    rows = np.where(frac >= 0.5, upper, lower).astype(np.int64)
    if rows.size != n_samples:  # frame rate
        rows = np.repeat(rows, hop_size)
        if rows.size < n_samples:
            rows = np.concatenate([rows, np.full(n_samples - rows.size, rows[-1])])
    return rows[:n_samples]


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
    losses = _RangeLoss(chain, tracks, sample_rate, keyed[0])
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
