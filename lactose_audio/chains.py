"""Chains: stages (block + LACTOSE bank + key) in series, list-like and callable.

The chain *model*: stages, nesting, config, edges and selections (numpy, no TensorFlow).
``chain(audio, sample_rate)`` computes the key signals from the dry input, selects every
stage's bank rows (:func:`lactose_audio.ranges.select`) and renders through the executor's
numpy backend (:mod:`lactose_audio.render`, :mod:`lactose_audio.iir`); training runs the same
walk (:mod:`lactose_audio.executor`) with the TF backend (:meth:`Chain.forward`,
:mod:`lactose_audio.graph`). The spec language lives in :mod:`lactose_audio.chain_spec`.

Semantics that training and rendering share:

- Frame grid: one ``hop_size`` per chain (default 1024). Frame ``f`` covers samples
  ``[f * hop, (f + 1) * hop)``. The hop is in samples: at another sample rate frames last
  ``hop / sample_rate`` seconds, while Hz parameters are converted at the audio's rate.
- A stage's *control rate* is ``sample`` when both its block and its key are sample-rate;
  otherwise ``frame`` (a sample-rate key feeding a frame-rate stage is averaged per frame).
  Sample-rate blocks given frame controls hold them for the whole frame.
- Soft edges: sample-rate blocks interpolate the raw bank rows (``RangeBank.gather``); linear
  filters crossfade the two neighbouring rows' *responses* (same thing for one filter, and
  click-free for any).
- Consecutive linear filters form one *filter group*: in training one frame-wise FFT pass whose
  per-frame response is the product of the stages' responses, designed into a single FIR of
  at least ``ir_length(sample_rate)`` samples (see :mod:`lactose_audio.blocks.base`); in
  rendering one recursive cascade (:mod:`lactose_audio.svf`).
- ``mix``: a chain's output is ``mix * processed + (1 - mix) * its input``; nest a chain to
  mix a sub-chain.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from lactose_audio.blocks.base import DEFAULT_HOP_SIZE
from lactose_audio.chain_spec import (
    ControlKey,
    key_signature,
    make_key,
    parse_spec,
    settings_edges,
)
from lactose_audio.errors import ParameterError
from lactose_audio.executor import plan
from lactose_audio.frames import as_audio, check_finite, frame_mean
from lactose_audio.ranges import (
    UNKEYED,
    RangeEdges,
    Selection,
    Unkeyed,
    range_index,
    select,
)
from lactose_audio.stage import Stage


class Chain:
    """Stages (or nested chains) in series; list-like and callable.

    Args:
        stages: :class:`Stage` or :class:`Chain` items.
        hop_size: Frame hop in samples (the root chain's hop is used throughout).
        mix: Wet fraction in ``[0, 1]``: ``y = mix * processed + (1 - mix) * input``.
    """

    def __init__(
        self, stages: Sequence[Stage | Chain] = (), hop_size: int = DEFAULT_HOP_SIZE, mix=1.0
    ) -> None:
        if int(hop_size) < 1:
            raise ParameterError(f"hop_size must be >= 1 samples, got {hop_size}")
        if not 0.0 <= float(mix) <= 1.0:
            raise ParameterError(f"mix must be between 0 and 1, got {mix}")
        self.hop_size = int(hop_size)
        self.mix = float(mix)
        self._items: list[Stage | Chain] = []
        for item in stages:
            self.append(item)
        self.graph_cache: dict[tuple, Any] = {}
        """The TF backend's per-chain cache (graphs, FIR tables); cleared on any change."""

    # ---- list-like ------------------------------------------------------------------------
    def append(self, item: Stage | Chain) -> None:
        """Add a stage (or nested chain) at the end."""
        if not isinstance(item, Stage | Chain):
            raise ParameterError(f"chain items must be Stage or Chain, got {type(item).__name__}")
        self._items.append(item)
        self.graph_cache = {}

    def __getitem__(self, index: int) -> Stage | Chain:
        return self._items[index]

    def __setitem__(self, index: int, item: Stage | Chain) -> None:
        self._items[index] = item
        self.graph_cache = {}

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Stage | Chain]:
        return iter(self._items)

    @property
    def stages(self) -> list[Stage]:
        """Every stage, depth-first through nested chains (the order of selections)."""
        return list(plan(self).stages)

    @property
    def trainable_variables(self) -> list[Any]:
        """Every bank variable, in :attr:`stages` order."""
        return [stage.bank.variable for stage in self.stages]

    # ---- construction -----------------------------------------------------------------------
    @classmethod
    def from_spec(
        cls,
        spec: str,
        key: Any = None,
        n_ranges: int | None = None,
        edges: RangeEdges | None = None,
        soft_width: float = 0.0,
        hop_size: int = DEFAULT_HOP_SIZE,
        keys: dict[str, Any] | None = None,
        knob: ControlKey | None = None,
    ) -> Chain:
        """Build a chain from ``"gain>tanh>lowpass"``.

        Each ``>``-separated item is a block name, optionally ``name@key`` to key that stage
        on another signal: ``key`` is a name in ``keys`` or a kind (``none``, ``sample``,
        ``amplitude``, ``pitch``, default settings); ``name@control+kind`` follows a control
        of ``keys`` and a signal key (a 2-D bank). Unmarked stages use ``key`` (and ``knob``).

        Args:
            spec: The spec string.
            key: Default ``KeySpec`` (``None``: unconditioned).
            n_ranges: Number of ranges of keyed stages; edges are spaced evenly over
                :data:`lactose_audio.chain_spec.DEFAULT_KEY_RANGES` until :meth:`fit_edges`
                places them on data.
            edges: Explicit edges (instead of ``n_ranges``), used by every keyed stage.
            soft_width: Soft-edge width of keyed stages (key unit).
            hop_size: Frame hop in samples.
            keys: Named ``KeySpec`` s (and controls) for ``@name``.
            knob: A control every unmarked stage follows with ``key`` (2-D banks).

        Raises:
            ParameterError: On an unknown block or key, or an empty spec.
        """
        stages = [
            Stage(item.block, None, item.key, item.edges, soft_width, item.knob)
            for item in parse_spec(spec, key, n_ranges, edges, keys, knob)
        ]
        return cls(stages, hop_size=hop_size)

    def fit_edges(
        self, audio: np.ndarray, sample_rate: float, wet: np.ndarray | None = None
    ) -> None:
        """Place every keyed stage's edges on quantiles of its key over ``audio``.

        Keeps each stage's number of ranges (and its bank). The quantiles of amplitude and
        pitch keys are weighted by the signal's level where the key was measured (linear
        amplitude), so ranges are spent where the signal, and the ESR a model is judged by,
        is: silence and the tails of decays do not take most of the ranges. Keys on the raw
        sample use plain quantiles. Either way every range gets data.

        Pitch keys are rounded to whole semitones first, so every edge falls halfway between
        two notes (``54.5`` MIDI): a loud held note would otherwise take several ranges a
        fraction of a semitone wide (edges at 59.9 and 60.12 MIDI on a 30 s take), and an
        edge inside a note's pitch spread (vibrato, the tracker's jitter) switches its
        processing back and forth.

        With the training ``wet`` (aligned with ``audio``), pitch edges are placed where the
        effect's per-note signature changes instead (:func:`lactose_audio.ranges.segments.
        effect_edges`: an effect that switches between two notes gets its edge there, not
        wherever the take's notes thin out); quantiles remain the fallback (fewer notes with
        data than ranges).
        """
        audio = as_audio(audio)
        cache: dict[str, np.ndarray] = {}
        for stage in self.stages:
            if stage.signal_keyed:  # a control's edges are its settings
                values = self._stage_key_values(stage, audio, sample_rate, cache)
                pitch = stage.key.kind == "pitch"
                if pitch and wet is not None:
                    from lactose_audio.ranges.segments import effect_edges

                    found = effect_edges(
                        values, audio, wet, self.hop_size, sample_rate, stage.edges.n_ranges
                    )
                    if found is not None:
                        stage.edges = RangeEdges(found, stage.edges.unit)
                        continue
                edges = RangeEdges.from_quantiles(
                    np.round(values) if pitch else values,
                    stage.edges.n_ranges,
                    stage.edges.unit,
                    weights=self._level_weights(stage, audio, values),
                )
                if pitch:  # between notes: x.5, strictly increasing (a semitone apart at least)
                    half = np.floor(np.asarray(edges.edges, np.float64)) + 0.5
                    for i in range(1, half.size):
                        half[i] = max(half[i], half[i - 1] + 1.0)
                    edges = RangeEdges(tuple(float(e) for e in half), edges.unit)
                stage.edges = edges
        self.graph_cache = {}

    def _level_weights(self, stage: Stage, audio: np.ndarray, values: np.ndarray):
        """Linear amplitude at each key value (``None`` for sample keys: plain quantiles)."""
        if stage.key.kind == "amplitude":
            return np.power(10.0, values.astype(np.float64) / 20.0)
        if stage.key.kind == "pitch":
            return np.sqrt(frame_mean(audio.astype(np.float32) ** 2, self.hop_size))
        return None

    def to_config(self) -> dict[str, Any]:
        """Plain-JSON config: hop, mix and per-stage physical per-range parameters."""
        items = []
        for item in self._items:
            items.append(
                {"chain": item.to_config()} if isinstance(item, Chain) else item.to_config()
            )
        return {"hop_size": self.hop_size, "mix": self.mix, "stages": items}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Chain:
        """Inverse of :meth:`to_config`. Raises ParameterError on invalid content."""
        items: list[Stage | Chain] = []
        for item in config["stages"]:
            items.append(
                cls.from_config(item["chain"]) if "chain" in item else Stage.from_config(item)
            )
        return cls(items, hop_size=config["hop_size"], mix=config.get("mix", 1.0))

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(item).replace("\n", "\n  ") for item in self._items)
        return f"Chain(hop_size={self.hop_size}, mix={self.mix:g}, [\n  {inner}\n])"

    # ---- keys and selections ----------------------------------------------------------------
    def _stage_key_values(self, stage: Stage, audio, sample_rate, cache) -> np.ndarray:
        sig = key_signature(stage.key)
        if sig not in cache:
            from lactose_audio.conditioning import compute_key  # imported when keys are used

            cache[sig] = compute_key(stage.key, audio, sample_rate, self.hop_size)
        values = np.asarray(cache[sig], np.float32)
        if stage.control_rate == "frame" and stage.key.rate == "sample":
            values = frame_mean(values, self.hop_size)
        return values

    @property
    def controls(self) -> dict[str, tuple[float, ...]]:
        """The controls (knobs) the stages follow: ``{name: captured settings}``."""
        out: dict[str, tuple[float, ...]] = {}
        for stage in self.stages:
            if stage.control is not None:
                out.setdefault(stage.control, stage.control_key.settings)
        return out

    def selections(
        self, audio: np.ndarray, sample_rate: float, controls: dict[str, float] | None = None
    ) -> list[Selection | Unkeyed]:
        """Every stage's selection over the whole dry signal (numpy, not differentiated).

        Args:
            audio: The dry signal.
            sample_rate: Hz.
            controls: ``{name: value}`` of the controls the stages follow (training: a
                capture's settings; a control-keyed stage gets the hard selection of the row
                nearest the value, its own row at a captured setting).

        Returns:
            One entry per :attr:`stages` item: :data:`~lactose_audio.ranges.UNKEYED` (an
            unkeyed stage: row 0 everywhere) or a ``Selection`` of arrays ``[n_samples]``
            (control rate ``sample``) or ``[n_frames]`` (``frame``).

        Raises:
            ParameterError: If a control a stage follows has no value.
        """
        return self._selections(as_audio(audio, finite=False), sample_rate, controls)

    def _selections(
        self, audio: np.ndarray, sample_rate: float, controls: dict[str, float] | None = None
    ) -> list[Selection | Unkeyed]:
        """:meth:`selections` of float32 mono ``audio``, and its finiteness check.

        Computing a key checks that the audio is finite (the frame-rate amplitude key for free:
        its envelope is finite exactly when every sample is); a chain with no key gets the
        plain check. Either way one pass over the audio, not two.

        Raises:
            ParameterError: If ``audio`` has NaN or inf samples.
        """
        cache: dict[str, np.ndarray] = {}
        shared: dict[tuple, Selection] = {}  # stages with one key, edges and rate: one select
        out: list[Selection | Unkeyed] = []
        for stage in self.stages:
            if not stage.keyed:
                out.append(UNKEYED)
                continue
            if stage.control is not None:
                if not controls or stage.control not in controls:
                    raise ParameterError(
                        f"stage {stage.block.name} follows the control {stage.control!r}: "
                        "give its value"
                    )
                if stage.knob is not None:  # 2-D: the setting's block of rows, then the key
                    signature = (stage.selection_signature(), float(controls[stage.control]))
                    if signature not in shared:
                        shared[signature] = self._knob_selection(
                            stage, audio, sample_rate, controls, cache
                        )
                    out.append(shared[signature])
                    continue
                n = self._selection_length(stage, audio.size)
                values = np.full(n, float(controls[stage.control]), np.float32)
                out.append(select(values, stage.edges, 0.0))
                continue
            signature = stage.selection_signature()
            if signature not in shared:
                values = self._stage_key_values(stage, audio, sample_rate, cache)
                shared[signature] = select(values, stage.edges, stage.soft_width)
            out.append(shared[signature])
        if not cache:
            check_finite(audio)
        return out

    def _selection_length(self, stage: Stage, n_samples: int) -> int:
        """Entries of a stage's selection: samples (control rate ``sample``) or frames."""
        return n_samples if stage.control_rate == "sample" else -(-n_samples // self.hop_size)

    def _knob_selection(self, stage, audio, sample_rate, controls, cache) -> Selection:
        """A 2-D stage's selection: the key's ranges within the block of rows of the setting
        nearest ``controls[stage.control]`` (training: a captured setting's own)."""
        setting = int(range_index(float(controls[stage.control]), settings_edges(
            stage.knob.settings)))  # fmt: skip
        offset = setting * stage.edges.n_ranges
        if stage.edges.n_ranges == 1:
            n = self._selection_length(stage, audio.size)
            rows = np.full(n, offset, np.int32)
            return Selection(rows, rows.copy(), np.zeros(n, np.float32))
        values = self._stage_key_values(stage, audio, sample_rate, cache)
        sel = select(values, stage.edges, stage.soft_width)
        return Selection(sel.lower + offset, sel.upper + offset, sel.frac)

    def slice_selections(
        self, selections: Sequence[Selection | Unkeyed], start: int, n_samples: int
    ) -> list[Selection | Unkeyed]:
        """The selections of the segment ``audio[start : start + n_samples]``.

        Raises:
            ParameterError: If ``start`` is not a multiple of ``hop_size``.
        """
        if start % self.hop_size:
            raise ParameterError(
                f"segment start must be a multiple of hop_size={self.hop_size} samples, got {start}"
            )
        f0, nf = start // self.hop_size, -(-n_samples // self.hop_size)
        out = []
        for stage, sel in zip(self.stages, selections, strict=True):
            if sel is UNKEYED:
                out.append(UNKEYED)
                continue
            lo, hi = (start, start + n_samples) if stage.control_rate == "sample" else (f0, f0 + nf)
            out.append(Selection(*(np.asarray(a)[..., lo:hi] for a in sel)))
        return out

    # ---- the TF backend (training, engine="graph"): lactose_audio.graph --------------------
    def forward(self, audio: Any, selections: Sequence[Any], sample_rate: float) -> Any:
        """The differentiable chain (training): ``[batch, n_samples] -> [batch, n_samples]``.

        Args:
            audio: float32 ``[batch, n_samples]`` (tensor or array), starting on the frame grid.
            selections: Per :attr:`stages`: ``UNKEYED`` or a ``Selection`` of arrays/tensors
                ``[T]`` or ``[batch, T]`` (``T`` = ``n_samples`` or ``n_frames`` per control
                rate), e.g. from :meth:`slice_selections` (stacked for a batch).
            sample_rate: Hz.

        Returns:
            float32 tensor ``[batch, n_samples]``; differentiable w.r.t.
            :attr:`trainable_variables`. Filter tails start from silence at the segment start.
        """
        from lactose_audio import graph

        return graph.forward(self, audio, selections, sample_rate)

    def selection_tensors(self, selections: Sequence[Any], n_frames: int) -> list[Any]:
        """Selections as graph inputs ``[batch or 1, T]`` (per-sample ones padded to frames)."""
        from lactose_audio import graph

        return graph.selection_tensors(self, selections, n_frames)

    def group_tables(self, sample_rate: float, hard: tuple[bool, ...]) -> list[Any]:
        """Per filter group, the designed per-range FIRs, cached on the banks' values.

        They depend only on the banks, so rendering with the graph computes them once per
        bank state instead of once per call or chunk.
        """
        from lactose_audio import graph

        return graph.group_tables(self, sample_rate, hard)

    def graph(self, sample_rate: float, hard: tuple[bool, ...]) -> Any:
        """The cached ``tf.function`` ``(frames, sels, tails, tables=None) -> (frames, tails)``."""
        from lactose_audio import graph

        return graph.graph(self, sample_rate, hard)

    def n_filter_groups(self) -> int:
        """How many fused filter groups (streaming states) the chain has."""
        return len(plan(self).groups)

    def initial_tails(self, sample_rate: float, batch: int = 1) -> list[Any]:
        """Initial frame-filter states (silence before the first sample), TF."""
        from lactose_audio import graph

        return graph.initial_tails(self, sample_rate, batch)

    def __call__(self, audio: np.ndarray, sample_rate: float) -> np.ndarray:
        """Process a whole mono signal: ``float32 [n_samples] -> float32 [n_samples]``."""
        from lactose_audio.render import render

        return render(self, audio, sample_rate)


def default_chain(
    n_ranges: int = 8,
    key: Any = "amplitude",
    edges: RangeEdges | None = None,
    hop_size: int = DEFAULT_HOP_SIZE,
    soft_width: float = 0.0,
) -> Chain:
    """``gain>tanh>lowpass>highpass``, keyed on the frame-rate amplitude, 8 ranges."""
    if isinstance(key, str):
        key = make_key(key)
    return Chain.from_spec(
        "gain>tanh>lowpass>highpass",
        key=key,
        n_ranges=n_ranges,
        edges=edges,
        soft_width=soft_width,
        hop_size=hop_size,
    )


# ---- helpers --------------------------------------------------------------------------------


__all__ = ["Chain", "Stage", "default_chain", "frame_mean", "make_key"]
