"""What to fit and how long (:class:`TrainConfig`), and what a fit produced (:class:`TrainResult`).

Defaults: ``chain_spec="auto"`` and ``key="auto"`` — the structure and the key are searched
(:mod:`lactose_audio.search`) within the budget: 120 s of wall-clock time when neither a
budget nor a step count is given (60 s for a pinned chain and key).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lactose_audio.errors import ParameterError

AUTO = "auto"
#: Today's hand-made default chain (``--chain default``), kept as a candidate of the search.
DEFAULT_SPEC = "gain>tanh>lowpass>highpass"
DEFAULT_BUDGET_SECONDS = 60.0
#: The default budget when the chain or the key is searched.
DEFAULT_SEARCH_BUDGET_SECONDS = 120.0
DEFAULT_N_RANGES = 8
#: The key kinds a fit can be conditioned on (``auto`` chooses among none/amplitude/pitch).
KEY_KINDS = ("none", "sample", "amplitude", "pitch")
#: Soft-edge width per key kind (key unit): none for the raw sample, small elsewhere.
DEFAULT_SOFT_WIDTH = {"sample": 0.0, "amplitude": 1.0, "pitch": 0.5}
#: Validation ESR verdicts (upper bounds), as Neural Amp Modeler's users read them.
VERDICTS = ((0.01, "great"), (0.035, "good"), (0.1, "audible differences"))


def peak_rss_mb() -> float | None:
    """This process's peak resident memory so far, in MB (``None`` where unknown)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)  # KiB on Linux


def verdict(esr: float) -> str:
    """``great`` (< 0.01), ``good`` (< 0.035), ``audible differences`` (< 0.1) or ``poor``."""
    for bound, word in VERDICTS:
        if esr < bound:
            return word
    return "poor"


