"""The numpy backend of the chain executor: rendering (``engine="iir"``), no TensorFlow.

:class:`NumpyBackend` runs a chain's :class:`~lactose_audio.executor.Plan` on float32
``[n_samples]`` audio, chunk after chunk with every state carried:

- pointwise stages: the blocks' numpy kernels (``Block.kernel_np``, next to their TF
  ``kernel``) on physical controls converted once per call from the bank through
  :func:`lactose_audio.params.raw_to_physical_np` (hard selections index the per-range table;
  soft edges interpolate raw rows like ``RangeBank.gather``, then convert). A block without a
  numpy kernel of its own (a plugin) runs its TF kernel through ``Block.kernel_np``'s default.
  Per-frame controls are ``[n_frames, 1]`` against the audio viewed as ``[n_frames, hop]``;
  per-sample controls ``[1, n]`` against ``[1, n]``; unkeyed stages get scalars.
- filter groups made only of RBJ biquads and DC blockers (:func:`iir_supported`): the exact
  time-varying recursions (:class:`BiquadGroup`, :mod:`lactose_audio.svf`, numba), the
  coefficients from the blocks' own ``coefficients`` (numpy namespace), one row per range.
- any other filter group (``fir_eq``, plugin ``LinearFilter`` s): the training graph's frame
  filter in numpy (:class:`FrameFilterGroup`, :mod:`lactose_audio.fir`).
- nested chains and ``mix`` through the executor, as in the graph.
- stateful pointwise blocks (``Block.stateful``, the ``compressor``): ``step_np`` over the
  call's samples as one row (per-frame controls repeated per sample), the state kept per
  stage index between calls, so a stream equals the whole-file render.

Calls must start on the frame grid (every call but the last covers whole frames), as
:class:`lactose_audio.render.RenderStream` guarantees.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import numpy as np

from lactose_audio.blocks.base import Block, crossfade_length, fft_size
from lactose_audio.executor import FilterGroup, PointwiseRun, execute, is_hard, plan
from lactose_audio.fir import FrameFilterState, design_fir_np, frame_filter_np
from lactose_audio.frames import pad_to_frames
from lactose_audio.ops import NP, dry_wet
from lactose_audio.params import raw_to_physical_np
from lactose_audio.ranges.edges import UNKEYED
from lactose_audio.svf import N_PARAMS, svf_group, svf_parameters

# ---- per-range tables from the banks (cached on the bank's values) ---------------------------

_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cached(stage: Any, kind: str, extra: tuple, compute) -> Any:
    """``compute()`` cached per stage on the bank's values, the block and ``extra``."""
    key = (stage.bank.numpy().tobytes(), id(stage.block), extra)
    entry = _TABLES.setdefault(stage, {})
    hit = entry.get(kind)
    if hit is not None and hit[0] == key:
        return hit[1]
    value = compute()
    entry[kind] = (key, value)
    return value


def range_controls(stage: Any) -> dict[str, np.ndarray]:
    """Every range's physical controls ``{name: float64 [n_ranges]}`` (numpy path)."""
    physical = stage.physical()
    return {name: physical[:, i] for i, name in enumerate(stage.block.param_names)}


def iir_supported(block: Any) -> bool:
    """True if ``block`` runs as an exact recursion: an RBJ biquad or the DC blocker.

    A subclass that overrides ``response`` (so that ``coefficients`` no longer defines it) is
    not supported.
    """
    from lactose_audio.blocks.filters import Biquad
    from lactose_audio.blocks.utility import DCBlocker

    for base in (Biquad, DCBlocker):
        if isinstance(block, base):
            return type(block).response is base.response
    return False


def frame_filtered(stages: Any) -> bool:
    """True if a filter group runs as the frame filter (:class:`FrameFilterGroup`): one of its
    stages has no exact recursion (:func:`iir_supported`), e.g. ``fir_eq``."""
    return not all(iir_supported(st.block) for st in stages)


def block_coefficients(block: Any, controls: dict[str, Any], sample_rate: float):
    """Per-row biquad coefficients of a supported block, numpy.

    Args:
        block: A block with :func:`iir_supported`.
        controls: ``{name: float64 [R]}`` physical values.
        sample_rate: Hz.

    Returns:
        ``(b, a)``: float64 ``[R, 3]`` each (not normalised).
    """
    controls = {k: np.asarray(v, np.float64) for k, v in controls.items()}
    b, a = block.coefficients(controls, float(sample_rate), NP)
    rows = [np.asarray(v, np.float64) for v in (*b, *a)]
    shape = np.broadcast_shapes(*(r.shape for r in rows))
    stacked = np.stack([np.broadcast_to(r, shape) for r in rows], axis=-1)
    return stacked[..., :3], stacked[..., 3:]


