"""Data-driven initialisation of a chain before it is fitted.

A chain left at its declared defaults can start far from the effect — at unity drive, with an
output level several dB off — and a local optimiser started there may walk to the trivial
"output nothing" point (ESR 1) instead of the effect. Before the first phase, the fitter sets:

- the **drive**: the first ``gain`` stage before the first nonlinear stage is tried at a grid
  of gains (:data:`DRIVE_GRID_DB`), which together sweep the effect's amplitude transfer
  curve; the best one on the training data is kept;
- the **output level**, for every drive tried: the last stage whose ``gain_db`` scales the
  output (a ``gain`` block, or a ``tanh``/``asym_clip`` output gain followed only by linear
  stages) is set to the least-squares level. The training loss (ESR + pre-emphasised ESR) is
  a quadratic ``L(g) = 2 - 2 b g + c g^2`` in the output's linear gain ``g``, so one render
  (its sums ``b``, ``c``; or two objective evaluations) gives the optimal ``g* = b / c`` and
  its loss ``2 - b^2 / c``.

- the **corners** of every ``highpass`` and ``lowpass`` stage: each starts out of the way
  (:data:`CORNER_GRID_HZ`'s first value, clipped to its bounds) for the drive grid, then, in
  chain order, is tried at the grid's other corners with the output level matched for each;
  the best is kept (a 20 kHz low-pass left at its default costs a bright drive a training
  loss of 0.25, a 25 Hz high-pass a bass-heavy one 0.07);
- the **curve** of a shaper that can take any shape (``chebyshev``, ``mlp``: a block that
  defines :meth:`lactose_audio.blocks.Block.fit_curve`): the effect's amplitude transfer curve
  is measured — the wet's mean per level of the stage's input (the dry through the pointwise
  stages before it: the drive, a tanh), over equal-count bins (:func:`transfer_curve`) — and
  the block fits its parameters to it; kept if, with the output level matched again, the
  loss is lower than the corners' start;
- the **response** of a linear chain (an EQ: filters and gains only): fitted to the measured
  frequency response from several starts (:func:`lactose_audio.linear_fit.fit_linear`), kept
  if its loss is lower.

Every value set here is placed at least :data:`lactose_audio.params.START_MARGIN` inside its
bounds (:func:`lactose_audio.params.start_raw_np`): at a bound the sigmoid that maps raw to
physical values is flat (slope ~1e-7), and a corner started "out of the way" at its floor
could never move again (on ``emphasis_clip`` the DC-blocking high-pass stayed at 5 Hz: test
ESR 0.024 without the margin, 0.0029 with it).

Every trial is scored by the training loss that the refinement then minimises (ESR plus
pre-emphasised ESR over the objective's full batch), from numpy renders of the batch's
segments (:class:`lactose_audio.piece_loss.BatchLoss`: ~40 ms per trial on a 9-stage chain,
the level matched in closed form from one render) instead of the graph's loss-and-gradient
evaluations (0.11-0.16 s each, two per level-matched trial): the start of a 9-stage chain took
5.9 s of its fit's budget, now well under a second.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lactose_audio.blocks import Block
from lactose_audio.linear_fit import fit_linear
from lactose_audio.params import (
    clip_start_raw,
    physical_to_raw_np,
    raw_to_physical_np,
    start_raw_np,
)

#: Drive gains tried (dB), spanning clean to heavily saturated for -45..0 dBFS material.
DRIVE_GRID_DB = (-6.0, 6.0, 18.0, 30.0)
#: Blocks whose ``gain_db`` is a pure output scale.
OUTPUT_GAIN_BLOCKS = ("gain", "tanh", "asym_clip")
#: Blocks that only scale the signal (by a fixed or a slowly varying gain): the drive is the
#: first ``gain`` before the first nonlinear stage *other than these* (``compressor>gain>tanh``
#: sweeps the gain after the compressor).
GAIN_LIKE_BLOCKS = ("gain", "compressor")
#: ESR + pre-emphasis ESR of a silent prediction (the training loss of outputting nothing).
ZERO_OUTPUT_LOSS = 2.0


def _flat_offsets(chain: Any) -> list[int]:
    offsets, total = [], 0
    for stage in chain.stages:
        offsets.append(total)
        total += int(np.prod(stage.bank.numpy().shape))
    return offsets


def _knob(chain: Any, offsets: list[int], index: int, name: str) -> tuple[Any, list[int]] | None:
    """The parameter spec and the flat indices of every row of ``stages[index].name``."""
    stage = chain.stages[index]
    names = stage.block.param_names
    if name not in names:
        return None
    column = names.index(name)
    n_params = stage.bank.numpy().shape[1]
    rows = range(stage.bank.numpy().shape[0])
    return stage.block.params[column], [offsets[index] + r * n_params + column for r in rows]


def level_stage(chain: Any) -> int | None:
    """Index (in ``chain.stages``) of the stage whose ``gain_db`` scales the output: the last
    stage in :data:`OUTPUT_GAIN_BLOCKS` that only linear stages follow; ``None`` if none."""
    stages = chain.stages
    for i in range(len(stages) - 1, -1, -1):
        if stages[i].block.name in OUTPUT_GAIN_BLOCKS:
            return i
        if not stages[i].block.is_linear:
            return None
    return None


def drive_stage(chain: Any) -> int | None:
    """Index (in ``chain.stages``) of the drive: the first ``gain`` stage before the first
    nonlinear stage that is not in :data:`GAIN_LIKE_BLOCKS`; ``None`` if none."""
    stages = chain.stages
    for i, stage in enumerate(stages):
        if not stage.block.is_linear and stage.block.name not in GAIN_LIKE_BLOCKS:
            return next((j for j in range(i) if stages[j].block.name == "gain"), None)
    return None


def find_knobs(chain: Any) -> tuple[tuple[Any, list[int]] | None, tuple[Any, list[int]] | None]:
    """``(drive, level)``: each ``(ParamSpec, flat indices)`` or ``None`` if the chain has none.

    Drive: the ``gain_db`` of the first ``gain`` stage before the first nonlinear stage that
    is not in :data:`GAIN_LIKE_BLOCKS`.
    Level: the ``gain_db`` of the last stage in :data:`OUTPUT_GAIN_BLOCKS` that only linear
    stages follow (a learned ``mix`` mixes in the dry signal, so nothing after it is a pure
    output scale).
    """
    offsets = _flat_offsets(chain)
    index = drive_stage(chain)
    drive = None if index is None else _knob(chain, offsets, index, "gain_db")
    index = level_stage(chain)
    level = None if index is None else _knob(chain, offsets, index, "gain_db")
    if level is not None and drive is not None and level[1] == drive[1]:
        level = None  # a lone gain stage: the drive grid already covers it
    return drive, level


def _set(x: np.ndarray, knob: tuple[Any, list[int]], physical: float) -> None:
    spec, indices = knob
    value = float(np.clip(physical, spec.minimum, spec.maximum))
    x[indices] = float(start_raw_np((spec,), [value])[0])


def _physical(x: np.ndarray, knob: tuple[Any, list[int]]) -> float:
    spec, indices = knob
    return float(spec.to_physical_np(x[indices[0]]))


#: Corners tried per filter block (Hz); the first is "out of the way" (no filtering in band).
CORNER_GRID_HZ = {
    "highpass": (5.0, 30.0, 100.0, 300.0),
    "lowpass": (22000.0, 8000.0, 3500.0, 1500.0),
    "highpass1": (5.0, 30.0, 100.0, 300.0),
    "lowpass1": (22000.0, 8000.0, 3500.0, 1500.0),
}
#: Equal-count bins of the measured amplitude transfer curve.
CURVE_BINS = 96


def transfer_curve(
    u: np.ndarray, y: np.ndarray, n_bins: int = CURVE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mean of ``y`` per level of ``u``: ``(u_mean, y_mean, count)`` per bin, ``u``
    ascending; bins hold equal numbers of samples (``[n]`` arrays in, ``[n_bins]`` out)."""
    u = np.asarray(u, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    order = np.argsort(u, kind="stable")
    groups = np.array_split(order, min(n_bins, max(u.size, 1)))
    groups = [g for g in groups if g.size]
    count = np.array([g.size for g in groups], np.float64)
    return (
        np.array([u[g].mean() for g in groups]),
        np.array([y[g].mean() for g in groups]),
        count,
    )


def _row0_controls(stage: Any, x: np.ndarray, offset: int) -> dict[str, float]:
    """Physical values of ``stage``'s row 0 in the flat raw vector ``x``."""
    block = stage.block
    physical = raw_to_physical_np(block.params, x[offset : offset + block.n_params])
    return dict(zip(block.param_names, physical.tolist(), strict=True))


def _fit_curves(objective: Any, x: np.ndarray, level) -> bool:
    """Fit every curve-shaping stage of the chain to the measured transfer curve (in ``x``).

    The stage's input is the dry through the pointwise stages before it (the drive, a tanh
    before a polynomial), its output the wet over the output level: filters are taken as
    identity at the start. A stage after a stateful or dry-mixing block, or followed by
    another nonlinear one, is left alone (its curve cannot be measured this way). Returns
    True if a stage was changed."""
    chain = objective.chain
    stages = chain.stages
    offsets = _flat_offsets(chain)
    batch = objective.batch
    u = np.asarray(batch.dry, np.float64)[:, objective.context :]  # as the loss sees it
    changed = False
    for index, stage in enumerate(stages):
        block = stage.block
        if block.stateful or block.uses_dry:
            return changed
        after = stages[index + 1 :]
        curve_stage = type(block).fit_curve is not Block.fit_curve
        if curve_stage and all(s.block.is_linear or s.block.name == "gain" for s in after):
            level_after = level is not None and level[1][0] > offsets[index]
            level_gain = 10.0 ** (_physical(x, level) / 20.0) if level_after else 1.0
            y = np.asarray(batch.wet, np.float64) / level_gain
            start = _row0_controls(stage, x, offsets[index])
            fitted = block.fit_curve(*transfer_curve(u, y), start)
            if fitted is not None:
                physical = [np.clip(fitted[p.name], p.minimum, p.maximum) for p in block.params]
                rows = np.tile(start_raw_np(block.params, physical), stage.n_ranges)
                x[offsets[index] : offsets[index] + rows.size] = rows  # every row alike
                changed = True
        if not block.is_linear:  # the next stage's input (filters: identity)
            controls = _row0_controls(stage, x, offsets[index])
            u = np.asarray(block.kernel_np(u.astype(np.float32), controls, objective.sample_rate),
                           np.float64)  # fmt: skip
    return changed


def _corners(chain: Any) -> list[tuple[tuple[Any, list[int]], tuple[float, ...]]]:
    """``(cutoff knob, corners to try)`` of every stage in :data:`CORNER_GRID_HZ`, in order."""
    offsets = _flat_offsets(chain)
    out = []
    for index, stage in enumerate(chain.stages):
        grid = CORNER_GRID_HZ.get(stage.block.name)
        knob = _knob(chain, offsets, index, "cutoff_hz") if grid else None
        if knob is not None:
            out.append((knob, grid))
    return out


def _try_corners(trials: _Trials, x: np.ndarray, level, best_loss: float):
    """Each filter corner in turn at its grid values (level matched); ``(loss, x)`` best."""
    for knob, grid in _corners(trials.objective.chain):
        for corner in grid[1:]:
            trial = x.copy()
            _set(trial, knob, corner)
            loss = trials.loss(trial, level)
            if math.isfinite(loss) and loss < best_loss:
                best_loss, x = loss, trial
    return best_loss, x


class _Trials:
    """The training loss at trial points ``x`` (flat raw values), the output level matched.

    ``numpy``: numpy renders of the objective's batch
    (:class:`lactose_audio.piece_loss.BatchLoss`), the level in closed form from one render;
    else the objective's own loss-and-gradient evaluations (two per matched level).
    """

    def __init__(self, objective: Any, numpy: bool) -> None:
        from lactose_audio.piece_loss import BatchLoss

        self.objective = objective
        self.batch_loss = None
        if numpy:
            self.batch_loss = BatchLoss(
                objective.chain, objective.batch, objective.context, objective.sample_rate
            )

    def loss(self, x: np.ndarray, level) -> float:
        """The loss at ``x`` with ``level`` (a knob, or ``None``) set in ``x`` to the
        least-squares output level."""
        if self.batch_loss is None:
            objective = self.objective
            return _level_match(objective, x, level) if level is not None else objective(x)[0]
        self.objective.set(x)
        sums = self.batch_loss.sums()
        if sums is None:
            return math.inf
        b, c = sums
        gain = 1.0
        if level is not None and b > 0.0 and c > 0.0:
            current = _physical(x, level)
            _set(x, level, current + 20.0 * math.log10(b / c))  # clipped to the start's bounds
            gain = 10.0 ** ((_physical(x, level) - current) / 20.0)
        return float(ZERO_OUTPUT_LOSS - 2.0 * b * gain + c * gain * gain)


def _level_match(objective: Any, x: np.ndarray, level: tuple[Any, list[int]]) -> float:
    """Set ``level`` in ``x`` to the least-squares output level; return the loss there."""
    current = _physical(x, level)
    loss1, _ = objective(x)
    trial = x.copy()
    _set(trial, level, current + 20.0 * math.log10(2.0))
    doubled = _physical(trial, level) - current
    if doubled < 3.0:  # at the top of the knob's range: keep it
        return loss1
    factor = 10.0 ** (doubled / 20.0)
    loss2, _ = objective(trial)
    # L(g) = a - 2 b g + c g^2 with L(0) = a, L(1) = loss1, L(factor) = loss2.
    a = ZERO_OUTPUT_LOSS
    m = np.array([[-2.0, 1.0], [-2.0 * factor, factor**2]])
    b, c = np.linalg.solve(m, np.array([loss1 - a, loss2 - a]))
    if not (c > 0 and b > 0):
        return loss1
    gain = b / c
    _set(x, level, current + 20.0 * math.log10(gain))
    return float(a - b * b / c)


def initialise(objective: Any, numpy: bool = True) -> dict[str, float]:
    """Set the drive, output level, filter corners and curves of ``objective``'s chain from
    the training data (see the module's docstring).

    Args:
        objective: the full-batch :class:`~lactose_audio.refine.Objective` of the chain; the
            chain's banks are updated in place (every row alike).
        numpy: score the trials on numpy renders of the objective's batch
            (:class:`lactose_audio.piece_loss.BatchLoss`, the same loss ~8x faster); False:
            on the objective's graph.

    Returns:
        What was chosen: ``{"drive_db": ..., "level_db": ..., "loss": ...}`` (``drive_db`` and
        ``level_db`` only for the knobs the chain has; ``loss`` is the training loss there).
    """
    chain = objective.chain
    drive, level = find_knobs(chain)
    trials = _Trials(objective, numpy)
    start = objective.get()
    best_loss, best_x = trials.loss(start, None), start.copy()
    start = start.copy()
    for knob, grid in _corners(chain):
        _set(start, knob, grid[0])  # out of the way while the drive is chosen
    grid = DRIVE_GRID_DB if drive is not None else (None,)
    for drive_db in grid:
        x = start.copy()
        if drive_db is not None:
            _set(x, drive, drive_db)
        loss = trials.loss(x, level)
        if math.isfinite(loss) and loss < best_loss:
            best_loss, best_x = loss, x.copy()
    best_loss, best_x = _try_corners(trials, best_x.copy(), level, best_loss)
    x = best_x.copy()
    if _fit_curves(objective, x, level):
        loss = trials.loss(x, level)
        if math.isfinite(loss) and loss < best_loss:
            best_loss, best_x = loss, x
    fitted = fit_linear(objective, best_x, level_stage(chain))
    if fitted is not None:
        loss = trials.loss(fitted, level)
        if math.isfinite(loss) and loss < best_loss:
            best_loss, best_x = loss, fitted
    objective.set(best_x)
    chosen = {"loss": float(best_loss)}
    if drive is not None:
        chosen["drive_db"] = _physical(best_x, drive)
    if level is not None:
        chosen["level_db"] = _physical(best_x, level)
    return chosen


def match_capture_levels(chain: Any, tracks: Any, sample_rate: float) -> bool:
    """Knob captures: each setting's rows start at the output level that fits its capture.

    The per-setting phase starts every setting from one fit (the pooled or the middle
    capture's), which can be far too loud or quiet for a setting whose effect differs;
    with every capture weighted alike, L-BFGS would then take such rows straight to the
    "output nothing" point (gains at their bounds, no gradient). The output-level stage's
    ``gain_db`` rows of each setting (if that stage follows the knob) are moved by the
    least-squares gain of the capture's training audio (numpy render), raw values kept within
    the start's bounds (:func:`lactose_audio.params.start_raw_np`). Returns True if a row
    changed.

    Args:
        chain: the chain being fitted (its banks are changed in place).
        tracks: :func:`lactose_audio.sampling.prepare_tracks` of the captures.
        sample_rate: Hz.
    """
    from lactose_audio.render import render

    index = level_stage(chain)
    stage = None if index is None else chain.stages[index]
    if stage is None or stage.control is None:
        return False
    column = stage.block.param_names.index("gain_db")
    per_setting = stage.edges.n_ranges if stage.knob is not None else 1
    settings = stage.control_key.settings
    shifts: dict[int, float] = {}
    for track in tracks:
        if not track.controls or stage.control not in track.controls:
            continue
        mask = track.training_mask(track.n_samples)
        y = render(chain, track.dry, sample_rate, controls=track.controls)
        p, t = y[mask].astype(np.float64), track.wet[mask].astype(np.float64)
        c, b = float(p @ p), float(p @ t)
        if c > 0.0 and b > 0.0:
            setting = settings.index(float(track.controls[stage.control]))
            shifts[setting] = 20.0 * math.log10(b / c)
    if not shifts:
        return False
    values = stage.physical()[:, column]
    for setting, shift in shifts.items():
        values[setting * per_setting : (setting + 1) * per_setting] += shift
    set_start_column(stage, column, values)
    return True


def set_start_column(stage: Any, column: int, values: np.ndarray) -> None:
    """Set one parameter of every row of ``stage`` to physical ``values [n_rows]``, clipped to
    its bounds, as a start (raw values within ``+-params.START_RAW_LIMIT``)."""
    spec = stage.block.params[column]
    physical = stage.physical()
    physical[:, column] = np.clip(values, spec.minimum, spec.maximum)
    raw = stage.bank.numpy()
    raw[:, : stage.block.n_params] = physical_to_raw_np(stage.block.params, physical)
    stage.bank.assign(clip_start_raw(raw).astype(raw.dtype))
