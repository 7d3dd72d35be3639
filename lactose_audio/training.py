"""Fit a chain to dry/wet pairs: the LACTOSE training loop (DESIGN §5).

Two phases, as in Clarke 2025 (arXiv 2502.15829) but batched:

1. *unconditioned*: every keyed stage uses its row 0 for all data, so the chain learns the
   effect's average behaviour;
2. *ranges*: every row starts from that fit and is fine-tuned with separated updates — each
   segment's error reaches only the rows its key selected (``tf.gather``), and
   :class:`~lactose_audio.ranges.SeparatedAdam` keeps one Adam state per row, so a row that
   saw no data in a step does not move. Ranges that saw too little training data keep the
   unconditioned parameters and are flagged in the preset.

Loss: ESR + pre-emphasised ESR + a weighted multi-resolution STFT distance (ddsp
``SpectralLoss``), on random segments that start on the chain's frame grid, each preceded by
``context`` samples so the filters' state is warm. Early stopping on validation ESR; the best
validation parameters are what is saved. A wall-clock budget and/or a step count bound the
run; checkpoints allow ``--resume``; Ctrl-C saves the best preset so far.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lactose_audio import __version__
from lactose_audio.errors import LactoseError, ParameterError, PresetError, TrainingInterrupted

DEFAULT_SPEC = "gain>tanh>lowpass>highpass"
DEFAULT_BUDGET_SECONDS = 60.0
#: Soft-edge width per key kind (key unit): none for the raw sample, small elsewhere.
DEFAULT_SOFT_WIDTH = {"sample": 0.0, "amplitude": 1.0, "pitch": 0.5}
CHECKPOINT_SUFFIX = ".checkpoint.npz"


@dataclass
class TrainConfig:
    """What to fit and how long.

    Attributes:
        chain_spec: chain spec string (``None``: ``gain>tanh>lowpass>highpass``).
        key: ``none|sample|amplitude|pitch`` (``None``: amplitude for the default chain,
            none for a custom chain).
        n_ranges: number of ranges, edges from quantiles of the training key (default 8
            when keyed).
        edges: explicit inner edges in the key's unit (instead of ``n_ranges``).
        soft_width: soft-edge band in the key's unit (``None``: per-kind default).
        budget_seconds: wall-clock budget (``None`` and no ``steps``: 60 s).
        steps: maximum optimisation steps over both phases.
        seed: seeds the segment sampler and TensorFlow.
        batch_size: segments per step.
        segment_samples: loss segment length in samples (rounded up to whole frames).
        learning_rate: Adam step size on raw (unconstrained) parameters.
        validation_fraction: the end of each pair held out for validation.
        stft_weight: weight of the multi-resolution STFT distance in the loss.
        min_coverage: a range that received less than this fraction of the training key's
            samples/frames keeps the unconditioned parameters and is flagged.
        eval_every: validation every this many steps.
        patience: evaluations without improvement before a phase stops early.
        key_rate: ``sample`` or ``frame`` for amplitude keys (``None``: the key's default).
        hop_size: the chain's frame hop in samples (``None``: the chain default, 1024 = 23 ms
            at 44.1 kHz, which follows a player's dynamics): filters and frame-rate keys
            change once per frame.
    """

    chain_spec: str | None = None
    key: str | None = None
    n_ranges: int | None = None
    edges: list[float] | None = None
    soft_width: float | None = None
    budget_seconds: float | None = None
    steps: int | None = None
    seed: int = 0
    batch_size: int = 8
    segment_samples: int = 8192
    learning_rate: float = 0.05
    validation_fraction: float = 0.15
    stft_weight: float = 0.01
    min_coverage: float = 0.005
    eval_every: int = 20
    patience: int = 15
    key_rate: str | None = None
    hop_size: int | None = None

    def resolved(self) -> TrainConfig:
        """A copy with defaults filled in and every value checked (ParameterError)."""
        cfg = dataclasses.replace(self)
        if cfg.chain_spec is None:
            cfg.chain_spec = DEFAULT_SPEC
            if cfg.key is None:
                cfg.key = "amplitude"
        if cfg.key is None:
            cfg.key = "none" if cfg.n_ranges is None and cfg.edges is None else "amplitude"
        if cfg.key not in ("none", "sample", "amplitude", "pitch"):
            raise ParameterError(f"key must be none, sample, amplitude or pitch, got {cfg.key!r}")
        if cfg.n_ranges is not None and cfg.edges is not None:
            raise ParameterError("give either n_ranges or edges, not both")
        if cfg.key == "none":
            if (cfg.n_ranges or 1) > 1 or cfg.edges:
                raise ParameterError("--key none has one range; drop --ranges/--edges")
            cfg.n_ranges, cfg.edges = 1, None
        elif cfg.edges is None and cfg.n_ranges is None:
            cfg.n_ranges = 8
        if cfg.soft_width is None:
            cfg.soft_width = DEFAULT_SOFT_WIDTH.get(cfg.key, 0.0)
        if cfg.budget_seconds is None and cfg.steps is None:
            cfg.budget_seconds = DEFAULT_BUDGET_SECONDS
        for name in ("batch_size", "segment_samples", "eval_every", "patience"):
            if int(getattr(cfg, name)) < 1:
                raise ParameterError(f"{name} must be >= 1, got {getattr(cfg, name)}")
        if not 0.0 < cfg.validation_fraction < 0.9:
            raise ParameterError(
                f"validation_fraction must be between 0 and 0.9, got {cfg.validation_fraction}"
            )
        if not (math.isfinite(cfg.learning_rate) and cfg.learning_rate > 0):
            raise ParameterError(f"learning_rate must be > 0, got {cfg.learning_rate}")
        return cfg


@dataclass
class TrainResult:
    """What a training run produced."""

    effect: Any
    out_path: Path | None
    validation_esr: float
    unconditioned_esr: float
    steps: int
    seconds: float
    latency_samples: list[int]
    history: list[dict[str, Any]] = field(default_factory=list)
    report_files: list[Path] = field(default_factory=list)
    interrupted: bool = False

    def summary(self) -> str:
        """Lines for the terminal."""
        lines = []
        if self.out_path is not None:
            lines.append(f"wrote {self.out_path}")
        lines.append(
            f"validation ESR {self.validation_esr:.5f} (unconditioned fit "
            f"{self.unconditioned_esr:.5f}); {self.steps} steps in {self.seconds:.1f} s; "
            f"latency {', '.join(str(v) for v in self.latency_samples)} samples"
        )
        flagged = [
            f"stage {i} range {r}"
            for i, cov in enumerate(self.effect.coverage)
            for r, f in enumerate(cov["flagged"])
            if f
        ]
        if flagged:
            lines.append("too little data (kept the unconditioned fit): " + ", ".join(flagged))
        if self.report_files:
            lines.append("report: " + ", ".join(str(p) for p in self.report_files))
        return "\n".join(lines)


# ---- data preparation ---------------------------------------------------------------------


@dataclass
class _Track:
    """One pair prepared for training: whole-file audio and selections, split by time."""

    dry: np.ndarray
    wet: np.ndarray
    selections: list[Any]
    train_end: int  # first validation sample, a multiple of the hop
    n_samples: int


def build_chain(cfg: TrainConfig, train_audio: Sequence[np.ndarray], sample_rate: int):
    """The chain to fit, with edges placed on quantiles of the training key (or as given)."""
    from lactose_audio.chains import Chain, make_key
    from lactose_audio.ranges import RangeEdges

    key = None
    if cfg.key != "none":
        key = make_key(cfg.key, cfg.key_rate) if cfg.key_rate else make_key(cfg.key)
    edges = None
    if cfg.edges is not None:
        edges = RangeEdges(tuple(cfg.edges), key.unit if key is not None else "")
    options = {} if cfg.hop_size is None else {"hop_size": int(cfg.hop_size)}
    chain = Chain.from_spec(
        cfg.chain_spec,
        key=key,
        n_ranges=cfg.n_ranges,
        edges=edges,
        soft_width=cfg.soft_width,
        **options,
    )
    if cfg.edges is None and any(stage.keyed for stage in chain.stages):
        chain.fit_edges(np.concatenate(list(train_audio)), sample_rate)
        # Edges from data can be closer than the default soft band: narrow the band to half
        # the smallest spacing so neighbouring bands never overlap.
        for stage in chain.stages:
            if stage.keyed and stage.n_ranges > 2:
                spacing = float(np.min(np.diff(stage.edges.edges)))
                stage.soft_width = min(stage.soft_width, 0.5 * spacing)
    return chain


def _prepare(pairs, chain, cfg: TrainConfig) -> list[_Track]:
    hop = chain.hop_size
    tracks = []
    for pair in pairs:
        n = pair.n_samples
        train_end = int(round(n * (1.0 - cfg.validation_fraction) / hop)) * hop
        tracks.append(
            _Track(
                dry=pair.dry,
                wet=pair.wet,
                selections=chain.selections(pair.dry, pair.sample_rate),
                train_end=train_end,
                n_samples=n,
            )
        )
    return tracks


def _context_samples(chain, sample_rate: int) -> int:
    from lactose_audio.blocks.base import ir_length

    hop = chain.hop_size
    return -(-ir_length(sample_rate) // hop) * hop


def _coverage(chain, tracks: list[_Track], min_fraction: float) -> list[dict[str, Any]]:
    """Per stage: how many training samples/frames each range received, and flags."""
    from lactose_audio.ranges import coverage

    out = []
    for index, stage in enumerate(chain.stages):
        counts = np.zeros(stage.n_ranges, np.int64)
        for track in tracks:
            sel = track.selections[index]
            if sel is None:
                rate = (
                    track.train_end
                    if stage.control_rate == "sample"
                    else (track.train_end // chain.hop_size)
                )
                counts[0] += rate
                continue
            stop = (
                track.train_end
                if stage.control_rate == "sample"
                else (track.train_end // chain.hop_size)
            )
            counts += coverage(np.asarray(sel.lower)[:stop], stage.n_ranges)
        total = max(int(counts.sum()), 1)
        flagged = [bool(c < min_fraction * total) for c in counts] if stage.keyed else [False]
        out.append({"counts": [int(c) for c in counts], "flagged": flagged})
    return out


# ---- the trainer ------------------------------------------------------------------------------


class Trainer:
    """Owns the chain, the optimiser state, the sampler and the best parameters so far."""

    def __init__(self, chain, pairs, cfg: TrainConfig, sample_rate: int) -> None:
        from lactose_audio._tf import tf
        from lactose_audio.losses import spectral_loss
        from lactose_audio.ranges import SeparatedAdam

        self.tf = tf
        self.cfg = cfg
        self.chain = chain
        self.sample_rate = int(sample_rate)
        self.tracks = _prepare(pairs, chain, cfg)
        self.hop = chain.hop_size
        self.context = _context_samples(chain, sample_rate)
        self.segment = -(-cfg.segment_samples // self.hop) * self.hop
        for track in self.tracks:
            if track.train_end < self.context + self.segment:
                needed = (self.context + self.segment) / (1 - cfg.validation_fraction)
                raise ParameterError(
                    f"training audio too short: needs at least {needed / sample_rate:.1f} s "
                    f"per pair at {sample_rate} Hz"
                )
        self.rng = np.random.default_rng(cfg.seed)
        tf.random.set_seed(cfg.seed)
        self.strategy = tf.distribute.get_strategy()
        with self.strategy.scope():
            self.optimizer = SeparatedAdam(learning_rate=cfg.learning_rate)
            self.optimizer.build(chain.trainable_variables)
        self._spectral = spectral_loss((2048, 1024, 512, 256, 128))
        self.phase = "unconditioned"
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
        self._step_fn = None
        self._eval_fn = None

    # -- state ---------------------------------------------------------------------------------
    def _values(self) -> list[np.ndarray]:
        return [stage.bank.numpy().copy() for stage in self.chain.stages]

    def _set_values(self, values: Sequence[np.ndarray]) -> None:
        for stage, value in zip(self.chain.stages, values, strict=True):
            stage.bank.assign(value)

    def _optimizer_values(self) -> list[np.ndarray]:
        return [v.numpy() for v in self.optimizer.variables]

    # -- batches -------------------------------------------------------------------------------
    def _segment_selections(self, track: _Track, start: int, n: int, unconditioned: bool):
        sels = self.chain.slice_selections(track.selections, start, n)
        if unconditioned:
            sels = [None if s is None else type(s)(*(np.zeros_like(a) for a in s)) for s in sels]
        return sels

    def _start_weights(self) -> list[np.ndarray]:
        """Per track, the probability of each segment start (multiples of the hop).

        Segments are drawn with probability proportional to the RMS of their target, so that
        near-silent segments (whose ESR is a ratio of two tiny numbers) do not dominate a
        batch, while quiet passages still get their share.
        """
        n = self.context + self.segment
        out = []
        for track in self.tracks:
            n_starts = (track.train_end - n) // self.hop + 1
            energy = np.concatenate([[0.0], np.cumsum(track.wet.astype(np.float64) ** 2)])
            starts = np.arange(n_starts) * self.hop
            rms = np.sqrt((energy[starts + n] - energy[starts + self.context]) / self.segment)
            weights = rms + 1e-3 * float(rms.max() or 1.0)
            out.append(weights)
        return out

    def _batch(self, unconditioned: bool):
        if not hasattr(self, "_weights"):
            self._weights = self._start_weights()
            totals = np.array([w.sum() for w in self._weights])
            self._track_p = totals / totals.sum()
            self._start_p = [w / w.sum() for w in self._weights]
        n = self.context + self.segment
        dry, wet, sels = [], [], []
        for _ in range(self.cfg.batch_size):
            index = int(self.rng.choice(len(self.tracks), p=self._track_p))
            track = self.tracks[index]
            start = int(self.rng.choice(len(self._start_p[index]), p=self._start_p[index]))
            start *= self.hop
            dry.append(track.dry[start : start + n])
            wet.append(track.wet[start + self.context : start + n])
            sels.append(self._segment_selections(track, start, n, unconditioned))
        stacked = []
        for per_stage in zip(*sels, strict=True):
            if per_stage[0] is None:
                stacked.append(None)
            else:
                arrays = (np.stack(a) for a in zip(*per_stage, strict=True))
                stacked.append(type(per_stage[0])(*arrays))
        return np.stack(dry), np.stack(wet), stacked

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

        return tf.function(step, reduce_retracing=True)

    def _validation_esr(self) -> float:
        """ESR over every pair's validation part (each preceded by its filter context)."""
        tf = self.tf
        errors, energy = 0.0, 0.0
        for track in self.tracks:
            start = track.train_end - self.context
            n = track.n_samples - start
            sels = self.chain.slice_selections(track.selections, start, n)
            if self.phase == "unconditioned":
                sels = [
                    None if s is None else type(s)(*(np.zeros_like(a) for a in s)) for s in sels
                ]
            if self._eval_fn is None:
                self._eval_fn = tf.function(
                    lambda d, s: self.chain.forward(d, s, self.sample_rate), reduce_retracing=True
                )
            batched = [None if s is None else type(s)(*(a[None] for a in s)) for s in sels]
            prediction = self._eval_fn(track.dry[None, start:], batched).numpy()[0, self.context :]
            target = track.wet[track.train_end :]
            errors += float(np.sum((target.astype(np.float64) - prediction) ** 2))
            energy += float(np.sum(target.astype(np.float64) ** 2))
        return errors / max(energy, 1e-20)

    # -- loop ----------------------------------------------------------------------------------
    def _phase_budget(self) -> tuple[float | None, int | None]:
        """(seconds, steps) at which the current phase ends."""
        cfg = self.cfg
        keyed = any(stage.keyed for stage in self.chain.stages)
        share = 0.5 if (keyed and self.phase == "unconditioned") else 1.0
        seconds = cfg.budget_seconds * share if cfg.budget_seconds is not None else None
        steps = int(math.ceil(cfg.steps * share)) if cfg.steps is not None else None
        return seconds, steps

    def _progress(self) -> float:
        """Fraction of the current phase's budget (time or steps) used, in [0, 1]."""
        seconds, steps = self._phase_budget()
        step0, elapsed0 = self.phase_start
        fractions = []
        if seconds is not None:
            fractions.append((self.elapsed - elapsed0) / max(seconds - elapsed0, 1e-9))
        if steps is not None:
            fractions.append((self.step - step0) / max(steps - step0, 1))
        return float(min(max(max(fractions), 0.0), 1.0))

    def _learning_rate(self) -> float:
        """Exponential decay over each phase: from ``learning_rate`` to a tenth of it."""
        base = self.cfg.learning_rate * (1.0 if self.phase == "unconditioned" else 0.5)
        return base * 0.1 ** self._progress()

    def _done(self) -> bool:
        seconds, steps = self._phase_budget()
        if seconds is not None and self.elapsed >= seconds:
            return True
        if steps is not None and self.step >= steps:
            return True
        return self.evals_since_best >= self.cfg.patience

    def _evaluate(self, loss: float) -> None:
        val = self._validation_esr()
        self.history.append(
            {
                "step": self.step,
                "seconds": round(self.elapsed, 3),
                "phase": self.phase,
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

    def _end_unconditioned(self) -> None:
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
        self.phase_start = (self.step, self.elapsed)
        self.best_values = self._values()
        self.evals_since_best = 0
        self._eval_fn = None

    def run(
        self,
        progress: bool = True,
        on_step: Callable[[Trainer], None] | None = None,
        checkpoint: Callable[[Trainer], None] | None = None,
        checkpoint_every: float = 15.0,
    ) -> None:
        """Train until the budget, the step count or early stopping ends both phases."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        keyed = any(stage.keyed for stage in self.chain.stages)
        total = cfg.steps if cfg.steps is not None else None
        bar = tqdm(
            total=total,
            disable=not progress,
            unit="step",
            dynamic_ncols=True,
            initial=self.step,
            leave=False,
        )
        last_checkpoint = time.perf_counter()
        try:
            while True:
                if self._done():
                    if self.phase == "unconditioned" and keyed:
                        if not self.history or self.history[-1]["step"] != self.step:
                            self._evaluate(self.last_loss)
                        self._end_unconditioned()
                        continue
                    break
                if self._step_fn is None:
                    self._step_fn = self._build_step()
                t0 = time.perf_counter()
                self.optimizer.learning_rate.assign(self._learning_rate())
                dry, wet, sels = self._batch(self.phase == "unconditioned" and keyed)
                loss = float(self._step_fn(dry, wet, sels))
                self.last_loss = loss
                if not math.isfinite(loss):
                    raise LactoseError(
                        f"training diverged at step {self.step} (loss {loss}); try a smaller "
                        "learning rate or check the data"
                    )
                self.step += 1
                if self.step % cfg.eval_every == 0:
                    self._evaluate(loss)
                self.elapsed += time.perf_counter() - t0
                bar.update(1)
                left = self._time_left()
                bar.set_postfix_str(
                    f"{self.phase} loss {loss:.4f} val ESR {self.best_esr:.4f}"
                    + (f" {left:.0f}s left" if left is not None else "")
                )
                if on_step is not None:
                    on_step(self)
                if checkpoint is not None and time.perf_counter() - last_checkpoint > (
                    checkpoint_every
                ):
                    checkpoint(self)
                    last_checkpoint = time.perf_counter()
            if not self.history or self.history[-1]["step"] != self.step:
                self._evaluate(self.last_loss)
        finally:
            bar.close()
        if self.unconditioned_values is None:
            self.unconditioned_values = self.best_values
            self.unconditioned_esr = self.best_esr

    def _time_left(self) -> float | None:
        if self.cfg.budget_seconds is None:
            return None
        return max(self.cfg.budget_seconds - self.elapsed, 0.0)

    # -- results -------------------------------------------------------------------------------
    def finalize(self) -> list[dict[str, Any]]:
        """Load the best parameters; flagged ranges take the unconditioned row. Coverage."""
        self._set_values(self.best_values)
        cover = _coverage(self.chain, self.tracks, self.cfg.min_coverage)
        if self.unconditioned_values is not None:
            for stage, entry, base in zip(
                self.chain.stages, cover, self.unconditioned_values, strict=True
            ):
                rows = [r for r, flag in enumerate(entry["flagged"]) if flag]
                if rows:
                    values = stage.bank.numpy().copy()
                    values[rows] = base[0]
                    stage.bank.assign(values)
        return cover

    # -- checkpoints ---------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {
            "phase": self.phase,
            "step": self.step,
            "elapsed": self.elapsed,
            "history": self.history,
            "best_esr": self.best_esr,
            "unconditioned_esr": self.unconditioned_esr,
            "evals_since_best": self.evals_since_best,
            "phase_start": list(self.phase_start),
            "last_loss": self.last_loss,
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
        for i, v in enumerate(self._optimizer_values()):
            arrays[f"opt_{i}"] = np.asarray(v)
        return meta, arrays

    def restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        n = len(self.chain.stages)
        self._set_values([arrays[f"value_{i}"] for i in range(n)])
        self.best_values = [arrays[f"best_{i}"] for i in range(n)]
        if "uncond_0" in arrays:
            self.unconditioned_values = [arrays[f"uncond_{i}"] for i in range(n)]
        for i, var in enumerate(self.optimizer.variables):
            var.assign(arrays[f"opt_{i}"])
        self.phase = meta["phase"]
        self.step = int(meta["step"])
        self.elapsed = float(meta["elapsed"])
        self.history = list(meta["history"])
        self.best_esr = float(meta["best_esr"])
        self.unconditioned_esr = float(meta["unconditioned_esr"])
        self.evals_since_best = int(meta["evals_since_best"])
        self.phase_start = (int(meta["phase_start"][0]), float(meta["phase_start"][1]))
        self.last_loss = float(meta["last_loss"])
        self.rng.bit_generator.state = meta["rng"]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(type(value).__name__)


def save_checkpoint(trainer: Trainer, path: Path) -> None:
    """Write the trainer's state atomically (npz: arrays + one JSON metadata entry)."""
    from lactose_audio.audio_io import atomic_write_bytes

    meta, arrays = trainer.state()
    buffer = io.BytesIO()
    text = json.dumps(meta, default=_json_default)  # inf is written as Infinity, read back
    np.savez(buffer, meta=np.frombuffer(text.encode(), dtype=np.uint8), **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a checkpoint written by :func:`save_checkpoint` (no pickle)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (OSError, ValueError, KeyError) as exc:
        raise PresetError(f"{path}: not a readable lactose checkpoint ({exc})") from None
    return meta, arrays


# ---- public entry points ----------------------------------------------------------------------


def train(
    pairs,
    config: TrainConfig | None = None,
    *,
    out: str | os.PathLike | None = None,
    name: str = "",
    description: str = "",
    report_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = False,
    on_step: Callable[[Trainer], None] | None = None,
) -> TrainResult:
    """Fit a chain to aligned dry/wet pairs and return (and optionally save) the effect.

    Args:
        pairs: a :class:`~lactose_audio.data.Pair` or a list of them (same sample rate).
        config: :class:`TrainConfig` (defaults: default chain, amplitude key, 8 ranges, 60 s).
        out: preset path to write (atomically); its checkpoint is ``out + .checkpoint.npz``.
        name: preset name (default: the file stem).
        description: one line for ``lactose presets``.
        report_dir: write PNG plots here.
        resume: continue from the checkpoint next to ``out`` (budget and steps count the
            whole run, including the part before the checkpoint).
        progress: show a progress bar.
        on_step: called after every step with the trainer (tests, callbacks).

    Returns:
        :class:`TrainResult`.

    Raises:
        TrainingInterrupted: on Ctrl-C, after saving the best preset so far.
        ParameterError, DataError: on bad options or data.
    """
    from lactose_audio.data import Pair
    from lactose_audio.presets import Effect, save_preset

    cfg = (config or TrainConfig()).resolved()
    pairs = [pairs] if isinstance(pairs, Pair) else list(pairs)
    if not pairs:
        raise ParameterError("no dry/wet pairs to train on")
    sample_rate = pairs[0].sample_rate
    for pair in pairs[1:]:
        if pair.sample_rate != sample_rate:
            raise ParameterError(
                f"{pair.dry_name}: sample rate {pair.sample_rate} Hz differs from "
                f"{pairs[0].dry_name} ({sample_rate} Hz)"
            )
    out_path = Path(out) if out is not None else None
    ckpt_path = Path(str(out_path) + CHECKPOINT_SUFFIX) if out_path is not None else None
    if out_path is not None:
        from lactose_audio.audio_io import check_output_path

        check_output_path(out_path, suffixes=(".json",))
    meta = arrays = None
    if resume:
        if ckpt_path is None or not ckpt_path.is_file():
            raise ParameterError(f"--resume: no checkpoint {ckpt_path} to continue from")
        meta, arrays = load_checkpoint(ckpt_path)
        from lactose_audio.chains import Chain

        chain = Chain.from_config(meta["chain"])
        saved = meta["config"]
        keep = {
            k: saved[k]
            for k in (
                "chain_spec",
                "key",
                "n_ranges",
                "edges",
                "soft_width",
                "batch_size",
                "segment_samples",
                "learning_rate",
                "validation_fraction",
                "stft_weight",
                "seed",
            )
        }
        cfg = dataclasses.replace(cfg, **keep)
    else:
        n_train = [int(p.n_samples * (1 - cfg.validation_fraction)) for p in pairs]
        chain = build_chain(
            cfg, [p.dry[:n] for p, n in zip(pairs, n_train, strict=True)], sample_rate
        )
    trainer = Trainer(chain, pairs, cfg, sample_rate)
    if meta is not None:
        trainer.restore(meta, arrays)

    def make_effect(cover):
        return Effect(
            chain=trainer.chain,
            name=name or (out_path.stem if out_path is not None else "effect"),
            description=description,
            sample_rate=int(sample_rate),
            coverage=cover,
            training={
                "package_version": __version__,
                "pairs": [p.name for p in pairs],
                "latency_samples": int(pairs[0].latency_samples),
                "validation_esr": float(trainer.best_esr),
                "unconditioned_validation_esr": float(
                    trainer.unconditioned_esr
                    if math.isfinite(trainer.unconditioned_esr)
                    else trainer.best_esr  # interrupted during the unconditioned phase
                ),
                "steps": int(trainer.step),
                "seconds": round(float(trainer.elapsed), 2),
                "seed": int(cfg.seed),
            },
        )

    def checkpoint(tr: Trainer) -> None:
        if ckpt_path is not None:
            save_checkpoint(tr, ckpt_path)

    interrupted = False
    try:
        trainer.run(progress=progress, on_step=on_step, checkpoint=checkpoint)
    except KeyboardInterrupt:
        interrupted = True
    checkpoint(trainer)  # the state as trained: --resume continues from here
    if not math.isfinite(trainer.best_esr):
        raise TrainingInterrupted("interrupted before the first validation; nothing saved")
    effect = make_effect(trainer.finalize())
    if out_path is not None:
        save_preset(effect, out_path)
    if interrupted:
        where = f" to {out_path}" if out_path is not None else ""
        raise TrainingInterrupted(
            f"interrupted at step {trainer.step}: saved the best preset so far{where} "
            f"(validation ESR {trainer.best_esr:.5f}); continue with --resume"
        )
    result = TrainResult(
        effect=effect,
        out_path=out_path,
        validation_esr=trainer.best_esr,
        unconditioned_esr=trainer.unconditioned_esr,
        steps=trainer.step,
        seconds=trainer.elapsed,
        latency_samples=[int(p.latency_samples) for p in pairs],
        history=trainer.history,
    )
    if report_dir is not None:
        result.report_files = _write_report(report_dir, effect, trainer)
    return result


def _write_report(report_dir, effect, trainer: Trainer) -> list[Path]:
    from lactose_audio.report import write_report

    track = trainer.tracks[0]
    target = track.wet[track.train_end :]
    prediction = effect(track.dry, trainer.sample_rate)[track.train_end :]
    return write_report(
        report_dir, effect, trainer.history, target, prediction, trainer.sample_rate
    )


def train_from_files(
    dry: str | os.PathLike,
    wet: str | os.PathLike | None,
    out: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    report_dir: str | os.PathLike | None = None,
    resume: bool = False,
    channel: int | None = None,
    resample: bool = False,
    latency: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """``lactose train``: load and validate the pair(s), fit, save the preset.

    ``dry`` may be a folder of pairs (then ``wet`` is ``None``).
    """
    from lactose_audio.data import load_pair, load_pairs

    cfg = (config or TrainConfig()).resolved()
    options = dict(
        channel=channel,
        resample=resample,
        latency=latency,
        validation_fraction=cfg.validation_fraction,
    )
    if Path(dry).is_dir():
        if wet is not None:
            raise ParameterError(f"{dry} is a folder of pairs: give no WET file")
        pairs = load_pairs(dry, **options)
    else:
        if wet is None:
            raise ParameterError("missing WET: give DRY and WET files, or a folder of pairs")
        pairs = [load_pair(dry, wet, **options)]
    return train(pairs, cfg, out=out, report_dir=report_dir, resume=resume, progress=progress)