@dataclass
class TrainConfig:
    """What to fit and how long.

    Attributes:
        chain_spec: chain spec string, or ``"auto"`` (default: search the candidate family of
            :mod:`lactose_audio.search`).
        key: ``none|sample|amplitude|pitch|auto`` (default ``auto``: none, amplitude or pitch,
            whichever validates best by a clear margin).
        n_ranges: number of ranges of a keyed fit, edges from quantiles of the training key
            (default 8).
        edges: explicit inner edges in the key's unit (instead of ``n_ranges``; needs an
            explicit key).
        soft_width: soft-edge band in the key's unit (``None``: per-kind default).
        budget_seconds: wall-clock budget (``None`` and no ``steps``: 120 s when the chain or
            the key is searched, else 60 s).
        steps: maximum optimisation steps (Adam steps and L-BFGS iterations) of the whole run;
            without ``budget_seconds`` the run is deterministic for a seed.
        seed: seeds the segment sampler and TensorFlow.
        batch_size: segments per Adam step.
        segment_samples: loss segment length in samples (rounded up to whole frames).
        learning_rate: Adam step size on raw (unconstrained) parameters.
        validation_fraction: the share of each pair held out for validation (in blocks
            spread over it, :func:`lactose_audio.sampling.validation_blocks`).
        stft_weight: weight of the multi-resolution STFT distance in the Adam loss.
        min_coverage: a range that received less than this fraction of the training key's
            samples/frames keeps the unconditioned parameters and is flagged.
        eval_every: validation every this many steps.
        patience: evaluations without improvement before the Adam warm-up of a phase ends.
        key_rate: ``sample`` or ``frame`` for amplitude keys (``None``: the key's default).
        hop_size: the chain's frame hop in samples (``None``: 1024, 23 ms at 44.1 kHz).
        refine_segments: most segments in the full batch of the L-BFGS refinement.
        controls: knob captures: ``{control name: captured settings}`` (set by
            :func:`lactose_audio.captures.train_captures`). Stages pinned ``name@control`` in
            the spec follow that control; with one control and no pin, every stage follows it.
            The chain defaults to ``auto`` (one control only): the structure is searched on
            the middle capture, then fitted on every capture jointly; the key defaults to
            ``none`` (``--key auto`` is refused).
        warmup_share: share of each phase's budget for the Adam warm-up on random segments
            before the refinement (default 0: from the data-driven start, L-BFGS reaches the
            optimum of a gray-box chain sooner; a warm-up can help chains with many
            parameters, such as ``mlp``).
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
    refine_segments: int = 48
    warmup_share: float = 0.0
    controls: dict[str, list[float]] | None = None

    @property
    def searching(self) -> bool:
        """True when the chain or the key is chosen by the search."""
        return AUTO in (self.chain_spec, self.key)

    def resolved(self) -> TrainConfig:
        """A copy with defaults filled in and every value checked (ParameterError)."""
        cfg = dataclasses.replace(self)
        if cfg.controls:
            cfg = _resolve_controls(cfg)
        if cfg.chain_spec is None or cfg.chain_spec.strip() in ("", AUTO):
            cfg.chain_spec = AUTO
        elif cfg.chain_spec.strip() == "default":
            cfg.chain_spec = DEFAULT_SPEC
        if cfg.key is None:
            cfg.key = AUTO
        if cfg.key not in (*KEY_KINDS, AUTO):
            raise ParameterError(
                f"key must be none, sample, amplitude, pitch or auto, got {cfg.key!r}"
            )
        if cfg.n_ranges is not None and cfg.edges is not None:
            raise ParameterError("give either n_ranges or edges, not both")
        if cfg.edges is not None:
            from lactose_audio.ranges import RangeEdges

            RangeEdges(tuple(cfg.edges), "")  # the one check: finite, strictly increasing
        if cfg.key == AUTO and cfg.edges is not None:
            raise ParameterError(
                "--edges are in one key's unit, but --key auto may pick none, amplitude (dBFS) "
                "or pitch (MIDI): give --key with --edges, or --ranges instead"
            )
        if cfg.key == "none":
            if (cfg.n_ranges or 1) > 1 or cfg.edges:
                raise ParameterError("--key none has one range; drop --ranges/--edges")
            cfg.n_ranges, cfg.edges = 1, None
        elif cfg.edges is None and cfg.n_ranges is None:
            cfg.n_ranges = DEFAULT_N_RANGES
        if cfg.key != AUTO and cfg.key != "none" and cfg.n_ranges == 1 and cfg.edges is None:
            raise ParameterError(f"--key {cfg.key} needs --ranges of at least 2 (or --key none)")
        if cfg.soft_width is None and cfg.key != AUTO:
            cfg.soft_width = DEFAULT_SOFT_WIDTH.get(cfg.key, 0.0)
        if cfg.budget_seconds is None and cfg.steps is None:
            cfg.budget_seconds = (
                DEFAULT_SEARCH_BUDGET_SECONDS if cfg.searching else DEFAULT_BUDGET_SECONDS
            )
        for name in ("batch_size", "segment_samples", "eval_every", "patience", "refine_segments"):
            if int(getattr(cfg, name)) < 1:
                raise ParameterError(f"{name} must be >= 1, got {getattr(cfg, name)}")
        if not 0.0 <= cfg.warmup_share <= 1.0:
            raise ParameterError(f"warmup_share must be in [0, 1], got {cfg.warmup_share}")
        if not 0.0 < cfg.validation_fraction < 0.9:
            raise ParameterError(
                f"validation_fraction must be between 0 and 0.9, got {cfg.validation_fraction}"
            )
        if not (math.isfinite(cfg.learning_rate) and cfg.learning_rate > 0):
            raise ParameterError(f"learning_rate must be > 0, got {cfg.learning_rate}")
        return cfg


ADVICE_POOR = (
    "check the pair first (are dry and wet the same take? is the latency right? "
    "`lactose eval` of an identity preset shows how far apart they are); then try a longer "
    "--budget-seconds, more varied dry material (soft and hard playing, low and high notes), "
    "or a chain of your own with --chain"
)
ADVICE_AUDIBLE = (
    "try a longer --budget-seconds, --key amplitude or pitch with more --ranges, or a "
    "richer chain (e.g. --chain 'highpass>peak>gain>mlp>peak>lowpass>highpass')"
)


def _resolve_controls(cfg: TrainConfig) -> TrainConfig:
    """Defaults and checks of a capture fit (see ``TrainConfig.controls``)."""
    if cfg.chain_spec is None or cfg.chain_spec.strip() in ("", AUTO):
        cfg.chain_spec = AUTO
        if len(cfg.controls) > 1:
            raise ParameterError(
                f"--chain auto follows one control, got {len(cfg.controls)} "
                f"({', '.join(cfg.controls)}): give --chain SPEC pinning the stages that "
                "follow each with name@control, e.g. 'gain@gain>tanh>lowpass@tone'"
            )
    elif cfg.chain_spec.strip() == "default":
        cfg.chain_spec = DEFAULT_SPEC
    if cfg.key is None:
        cfg.key = "none"
    pinned = [n for n in cfg.controls if f"@{n}" in cfg.chain_spec]
    if not pinned and len(cfg.controls) > 1:
        raise ParameterError(
            f"{len(cfg.controls)} controls ({', '.join(cfg.controls)}): pin the stages that "
            "follow each with name@control in --chain, e.g. 'gain@gain>tanh>lowpass@tone'"
        )
    return cfg


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        effect: the trained :class:`~lactose_audio.presets.Effect`.
        out_path: where the preset was written, or ``None``.
        validation_esr: the saved parameters' ESR on the held-out blocks of the pairs.
        unconditioned_esr: the unconditioned fit's validation ESR.
        steps: optimisation steps of the whole run (search included).
        seconds: training seconds of the whole run.
        latency_samples: per pair, the latency removed.
        chain: the chain spec fitted (chosen by the search or given).
        key: the key kind of the fit (``none``, ``amplitude``, ...).
        search: the search's ranking (best first), empty when nothing was searched.
    """

    effect: Any
    out_path: Path | None
    validation_esr: float
    unconditioned_esr: float
    steps: int
    seconds: float
    latency_samples: list[int]
    chain: str = ""
    key: str = "none"
    search: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    report_files: list[Path] = field(default_factory=list)
    interrupted: bool = False

    @property
    def verdict(self) -> str:
        return verdict(self.validation_esr)

    def flagged(self) -> list[str]:
        return [
            f"stage {i} range {r}"
            for i, cov in enumerate(self.effect.coverage)
            for r, f in enumerate(cov["flagged"])
            if f
        ]

    def advice(self) -> str:
        """What to try next, for an ``audible differences`` or ``poor`` fit (else empty)."""
        return {"poor": ADVICE_POOR, "audible differences": ADVICE_AUDIBLE}.get(self.verdict, "")

    def summary(self) -> str:
        """Lines for the terminal: the file, the verdict, the chain and key, what to try."""
        lines = []
        if self.out_path is not None:
            lines.append(f"wrote {self.out_path}")
        controls = getattr(self.effect, "controls", None) or {}
        knobs = f", control {','.join(controls)}" if controls else ""
        lines.append(
            f"chain {self.chain}, key {self.key}{knobs}; {self.steps} steps in "
            f"{self.seconds:.1f} s; "
            f"latency {', '.join(str(v) for v in self.latency_samples)} samples"
        )
        if len(self.search) > 1:
            ranked = ", ".join(
                f"{r['chain']}@{r['key']} {r['val_esr']:.4f}" for r in self.search[:4]
            )
            what = "best first"
            if self.search[0]["name"] == "captures":
                what = "the joint fit of every capture, then the structures on the middle one"
            lines.append(f"searched {len(self.search)} candidates ({what}): {ranked}")
        flagged = self.flagged()
        if flagged:
            lines.append("too little data (kept the unconditioned fit): " + ", ".join(flagged))
        if self.report_files:
            lines.append("report: " + ", ".join(str(p) for p in self.report_files))
        lines.append(
            f"validation ESR {self.validation_esr:.5f}: {self.verdict} "
            "(< 0.01 great, < 0.035 good, < 0.1 audible differences, else poor)"
        )
        if self.advice():
            lines.append("to improve: " + self.advice())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The summary as one JSON-ready object (``lactose train --json``)."""
        return {
            "out": None if self.out_path is None else str(self.out_path),
            "validation_esr": float(self.validation_esr),
            "verdict": self.verdict,
            "unconditioned_validation_esr": float(self.unconditioned_esr),
            "chain": self.chain,
            "key": self.key,
            "steps": int(self.steps),
            "seconds": round(float(self.seconds), 2),
            "latency_samples": [int(v) for v in self.latency_samples],
            "search": self.search,
            "flagged": self.flagged(),
            "advice": self.advice(),
            "report": [str(p) for p in self.report_files],
            "peak_rss_mb": peak_rss_mb(),
        }
