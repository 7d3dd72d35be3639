"""The fit of one chain: two phases, each a stochastic warm-up then a second-order refinement.

Phases, as in Clarke 2025 (arXiv 2502.15829) but batched:

1. *unconditioned*: every keyed stage uses its row 0 for all data, so the chain learns the
   effect's average behaviour;
2. *ranges* (keyed chains only): every row starts from that fit and is refined with separated
   updates — each segment's error reaches only the rows its key selected (``tf.gather``);
   :class:`~lactose_audio.ranges.SeparatedAdam` keeps one Adam state per row, and the
   full-batch refinement's gradient of a row comes only from that row's data.

Each phase runs two stages:

- ``adam``: Adam on random RMS-weighted segments (loss: ESR + pre-emphasised ESR + a weighted
  multi-resolution STFT distance), learning rate decaying tenfold, for at most
  ``warmup_share`` of the phase's budget (default 0: the data-driven start is enough for
  gray-box chains), ended earlier when the validation ESR has not improved for ``patience``
  evaluations — it only has to bring the parameters into the basin;
- ``refine``: L-BFGS on the full batch (:mod:`lactose_audio.refine`), restarted from the best
  point while a restart still gains, until it converges or the phase's budget ends. A run
  that is still improving is never ended by early stopping: only convergence or the budget end
  it.

Validation ESR (the held-out blocks of every pair, each preceded by its filter context) is
measured every ``eval_every`` steps in both stages; the best validation parameters are what is
kept. One Adam step or one L-BFGS iteration counts as one step.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lactose_audio.data import SILENCE_DBFS
from lactose_audio.errors import DataError, LactoseError, ParameterError
from lactose_audio.params import clip_start_raw
from lactose_audio.sampling import (
    SegmentSampler,
    context_samples,
    coverage_counts,
    nearest_trained,
    pick,
    prepare_tracks,
    validation_batches,
)

#: Share of a keyed chain's budget spent on the unconditioned phase.
UNCONDITIONED_SHARE = 0.5
#: A refinement restart that gains less than this (relative) ends the refine stage.
RESTART_MIN_GAIN = 0.005


class Trainer:
    """Owns the chain, the optimiser state, the sampler and the best parameters so far.

    Args:
        chain: the chain to fit (its banks are trained in place).
        pairs: aligned :class:`~lactose_audio.data.Pair` s at ``sample_rate``.
        cfg: a resolved :class:`~lactose_audio.train_config.TrainConfig`.
        sample_rate: Hz.
    """

    def __init__(self, chain, pairs, cfg, sample_rate: int) -> None:
        from lactose_audio._tf import tf
        from lactose_audio.losses import spectral_loss
        from lactose_audio.ranges import SeparatedAdam

        self.tf = tf
        self.cfg = cfg
        self.chain = chain
        self.sample_rate = int(sample_rate)
        self.tracks = prepare_tracks(pairs, chain, cfg.validation_fraction, sample_rate)
        self.hop = chain.hop_size
        self.context = context_samples(chain, sample_rate)
        self.segment = -(-cfg.segment_samples // self.hop) * self.hop
        try:  # the sampler knows where a segment fits: one rule for "long enough"
            self.sampler = SegmentSampler(chain, self.tracks, self.context, self.segment)
        except ParameterError:
            needed = (self.context + self.segment) / (1 - cfg.validation_fraction)
            raise ParameterError(
                f"training audio too short: needs at least {needed / sample_rate:.1f} s "
                f"per pair at {sample_rate} Hz"
            ) from None
        validation_peak = max(
            float(np.max(np.abs(pick(t.wet, t.validation)), initial=0.0)) for t in self.tracks
        )
        if validation_peak < 10.0 ** (SILENCE_DBFS / 20.0):
            raise DataError(
                f"{pairs[0].wet_name}: the held-out {cfg.validation_fraction:.0%} of the wet "
                "(blocks spread over the take) is silent, so no fit can be validated; record "
                "playing through the take (or use a folder of several pairs)"
            )
        self.keyed = any(stage.keyed for stage in chain.stages)
        #: knob captures: the per-setting phase gets most of the budget (unconditioned_share)
        self.captures = any(s.keyed and s.control is not None for s in chain.stages)
        self.rng = np.random.default_rng(cfg.seed)
        tf.random.set_seed(cfg.seed)
        self.strategy = tf.distribute.get_strategy()
        with self.strategy.scope():
            self.optimizer = SeparatedAdam(learning_rate=cfg.learning_rate)
            self.optimizer.build(chain.trainable_variables)
        self._spectral = spectral_loss((2048, 1024, 512, 256, 128))
        self.phase = "unconditioned"
        self.stage = "adam"
        self.step = 0
        self.elapsed = 0.0
        self.history: list[dict[str, Any]] = []
        self.best_esr = math.inf
        self.best_values = self._values()
        self.unconditioned_values: list[np.ndarray] | None = None
        self.unconditioned_esr = math.inf
        self.evals_since_best = 0
        self.phase_start = (0, 0.0)  # (step, elapsed seconds) at which the phase began
        self.last_loss = 0.0
        self.refine_loss = math.inf
        self.converged = False
        self.initial: dict[str, float] = {}
        self._step_fn = None
        self._validation: dict[bool, list[Any]] = {}  # row0 -> validation batches
        self._objective = None
        self._value_and_gradient = None

    # -- state ---------------------------------------------------------------------------------
    def _values(self) -> list[np.ndarray]:
        return [stage.bank.numpy().copy() for stage in self.chain.stages]

    def _set_values(self, values: Sequence[np.ndarray]) -> None:
        for stage, value in zip(self.chain.stages, values, strict=True):
            stage.bank.assign(value)

    @property
    def _row0(self) -> bool:
        return self.phase == "unconditioned" and self.keyed

    # -- graph ---------------------------------------------------------------------------------
    def _loss(self, target, prediction):
        from lactose_audio.losses import DEFAULT_PRE_EMPHASIS, esr_tf

        loss = esr_tf(target, prediction) + esr_tf(target, prediction, DEFAULT_PRE_EMPHASIS)
        if self.cfg.stft_weight:
            loss += self.cfg.stft_weight * self._spectral(target, prediction)
        return loss

    def _build_step(self):
        tf = self.tf
        chain, context, sample_rate = self.chain, self.context, self.sample_rate
        variables = chain.trainable_variables

        def replica_step(dry, wet, sels):
            with tf.GradientTape() as tape:
                prediction = chain.forward(dry, sels, sample_rate)[:, context:]
                loss = self._loss(wet, prediction)
            grads = tape.gradient(loss, variables)
            grads = [
                tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                for g, v in zip(grads, variables, strict=True)
            ]
            # Under a multi-replica strategy every replica sees the mean gradient.
            grads = tf.distribute.get_replica_context().all_reduce("mean", grads)
            self.optimizer.apply_gradients(zip(grads, variables, strict=True))
            return loss

        def step(dry, wet, sels):
            losses = self.strategy.run(replica_step, args=(dry, wet, sels))
            return self.strategy.reduce("mean", losses, axis=None)

        return tf.function(step, reduce_retracing=True, autograph=False)

    def validation_esr(self) -> float:
        """ESR over every pair's validation blocks, each run after its filter context.

        The blocks are cut into pieces laid out like the training segments
        (:func:`~lactose_audio.sampling.validation_batches`, so memory does not grow with the
        pair) and rendered by the numpy backend, the engine a preset is rendered with
        (:func:`~lactose_audio.piece_loss.validation_sums`): 0.05 s per validation of a keyed
        10-stage chain, where the fit's traced loss-and-gradient graph took 0.33 s (a 120 s
        search validates ~60 times).
        """
        from lactose_audio.piece_loss import validation_sums

        batches = self._validation.get(self._row0)
        if batches is None:
            batches = validation_batches(
                self.chain, self.tracks, self.context, self._row0, self.segment
            )
            self._validation[self._row0] = batches
        errors, energy = 0.0, 0.0
        for batch in batches:
            error, total = validation_sums(self.chain, batch, self.context, self.sample_rate)
            errors += error
            energy += total
        return errors / max(energy, 1e-20)

    def _graph(self, batch: Any) -> Any:
        """The fit's traced loss-and-gradient function (built from the first batch seen)."""
        from lactose_audio.refine import value_and_gradient

        if self._value_and_gradient is None:
            self._value_and_gradient = value_and_gradient(
                self.chain, batch, self.sample_rate, self.context
            )
        return self._value_and_gradient

    # -- budget --------------------------------------------------------------------------------
    def phase_budget(self) -> tuple[float | None, int | None]:
        """(seconds, steps) at which the current phase ends (``None``: no such bound)."""
        cfg = self.cfg
        share = self.unconditioned_share if self._row0 else 1.0
        seconds = cfg.budget_seconds * share if cfg.budget_seconds is not None else None
        steps = int(math.ceil(cfg.steps * share)) if cfg.steps is not None else None
        return seconds, steps

    @property
    def unconditioned_share(self) -> float:
        """Budget share of the unconditioned phase: :data:`UNCONDITIONED_SHARE`, or with knob
        captures ``1 / (n_captures + 1)``. That phase fits one set of parameters to every
        capture (a start for each setting's rows), while the per-setting phase fits ``n``
        times as many (it converges ``n`` times slower: a loud capture dominates the joint
        loss and the quiet ones' rows move slowly), so a fixed half starved it."""
        if self.captures:
            return 1.0 / (len(self.tracks) + 1)
        return UNCONDITIONED_SHARE

    def _used(self, share: float) -> bool:
        """True when ``share`` of the current phase's budget (time or steps) is used."""
        seconds, steps = self.phase_budget()
        step0, elapsed0 = self.phase_start
        if seconds is not None and self.elapsed >= elapsed0 + share * (seconds - elapsed0):
            return True
        return steps is not None and self.step >= step0 + share * (steps - step0)

    def _progress(self) -> float:
        """Fraction of the warm-up's budget used, in [0, 1] (drives the learning rate)."""
        seconds, steps = self.phase_budget()
        step0, elapsed0 = self.phase_start
        fractions = []
        if seconds is not None:
            span = self.cfg.warmup_share * (seconds - elapsed0)
            fractions.append((self.elapsed - elapsed0) / max(span, 1e-9))
        if steps is not None:
            span_steps = self.cfg.warmup_share * (steps - step0)
            fractions.append((self.step - step0) / max(span_steps, 1))
        return float(min(max(max(fractions), 0.0), 1.0))

    def _learning_rate(self) -> float:
        """Exponential decay over each warm-up: from ``learning_rate`` to a tenth of it."""
        base = self.cfg.learning_rate * (1.0 if self.phase == "unconditioned" else 0.5)
        return base * 0.1 ** self._progress()

    def time_left(self) -> float | None:
        if self.cfg.budget_seconds is None:
            return None
        return max(self.cfg.budget_seconds - self.elapsed, 0.0)

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self, loss: float) -> None:
        val = self.validation_esr()
        self.history.append(
            {
                "step": self.step,
                "seconds": round(self.elapsed, 3),
                "phase": self.phase,
                "stage": self.stage,
                "loss": float(loss),
                "val_esr": float(val),
            }
        )
        if val < self.best_esr:
            self.best_esr = val
            self.best_values = self._values()
            self.evals_since_best = 0
        else:
            self.evals_since_best += 1

    def _evaluate_if_new(self) -> None:
        if not self.history or self.history[-1]["step"] != self.step:
            self.evaluate(self.last_loss)

    def start_ranges(self) -> None:
        """Start every range from the best unconditioned fit, with fresh optimiser state."""
        self._set_values(self.best_values)
        self.unconditioned_values = self._values()
        self.unconditioned_esr = self.best_esr
        for stage in self.chain.stages:
            row = stage.bank.numpy()[0]
            stage.bank.assign(np.broadcast_to(row, stage.bank.numpy().shape).copy())
        for var in self.optimizer.variables[1:]:
            var.assign(self.tf.zeros_like(var))
        self.phase = "ranges"
        self.stage = "adam"
        self.phase_start = (self.step, self.elapsed)
        # Every range starts from the unconditioned fit with saturated raw values pulled in to
        # +-params.START_RAW_LIMIT: a parameter the pooled fit pushed to a bound (a high-pass
        # at its lowest corner, a low-pass wide open) has a dead gradient there (sigmoid slope
        # ~1e-7), so no range could move it; within the limit it changes by < 0.7 % of its
        # span (a 2 Hz high-pass -> 2.1 Hz) and its gradient is alive. (Re-validated below.)
        clipped = False
        for stage in self.chain.stages:
            raw = stage.bank.numpy()
            pulled = clip_start_raw(raw).astype(raw.dtype)
            clipped |= bool(np.any(pulled != raw))
            stage.bank.assign(pulled)
        matched = False
        if self.captures:  # each setting's rows at its capture's level (see the function)
            from lactose_audio.initialise import match_capture_levels

            matched = match_capture_levels(self.chain, self.tracks, self.sample_rate)
        self.best_values = self._values()
        self.evals_since_best = 0
        self.refine_loss = math.inf
        self.converged = False
        self._objective = None  # its full batch is built per phase (row 0 or the keys)
        if clipped or matched:
            self.best_esr = self.validation_esr()
        self._start_ranges_from_data()

    def _start_ranges_from_data(self) -> None:
        """Each range's drive, corners and level from its own data
        (:mod:`lactose_audio.range_start`), kept only if it validates better."""
        from lactose_audio.range_start import start_ranges_from_data

        t0 = time.perf_counter()
        if start_ranges_from_data(self.chain, self.tracks, self.sample_rate):
            esr = self.validation_esr()
            if esr < self.best_esr:
                self.best_esr, self.best_values = esr, self._values()
            else:
                self._set_values(self.best_values)
        self.elapsed += time.perf_counter() - t0

    # -- the loop ------------------------------------------------------------------------------
    def run(
        self,
        progress: bool = True,
        on_step: Callable[[Trainer], None] | None = None,
        checkpoint: Callable[[Trainer], None] | None = None,
        checkpoint_every: float = 15.0,
    ) -> None:
        """Train until the budget, the step count or convergence ends every phase."""
        from tqdm.auto import tqdm

        self._bar = tqdm(
            desc=f"{self.cfg.chain_spec}@{self.cfg.key}",
            total=self.cfg.steps,
            disable=not progress,
            unit="step",
            dynamic_ncols=True,
            initial=self.step,
            leave=False,
        )
        self._on_step, self._checkpoint = on_step, checkpoint
        self._checkpoint_every, self._last_checkpoint = checkpoint_every, time.perf_counter()
        try:
            if self.step == 0 and self.phase == "unconditioned" and not self.history:
                self._initialise()
            while True:
                if self.stage == "adam":
                    patience_over = self.evals_since_best >= self.cfg.patience
                    if self._used(self.cfg.warmup_share) or patience_over:
                        self._evaluate_if_new()
                        self._set_values(self.best_values)
                        self.stage = "refine"
                        continue
                    self._adam_step()
                elif self.stage == "refine":
                    if self._used(1.0):
                        self.stage = "done"
                        continue
                    self._refine()
                else:
                    self._evaluate_if_new()
                    if self.phase == "unconditioned" and self.keyed:
                        self.start_ranges()
                        continue
                    break
        finally:
            self._bar.close()
        if self.unconditioned_values is None:
            self.unconditioned_values = self.best_values
            self.unconditioned_esr = self.best_esr

    def _initialise(self) -> None:
        """Data-driven drive and level (:mod:`lactose_audio.initialise`), then validate."""
        from lactose_audio.initialise import initialise

        t0 = time.perf_counter()
        self.initial = initialise(self.objective())
        # The start and the first validation count in the fit's time, so a search's slices
        # stay within its wall clock.
        self.evaluate(self.initial["loss"])
        self.elapsed += time.perf_counter() - t0
        self.best_values = self._values()

    def _after_step(self, loss: float) -> None:
        """Count a step; validate, report progress, call back and checkpoint as due."""
        self.last_loss = loss
        self.step += 1
        if self.step % self.cfg.eval_every == 0:
            self.evaluate(loss)
        self._bar.update(1)
        left = self.time_left()
        self._bar.set_postfix_str(
            f"{self.phase}/{self.stage} loss {loss:.4f} val ESR {self.best_esr:.5f}"
            + (f" {left:.0f}s left" if left is not None else "")
        )
        if self._on_step is not None:
            self._on_step(self)
        if self._checkpoint is not None and (
            time.perf_counter() - self._last_checkpoint > self._checkpoint_every
        ):
            self._checkpoint(self)
            self._last_checkpoint = time.perf_counter()

    def _adam_step(self) -> None:
        if self._step_fn is None:
            self._step_fn = self._build_step()
        t0 = time.perf_counter()
        self.optimizer.learning_rate.assign(self._learning_rate())
        batch = self.sampler.batch(self.rng, self.cfg.batch_size, self._row0)
        loss = float(self._step_fn(batch.dry, batch.wet, batch.selections))
        if not math.isfinite(loss):
            raise LactoseError(
                f"training diverged at step {self.step} (loss {loss}); try a smaller "
                "learning rate or check the data"
            )
        self.elapsed += time.perf_counter() - t0
        self._after_step(loss)

    def objective(self):
        """The full-batch objective of the current phase (built once per phase)."""
        from lactose_audio.refine import Objective

        if self._objective is None:
            batch = self.sampler.full_batch(self.cfg.refine_segments, self._row0)
            self._objective = Objective(
                self.chain, batch, self.sample_rate, self.context, self._graph(batch)
            )
        return self._objective

    def _refine(self) -> None:
        """One L-BFGS run from the best parameters, within the phase's budget."""
        from lactose_audio.refine import lbfgs

        seconds, steps = self.phase_budget()
        clock = {"t": time.perf_counter()}

        def tick() -> None:
            now = time.perf_counter()
            self.elapsed += now - clock["t"]
            clock["t"] = now

        def should_stop() -> bool:
            tick()
            return (seconds is not None and self.elapsed >= seconds) or (
                steps is not None and self.step >= steps
            )

        def on_iteration(loss: float) -> None:
            tick()
            self._after_step(loss)
            clock["t"] = time.perf_counter()  # validation and callbacks are not refinement

        self._set_values(self.best_values)
        objective = self.objective()
        from lactose_audio.initialise import ZERO_OUTPUT_LOSS, initialise

        if objective(objective.get())[0] >= ZERO_OUTPUT_LOSS:
            # Worse than silence on this batch (a new, larger full batch): restart from the
            # data-driven drive and level, or L-BFGS walks to the "output nothing" point.
            initialise(objective)
        left = steps - self.step if steps is not None else 10_000
        result = lbfgs(objective, max(left, 0), should_stop, on_iteration)
        tick()
        self.last_loss = result.loss
        gain = (self.refine_loss - result.loss) / max(abs(self.refine_loss), 1e-30)
        self.refine_loss = min(self.refine_loss, result.loss)
        self._evaluate_if_new()
        if (
            result.converged
            or (result.iterations == 0 and not result.stopped)
            or (result.line_search_failed and gain < RESTART_MIN_GAIN)
        ):
            self.stage = "done"
            self.converged = True

    def use_full_batch(self, refine_segments: int) -> None:
        """Refine on a full batch of ``refine_segments`` segments from now on (a search
        finalist after screening on a small one); a converged fit may move again."""
        self.cfg = dataclasses.replace(self.cfg, refine_segments=refine_segments)
        self._objective = None
        self.converged = False
        if self.stage == "done":
            self.stage = "refine"

    def extend(self, budget_seconds: float | None, steps: int | None) -> None:
        """Raise the run's budget (totals, as in the config); an unconverged fit continues."""
        self.cfg = dataclasses.replace(self.cfg, budget_seconds=budget_seconds, steps=steps)
        if self.stage == "done" and not self.converged:
            self.stage = "refine"

    def begin_ranges(self, values: Sequence[np.ndarray], esr: float | None) -> None:
        """Start at the ranges phase from an unconditioned fit of the same structure.

        Args:
            values: per stage, raw bank values whose row 0 is the unconditioned fit.
            esr: that fit's validation ESR on this trainer's validation blocks; ``None`` when
                it was fitted on other data (the middle capture of a knob fit): evaluated here.
        """
        for stage, value in zip(self.chain.stages, values, strict=True):
            row = np.asarray(value)[0]
            stage.bank.assign(np.broadcast_to(row, stage.bank.numpy().shape).copy())
        self.best_values = self._values()
        self.best_esr = float(self.validation_esr() if esr is None else esr)
        self.start_ranges()

    # -- results -------------------------------------------------------------------------------
    def finalize(self) -> list[dict[str, Any]]:
        """Load the best parameters; flagged ranges take the unconditioned row (a 2-D bank's:
        the nearest trained range of the same setting, the unconditioned row pooling every
        setting). Coverage."""
        self._set_values(self.best_values)
        cover = coverage_counts(self.chain, self.tracks, self.cfg.min_coverage)
        if self.unconditioned_values is not None:
            for stage, entry, base in zip(
                self.chain.stages, cover, self.unconditioned_values, strict=True
            ):
                flagged = np.asarray(entry["flagged"], bool)
                if not flagged.any():
                    continue
                values = stage.bank.numpy().copy()
                fallback = np.broadcast_to(base[0], values.shape).copy()
                if stage.knob is not None:
                    fallback = nearest_trained(values, flagged, stage.edges.n_ranges, fallback)
                values[flagged] = fallback[flagged]
                stage.bank.assign(values)
        return cover

    # -- checkpoints ---------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(metadata, arrays)`` from which :meth:`restore` continues the run."""
        meta = {
            "phase": self.phase,
            "stage": self.stage,
            "step": self.step,
            "elapsed": self.elapsed,
            "history": self.history,
            "best_esr": self.best_esr,
            "unconditioned_esr": self.unconditioned_esr,
            "evals_since_best": self.evals_since_best,
            "phase_start": list(self.phase_start),
            "last_loss": self.last_loss,
            "refine_loss": self.refine_loss,
            "converged": self.converged,
            "rng": self.rng.bit_generator.state,
            "config": dataclasses.asdict(self.cfg),
            "chain": self.chain.to_config(),
        }
        arrays: dict[str, np.ndarray] = {}
        for i, v in enumerate(self._values()):
            arrays[f"value_{i}"] = v
        for i, v in enumerate(self.best_values):
            arrays[f"best_{i}"] = v
        if self.unconditioned_values is not None:
            for i, v in enumerate(self.unconditioned_values):
                arrays[f"uncond_{i}"] = v
        for i, v in enumerate(self.optimizer.variables):
            arrays[f"opt_{i}"] = np.asarray(v.numpy())
        return meta, arrays

    def restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Continue from :meth:`state` (a refinement in progress restarts from its best)."""
        n = len(self.chain.stages)
        self._set_values([arrays[f"value_{i}"] for i in range(n)])
        self.best_values = [arrays[f"best_{i}"] for i in range(n)]
        if "uncond_0" in arrays:
            self.unconditioned_values = [arrays[f"uncond_{i}"] for i in range(n)]
        for i, var in enumerate(self.optimizer.variables):
            var.assign(arrays[f"opt_{i}"])
        self.phase = meta["phase"]
        self.stage = meta.get("stage", "adam")
        self.step = int(meta["step"])
        self.elapsed = float(meta["elapsed"])
        self.history = list(meta["history"])
        self.best_esr = float(meta["best_esr"])
        self.unconditioned_esr = float(meta["unconditioned_esr"])
        self.evals_since_best = int(meta["evals_since_best"])
        self.phase_start = (int(meta["phase_start"][0]), float(meta["phase_start"][1]))
        self.last_loss = float(meta["last_loss"])
        self.refine_loss = float(meta.get("refine_loss", math.inf))
        self.converged = bool(meta.get("converged", False))
        self.rng.bit_generator.state = meta["rng"]
