"""Fit a chain to dry/wet pairs: the public entry points of the fitting engine (DESIGN §5).

:func:`train` resolves the config (:mod:`lactose_audio.train_config`), builds the chain (or
searches the structure and the key, :mod:`lactose_audio.search`), runs the fit
(:mod:`lactose_audio.trainer`: per phase a stochastic warm-up then a full-batch L-BFGS
refinement, :mod:`lactose_audio.refine`, from a data-driven start,
:mod:`lactose_audio.initialise`), saves the preset and the checkpoint
(:mod:`lactose_audio.checkpoints`) and writes the report. :func:`train_from_files` is
``lactose train``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lactose_audio import __version__
from lactose_audio.blocks.base import DEFAULT_HOP_SIZE
from lactose_audio.checkpoints import (
    CHECKPOINT_SUFFIX,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from lactose_audio.errors import ParameterError, TrainingInterrupted
from lactose_audio.sampling import pick, training_parts, validation_blocks
from lactose_audio.train_config import (
    AUTO,
    DEFAULT_BUDGET_SECONDS,
    DEFAULT_SPEC,
    TrainConfig,
    TrainResult,
    verdict,
)
from lactose_audio.trainer import Trainer

__all__ = [
    "AUTO",
    "CHECKPOINT_SUFFIX",
    "DEFAULT_BUDGET_SECONDS",
    "DEFAULT_SPEC",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingInterrupted",
    "build_chain",
    "load_checkpoint",
    "polarity_spec",
    "save_checkpoint",
    "train",
    "train_from_files",
]

#: Checkpoint fields that pin a resumed run to the saved one.
_RESUME_KEEP = (
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
    "refine_segments",
    "budget_seconds",
    "steps",
)


def polarity_spec(spec: str, pairs: Sequence[Any]) -> str:
    """``spec`` ending in an ``invert`` stage when every pair's effect inverts polarity.

    No block but ``invert`` makes a negative gain, so a chain fitted to an inverting effect
    (:attr:`~lactose_audio.data.Pair.polarity_inverted`: a common-emitter stage, many fuzzes
    and amplifiers) would end at the ESR of silence or worse. A spec that already has an
    ``invert`` stage, ``auto``, and pairs that disagree are returned as they are.
    """
    if spec == AUTO or not pairs or not all(p.polarity_inverted for p in pairs):
        return spec
    if any(item.partition("@")[0].strip() == "invert" for item in spec.split(">")):
        return spec
    return f"{spec}>invert"


def build_chain(
    cfg: TrainConfig,
    train_audio: Sequence[np.ndarray],
    sample_rate: int,
    train_wet: Sequence[np.ndarray] | None = None,
):
    """The chain to fit, with edges placed from the training key (or as given): quantiles, or
    for pitch keys where the effect changes (with ``train_wet``, :meth:`Chain.fit_edges`)."""
    from lactose_audio.chain_spec import ControlKey
    from lactose_audio.chains import Chain, make_key
    from lactose_audio.ranges import RangeEdges

    key = None
    if cfg.key != "none":
        key = make_key(cfg.key, cfg.key_rate) if cfg.key_rate else make_key(cfg.key)
    keys = {n: ControlKey(n, tuple(s)) for n, s in (cfg.controls or {}).items()}
    knob = None
    if len(keys) == 1 and not any(f"@{n}" in cfg.chain_spec for n in keys):
        # one control, no pin: every stage follows it (and the signal key, if any: 2-D banks)
        knob = next(iter(keys.values()))
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
        keys=keys or None,
        knob=knob,
        **options,
    )
    if cfg.edges is None and any(stage.keyed for stage in chain.stages):
        wet = None if train_wet is None else np.concatenate(list(train_wet))
        chain.fit_edges(np.concatenate(list(train_audio)), sample_rate, wet=wet)
        # Edges from data can be closer than the default soft band: narrow the band to half
        # the smallest spacing so neighbouring bands never overlap.
        for stage in chain.stages:
            if stage.signal_keyed and stage.edges.n_ranges > 2:
                spacing = float(np.min(np.diff(stage.edges.edges)))
                stage.soft_width = min(stage.soft_width, 0.5 * spacing)
    return chain


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
        config: :class:`TrainConfig` (defaults: ``--chain auto --key auto``, 60 s).
        out: preset path to write (atomically); its checkpoint is ``out + .checkpoint.npz``.
        name: preset name (default: the file stem).
        description: one line for ``lactose presets``.
        report_dir: write PNG plots here.
        resume: continue from the checkpoint next to ``out`` (budget and steps count the
            whole fit of the chosen structure; a search is not repeated).
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
    ckpt_path = checkpoint_path(out_path) if out_path is not None else None
    if out_path is not None:
        from lactose_audio.audio_io import check_output_path

        check_output_path(out_path, suffixes=(".json",))
    if cfg.chain_spec != AUTO and not resume:
        from lactose_audio.chains import Chain

        Chain.from_spec(cfg.chain_spec)  # an unknown block or key is refused before anything
    if cfg.searching and not resume:
        from lactose_audio.search import check_budget

        check_budget(cfg)

    totals = {"steps": 0, "t0": time.perf_counter(), "best": None}
    search_info: dict[str, Any] = {"ranking": [], "steps": 0}

    def make_trainer(trainer_cfg: TrainConfig) -> Trainer:
        # a knob fit's search fits its candidates without the controls: on the middle capture
        fit_pairs = pairs
        if cfg.controls and not trainer_cfg.controls:
            from lactose_audio.knobs import middle_capture

            fit_pairs = [middle_capture(pairs, cfg.controls)]
        hop = trainer_cfg.hop_size or DEFAULT_HOP_SIZE
        held = [
            validation_blocks(p.n_samples, trainer_cfg.validation_fraction, hop, sample_rate)
            for p in fit_pairs
        ]
        parts = [training_parts(p.n_samples, h) for p, h in zip(fit_pairs, held, strict=True)]
        train_audio = [pick(p.dry, t) for p, t in zip(fit_pairs, parts, strict=True)]
        train_wet = [pick(p.wet, t) for p, t in zip(fit_pairs, parts, strict=True)]
        spec = polarity_spec(trainer_cfg.chain_spec, fit_pairs)
        trainer_cfg = dataclasses.replace(trainer_cfg, chain_spec=spec)
        chain = build_chain(trainer_cfg, train_audio, sample_rate, train_wet)
        return Trainer(chain, fit_pairs, trainer_cfg, sample_rate)

    def run(trainer: Trainer, checkpoint=None) -> None:
        try:
            trainer.run(progress=progress, on_step=on_step, checkpoint=checkpoint)
        finally:
            best = totals["best"]
            # a knob fit's structure candidates (middle capture, no controls) are not knob
            # presets: only its joint fit may be saved on Ctrl-C
            candidate = not cfg.controls or bool(trainer.cfg.controls)
            if candidate and (best is None or trainer.best_esr < best.best_esr):
                totals["best"] = trainer

    def checkpoint(tr: Trainer) -> None:
        if ckpt_path is not None:
            save_checkpoint(tr, ckpt_path, {"search": search_info})

    interrupted = False
    chain_spec, key = cfg.chain_spec, cfg.key
    try:
        if resume:
            if ckpt_path is None or not ckpt_path.is_file():
                raise ParameterError(f"--resume: no checkpoint {ckpt_path} to continue from")
            meta, arrays = load_checkpoint(ckpt_path)
            from lactose_audio.chains import Chain

            saved = meta["config"]
            cfg = dataclasses.replace(cfg, **{k: saved[k] for k in _RESUME_KEEP if k in saved})
            search_info.update(meta.get("search") or {})
            trainer = Trainer(Chain.from_config(meta["chain"]), pairs, cfg, sample_rate)
            trainer.restore(meta, arrays)
            chain_spec, key = cfg.chain_spec, cfg.key
            run(trainer, checkpoint)
        elif cfg.searching:
            from lactose_audio.search import search

            outcome = search(pairs, cfg, sample_rate, make_trainer, run)
            trainer, chain_spec, key = outcome.trainer, outcome.chain_spec, outcome.key
            search_info.update(ranking=outcome.ranking, steps=outcome.steps - trainer.step)
        else:
            trainer = make_trainer(cfg)
            run(trainer, checkpoint)
    except KeyboardInterrupt:
        interrupted = True
        trainer = totals["best"]
        if trainer is None:
            when = "during the structure search" if cfg.controls else "before the first validation"
            raise TrainingInterrupted(f"interrupted {when}; nothing saved") from None
        chain_spec, key = trainer.cfg.chain_spec, trainer.cfg.key
    if not math.isfinite(trainer.best_esr):
        raise TrainingInterrupted("interrupted before the first validation; nothing saved")
    chain_spec = polarity_spec(chain_spec, pairs)  # as fitted (a search names its family's)
    checkpoint(trainer)  # the state as trained: --resume continues from here
    steps = int(search_info.get("steps", 0)) + int(trainer.step)
    # A search's seconds are its wall clock (every candidate); a single fit's, its own clock.
    searched = cfg.searching and not resume
    seconds = time.perf_counter() - totals["t0"] if searched else float(trainer.elapsed)
    # The ranking is for reading: its ESRs keep 4 significant digits, so rounding noise in a
    # candidate that was not chosen (a last-bit difference of float32 sums) cannot change the
    # preset's bytes; the chosen fit's own figures stay exact.
    fitted = [{**r, "chain": polarity_spec(r["chain"], pairs)} for r in search_info["ranking"]]
    ranking = [
        {**r, "val_esr": None if r["val_esr"] is None else float(f"{r['val_esr']:.4g}")}
        for r in fitted
    ]
    timing: dict[str, Any] = {"seconds": round(seconds, 2)}
    if cfg.budget_seconds is None:
        # A step-bounded run is deterministic: its preset carries no wall-clock figures, so
        # the same seed and steps give the same bytes.
        timing = {}
        for row in ranking:
            row.pop("seconds", None)
    cover = trainer.finalize()
    effect = Effect(
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
            "verdict": verdict(float(trainer.best_esr)),
            "chain": chain_spec,
            "key": key,
            "search": ranking,
            "steps": steps,
            **timing,
            "seed": int(cfg.seed),
        },
    )
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
        steps=steps,
        seconds=seconds,
        latency_samples=[int(p.latency_samples) for p in pairs],
        chain=chain_spec,
        key=key,
        search=fitted,
        history=trainer.history,
    )
    if report_dir is not None:
        result.report_files = _write_report(report_dir, effect, trainer)
    return result


def _write_report(report_dir, effect, trainer: Trainer) -> list[Path]:
    from lactose_audio.report import write_report

    track = trainer.tracks[0]
    target = pick(track.wet, track.validation)
    prediction = pick(effect(track.dry, trainer.sample_rate), track.validation)
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
