"""The TensorFlow backend of the chain executor: training and ``engine="graph"``.

Runs a chain's :class:`~lactose_audio.executor.Plan` on frames ``[batch, n_frames, hop]``:
pointwise stages call the blocks' TF ``kernel`` with controls gathered from the banks
(``RangeBank.gather``, differentiable), filter groups run one frame-wise FFT pass
(:func:`~lactose_audio.blocks.base.frame_filter`) whose per-frame FIR is designed from the
product of the stages' responses. Soft edges: sample-rate blocks interpolate the raw bank rows;
linear filters crossfade the two neighbouring rows' *responses* (click-free for any filter).

:class:`lactose_audio.chains.Chain` delegates ``forward``, ``graph``, ``group_tables``,
``initial_tails`` and ``selection_tensors`` here; this module is imported only by them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lactose_audio._tf import tf
from lactose_audio.blocks.base import design_fir, fft_size, filter_state, frame_filter
from lactose_audio.executor import (
    FilterGroup,
    PointwiseRun,
    execute,
    is_hard,
    plan,
    shares_selection,
)
from lactose_audio.ops import dry_wet
from lactose_audio.params import physical_controls_tf
from lactose_audio.ranges import UNKEYED, Selection


class GraphBackend:
    """Executor backend building TF ops on frames ``[batch, n_frames, hop]``.

    Args:
        sels: Per plan stage: ``UNKEYED`` or selection tensors ``[batch or 1, T]``.
        hard: Per plan stage: the selection is hard.
        sample_rate: Hz.
        n_fft: Frame-filter FFT size.
        tails: The streaming state, or ``None`` (silence before): one entry per filter group
            (in group order), then one per stateful stage (``Block.stateful``, in stage order;
            see :func:`state_slots`).
        tables: Per filter group :func:`_group_table` results, or ``None`` (computed here).
        slots: ``{stage index: position in tails}`` of the stateful stages.
    """

    def __init__(
        self, sels, hard, sample_rate: float, n_fft: int, tails=None, tables=None, slots=None
    ):
        self.sels = sels
        self.hard = hard
        self.sample_rate = float(sample_rate)
        self.n_fft = n_fft
        self.tails = tails
        self.tables = tables
        self.slots = dict(slots or {})
        self.new_tails: list[Any] = [None] * (len(tails) if tails is not None else 0)

    def pointwise(self, x, run: PointwiseRun, dry):
        for stage, i in zip(run.stages, run.indices, strict=True):
            if stage.block.stateful:
                slot = self.slots[i]
                state = self.tails[slot] if self.tails is not None else None
                x, state = _stateful_stage(
                    x, stage, self.sels[i], self.hard[i], self.sample_rate, dry, state
                )
                if self.tails is not None:
                    self.new_tails[slot] = state
                continue
            x = _pointwise_stage(x, stage, self.sels[i], self.hard[i], self.sample_rate, dry)
        return x

    def filter_group(self, x, group: FilterGroup):
        items = [
            (st, self.sels[i], self.hard[i])
            for st, i in zip(group.stages, group.indices, strict=True)
        ]
        tail = self.tails[group.number] if self.tails is not None else None
        table = self.tables[group.number] if self.tables is not None else None
        x, new_tail = _filter_group(x, items, self.sample_rate, self.n_fft, tail, table)
        if self.tails is None:
            self.new_tails.append(new_tail)
        else:
            self.new_tails[group.number] = new_tail
        return x

    def mix(self, x, dry, mix: float):
        return dry_wet(x, dry, mix)


def run(chain, frames, sels, hard, sample_rate: float, tails, tables=None):
    """Frames ``[batch, n_frames, hop]`` -> ``(frames, new tails per filter group)``."""
    the_plan = plan(chain)
    backend = GraphBackend(
        sels, hard, sample_rate, fft_size(chain.hop_size, sample_rate), tails, tables,
        state_slots(the_plan),
    )  # fmt: skip
    out = execute(the_plan, frames, backend)
    return out, backend.new_tails


def state_slots(the_plan) -> dict[int, int]:
    """``{stage index: position in the tails}`` of the plan's stateful stages (after the
    filter groups' states, in stage order)."""
    stateful = [i for i, st in enumerate(the_plan.stages) if st.block.stateful]
    return {i: len(the_plan.groups) + k for k, i in enumerate(stateful)}