def stage_svf_table(stage: Any, sample_rate: float) -> np.ndarray:
    """SVF parameters of every range of a supported stage, float64 ``[n_ranges, 5]``."""

    def compute():
        b, a = block_coefficients(stage.block, range_controls(stage), sample_rate)
        return np.ascontiguousarray(svf_parameters(b, a).reshape(-1, N_PARAMS))

    return _cached(stage, "svf", (float(sample_rate),), compute)


def stage_responses(stage: Any, sample_rate: float, n_fft: int) -> np.ndarray:
    """Every range's response on the ``n_fft`` grid, complex128 ``[n_ranges, n_bins]``."""

    def compute():
        response = stage.block.response(range_controls(stage), float(sample_rate), n_fft)
        return np.broadcast_to(np.asarray(response), (stage.n_ranges, n_fft // 2 + 1))

    return _cached(stage, "response", (float(sample_rate), n_fft), compute)


# ---- filter groups -----------------------------------------------------------------------------


class BiquadGroup:
    """Consecutive supported filter stages run as one time-varying SVF cascade, with state.

    Args:
        stages: The group's stages (each :func:`iir_supported`).
        sample_rate: Hz.
        hop_size: Frame hop in samples (parameters change once per frame).
    """

    def __init__(self, stages: list[Any], sample_rate: float, hop_size: int) -> None:
        self.stages = list(stages)
        self.sample_rate = float(sample_rate)
        self.hop_size = int(hop_size)
        n_stages = len(self.stages)
        self.soft = np.array(
            [1 if st.keyed and st.soft_width > 0.0 else 0 for st in self.stages], np.uint8
        )
        c = crossfade_length(self.hop_size)
        self.fade = 0.5 - 0.5 * np.cos(math.pi * (np.arange(c) + 0.5) / c)
        self.state = np.zeros((2 * n_stages, 2))
        self.prev = np.zeros((2 * n_stages, N_PARAMS))
        self.prev_w = np.zeros(n_stages)
        self.started = np.zeros(1, np.int64)

    def frame_parameters(self, selections: list[Any], n_frames: int):
        """Per-frame lane parameters ``[n_frames, 2 S, 5]`` and upper weights ``[n_frames, S]``.

        Args:
            selections: Per stage ``UNKEYED`` or a frame-rate ``Selection`` (``[n_frames]``).
            n_frames: Frames in this call.
        """
        n_stages = len(self.stages)
        params = np.empty((n_frames, 2 * n_stages, N_PARAMS))
        weights = np.zeros((n_frames, n_stages))
        for s, (stage, sel) in enumerate(zip(self.stages, selections, strict=True)):
            table = stage_svf_table(stage, self.sample_rate)
            if sel is UNKEYED:
                params[:, 2 * s] = table[0]
                params[:, 2 * s + 1] = table[0]
                continue
            lower, upper, frac = (np.asarray(v)[:n_frames] for v in sel)
            params[:, 2 * s] = table[lower]
            params[:, 2 * s + 1] = table[upper]
            if self.soft[s]:
                weights[:, s] = frac
        return params, weights

    def process(self, x: np.ndarray, selections: list[Any]) -> np.ndarray:
        """Filter float32 ``x [n]`` (on the frame grid, state carried); float32 ``[n]``."""
        x = np.ascontiguousarray(x, np.float32)
        n_frames = -(-x.size // self.hop_size)
        out = np.empty_like(x)
        if x.size == 0:
            return out
        params, weights = self.frame_parameters(selections, n_frames)
        svf_group(
            x, params, weights, self.soft, self.fade, self.hop_size,
            self.state, self.prev, self.prev_w, self.started, out,
        )  # fmt: skip
        return out


class FrameFilterGroup:
    """A filter group run as the graph's frame filter (:mod:`lactose_audio.fir`), with state.

    The per-frame response is the product of the stages' responses (rows gathered per frame,
    soft edges crossfading two rows' responses), designed into one FIR, as the graph does.

    Args:
        stages: The group's linear stages.
        sample_rate: Hz.
        hop_size: Frame hop in samples.
    """

    def __init__(self, stages: list[Any], sample_rate: float, hop_size: int) -> None:
        self.stages = list(stages)
        self.sample_rate = float(sample_rate)
        self.hop_size = int(hop_size)
        self.n_fft = fft_size(self.hop_size, self.sample_rate)
        self.state = FrameFilterState.silence(self.hop_size, self.n_fft)

    def range_designs(self, keyed: list[bool]) -> np.ndarray:
        """The applied FIRs' spectra when at most one stage is keyed, complex128 ``[R, n_bins]``.

        Row ``r``: the product of the unkeyed stages' responses and range ``r`` of the keyed
        stage (one row with none), designed (:func:`~lactose_audio.fir.design_fir_np`). A
        frame's filter is then a row, or two rows crossfaded by a soft edge's weight (the
        design is linear): what :meth:`process` applies and what the Faust export tabulates.

        Args:
            keyed: Per stage, whether it is keyed (at most one True).
        """
        n_fft = self.n_fft
        tables = [stage_responses(st, self.sample_rate, n_fft) for st in self.stages]
        product = np.ones((1, n_fft // 2 + 1), np.complex128)
        for table, is_keyed in zip(tables, keyed, strict=True):
            product = product * (table if is_keyed else table[:1])
        return design_fir_np(product, n_fft, self.hop_size)

    def _spectra(self, selections: list[Any], n_frames: int) -> tuple[np.ndarray, bool]:
        n_fft, hop = self.n_fft, self.hop_size
        is_keyed = [sel is not UNKEYED for sel in selections]
        if sum(is_keyed) <= 1:
            designed = self.range_designs(is_keyed)
            if not any(is_keyed):
                return designed, False
            lower, upper, frac = (
                np.asarray(v)[:n_frames] for v in selections[is_keyed.index(True)]
            )
            rows = designed[lower]
            return rows + frac[:, None] * (designed[upper] - rows), True
        tables = [stage_responses(st, self.sample_rate, n_fft) for st in self.stages]
        static = np.ones(n_fft // 2 + 1, np.complex128)
        keyed = []
        for table, sel in zip(tables, selections, strict=True):
            if sel is UNKEYED:
                static = static * table[0]
            else:
                keyed.append((table, [np.asarray(v)[:n_frames] for v in sel]))
        product = static[None]
        for table, (lower, upper, frac) in keyed:
            rows = table[lower]
            product = product * (rows + frac[:, None] * (table[upper] - rows))
        return design_fir_np(product, n_fft, hop), True

    def process(self, x: np.ndarray, selections: list[Any]) -> np.ndarray:
        """Filter float32 ``x [n_frames * hop]`` (state carried); float32, same shape."""
        frames = x.reshape(-1, self.hop_size)
        spectra, varying = self._spectra(selections, frames.shape[0])
        return frame_filter_np(frames, spectra, self.n_fft, self.state, varying).reshape(-1)


# ---- the backend -------------------------------------------------------------------------------


def _stage_controls(stage: Any, sel: Any, n_padded: int) -> dict[str, np.ndarray]:
    """Physical controls of a pointwise stage for one call (see the module docstring)."""
    block = stage.block
    if sel is UNKEYED:
        row = stage.physical()[0]
        return {name: np.float64(v) for name, v in zip(block.param_names, row, strict=True)}
    lower, upper, frac = (np.asarray(v) for v in sel)
    if is_hard(sel):
        rows = stage.physical()[lower]
    else:  # interpolate raw rows (float32, as RangeBank.gather), then convert
        raw = stage.bank.numpy()[:, : block.n_params]
        low = raw[lower]
        rows = raw_to_physical_np(block.params, low + frac[:, None] * (raw[upper] - low))
    if stage.control_rate == "sample":
        if rows.shape[0] < n_padded:  # padding after the end (cropped) uses the last row
            rows = np.pad(rows, ((0, n_padded - rows.shape[0]), (0, 0)), mode="edge")
        return {name: rows[None, :, i] for i, name in enumerate(block.param_names)}
    return {name: rows[:, i : i + 1] for i, name in enumerate(block.param_names)}


class NumpyBackend:
    """Renders a chain with numpy kernels and exact recursive filters; keeps every state.

    Args:
        chain: The chain.
        sample_rate: Hz.
        tf_kernels: Run pointwise stages with their TF kernels (``Block.kernel_np``'s default)
            instead of their numpy ones: the oracle the tests compare the numpy kernels with.
    """

    def __init__(self, chain: Any, sample_rate: float, tf_kernels: bool = False) -> None:
        self.chain = chain
        self.plan = plan(chain)
        self.sample_rate = float(sample_rate)
        self.hop_size = chain.hop_size
        self.tf_kernels = bool(tf_kernels)
        self._groups = [
            (FrameFilterGroup if frame_filtered(g.stages) else BiquadGroup)(
                list(g.stages), self.sample_rate, self.hop_size
            )
            for g in self.plan.groups
        ]
        self._sels: list[Any] = []
        self._n_frames = 0
        self._states: dict[int, Any] = {}
        """Per plan stage index: the state of a stateful block (``Block.stateful``)."""

    @property
    def fallback_groups(self) -> int:
        """How many filter groups run the graph's frame filter (no exact recursion)."""
        return sum(isinstance(g, FrameFilterGroup) for g in self._groups)

    def process(self, audio: np.ndarray, selections: list[Any]) -> np.ndarray:
        """Process float32 ``audio [n]`` with this call's selections (per plan stage).

        Returns:
            float32 ``[n]``.
        """
        return self.process_frames(pad_to_frames(audio, self.hop_size), selections)[
            : audio.shape[0]
        ]

    def process_frames(self, x: np.ndarray, selections: list[Any]) -> np.ndarray:
        """:meth:`process` of float32 ``x [n_frames * hop_size]``, already on the frame grid.

        Returns:
            float32 ``[n_frames * hop_size]``.
        """
        self._sels = list(selections)
        self._n_frames = x.size // self.hop_size
        return np.ascontiguousarray(execute(self.plan, x, self), np.float32)

    # executor backend interface
    def pointwise(self, x: np.ndarray, run: PointwiseRun, dry: np.ndarray) -> np.ndarray:
        for stage, i in zip(run.stages, run.indices, strict=True):
            block = stage.block
            if block.stateful:
                x = self._stateful(x, stage, i, dry)
                continue
            sample = stage.control_rate == "sample" and self._sels[i] is not UNKEYED
            shape = (1, -1) if sample else (self._n_frames, -1)
            controls = _stage_controls(stage, self._sels[i], x.size)
            kernel = Block.kernel_np if self.tf_kernels else type(block).kernel_np
            extra = {"dry": dry.reshape(shape)} if block.uses_dry else {}
            y = kernel(block, x.reshape(shape), controls, self.sample_rate, **extra)
            x = np.asarray(y, np.float32).reshape(-1)
        return x

    def _stateful(self, x: np.ndarray, stage: Any, i: int, dry: np.ndarray) -> np.ndarray:
        """A block with memory: the call's samples as one row, its state kept per stage."""
        block = stage.block
        controls = _stage_controls(stage, self._sels[i], x.size)
        if self._sels[i] is not UNKEYED and stage.control_rate == "frame":  # [n_frames, 1]
            controls = {k: np.repeat(v, self.hop_size).reshape(1, -1) for k, v in controls.items()}
        extra = {"dry": dry.reshape(1, -1)} if block.uses_dry else {}
        state = self._states.get(i)
        if state is None:
            state = block.initial_state_np(1)
        if self.tf_kernels:  # the oracle: the TF step on the same values
            from lactose_audio._tf import tf

            def const(v: Any) -> Any:
                return tf.constant(np.asarray(v, np.float32))

            tf_extra = {k: const(v) for k, v in extra.items()}
            y, state = block.step(
                const(x.reshape(1, -1)), {k: const(v) for k, v in controls.items()},
                self.sample_rate, const(state), **tf_extra,
            )  # fmt: skip
            self._states[i] = np.asarray(state, np.float64)
            return np.asarray(y, np.float32).reshape(-1)
        y, self._states[i] = block.step_np(
            x.reshape(1, -1), controls, self.sample_rate, state, **extra
        )
        return np.asarray(y, np.float32).reshape(-1)

    def filter_group(self, x: np.ndarray, group: FilterGroup) -> np.ndarray:
        return self._groups[group.number].process(x, [self._sels[i] for i in group.indices])

    def mix(self, x: np.ndarray, dry: np.ndarray, mix: float) -> np.ndarray:
        return dry_wet(x, dry, mix).astype(np.float32, copy=False)


__all__ = [
    "BiquadGroup",
    "FrameFilterGroup",
    "NumpyBackend",
    "block_coefficients",
    "frame_filtered",
    "iir_supported",
    "range_controls",
    "stage_responses",
    "stage_svf_table",
]
