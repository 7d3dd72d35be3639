"""Chains: stages (block + LACTOSE bank + key) in series, list-like and callable.

``chain(audio, sample_rate)`` computes the key signals from the dry input, selects every
stage's bank rows (:func:`lactose_audio.ranges.select`) and runs one TF graph -- the same graph
training differentiates (:meth:`Chain.forward`) and the streaming renderer runs chunk by chunk.

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
- Consecutive linear filters form one *filter group*, applied in one frame-wise FFT pass whose
  per-frame response is the product of the stages' responses, designed into a single FIR of
  at least ``ir_length(sample_rate)`` samples (see :mod:`lactose_audio.blocks.base`).
- ``mix``: a chain's output is ``mix * processed + (1 - mix) * its input``; nest a chain to
  mix a sub-chain.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from lactose_audio import blocks as _blocks
from lactose_audio._tf import tf
from lactose_audio.blocks.base import (
    DEFAULT_HOP_SIZE,
    Block,
    design_fir,
    fft_size,
    filter_state,
    frame_filter,
)
from lactose_audio.errors import ParameterError
from lactose_audio.params import (
    format_value,
    physical_controls_tf,
    physical_to_raw_np,
    raw_to_physical_np,
)
from lactose_audio.ranges import RangeBank, RangeEdges, Selection, select

DEFAULT_KEY_RANGES = {"amplitude": (-60.0, 0.0), "pitch": (40.0, 88.0), "sample": (-1.0, 1.0)}
"""Span over which ``from_spec(n_ranges=N)`` spaces edges evenly before ``fit_edges``."""


def _conditioning():
    from lactose_audio import conditioning  # written alongside; imported when keys are used

    return conditioning


def make_key(kind: str, rate: str | None = None, **settings: Any) -> Any:
    """A ``KeySpec`` (``None`` for ``kind == "none"``); pitch is always frame-rate."""
    if kind == "none":
        return None
    if rate is None:
        rate = "frame" if kind in ("pitch", "amplitude") else "sample"
    return _conditioning().KeySpec(kind, rate, **settings)


def _key_dict(key: Any) -> dict[str, Any]:
    return {"kind": "none"} if key is None else dict(key.to_dict())


def _key_from_dict(data: dict[str, Any]) -> Any:
    if data.get("kind", "none") == "none":
        return None
    return _conditioning().KeySpec.from_dict(data)


class Stage:
    """A block, the bank that feeds it, and the key and edges that select the bank's rows.

    Args:
        block: A :class:`~lactose_audio.blocks.Block` or a registered block name.
        bank: ``RangeBank`` ``[edges.n_ranges, block.n_params]``; default: every row at the
            declared defaults.
        key: ``KeySpec`` of the conditioning signal, or ``None`` (unconditioned, 1 range).
        edges: ``RangeEdges`` in the key's unit; default: no edges (1 range).
        soft_width: Soft-edge band width in the key's unit (0: the hard "if").

    Raises:
        ParameterError: On mismatched bank/edges sizes or several ranges without a key.
    """

    def __init__(
        self,
        block: Block | str,
        bank: RangeBank | None = None,
        key: Any = None,
        edges: RangeEdges | None = None,
        soft_width: float = 0.0,
    ) -> None:
        self.block = _blocks.get_block(block) if isinstance(block, str) else block
        self.key = key
        self.edges = edges if edges is not None else RangeEdges((), getattr(key, "unit", ""))
        self.soft_width = float(soft_width)
        n_ranges = self.edges.n_ranges
        if key is None and n_ranges > 1:
            raise ParameterError(f"stage {self.block.name}: {n_ranges} ranges need a key")
        if bank is None:
            rows = np.array([p.default_raw for p in self.block.params], np.float32)
            bank = RangeBank(n_ranges, max(self.block.n_params, 1), rows if rows.size else 0.0)
        if bank.n_ranges != n_ranges or bank.n_params != max(self.block.n_params, 1):
            raise ParameterError(
                f"stage {self.block.name}: bank is [{bank.n_ranges}, {bank.n_params}], expected "
                f"[{n_ranges}, {self.block.n_params}] (n_ranges from edges, n_params from block)"
            )
        self.bank = bank

    @property
    def n_ranges(self) -> int:
        """Number of bank rows."""
        return self.edges.n_ranges

    @property
    def keyed(self) -> bool:
        """True when rows are selected by a key (more than one range)."""
        return self.key is not None and self.n_ranges > 1

    @property
    def control_rate(self) -> str:
        """``"sample"`` if block and key are sample-rate, else ``"frame"``."""
        sample = self.block.rate == "sample" and not self.block.is_linear
        return "sample" if sample and getattr(self.key, "rate", "") == "sample" else "frame"

    def selection_signature(self) -> tuple:
        """Stages with equal signatures share one selection."""
        return (repr(_key_dict(self.key)), self.edges.edges, self.soft_width, self.control_rate)

    def physical(self) -> np.ndarray:
        """Per-range physical parameters, float64 ``[n_ranges, n_params]``."""
        raw = self.bank.numpy()[:, : self.block.n_params]
        return raw_to_physical_np(self.block.params, raw)

    @property
    def params(self) -> dict[str, list[float]]:
        """Per-range physical parameters by name: ``{"drive_db": [range 0, range 1, ...]}``."""
        rows = self.physical()
        return {n: [float(v) for v in rows[:, i]] for i, n in enumerate(self.block.param_names)}

    def set_physical(self, values: Any) -> None:
        """Set every row from physical values ``[n_ranges, n_params]`` or ``[n_params]``.

        Raises:
            ParameterError: If a value is out of its declared range (names value and unit).
        """
        raw = physical_to_raw_np(self.block.params, np.asarray(values, np.float64))
        if self.block.n_params:
            self.bank.assign(np.broadcast_to(raw, (self.n_ranges, self.block.n_params)))

    def to_config(self) -> dict[str, Any]:
        """``{"block", "key", "edges", "soft_width", "units", "ranges": [{name: value}]}``."""
        names = self.block.param_names
        rows = self.physical()
        return {
            "block": self.block.name,
            "key": _key_dict(self.key),
            "edges": self.edges.to_dict(),
            "soft_width": self.soft_width,
            "units": {p.name: p.unit for p in self.block.params},
            "ranges": [{n: float(v) for n, v in zip(names, row, strict=True)} for row in rows],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Stage:
        """Inverse of :meth:`to_config` (values validated against the declared ranges)."""
        block = _blocks.get_block(config["block"])
        edges = RangeEdges.from_dict(config["edges"])
        stage = cls(block, None, _key_from_dict(config["key"]), edges, config["soft_width"])
        ranges = config["ranges"]
        if len(ranges) != stage.n_ranges:
            raise ParameterError(
                f"stage {block.name}: {len(ranges)} parameter rows for {stage.n_ranges} ranges"
            )
        names = block.param_names
        for row in ranges:
            if set(row) != set(names):
                raise ParameterError(
                    f"stage {block.name}: parameters must be {list(names)}, got {sorted(row)}"
                )
        stage.set_physical([[row[n] for n in names] for row in ranges] or np.zeros((1, 0)))
        return stage

    def __repr__(self) -> str:
        key = "" if self.key is None else f"@{self.key.kind}"
        rows = self.physical()
        parts = []
        for i, spec in enumerate(self.block.params[:6]):
            column = rows[:, i].copy()
            column[np.abs(column) < 1e-6 * (spec.maximum - spec.minimum)] = 0.0  # float32 raw
            lo, hi = float(column.min()), float(column.max())
            text = format_value(spec, lo)
            if hi != lo:
                text += " .. " + format_value(spec, hi).split("=", 1)[1]
            parts.append(text)
        more = ", ..." if self.block.n_params > 6 else ""
        return f"{self.block.name}{key}[{self.n_ranges}]({', '.join(parts)}{more})"


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
        self._graphs: dict[tuple, Any] = {}

    # ---- list-like ------------------------------------------------------------------------
    def append(self, item: Stage | Chain) -> None:
        """Add a stage (or nested chain) at the end."""
        if not isinstance(item, Stage | Chain):
            raise ParameterError(f"chain items must be Stage or Chain, got {type(item).__name__}")
        self._items.append(item)
        self._graphs = {}

    def __getitem__(self, index: int) -> Stage | Chain:
        return self._items[index]

    def __setitem__(self, index: int, item: Stage | Chain) -> None:
        self._items[index] = item
        self._graphs = {}

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Stage | Chain]:
        return iter(self._items)

    @property
    def stages(self) -> list[Stage]:
        """Every stage, depth-first through nested chains (the order of selections)."""
        out: list[Stage] = []
        for item in self._items:
            out.extend(item.stages if isinstance(item, Chain) else [item])
        return out

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
    ) -> Chain:
        """Build a chain from ``"gain>tanh>lowpass"``.

        Each ``>``-separated item is a block name, optionally ``name@key`` to key that stage
        on another signal: ``key`` is a name in ``keys`` or a kind (``none``, ``sample``,
        ``amplitude``, ``pitch``, default settings). Unmarked stages use ``key``.

        Args:
            spec: The spec string.
            key: Default ``KeySpec`` (``None``: unconditioned).
            n_ranges: Number of ranges of keyed stages; edges are spaced evenly over
                :data:`DEFAULT_KEY_RANGES` until :meth:`fit_edges` places them on data.
            edges: Explicit edges (instead of ``n_ranges``), used by every keyed stage.
            soft_width: Soft-edge width of keyed stages (key unit).
            hop_size: Frame hop in samples.
            keys: Named ``KeySpec`` s for ``@name``.

        Raises:
            ParameterError: On an unknown block or key, or an empty spec.
        """
        items = [s.strip() for s in spec.split(">") if s.strip()]
        if not items:
            raise ParameterError(f"chain spec must name at least one block, got {spec!r}")
        stages = []
        for item in items:
            name, _, key_name = item.partition("@")
            stage_key = key
            if key_name:
                if keys and key_name in keys:
                    stage_key = keys[key_name]
                elif key_name in ("none", "sample", "amplitude", "pitch"):
                    stage_key = make_key(key_name)
                else:
                    raise ParameterError(f"unknown key {key_name!r} in chain spec item {item!r}")
            stage_edges = None
            if stage_key is not None:
                stage_edges = edges or _even_edges(stage_key, n_ranges or 1)
            stages.append(Stage(name.strip(), None, stage_key, stage_edges, soft_width))
        return cls(stages, hop_size=hop_size)

    def fit_edges(self, audio: np.ndarray, sample_rate: float) -> None:
        """Place every keyed stage's edges on quantiles of its key over ``audio``.

        Keeps each stage's number of ranges (and its bank). The quantiles of amplitude and
        pitch keys are weighted by the signal's level where the key was measured (linear
        amplitude), so ranges are spent where the signal, and the ESR a model is judged by,
        is: silence and the tails of decays do not take most of the ranges. Keys on the raw
        sample use plain quantiles. Either way every range gets data.
        """
        audio = _as_audio(audio)
        cache: dict[str, np.ndarray] = {}
        for stage in self.stages:
            if stage.keyed:
                values = self._stage_key_values(stage, audio, sample_rate, cache)
                weights = self._level_weights(stage, audio, values)
                stage.edges = RangeEdges.from_quantiles(
                    values, stage.n_ranges, stage.edges.unit, weights=weights
                )
        self._graphs = {}

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
        sig = repr(_key_dict(stage.key))
        if sig not in cache:
            cond = _conditioning()
            cache[sig] = cond.compute_key(stage.key, audio, sample_rate, self.hop_size)
        values = np.asarray(cache[sig], np.float32)
        if stage.control_rate == "frame" and stage.key.rate == "sample":
            values = frame_mean(values, self.hop_size)
        return values

    def selections(self, audio: np.ndarray, sample_rate: float) -> list[Selection | None]:
        """Every stage's selection over the whole dry signal (numpy, not differentiated).

        Returns:
            One entry per :attr:`stages` item: ``None`` (unkeyed) or a ``Selection`` of arrays
            ``[n_samples]`` (control rate ``sample``) or ``[n_frames]`` (``frame``).
        """
        return self._selections(_as_audio(audio, finite=False), sample_rate)

    def _selections(self, audio: np.ndarray, sample_rate: float) -> list[Selection | None]:
        """:meth:`selections` of float32 mono ``audio``, and its finiteness check.

        Computing a key checks that the audio is finite (the frame-rate amplitude key for free:
        its envelope is finite exactly when every sample is); a chain with no key gets the
        plain check. Either way one pass over the audio, not two.

        Raises:
            ParameterError: If ``audio`` has NaN or inf samples.
        """
        cache: dict[str, np.ndarray] = {}
        out: list[Selection | None] = []
        for stage in self.stages:
            if not stage.keyed:
                out.append(None)
                continue
            values = self._stage_key_values(stage, audio, sample_rate, cache)
            out.append(select(values, stage.edges, stage.soft_width))
        if not cache:
            _check_finite(audio)
        return out

    def slice_selections(
        self, selections: Sequence[Selection | None], start: int, n_samples: int
    ) -> list[Selection | None]:
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
            if sel is None:
                out.append(None)
                continue
            lo, hi = (start, start + n_samples) if stage.control_rate == "sample" else (f0, f0 + nf)
            out.append(Selection(*(np.asarray(a)[..., lo:hi] for a in sel)))
        return out

    # ---- the graph ----------------------------------------------------------------------------
    def forward(self, audio: tf.Tensor, selections: Sequence[Any], sample_rate: float) -> tf.Tensor:
        """The differentiable chain (training): ``[batch, n_samples] -> [batch, n_samples]``.

        Args:
            audio: float32 ``[batch, n_samples]``, starting on the frame grid.
            selections: Per :attr:`stages`: ``None`` or a ``Selection`` of arrays/tensors
                ``[T]`` or ``[batch, T]`` (``T`` = ``n_samples`` or ``n_frames`` per control
                rate), e.g. from :meth:`slice_selections` (stacked for a batch).
            sample_rate: Hz.

        Returns:
            float32 ``[batch, n_samples]``; differentiable w.r.t. :attr:`trainable_variables`.
            Filter tails start from silence at the segment start.
        """
        audio = tf.convert_to_tensor(audio, tf.float32)
        n = int(audio.shape[-1])
        if n == 0:
            return tf.identity(audio)
        n_frames = -(-n // self.hop_size)
        padded = tf.pad(audio, [[0, 0], [0, n_frames * self.hop_size - n]])
        frames = tf.reshape(padded, [tf.shape(audio)[0], n_frames, self.hop_size])
        sels = self.selection_tensors(selections, n_frames)
        hard = tuple(_is_hard(s) for s in selections)
        out, _ = self._run(frames, sels, hard, float(sample_rate), None)
        return tf.reshape(out, [tf.shape(audio)[0], n_frames * self.hop_size])[:, :n]

    def selection_tensors(self, selections: Sequence[Any], n_frames: int) -> list[Any]:
        """Selections as graph inputs ``[batch or 1, T]`` (per-sample ones padded to frames)."""
        return [
            _sel_tensors(sel, n_frames * self.hop_size if st.control_rate == "sample" else None)
            for st, sel in zip(self.stages, selections, strict=True)
        ]

    def _run(self, frames, sels, hard, sample_rate, tails, tables=None):
        """Frames ``[batch, n_frames, hop]`` -> same; ``tails``: list per filter group.

        ``tables``: optional per filter group :func:`_group_table` results (precomputed from
        the banks by :meth:`group_tables`); ``None``: computed here from the banks.
        """
        n_fft = fft_size(self.hop_size, sample_rate)
        sel_iter = iter(zip(self.stages, sels, hard, strict=True))
        new_tails: list[Any] = []
        tail_iter = iter(tails) if tails is not None else None
        table_iter = iter(tables) if tables is not None else None
        out = self._run_items(
            frames, sel_iter, sample_rate, n_fft, tail_iter, new_tails, table_iter
        )
        return out, new_tails

    def _run_items(self, frames, sel_iter, sample_rate, n_fft, tail_iter, new_tails, table_iter):
        dry = frames
        x = frames
        group: list[tuple[Stage, Any, bool]] = []
        for item in [*self._items, None]:
            if isinstance(item, Stage) and item.block.is_linear:
                group.append(next(sel_iter))
                continue
            if group:
                tail = next(tail_iter) if tail_iter is not None else None
                table = next(table_iter) if table_iter is not None else None
                x, new_tail = _filter_group(x, group, sample_rate, n_fft, tail, table)
                new_tails.append(new_tail)
                group = []
            if isinstance(item, Chain):
                x = item._run_items(
                    x, sel_iter, sample_rate, n_fft, tail_iter, new_tails, table_iter
                )
            elif isinstance(item, Stage):
                x = _pointwise_stage(x, *next(sel_iter), sample_rate, dry)
        if self.mix != 1.0:
            x = self.mix * x + (1.0 - self.mix) * dry
        return x

    def _filter_groups(self) -> list[list[Stage]]:
        """The linear stages of every filter group, in the order :meth:`_run` applies them."""
        groups: list[list[Stage]] = []
        group: list[Stage] = []
        for item in [*self._items, None]:
            if isinstance(item, Stage) and item.block.is_linear:
                group.append(item)
                continue
            if group:
                groups.append(group)
                group = []
            if isinstance(item, Chain):
                groups.extend(item._filter_groups())
        return groups

    def group_tables(self, sample_rate: float, hard: tuple[bool, ...]) -> list[Any]:
        """Per filter group, the designed per-range filters (:func:`_group_table`), cached.

        They depend only on the banks, so rendering computes them once per bank state (the
        cache key is the banks' values) instead of once per call or chunk; :meth:`_run`
        given them computes exactly what it computes without them.
        """
        groups = self._filter_groups()
        fingerprint = tuple(stage.bank.numpy().tobytes() for g in groups for stage in g)
        cache_key = ("tables", float(sample_rate), hard)
        cached = self._graphs.get(cache_key)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        fn_key = ("tables_fn", float(sample_rate), hard)
        fn = self._graphs.get(fn_key)
        if fn is None:
            index = {id(stage): i for i, stage in enumerate(self.stages)}
            n_fft = fft_size(self.hop_size, sample_rate)

            def design():
                return [
                    _group_table(
                        [(st, st.keyed, hard[index[id(st)]]) for st in g],
                        float(sample_rate),
                        n_fft,
                        self.hop_size,
                    )
                    for g in groups
                ]

            fn = tf.function(design)
            self._graphs[fn_key] = fn
        tables = fn()
        self._graphs[cache_key] = (fingerprint, tables)
        return tables

    def n_filter_groups(self) -> int:
        """How many fused filter groups (streaming tails) the chain has."""
        count, in_group = 0, False
        for item in self._items:
            if isinstance(item, Chain):
                count += item.n_filter_groups() + (1 if in_group else 0)
                in_group = False
            elif item.block.is_linear:
                in_group = True
            else:
                count += 1 if in_group else 0
                in_group = False
        return count + (1 if in_group else 0)

    def graph(self, sample_rate: float, hard: tuple[bool, ...]) -> Any:
        """The cached ``tf.function`` ``(frames, sels, tails, tables=None) -> (frames, tails)``.

        Used by rendering, with ``tables`` from :meth:`group_tables`.
        """
        cache_key = (float(sample_rate), hard)
        fn = self._graphs.get(cache_key)
        if fn is None:

            def run(frames, sels, tails, tables=None):
                return self._run(frames, sels, hard, float(sample_rate), tails, tables)

            fn = tf.function(run, reduce_retracing=True)
            self._graphs[cache_key] = fn
        return fn

    def initial_tails(self, sample_rate: float, batch: int = 1) -> list[Any]:
        """Initial filter states (silence before the first sample) for streaming."""
        n_fft = fft_size(self.hop_size, sample_rate)
        return [filter_state(batch, self.hop_size, n_fft) for _ in range(self.n_filter_groups())]

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


def _even_edges(key: Any, n_ranges: int) -> RangeEdges:
    lo, hi = DEFAULT_KEY_RANGES.get(key.kind, (0.0, 1.0))
    inner = np.linspace(lo, hi, n_ranges + 1)[1:-1] if n_ranges > 1 else []
    return RangeEdges(tuple(float(e) for e in inner), key.unit)


def frame_mean(values: np.ndarray, hop_size: int) -> np.ndarray:
    """Per-frame mean of per-sample values (the last, partial frame over its own samples)."""
    values = np.asarray(values, np.float32)
    n = values.shape[-1]
    n_frames = -(-n // hop_size)
    full = (n // hop_size) * hop_size
    out = np.empty(n_frames, np.float32)
    out[: n // hop_size] = values[:full].reshape(-1, hop_size).mean(axis=1)
    if full < n:
        out[-1] = values[full:].mean()
    return out


def _as_audio(audio: Any, finite: bool = True) -> np.ndarray:
    """Mono float32 ``audio``; ``finite=False`` leaves the NaN/inf check to the caller."""
    array = np.asarray(audio, dtype=np.float32)
    if array.ndim != 1:
        raise ParameterError(f"audio must be mono [n_samples], got shape {array.shape}")
    if finite:
        _check_finite(array)
    return array


def _check_finite(array: np.ndarray) -> None:
    if not np.all(np.isfinite(array)):
        raise ParameterError("audio must be finite (got NaN or inf samples)")


def _sel_tensors(sel: Any, n_padded: int | None = None) -> Any:
    """Selection -> tensors ``[batch or 1, T]``; per-sample ones padded to ``n_padded``."""
    if sel is None:
        return None
    lower, upper, frac = sel

    def batch(x, dtype):
        if isinstance(x, np.ndarray):  # numpy first: eager TF ops cost ~50 us each
            x = x[None] if x.ndim == 1 else x
            if n_padded is not None and n_padded > x.shape[-1] > 0:
                # padding samples after the end (cropped later) use the last sample's row
                x = np.concatenate([x, np.repeat(x[:, -1:], n_padded - x.shape[-1], axis=1)], 1)
            return tf.convert_to_tensor(x, dtype)
        t = tf.convert_to_tensor(x, dtype)
        t = t[None] if t.shape.rank == 1 else t
        if n_padded is not None and n_padded > t.shape[-1] > 0:
            t = tf.concat([t, tf.repeat(t[:, -1:], n_padded - t.shape[-1], axis=1)], 1)
        return t

    return (batch(lower, tf.int32), batch(upper, tf.int32), batch(frac, tf.float32))


def _is_hard(sel: Any) -> bool:
    if sel is None:
        return True
    frac = sel[2]
    return isinstance(frac, np.ndarray) and not frac.any()


def _pointwise_stage(x, stage: Stage, sel, hard: bool, sample_rate: float, dry=None):
    """A memoryless stage on frames ``[batch, n_frames, hop]``.

    ``dry``: the enclosing chain's input frames (same shape), for blocks with ``uses_dry``.
    """
    block = stage.block
    shape = tf.shape(x)

    def kernel(audio, controls):
        if not block.uses_dry:
            return block.kernel(audio, controls, sample_rate)
        return block.kernel(audio, controls, sample_rate, dry=tf.reshape(dry, tf.shape(audio)))

    if sel is None:
        raw = stage.bank.variable[0]
        controls = physical_controls_tf(block.params, raw)
        return kernel(x, controls)
    rows = stage.bank.gather(Selection(*sel), hard=hard)  # [B, T, P]
    controls = physical_controls_tf(block.params, rows)
    if stage.control_rate == "sample":
        flat = tf.reshape(x, [shape[0], -1])
        controls = {k: tf.broadcast_to(v, tf.shape(flat)) for k, v in controls.items()}
        return tf.reshape(kernel(flat, controls), shape)
    flat = tf.reshape(x, [-1, shape[2]])
    controls = {k: tf.reshape(tf.broadcast_to(v, shape[:2]), [-1, 1]) for k, v in controls.items()}
    return tf.reshape(kernel(flat, controls), shape)


def _range_responses(stage: Stage, sample_rate: float, n_fft: int, keyed: bool):
    """Per-range complex128 responses ``[n_ranges or 1, n_bins]``."""
    variable = stage.bank.variable if keyed else stage.bank.variable[:1]
    controls = physical_controls_tf(stage.block.params, variable)
    controls = {k: tf.cast(v, tf.float64) for k, v in controls.items()}
    return stage.block.response(controls, sample_rate, n_fft)


@tf.custom_gradient
def _dense_gather(table, index):
    """``tf.gather(table, index)`` whose gradient is dense (FFT gradients need tensors)."""
    n_rows = tf.shape(table)[0]

    def grad(upstream):
        return tf.math.unsorted_segment_sum(upstream, index, n_rows), None

    return tf.gather(table, index), grad


def _per_frame(table, sel, hard: bool):
    """Gather ``table [R, K]`` (complex) per frame: ``[B, F, K]`` with soft crossfade."""
    lower, upper, frac = sel
    rows = _dense_gather(table, lower)
    if hard:
        return rows
    w = tf.cast(frac, table.dtype)[..., None]
    return rows + w * (_dense_gather(table, upper) - rows)


def _group_table(group, sample_rate: float, n_fft: int, hop: int):
    """What a filter group needs from its banks, independent of the audio.

    ``group``: ``(stage, keyed, hard)`` per linear stage. Returns the designed spectra
    (complex64): ``[1, K]`` for a static group, ``[n_ranges, K]`` per range when one stage or
    one shared hard selection drives it; ``None`` when the product must be formed per frame
    (several differently selected stages).
    """
    sigs = {s.selection_signature() if keyed else None for s, keyed, _ in group}
    if not any(keyed for _, keyed, _ in group):
        product = None
        for stage, _, _ in group:
            resp = _range_responses(stage, sample_rate, n_fft, False)
            product = resp if product is None else product * resp
        return design_fir(product, n_fft, hop)
    if len(sigs) == 1 and all(h for _, _, h in group):
        # One shared hard selection: multiply per range, design per range, gather per frame.
        product = None
        for stage, _, _ in group:
            resp = _range_responses(stage, sample_rate, n_fft, True)
            product = resp if product is None else product * resp
        return design_fir(product, n_fft, hop)
    if len(group) == 1:
        return design_fir(_range_responses(group[0][0], sample_rate, n_fft, True), n_fft, hop)
    return None


def _filter_group(x, group, sample_rate: float, n_fft: int, tail, table=None):
    """One fused FFT pass for consecutive linear stages (see module docstring).

    ``table``: :func:`_group_table` of the group if already computed (else computed here).
    """
    hop = int(x.shape[-1])
    sigs = {s.selection_signature() if s.keyed else None for s, _, _ in group}
    keyed = [s for s, sel, _ in group if sel is not None]
    shared_hard = len(sigs) == 1 and all(h for _, _, h in group)
    if table is None and (not keyed or shared_hard or len(group) == 1):
        flags = [(stage, sel is not None, h) for stage, sel, h in group]
        table = _group_table(flags, sample_rate, n_fft, hop)
    if not keyed:
        spectra = table[None]  # [1, 1, K]
    elif shared_hard:
        spectra = _dense_gather(table, group[0][1][0])
    elif len(group) == 1:
        spectra = _per_frame(table, group[0][1], group[0][2])
    else:
        product = None
        for stage, sel, hard in group:
            resp = _range_responses(stage, sample_rate, n_fft, sel is not None)
            resp = resp[None] if sel is None else _per_frame(resp, sel, hard)
            product = resp if product is None else product * resp
        spectra = design_fir(product, n_fft, hop)
    return frame_filter(x, spectra, n_fft, tail, varying=bool(keyed))


__all__ = ["Chain", "Stage", "default_chain", "frame_mean", "make_key"]
