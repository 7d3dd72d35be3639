"""Training losses of a chain from numpy renders, for the data-driven starts' trials.

The data-driven starts (:mod:`lactose_audio.initialise` for the unconditioned fit,
:mod:`lactose_audio.range_start` for each range of a keyed one) try a few dozen values of a
drive or a filter corner, each with the output level matched. Each trial needs only the loss,
not its gradient, so it renders with the numpy backend (:mod:`lactose_audio.iir`) instead of
evaluating the TensorFlow graph's loss and gradient (0.11-0.16 s per evaluation on a 9-stage
chain, two per level-matched trial).

The loss is the fitter's: ESR plus pre-emphasised ESR (:data:`DEFAULT_PRE_EMPHASIS`), one
normalisation over all the samples scored. It is quadratic in the output's linear gain ``g``
(relative to the chain's current level): ``T - 2 b g + c g^2``, so the sums ``b``, ``c`` of
one render give the least-squares level in closed form.

- :class:`BatchLoss` scores the objective's own full batch (the segments the refinement
  minimises over): the unconditioned start, ~70 ms per trial.
- :class:`PieceLoss` scores :data:`START_SECONDS` of the pairs' training parts (validation
  blocks excluded) in :data:`PIECE_SECONDS` pieces spread over each take, each rendered from
  its filters' warm-up (:func:`lactose_audio.sampling.context_samples`), split by range: with
  a hard "if" each sample is processed by one range's row, so the loss is a sum of per-range
  parts, and one render per trial gives every range's part and level (the ranges' start).

No TensorFlow: the banks are read as numpy arrays.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lactose_audio.losses import DEFAULT_PRE_EMPHASIS, pre_emphasis

#: Seconds of training audio rendered per trial (spread over the takes in
#: :data:`PIECE_SECONDS` pieces, each after its filters' warm-up): a 30 s take through a
#: 10-stage chain renders in ~70 ms, and a search renders it ~30 times.
START_SECONDS = 8.0
PIECE_SECONDS = 0.5


class PieceLoss:
    """Per-range sums of the training loss of numpy renders of ``chain`` over pieces of
    ``tracks``.

    Args:
        chain: the chain being fitted (its current bank values are rendered).
        tracks: :func:`lactose_audio.sampling.prepare_tracks` of the training pairs.
        sample_rate: Hz.
        keyed: the keyed stage whose ranges the sums are split by (the tracks' own
            selections are rendered).
    """

    def __init__(self, chain: Any, tracks: list[Any], sample_rate: float, keyed: Any):
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
            pieces = training_pieces(track.n_samples, total_samples, sample_rate, hop, context)
            rows = sample_rows(track.selections[position], track.n_samples, hop)
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

    def sums(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(b, c)`` per range of the chain as it stands (``[n_rows]`` each): the range's
        loss at output gain ``g`` is ``floor - 2 b g + c g^2``; ``None`` if the render is
        not finite."""
        b = np.zeros(self.n_rows)
        c = np.zeros(self.n_rows)
        for track, pieces, rows, (wet, wet_pre) in zip(
            self.tracks, self.pieces, self.rows, self.targets, strict=True
        ):
            pred, pred_pre = self._render(track, pieces)
            if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(pred_pre))):
                return None
            b += self.norm[0] * np.bincount(rows, pred * wet, self.n_rows)
            b += self.norm[1] * np.bincount(rows, pred_pre * wet_pre, self.n_rows)
            c += self.norm[0] * np.bincount(rows, pred * pred, self.n_rows)
            c += self.norm[1] * np.bincount(rows, pred_pre * pred_pre, self.n_rows)
        return b, c

    def __call__(self, matched: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(loss, gain)`` per range: the loss at the least-squares output gain and that gain
        (linear, relative to the chain's current output level); with ``matched`` False, the
        loss as the chain stands (gain 1). A non-finite render: loss inf, gain 1."""
        sums = self.sums()
        if sums is None:
            return np.full(self.n_rows, math.inf), np.ones(self.n_rows)
        b, c = sums
        gain = np.ones(self.n_rows)
        if matched:
            ok = (c > 0) & (b > 0)
            gain[ok] = b[ok] / c[ok]
        return self.at_gain(b, c, gain), gain

    def at_gain(self, b: np.ndarray, c: np.ndarray, gain: np.ndarray) -> np.ndarray:
        """The loss per range at output ``gain`` (linear) from :meth:`sums`' ``(b, c)``."""
        return self.floor - 2.0 * b * gain + c * gain**2


class BatchLoss:
    """The training loss of a full batch (:class:`lactose_audio.sampling.Batch`, the segments
    the refinement minimises over) from numpy renders of its segments, as sums ``(b, c)``.

    The same loss as :class:`lactose_audio.refine.Objective`'s on the same segments (each
    rendered from its context, the loss after it; pre-emphasis over the segment as
    :func:`lactose_audio.losses.esr_tf` does), without the gradient: a data-driven start's
    trial costs one render of the batch (~40 ms for 48 segments of 8192 samples through a
    9-stage chain) instead of a loss-and-gradient evaluation of the graph (0.11-0.16 s, two
    with the output level matched). Scoring on other material than the batch (pieces spread
    evenly in time) chose levels 5 dB off the batch's on a fuzz, whose batch is stratified by
    level and drops near-silent segments, and a start 10x worse (validation 0.34 vs 0.034).

    Args:
        chain: the chain (its current bank values are rendered).
        batch: the objective's batch (its selections are rendered).
        context: warm-up samples at the start of each segment (not scored).
        sample_rate: Hz.
    """

    def __init__(self, chain: Any, batch: Any, context: int, sample_rate: float) -> None:
        self.chain, self.batch, self.context = chain, batch, int(context)
        self.sample_rate = float(sample_rate)
        self.selections = row_selections(batch.selections, batch.n_segments)
        wet = np.asarray(batch.wet, np.float64)
        self.wet = wet
        self.wet_pre = wet[:, 1:] - DEFAULT_PRE_EMPHASIS * wet[:, :-1]
        self.norm = (
            1.0 / max(float(np.sum(wet**2)), 1e-30),
            1.0 / max(float(np.sum(self.wet_pre**2)), 1e-30),
        )

    def sums(self) -> tuple[float, float] | None:
        """``(b, c)`` of the chain as it stands: the loss at output gain ``g`` is
        ``2 - 2 b g + c g^2`` (2: the loss of silence); ``None`` if the render is not
        finite."""
        pred = render_rows(
            self.chain, self.batch.dry, self.selections, self.context, self.sample_rate
        )
        if not np.all(np.isfinite(pred)):
            return None
        pred_pre = pred[:, 1:] - DEFAULT_PRE_EMPHASIS * pred[:, :-1]
        b = self.norm[0] * float(np.sum(pred * self.wet)) + self.norm[1] * float(
            np.sum(pred_pre * self.wet_pre)
        )
        c = self.norm[0] * float(np.sum(pred * pred)) + self.norm[1] * float(
            np.sum(pred_pre * pred_pre)
        )
        return b, c


def row_selections(selections: list[Any], n_rows: int) -> list[list[Any]]:
    """Stacked per-stage selections (arrays ``[rows, ...]``, or ``UNKEYED``) split per row."""
    from lactose_audio.ranges import UNKEYED

    return [
        [s if s is UNKEYED else type(s)(*(np.asarray(a)[i] for a in s)) for s in selections]
        for i in range(n_rows)
    ]


def render_rows(
    chain: Any, dry: np.ndarray, selections: list[list[Any]], context: int, sample_rate: float
) -> np.ndarray:
    """float64 ``[rows, n - context]``: each row of ``dry [rows, n]`` rendered by the numpy
    backend (:mod:`lactose_audio.iir`) with its selections, from silence, the first
    ``context`` samples (its filters' warm-up) dropped."""
    from lactose_audio.iir import NumpyBackend

    pred = np.empty((dry.shape[0], dry.shape[1] - context))
    for i, sels in enumerate(selections):
        pred[i] = NumpyBackend(chain, sample_rate).process(dry[i], sels)[context:]
    return pred


def validation_sums(
    chain: Any, batch: Any, context: int, sample_rate: float
) -> tuple[float, float]:
    """``(error, energy)`` of a validation batch (:func:`lactose_audio.sampling.
    validation_batches`) from numpy renders: ``sum(mask * (wet - prediction)**2)`` and
    ``sum(wet**2)``, float64.

    What the render engine gives, the trainer's validation ESR: 0.05 s for a 30 s take's
    held-out blocks through a keyed 10-stage chain, where the fit's loss-and-gradient graph
    took 0.33 s (and its first call traced it). The graph's error is within ~3e-4 relative of
    it (float32, the filters' two implementations).
    """
    selections = row_selections(batch.selections, batch.dry.shape[0])
    pred = render_rows(chain, batch.dry, selections, context, sample_rate)
    wet = np.asarray(batch.wet, np.float64)
    error = float(np.sum(np.asarray(batch.mask, np.float64) * (wet - pred) ** 2))
    return error, float(np.sum(wet**2))


def training_pieces(
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


def sample_rows(selection: Any, n_samples: int, hop_size: int) -> np.ndarray:
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


__all__ = [
    "PIECE_SECONDS",
    "START_SECONDS",
    "BatchLoss",
    "PieceLoss",
    "render_rows",
    "row_selections",
    "sample_rows",
    "training_pieces",
    "validation_sums",
]