def forward(chain, audio, selections: Sequence[Any], sample_rate: float):
    """:meth:`lactose_audio.chains.Chain.forward` (see there)."""
    audio = tf.convert_to_tensor(audio, tf.float32)
    n = int(audio.shape[-1])
    if n == 0:
        return tf.identity(audio)
    hop = chain.hop_size
    n_frames = -(-n // hop)
    padded = tf.pad(audio, [[0, 0], [0, n_frames * hop - n]])
    frames = tf.reshape(padded, [tf.shape(audio)[0], n_frames, hop])
    sels = selection_tensors(chain, selections, n_frames)
    hard = tuple(is_hard(s) for s in selections)
    out, _ = run(chain, frames, sels, hard, float(sample_rate), None)
    return tf.reshape(out, [tf.shape(audio)[0], n_frames * hop])[:, :n]


def selection_tensors(chain, selections: Sequence[Any], n_frames: int) -> list[Any]:
    """Selections as graph inputs ``[batch or 1, T]`` (per-sample ones padded to frames)."""
    return [
        _sel_tensors(sel, n_frames * chain.hop_size if st.control_rate == "sample" else None)
        for st, sel in zip(chain.stages, selections, strict=True)
    ]


def group_tables(chain, sample_rate: float, hard: tuple[bool, ...]) -> list[Any]:
    """:meth:`lactose_audio.chains.Chain.group_tables` (see there); cached on ``chain``."""
    groups = plan(chain).groups
    fingerprint = tuple(st.bank.numpy().tobytes() for g in groups for st in g.stages)
    cache_key = ("tables", float(sample_rate), hard)
    cached = chain.graph_cache.get(cache_key)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    fn_key = ("tables_fn", float(sample_rate), hard)
    fn = chain.graph_cache.get(fn_key)
    if fn is None:
        n_fft = fft_size(chain.hop_size, sample_rate)

        def design():
            return [
                _group_table(
                    [(st, st.keyed, hard[i]) for st, i in zip(g.stages, g.indices, strict=True)],
                    float(sample_rate),
                    n_fft,
                    chain.hop_size,
                )
                for g in groups
            ]

        fn = tf.function(design)
        chain.graph_cache[fn_key] = fn
    tables = fn()
    chain.graph_cache[cache_key] = (fingerprint, tables)
    return tables


def graph(chain, sample_rate: float, hard: tuple[bool, ...]) -> Any:
    """The cached ``tf.function`` ``(frames, sels, tails, tables=None) -> (frames, tails)``."""
    cache_key = (float(sample_rate), hard)
    fn = chain.graph_cache.get(cache_key)
    if fn is None:

        def call(frames, sels, tails, tables=None):
            return run(chain, frames, sels, hard, float(sample_rate), tails, tables)

        fn = tf.function(call, reduce_retracing=True)
        chain.graph_cache[cache_key] = fn
    return fn


def initial_tails(chain, sample_rate: float, batch: int = 1) -> list[Any]:
    """Initial states (silence before the first sample) for streaming: filter groups', then
    stateful stages' (:func:`state_slots`)."""
    n_fft = fft_size(chain.hop_size, sample_rate)
    the_plan = plan(chain)
    tails: list[Any] = [filter_state(batch, chain.hop_size, n_fft) for _ in the_plan.groups]
    for i in state_slots(the_plan):
        state = the_plan.stages[i].block.initial_state_np(batch)
        tails.append(tf.constant(state, tf.float32))
    return tails


def render_frames(chain, audio: np.ndarray, sels, sample_rate: float, tails):
    """Run the graph over ``audio`` (float32 ``[n]``, zero-padded to whole frames).

    Returns:
        ``(float32 [n], new tails)``.
    """
    hop = chain.hop_size
    n = audio.shape[0]
    n_frames = -(-n // hop)
    if n_frames * hop != n:
        audio = np.concatenate([audio, np.zeros(n_frames * hop - n, np.float32)])
    frames = tf.constant(audio.reshape(1, n_frames, hop))
    hard = tuple(is_hard(s) for s in sels)
    fn = graph(chain, sample_rate, hard)
    tables = group_tables(chain, sample_rate, hard)
    out, tails = fn(frames, selection_tensors(chain, sels, n_frames), tails, tables)
    return out.numpy().reshape(-1)[:n], tails


def _sel_tensors(sel: Any, n_padded: int | None = None) -> Any:
    """Selection -> tensors ``[batch or 1, T]``; per-sample ones padded to ``n_padded``."""
    if sel is UNKEYED:
        return UNKEYED
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


def _pointwise_stage(x, stage: Any, sel, hard: bool, sample_rate: float, dry=None):
    """A memoryless stage on frames ``[batch, n_frames, hop]``.

    ``dry``: the enclosing chain's input frames (same shape), for blocks with ``uses_dry``.
    """
    block = stage.block
    shape = tf.shape(x)

    def kernel(audio, controls):
        if not block.uses_dry:
            return block.kernel(audio, controls, sample_rate)
        return block.kernel(audio, controls, sample_rate, dry=tf.reshape(dry, tf.shape(audio)))

    if sel is UNKEYED:
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


def _stateful_stage(x, stage: Any, sel, hard: bool, sample_rate: float, dry=None, state=None):
    """A block with memory (``Block.stateful``) on frames ``[batch, n_frames, hop]``.

    The frames of a row are one signal: the block runs over ``[batch, n_frames * hop]`` with
    per-frame controls repeated per sample, from ``state`` (``None``: silence; training
    segments warm up on their context). Returns ``(frames, new state)``.
    """
    block = stage.block
    shape = tf.shape(x)
    flat = tf.reshape(x, [shape[0], -1])
    extra = {"dry": tf.reshape(dry, tf.shape(flat))} if block.uses_dry else {}
    if sel is UNKEYED:
        controls = physical_controls_tf(block.params, stage.bank.variable[0])
    else:
        rows = stage.bank.gather(Selection(*sel), hard=hard)  # [B or 1, T, P]
        controls = physical_controls_tf(block.params, rows)
        if stage.control_rate == "sample":
            controls = {k: tf.broadcast_to(v, tf.shape(flat)) for k, v in controls.items()}
        else:
            controls = {
                k: tf.repeat(tf.broadcast_to(v, shape[:2]), shape[2], axis=1)
                for k, v in controls.items()
            }
    out, new_state = block.step(flat, controls, sample_rate, state, **extra)
    return tf.reshape(out, shape), new_state


def _range_responses(stage: Any, sample_rate: float, n_fft: int, keyed: bool):
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
    shared = shares_selection([s for s, _, _ in group], [keyed for _, keyed, _ in group])
    if not any(keyed for _, keyed, _ in group):
        product = None
        for stage, _, _ in group:
            resp = _range_responses(stage, sample_rate, n_fft, False)
            product = resp if product is None else product * resp
        return design_fir(product, n_fft, hop)
    if shared and all(h for _, _, h in group):
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
    keyed = [s for s, sel, _ in group if sel is not UNKEYED]
    stages = [s for s, _, _ in group]
    shared_hard = shares_selection(stages, [s.keyed for s in stages]) and all(
        h for _, _, h in group
    )
    if table is None and (not keyed or shared_hard or len(group) == 1):
        flags = [(stage, sel is not UNKEYED, h) for stage, sel, h in group]
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
            resp = _range_responses(stage, sample_rate, n_fft, sel is not UNKEYED)
            resp = resp[None] if sel is UNKEYED else _per_frame(resp, sel, hard)
            product = resp if product is None else product * resp
        spectra = design_fir(product, n_fft, hop)
    return frame_filter(x, spectra, n_fft, tail, varying=bool(keyed))


__all__ = [
    "GraphBackend",
    "forward",
    "graph",
    "group_tables",
    "initial_tails",
    "render_frames",
    "run",
    "selection_tensors",
    "state_slots",
]
