"""The search's budget logic with simulated fits (no TensorFlow): deterministic, fast.

A fake trainer spends ``startup`` seconds (tracing and the data-driven start) before its first
iteration and ``per_step`` seconds per iteration, and stops at its deadline or step bound, as
:class:`lactose_audio.trainer.Trainer` does.
"""

from __future__ import annotations

import numpy as np

from lactose_audio.refine import lbfgs
from lactose_audio.search import FAMILY, SCREEN_MIN_STEPS, search
from lactose_audio.train_config import TrainConfig

SLOW = "mlp"  # the candidate whose start takes longer than its screening slice


class FakeTrainer:
    def __init__(self, cfg, startup: float, per_step: float) -> None:
        self.cfg = cfg
        self.startup, self.per_step = startup, per_step
        self.step, self.elapsed = 0, 0.0
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

    def run(self) -> None:
        if self.step == 0 and self.elapsed < self.startup:
            self.elapsed = min(self.startup, self.deadline)
        while self.elapsed < self.deadline and (
            self.max_steps is None or self.step < self.max_steps
        ):
            self.elapsed += self.per_step
            self.step += 1
            self.best_esr = 1.0 / (1.0 + self.step)


def test_screening_gives_a_slow_candidate_its_minimum_iterations():
    """With a wall-clock budget, a candidate whose start outlasts its screening slice is
    extended (one run) until SCREEN_MIN_STEPS iterations, not ranked by its start."""
    trainers = []

    def make_trainer(cfg):
        slow = cfg.chain_spec == dict(FAMILY)[SLOW]
        trainer = FakeTrainer(cfg, startup=6.0 if slow else 0.5, per_step=0.1)
        trainers.append(trainer)
        return trainer

    cfg = TrainConfig(budget_seconds=120.0).resolved()
    search([], cfg, 44100, make_trainer, lambda t: t.run())
    screened = trainers[: len(FAMILY)]
    slow = screened[[s for s, _ in FAMILY].index(SLOW)]
    assert slow.elapsed > 6.0  # its slice (3.75 s here) was shorter than its start
    assert all(t.step >= SCREEN_MIN_STEPS for t in screened)


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
