"""The search's budget logic with simulated fits (no TensorFlow): deterministic, fast.

A fake trainer spends ``startup`` seconds (tracing and the data-driven start) before its first
iteration and ``per_step`` seconds per iteration, and stops at its deadline or step bound, as
:class:`lactose_audio.trainer.Trainer` does.
"""

from __future__ import annotations

import numpy as np
import pytest

from lactose_audio import search as search_module
from lactose_audio.refine import lbfgs
from lactose_audio.search import FAMILY, KEY_MARGIN, KEY_MIN_STEPS, SCREEN_MIN_STEPS, search
from lactose_audio.train_config import TrainConfig

SLOW = "mlp"  # the candidate whose start takes longer than its screening slice


class Clock:
    """The search's wall clock, advanced only by the fake trainers."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(search_module, "time", clock)
    return clock


class FakeTrainer:
    """``esr(step)`` gives the validation ESR after ``step`` iterations of this run."""

    def __init__(self, cfg, clock, startup: float, per_step: float, esr=None) -> None:
        self.cfg, self.clock = cfg, clock
        self.startup, self.per_step = startup, per_step
        self.esr = esr or (lambda step: 1.0 / (1.0 + step))
        self.step, self.elapsed = 0, 0.0
        self.phase_start = (0, 0.0)
        self.converged = False
        self.deadline, self.max_steps = None, None
        self.best_esr = 1.0
        self.best_values = [np.zeros((1, 1))]

    def extend(self, seconds, steps) -> None:
        self.deadline, self.max_steps = seconds, steps

    def use_full_batch(self, segments: int) -> None:
        pass

    def begin_ranges(self, values, esr) -> None:
        self.best_esr = esr

    def _spend(self, seconds: float) -> None:
        self.elapsed += seconds
        self.clock.now += seconds

    def run(self) -> None:
        if self.step == 0 and self.elapsed < self.startup:
            self._spend(min(self.startup, self.deadline) - self.elapsed)
        while self.elapsed < self.deadline and (
            self.max_steps is None or self.step < self.max_steps
        ):
            self._spend(self.per_step)
            self.step += 1
            self.best_esr = min(self.best_esr, self.esr(self.step))


def test_screening_gives_a_slow_candidate_its_minimum_iterations(clock):
    """With a wall-clock budget, a candidate whose start outlasts its screening slice is
    extended (one run) until SCREEN_MIN_STEPS iterations, not ranked by its start."""
    trainers = []

    def make_trainer(cfg):
        slow = cfg.chain_spec == dict(FAMILY)[SLOW]
        trainer = FakeTrainer(cfg, clock, startup=6.0 if slow else 0.5, per_step=0.1)
        trainers.append(trainer)
        return trainer

    cfg = TrainConfig(budget_seconds=120.0).resolved()
    search([], cfg, 44100, make_trainer, lambda t: t.run())
    screened = trainers[: len(FAMILY)]
    slow = screened[[s for s, _ in FAMILY].index(SLOW)]
    assert slow.elapsed > 6.0  # its slice (36 s / 9 = 4 s here) was shorter than its start
    assert all(t.step >= SCREEN_MIN_STEPS for t in screened)
    # the search ends in time (an iteration begun runs to its end)
    assert clock.now <= 120.0 + 0.1 + 1e-9


def test_key_attempts_get_their_minimum_iterations_and_a_slow_key_is_judged_again(clock):
    """A key attempt whose start outlasts its slice still runs KEY_MIN_STEPS iterations; a
    keyed fit that is better than the structure but short of the margin after its trial runs
    on and is kept once it passes (a keyed bank improves slower than one parameter set)."""
    trainers = []
    structure_esr = 0.05  # every structure settles here

    def make_trainer(cfg):
        if cfg.key == "amplitude" and cfg.chain_spec == FAMILY[0][1]:
            # slow start; at its floor 0.9x the structure (no margin), 0.5x after 40 steps
            esr = lambda step: structure_esr * max(1.0 - step / 80.0, 0.5)  # noqa: E731
            trainer = FakeTrainer(cfg, clock, startup=12.0, per_step=0.2, esr=esr)
        elif cfg.key != "none":  # pitch and the safety net never improve
            trainer = FakeTrainer(cfg, clock, 0.5, 0.2, esr=lambda step: 2 * structure_esr)
        else:  # the structures: drive_tone best
            rank = [s for _, s in FAMILY].index(cfg.chain_spec)
            esr = lambda step: structure_esr * (1 + rank) * (1 + 1 / (1 + step))  # noqa: E731
            trainer = FakeTrainer(cfg, clock, 0.5, 0.1, esr=esr)
        trainers.append(trainer)
        return trainer

    cfg = TrainConfig(budget_seconds=120.0).resolved()
    outcome = search([], cfg, 44100, make_trainer, lambda t: t.run())
    amplitude = next(t for t in trainers if t.cfg.key == "amplitude")
    assert amplitude.step >= KEY_MIN_STEPS  # its slice (48 s x 0.5 / 3 = 8 s) < its start
    assert outcome.key == "amplitude"
    assert outcome.trainer is amplitude
    structure = min(e["val_esr"] for e in outcome.ranking if e["key"] == "none")
    assert amplitude.best_esr <= KEY_MARGIN * structure
    chosen = next(e for e in outcome.ranking if e["key"] == "amplitude")
    assert chosen["val_esr"] == amplitude.best_esr and chosen["steps"] == amplitude.step
    assert clock.now <= 120.0 + 0.2 + 1e-9


def test_lbfgs_stopped_by_its_deadline_says_so():
    """A run ended by ``should_stop`` before one iteration reports ``stopped`` and is not
    converged (the trainer then resumes it when its budget grows); a run that ends by itself
    does not report ``stopped``."""

    class Quadratic:
        chain = None

        def __init__(self) -> None:
            self.x = np.array([3.0, -2.0])
            self.evaluations = 0

        def get(self):
            return self.x.copy()

        def set(self, x):
            self.x = np.asarray(x, np.float64).copy()

        def __call__(self, x):
            self.set(x)
            self.evaluations += 1
            return float(np.sum(self.x**2)), 2.0 * self.x

    stopped = lbfgs(Quadratic(), 100, should_stop=lambda: True)
    assert stopped.stopped and stopped.iterations == 0 and not stopped.converged
    finished = lbfgs(Quadratic(), 100)
    assert not finished.stopped and finished.converged and finished.loss < 1e-12
