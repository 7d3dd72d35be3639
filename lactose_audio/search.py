"""Structure and key selection: ``--chain auto`` and ``--key auto``.

The candidate family (:data:`FAMILY`) covers the structures of drive pedals and amps:

- ``drive_tone``: ``gain>tanh>lowpass>highpass`` — a drive then a tone filter (the old
  default);
- ``poly``: ``highpass>lowshelf1>gain>asym_clip>chebyshev>gain>lowshelf1>lowpass>highpass``
  — a soft clipper with a drive per polarity (a kink at zero: a different slope for each
  sign, as in a diode or a biased tube) reshaped by a 9th-order polynomial: asymmetric curves
  with unequal ceilings, rectifiers, strong even harmonics (its start is the least-squares
  fit to the measured transfer curve), between two first-order low shelves (pre- and
  de-emphasis: tape, tube stages; 0 dB at the start); the last high-pass removes the DC;
- ``hard_clip``: ``highpass>gain>hard_clip>gain>lowpass>highpass`` — clippers (diodes,
  op-amp rails);
- ``mlp``: ``highpass>gain>mlp>gain>lowpass>highpass`` — any memoryless curve (fuzz,
  rectifiers, strong even harmonics);
- ``two_stage``: ``highpass>gain>tanh>highpass>peak>lowpass>gain>mlp>gain>lowpass>highpass`` —
  two drive stages with a coupling high-pass and a tone filter between (amps, stacked pedals),
  the second any memoryless curve (an MLP started tanh-like: stages clip differently, an
  op-amp's soft clip into diodes);
- ``eq_drive``: ``highpass>lowshelf>gain>tanh>peak>highshelf>lowpass>lowpass>highpass`` — a
  drive with EQ around it and a steep (24 dB/oct) tone filter;
- ``parallel``: ``highpass>gain>tanh>lowpass>mix`` — a drive blended with the clean signal
  (learned dry/wet);
- ``compressor``: ``compressor>gain>tanh>lowpass>highpass`` — a compressor (attack/release
  ballistics) into a drive;
- ``eq``: ``highpass>lowshelf>peak>peak>peak>highshelf>lowpass>gain`` — no drive at all: an EQ,
  a filter, a clean preamp's tone (its start is fitted to the measured frequency response,
  :mod:`lactose_audio.linear_fit`).

Search (successive halving, all within the run's budget, seconds or steps):

1. every candidate is initialised from the data (drive grid, least-squares level, filter
   corners, a curve fitted to the transfer curve: :mod:`lactose_audio.initialise`) and refined
   unconditioned with L-BFGS on a small full batch (:data:`SCREEN_SEGMENTS` segments) for an
   equal short slice of :data:`SCREEN_SHARE` of the structure budget (a candidate that
   converges sooner leaves its time to the ones after it);
2. the best :data:`FINALISTS` by validation ESR continue on the full batch for the rest of the
   structure budget, in equal slices passed on the same way; the best one by validation ESR is
   the structure;
3. the key: with ``--key auto`` the structure is refined per range with an ``amplitude`` key and
   with a ``pitch`` key, each from the unconditioned fit; with ``--chain auto`` the old default
   chain (``gain>tanh>lowpass>highpass``) is also refined with an amplitude key from its
   screening fit (the safety net: auto never validates worse than the old default). A keyed
   model is kept only if its validation ESR is at most :data:`KEY_MARGIN` times the
   unconditioned one (a clear gain, not noise), otherwise the key is ``none``; between keyed
   models that qualify, the best. The safety net needs no margin: it is kept whenever it
   validates better than the choice so far. A given key (``--key amplitude``) is refined the
   same way without the comparison (with ``--chain auto``, on the winner and on the old
   default chain: the better one is kept). Every attempt starts from the data, per range
   (:mod:`lactose_audio.range_start`, numpy renders); with ``--key auto`` and short slices
   only the key whose start validates best is refined (:data:`PRUNE_KEYS`; a tie keeps
   ``amplitude``). The refined attempts share :data:`KEY_TRIAL_SHARE` of what is left of the
   budget;
4. the choice (keyed or not) runs on with the rest of the budget.

The preset's training metadata records the ranking (``training.search``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lactose_audio.errors import ParameterError
from lactose_audio.train_config import AUTO, DEFAULT_SPEC

FAMILY = (
    ("drive_tone", "gain>tanh>lowpass>highpass"),
    ("poly", "highpass>lowshelf1>gain>asym_clip>chebyshev>gain>lowshelf1>lowpass>highpass"),
    ("hard_clip", "highpass>gain>hard_clip>gain>lowpass>highpass"),
    ("mlp", "highpass>gain>mlp>gain>lowpass>highpass"),
    ("two_stage", "highpass>gain>tanh>highpass>peak>lowpass>gain>mlp>gain>lowpass>highpass"),
    ("eq_drive", "highpass>lowshelf>gain>tanh>peak>highshelf>lowpass>lowpass>highpass"),
    ("parallel", "highpass>gain>tanh>lowpass>mix"),
    ("compressor", "compressor>gain>tanh>lowpass>highpass"),
    ("eq", "highpass>lowshelf>peak>peak>peak>highshelf>lowpass>gain"),
)
#: Keys tried by ``--key auto`` after ``none``.
AUTO_KEYS = ("amplitude", "pitch")
#: ``--chain auto`` also fits the old default chain (:data:`DEFAULT_SPEC`) with this key, from
#: its screening fit, whenever that key is tried: auto never validates worse than it.
SAFETY_KEY = "amplitude"
#: A keyed model must reach at most this fraction of the unconditioned validation ESR.
KEY_MARGIN = 0.8
#: With ``--key auto``, when the attempts' slices are short (under :data:`PRUNE_SECONDS` or
#: :data:`PRUNE_STEPS` each), of the keys tried on the structure only the one whose
#: data-driven per-range start validates best is refined: an attempt's trace and start take
#: ~4 s of its ~8 s at 120 s, and the cascade's amplitude attempt got 2 L-BFGS steps, the
#: pitch one 0. With longer slices every key is refined (a start is a weak predictor when
#: neither key's start improves on the unconditioned fit).
PRUNE_KEYS = True
PRUNE_SECONDS = 30.0
PRUNE_STEPS = 100
#: Share of the structure budget spent screening every candidate.
SCREEN_SHARE = 0.5
SCREEN_SEGMENTS = 12
#: With a wall-clock budget, a candidate's screening runs to at least this many L-BFGS
#: iterations: a structure whose tracing and data-driven start take its whole slice would
#: otherwise be ranked by its start. The extension is at most SCREEN_EXTENSION times the
#: slice and ends with the structure's share.
SCREEN_MIN_STEPS = 10
SCREEN_EXTENSION = 2.0
FINALISTS = 3
#: Share of the whole budget for the structure when a key is also fitted.
STRUCTURE_SHARE = 0.6
#: Share of the key phase's budget for its attempts (each an equal part); the choice (keyed
#: or not) then runs on with the rest: a structure refined only during its screening and
#: final slices (26 L-BFGS steps) validated at 0.0047 where the same chain run on reaches 0.0009.
KEY_TRIAL_SHARE = 0.5
#: The least budget a search can use meaningfully.
MIN_SECONDS_PER_CANDIDATE = 2.5
MIN_STEPS_PER_CANDIDATE = 10


@dataclass
class Outcome:
    """The search's winner and its ranking.

    Attributes:
        trainer: the winning fit (unconditioned, or keyed when a key won).
        chain_spec: its chain spec.
        key: its key kind.
        ranking: per fitted candidate ``{"name", "chain", "key", "val_esr", "steps",
            "seconds"}``, best first.
        steps: optimisation steps of the whole search.
        seconds: wall-clock seconds of the whole search.
    """

    trainer: Any
    chain_spec: str
    key: str
    ranking: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0


def minimum_budget(cfg: Any) -> tuple[float, int]:
    """``(seconds, steps)`` the search needs at least for ``cfg`` (a resolved config)."""
    n = len(FAMILY) if cfg.chain_spec == AUTO else 0
    keys = len(AUTO_KEYS) if cfg.key == AUTO else (0 if cfg.key == "none" else 1)
    if getattr(cfg, "controls", None):
        # the joint fits of every capture: with --key auto, the knob alone and each key
        keys = keys + 1 if cfg.key == AUTO else max(keys, 1)
    if n and cfg.key in (AUTO, SAFETY_KEY):
        keys += 1  # the old default chain with the safety key
    screen = n / (SCREEN_SHARE * (STRUCTURE_SHARE if keys else 1.0))
    units = max(screen, keys / ((1 - STRUCTURE_SHARE) * KEY_TRIAL_SHARE) if keys else 0.0, 1.0)
    return units * MIN_SECONDS_PER_CANDIDATE, int(math.ceil(units * MIN_STEPS_PER_CANDIDATE))


def check_budget(cfg: Any) -> None:
    """Refuse a budget too short for the search, saying how long it needs (ParameterError)."""
    seconds, steps = minimum_budget(cfg)
    what = "--chain auto" if cfg.chain_spec == AUTO else "--key auto"
    if cfg.budget_seconds is not None and cfg.budget_seconds < seconds:
        raise ParameterError(
            f"{what} needs --budget-seconds of at least {math.ceil(seconds)} (got "
            f"{cfg.budget_seconds:g}); give more time, or pin --chain and --key"
        )
    if cfg.steps is not None and cfg.steps < steps:
        raise ParameterError(
            f"{what} needs --steps of at least {steps} (got {cfg.steps}); give more steps, "
            "or pin --chain and --key"
        )


class _Budget:
    """Slices of the run's budget: seconds (wall clock since the search began) and/or steps."""

    def __init__(self, cfg: Any) -> None:
        self.seconds, self.steps = cfg.budget_seconds, cfg.steps
        self.t0 = time.perf_counter()
        # fitting seconds and steps of the runs so far (tracing and validation not counted:
        # they come out of the last share, the key's)
        self.used_seconds, self.used_steps = 0.0, 0

    def slice(
        self, trainer: Any, until: float, shares_left: int
    ) -> tuple[float | None, int | None]:
        """Totals for ``trainer``'s config giving it an equal part of what is left of the
        budget until the share ``until`` of the whole is used, among ``shares_left`` runs
        (this one included): time a run before it did not use (it converged) goes to the
        runs after it."""
        seconds = steps = None
        if self.seconds is not None:
            left = max(until * self.seconds - self.used_seconds, 0.0) / shares_left
            wall_left = max(self.seconds - self.wall(), 0.0)
            seconds = trainer.elapsed + min(left, wall_left)
        if self.steps is not None:
            left = max(int(until * self.steps) - self.used_steps, 0) // shares_left
            steps = trainer.step + max(left, 1)
        return seconds, steps

    def wall(self) -> float:
        """Seconds since the search began."""
        return time.perf_counter() - self.t0

    def ran(self, trainer: Any, before: tuple[int, float]) -> None:
        """Count the steps and fitting seconds ``trainer`` used since ``before`` (its
        ``(step, elapsed)`` then)."""
        self.used_steps += trainer.step - before[0]
        self.used_seconds += trainer.elapsed - before[1]


def search(
    pairs: list[Any],
    cfg: Any,
    sample_rate: int,
    make_trainer: Callable[[Any], Any],
    run: Callable[[Any], None],
) -> Outcome:
    """Choose the chain and/or the key within ``cfg``'s budget.

    Args:
        pairs: training pairs.
        cfg: resolved config with ``chain_spec`` and/or ``key`` equal to ``"auto"``.
        sample_rate: Hz.
        make_trainer: builds a :class:`~lactose_audio.trainer.Trainer` for a resolved config
            (chain built and its edges placed on the training data).
        run: runs a trainer (progress, callbacks, Ctrl-C handling are the caller's).

    Returns:
        :class:`Outcome`.
    """
    check_budget(cfg)
    budget = _Budget(cfg)
    fixed_key = cfg.key if cfg.key != AUTO else None
    # knob captures: the structure is searched unconditioned (``make_trainer`` fits a config
    # without controls on the middle capture), then fitted with the controls on every capture
    joint = bool(getattr(cfg, "controls", None))
    keyed_after = fixed_key not in ("none",) or joint
    structure_share = STRUCTURE_SHARE if keyed_after else 1.0
    ranking: list[dict[str, Any]] = []

    def unconditioned_cfg(spec: str, segments: int):
        return dataclasses.replace(
            cfg,
            chain_spec=spec,
            key="none",
            n_ranges=1,
            edges=None,
            soft_width=0.0,
            refine_segments=segments,
            controls=None,
        )

    # 1-2. the structure: screen every candidate, then the finalists on the full batch.
    if cfg.chain_spec == AUTO:
        family = list(FAMILY)
        trainers = {}
        for index, (name, spec) in enumerate(family):
            trainer = make_trainer(unconditioned_cfg(spec, SCREEN_SEGMENTS))
            seconds, steps = budget.slice(trainer, SCREEN_SHARE * structure_share,
                                          len(family) - index)  # fmt: skip
            trainer.extend(seconds, steps)
            run(trainer)
            short = SCREEN_MIN_STEPS - trainer.step
            if budget.seconds is not None and short > 0 and not trainer.converged:
                # one uninterrupted run (a restart loses L-BFGS's memory), at most
                # SCREEN_EXTENSION times the slice and within the structure's share
                wall_left = structure_share * budget.seconds - budget.wall()
                extra = min(SCREEN_EXTENSION * seconds, wall_left)
                if extra > 0:
                    trainer.extend(trainer.elapsed + extra, trainer.step + short)
                    run(trainer)
                    trainer.extend(trainer.elapsed, steps)
            budget.ran(trainer, (0, 0.0))
            trainers[name] = trainer
        order = sorted(trainers, key=lambda n: trainers[n].best_esr)
        finalists = order[:FINALISTS]
        for index, name in enumerate(finalists):
            trainer = trainers[name]
            before = (trainer.step, trainer.elapsed)
            trainer.use_full_batch(cfg.refine_segments)
            trainer.extend(*budget.slice(trainer, structure_share, len(finalists) - index))
            run(trainer)
            budget.ran(trainer, before)
        for name, trainer in trainers.items():
            ranking.append(_entry(name, dict(family)[name], "none", trainer))
        ranking.sort(key=_rank)
        base_entry = ranking[0]
        best_name = base_entry["name"]
        spec, base = dict(family)[best_name], trainers[best_name]
    else:
        spec = cfg.chain_spec
        base = make_trainer(unconditioned_cfg(spec, cfg.refine_segments))
        base.extend(*budget.slice(base, structure_share, 1))
        run(base)
        budget.ran(base, (0, 0.0))
        base_entry = _entry("given", spec, "none", base)
        ranking.append(base_entry)

    # 3. the key (and the safety net: the old default chain keyed on amplitude).
    winner, key = base, "none"
    keys = AUTO_KEYS if fixed_key is None else ((fixed_key,) if keyed_after else ())
    if joint and fixed_key is None:  # --key auto with captures: the knob alone is the baseline
        keys = ("none", *AUTO_KEYS)
    attempts = [("captures" if joint else kind, spec, kind, base) for kind in keys]
    if cfg.chain_spec == AUTO and spec != DEFAULT_SPEC and SAFETY_KEY in keys:
        name = next(n for n, s in FAMILY if s == DEFAULT_SPEC)
        attempts.append(("default", DEFAULT_SPEC, SAFETY_KEY, trainers[name]))
    uncond_esr = base.best_esr  # a joint search's keys are measured against the knob alone
    chosen = None
    # the attempts share KEY_TRIAL_SHARE of what is left; the choice then gets the rest
    trials_end_wall = trials_end_steps = None
    if budget.seconds is not None:
        trials_end_wall = budget.wall() + KEY_TRIAL_SHARE * max(budget.seconds - budget.wall(), 0.0)
    if budget.steps is not None:
        trials_end_steps = budget.used_steps + int(
            KEY_TRIAL_SHARE * max(budget.steps - budget.used_steps, 0)
        )
    # every attempt's data-driven per-range start first (numpy renders, no graph): with
    # --key auto, only the key whose start validates best is refined (see PRUNE_KEYS)
    prepared = []
    for name, attempt_spec, kind, start in attempts:
        ranges = {"n_ranges": 1} if kind == "none" else {}  # a joint fit of the knob alone
        keyed_cfg = dataclasses.replace(
            cfg, chain_spec=attempt_spec, key=kind, soft_width=None, edges=cfg.edges, **ranges
        ).resolved()
        trainer = make_trainer(keyed_cfg)
        # a joint fit is validated on every capture: its start is evaluated there
        trainer.begin_ranges(start.best_values, None if joint else start.best_esr)
        prepared.append((name, attempt_spec, kind, trainer))
    rivals = [p for p in prepared if p[0] in AUTO_KEYS]
    share = max(len(prepared), 1)
    short = (
        trials_end_wall is not None and (trials_end_wall - budget.wall()) / share < PRUNE_SECONDS
    ) or (
        trials_end_steps is not None
        and (trials_end_steps - budget.used_steps) / share < PRUNE_STEPS
    )
    if PRUNE_KEYS and short and not joint and fixed_key is None and len(rivals) > 1:
        kept = min(rivals, key=lambda p: p[3].best_esr)  # ties: the first (amplitude)
        for dropped in rivals:
            if dropped is not kept:
                name, attempt_spec, kind, trainer = dropped
                budget.ran(trainer, (0, 0.0))
                ranking.append(_entry(name, attempt_spec, kind, trainer))
                prepared.remove(dropped)
    for index, (name, attempt_spec, kind, trainer) in enumerate(prepared):
        left = len(prepared) - index
        seconds = steps = None
        if trials_end_wall is not None:
            seconds = max(trials_end_wall - budget.wall(), 0.0) / left
        if trials_end_steps is not None:
            steps = max((trials_end_steps - budget.used_steps) // left, 1)
        trainer.extend(seconds, steps)
        run(trainer)
        budget.ran(trainer, (0, 0.0))
        # a joint knob fit is listed with its control (its ESR is over every capture, the
        # structures' over the middle one)
        shown = kind
        if joint:  # a 2-D bank (knob and key) says both
            shown = "control " + ",".join(cfg.controls) + (f" + {kind}" if kind != "none" else "")
        ranking.append(_entry(name, attempt_spec, shown, trainer))
        baseline = joint and fixed_key is None and kind == "none"
        if baseline:
            uncond_esr = trainer.best_esr
        # the safety net needs no margin: it is kept whenever it validates better than the
        # choice so far (auto never validates worse than the old default)
        safety = name == "default" and trainer.best_esr < winner.best_esr
        qualifies = (
            baseline
            or safety
            or fixed_key is not None
            or trainer.best_esr <= KEY_MARGIN * uncond_esr
        )
        if qualifies and (winner is base or trainer.best_esr < winner.best_esr):
            winner, key, spec = trainer, kind, attempt_spec
            chosen = ranking[-1]
    if attempts:
        # the rest of the budget goes to the choice (a converged fit stops at once); its entry
        # then gives its final figures (only lower: the comparisons above still hold)
        _continue(winner, budget, run)
        chosen = chosen or base_entry  # none chosen: the unconditioned structure
        chosen.update(_entry(chosen["name"], spec, chosen["key"], winner))
    ranking.sort(key=_rank)
    if joint:  # the result first, the other joint fits, then the structures (middle capture)
        ranking.sort(key=lambda entry: (entry is not chosen, entry["name"] != "captures"))
    return Outcome(
        trainer=winner,
        chain_spec=spec,
        key=key,
        ranking=ranking,
        steps=budget.used_steps,
        seconds=budget.wall(),
    )


def _continue(trainer: Any, budget: _Budget, run: Callable[[Any], None]) -> None:
    """Run ``trainer`` on with what is left of ``budget`` (seconds and/or steps), if any."""
    if (budget.seconds is not None and budget.wall() >= budget.seconds) or (
        budget.steps is not None and budget.used_steps >= budget.steps
    ):
        return
    before = (trainer.step, trainer.elapsed)
    trainer.extend(*budget.slice(trainer, 1.0, 1))
    run(trainer)
    budget.ran(trainer, before)


def _rank(entry: dict[str, Any]) -> float:
    return math.inf if entry["val_esr"] is None else entry["val_esr"]


def _entry(name: str, spec: str, key: str, trainer: Any) -> dict[str, Any]:
    return {
        "name": name,
        "chain": spec,
        "key": key,
        "val_esr": float(trainer.best_esr) if math.isfinite(trainer.best_esr) else None,
        "steps": int(trainer.step),
        "seconds": round(float(trainer.elapsed), 2),
    }
