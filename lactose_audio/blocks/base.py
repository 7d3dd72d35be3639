"""The block contract, the block registry and the shared frame-wise FFT filter.

A block (ddsp's ``Processor`` split, STYLE.md 1) declares its parameters once and implements a
pure kernel on *physical* controls::

    class Fuzz(Block):
        name = "fuzz"
        rate = "sample"
        params = (ParamSpec("drive_db", "dB", 0.0, 60.0, "linear", 20.0),)

        def kernel(self, audio, controls, sample_rate):
            return tf.tanh(audio * tf.pow(10.0, controls["drive_db"] / 20.0))

Defining the subclass registers it by ``name`` (plugin style): it then works in chains and
presets like a built-in block.

Rates:

- ``"sample"`` blocks are *memoryless*: output sample ``n`` depends only on input sample ``n``
  and the controls at ``n``; kernels must broadcast controls against ``audio`` (controls are
  ``[batch, n_samples]``, ``[batch, 1]`` or scalars). Chains rely on this to apply per-frame
  controls without repeating them per sample.
- ``"frame"`` blocks that subclass :class:`LinearFilter` are linear time-varying filters
  defined by their frequency response; their parameters change once per frame. Chains fuse
  consecutive linear filters into one FFT pass (see :func:`frame_filter`).

A memoryless block that also needs the *dry* signal (the input of the chain it sits in, e.g.
the dry/wet ``mix``) sets ``uses_dry = True``; chains then call
``kernel(audio, controls, sample_rate, dry=dry)`` with ``dry`` shaped like ``audio``.

A sample-rate block with memory (the ``compressor``'s smoother) sets ``stateful = True`` and
adds ``step(audio, controls, sample_rate, state) -> (out, state)`` (TF) and ``step_np`` (numpy,
same contract) next to its kernels, plus ``initial_state_np(rows)``; its ``kernel`` and
``kernel_np`` start from that initial state. Chains then run it over consecutive frames as one
signal (per-frame controls repeated per sample) and the renderer carries its state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from lactose_audio._tf import tf
from lactose_audio.errors import ParameterError
from lactose_audio.params import ParamSpec, format_value, param_names

RATES = ("sample", "frame")
DEFAULT_HOP_SIZE = 1024
"""Default chain hop (samples): keys and filters update every 23 ms at 44.1 kHz (frame_filter)."""
REFERENCE_IR_LENGTH = 4096
"""Filter impulse-response length at 44.1 kHz; scaled with the sample rate (ir_length)."""

_REGISTRY: dict[str, type[Block]] = {}


class Block:
    """Base class of every DSP block. Subclasses declare ``name``, ``params``, ``rate``.

    Attributes:
        name: Registry name (``"tanh"``, ``"lowpass"``).
        params: Declared parameters, in bank-column order.
        rate: ``"sample"`` or ``"frame"``: how often the parameters may change.
    """

    name: ClassVar[str] = ""
    params: ClassVar[tuple[ParamSpec, ...]] = ()
    rate: ClassVar[str] = "sample"
    uses_dry: ClassVar[bool] = False
    """True if the kernel takes ``dry=`` (the input of the enclosing chain), like ``mix``."""
    stateful: ClassVar[bool] = False
    """True for a sample-rate block with memory: it defines ``step``/``step_np`` (see above)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__ and cls.name:
            register_block(cls)

    @property
    def n_params(self) -> int:
        """Number of bank columns."""
        return len(self.params)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Declared parameter names, in bank-column order."""
        return param_names(self.params)

    @property
    def is_linear(self) -> bool:
        """True for linear frame-rate filters (fused by chains)."""
        return False

    def kernel(
        self, audio: tf.Tensor, controls: Mapping[str, tf.Tensor], sample_rate: float
    ) -> tf.Tensor:
        """Pure DSP on physical controls.

        Args:
            audio: float32 ``[batch, n_samples]``.
            controls: ``{name: float32 tensor}`` broadcastable against ``audio`` (sample rate)
                or ``[batch, n_frames]`` (frame rate), physical units.
            sample_rate: Hz.

        Returns:
            float32 ``[batch, n_samples]``.
        """
        raise NotImplementedError

    def kernel_np(
        self, audio: np.ndarray, controls: Mapping[str, Any], sample_rate: float, **kwargs: Any
    ) -> np.ndarray:
        """The same DSP in numpy, for rendering (memoryless blocks).

        Same contract as :meth:`kernel` with numpy arrays: ``audio`` float32 ``[rows, n]``,
        controls broadcastable against it (physical units, float64), ``dry=`` for blocks with
        :attr:`uses_dry`; returns float32 ``[rows, n]``. The built-in blocks define their own,
        next to :meth:`kernel` (``tests/test_block_contract.py`` compares the two); this
        default runs :meth:`kernel` on the same values, so a block defined only by its TF
        kernel (a plugin) still renders -- at the price of importing TensorFlow.
        """
        from lactose_audio._tf import tf

        def const(value: Any) -> Any:
            return tf.constant(np.asarray(value, np.float32))

        kwargs = {k: const(v) for k, v in kwargs.items()}
        controls = {k: const(v) for k, v in controls.items()}
        return np.asarray(self.kernel(const(audio), controls, sample_rate, **kwargs))

    def fit_curve(
        self, u: np.ndarray, y: np.ndarray, weight: np.ndarray, start: Mapping[str, float]
    ) -> dict[str, float] | None:
        """Physical values of every parameter fitting the static curve ``y ~ f(u)`` in least
        squares (a shaper's start from the measured transfer curve,
        :func:`lactose_audio.initialise.transfer_curve`), or ``None``: the default, a block
        not fitted to a curve. ``u``, ``y``, ``weight``: float64 ``[n]`` input levels
        (ascending), mean output per level, samples per point; ``start``: current values."""
        return None

    def faust_derived(self, controls: Mapping[str, str]) -> dict[str, str]:
        """Quantities of the Faust kernel that depend on the controls only (e.g. ``dbgain``).

        The export computes them once per range into tables (hard edges, unkeyed stages) rather
        than per sample; with soft edges, per sample from the interpolated controls.

        Args:
            controls: ``{name: Faust expression}`` of the physical controls.

        Returns:
            ``{derived name: Faust expression}`` (names distinct from the parameters').
        """
        return {}

    def faust(self, x: str, controls: Mapping[str, str], dry: str | None = None) -> str:
        """The same DSP as a Faust expression, for export (memoryless blocks).

        Args:
            x: Faust expression of the input signal.
            controls: ``{name: Faust expression}`` of the physical controls and of the
                :meth:`faust_derived` quantities.
            dry: Faust expression of the enclosing chain's input (blocks with
                :attr:`uses_dry`).

        Returns:
            A Faust expression of the output (library helpers of the generated program, e.g.
            ``dbgain``, ``softplus``, may be used; see :mod:`lactose_audio.faust`).

        Raises:
            ExportError: This default: the block has no Faust kernel (e.g. a plugin block).
        """
        from lactose_audio.errors import ExportError

        raise ExportError(
            f"block {self.name!r} has no Faust kernel (define {type(self).__name__}.faust to "
            "export it); presets using it can be rendered but not exported"
        )

    def __call__(
        self, audio: Any, sample_rate: float, **values: float
    ) -> tf.Tensor:  # convenience for notebooks and tests
        """Run the kernel with fixed physical values (defaults for those not given)."""
        controls = self.controls(**values)
        audio = tf.convert_to_tensor(audio, tf.float32)
        if self.uses_dry:  # alone, the block's input is also the chain's input
            return self.kernel(audio, controls, sample_rate, dry=audio)
        return self.kernel(audio, controls, sample_rate)

    def controls(self, **values: float) -> dict[str, tf.Tensor]:
        """Validated constant physical controls: declared defaults updated by ``values``.

        Raises:
            ParameterError: On an unknown name or a value out of range.
        """
        unknown = sorted(set(values) - set(self.param_names))
        if unknown:
            raise ParameterError(
                f"{self.name} has no parameter(s) {unknown}; it has {list(self.param_names)}"
            )
        out = {}
        for spec in self.params:
            value = values.get(spec.name, spec.default)
            spec.validate(value)
            out[spec.name] = tf.constant(value, tf.float32)
        return out

    def __repr__(self) -> str:
        shown = ", ".join(format_value(p, p.default) for p in self.params[:6])
        more = ", ..." if len(self.params) > 6 else ""
        return f"{type(self).__name__}({shown}{more})"


def register_block(cls: type[Block]) -> type[Block]:
    """Register a block class under ``cls.name`` (done automatically on subclassing).

    Raises:
        ParameterError: On a bad declaration (rate, duplicate or malformed params).
    """
    if cls.rate not in RATES:
        raise ParameterError(f"block {cls.name!r}: rate must be one of {RATES}, got {cls.rate!r}")
    if cls.stateful and (
        cls.rate != "sample"
        or not all(hasattr(cls, m) for m in ("step", "step_np", "initial_state_np"))
    ):
        raise ParameterError(
            f"block {cls.name!r}: a stateful block is sample-rate and defines step, step_np "
            "and initial_state_np"
        )
    names = [p.name for p in cls.params]
    if len(set(names)) != len(names):
        raise ParameterError(f"block {cls.name!r}: duplicate parameter names {names}")
    if not all(isinstance(p, ParamSpec) for p in cls.params):
        raise ParameterError(f"block {cls.name!r}: params must be ParamSpec instances")
    _REGISTRY[cls.name] = cls
    return cls


def get_block(name: str) -> Block:
    """A new instance of the block registered as ``name``.

    Raises:
        ParameterError: If no block has that name (the message lists the known ones).
    """
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ParameterError(f"unknown block {name!r}; known blocks: {sorted(_REGISTRY)}")
    return cls()


def registered_blocks() -> dict[str, type[Block]]:
    """A copy of the registry ``{name: class}``."""
    return dict(_REGISTRY)


# --------------------------------------------------------------------------------------------
# Frame-wise FFT filtering (shared by every linear filter and by chains' fused filter groups)
# --------------------------------------------------------------------------------------------


def ir_length(sample_rate: float) -> int:
    """Minimum impulse-response length (samples) used at ``sample_rate``.

    4096 samples at 44.1 kHz, scaled with the rate (so a filter's duration, hence its accuracy
    at low cutoffs, does not depend on the rate) and rounded up to a multiple of 256. The FIR
    actually applied is ``n_fft - hop_size - crossfade_length(hop_size)`` samples long, which
    is this length or slightly more (see :func:`fft_size`).
    """
    raw = REFERENCE_IR_LENGTH * float(sample_rate) / 44100.0
    return int(math.ceil(raw / 256.0) * 256)


def _fast_fft_length(n: int) -> int:
    """Smallest even ``m >= n`` whose prime factors are all <= 11 (fast mixed-radix FFT)."""
    m = max(2, int(n) + (int(n) % 2))
    while True:
        rest = m
        for p in (2, 3, 5, 7, 11):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return m
        m += 2


def fft_size(hop_size: int, sample_rate: float) -> int:
    """FFT size of the frame filter.

    ``hop_size + crossfade_length(hop_size) + ir_length(sample_rate)``, rounded up to an even
    size with prime factors <= 11 (5376 at 44.1 kHz with the default hop 1024; 8448 with hop
    4096):
    a block is the frame plus the faded-out head of the next frame (see :func:`frame_filter`),
    convolved with the FIR without wrap-around.
    """
    hop = int(hop_size)
    return _fast_fft_length(hop + crossfade_length(hop) + ir_length(sample_rate))


def applied_ir_length(n_fft: int, hop_size: int) -> int:
    """Length of the FIR applied by the frame filter: ``n_fft - hop - crossfade_length(hop)``."""
    return int(n_fft) - int(hop_size) - crossfade_length(hop_size)


def frequency_grid(n_fft: int, sample_rate: float) -> tf.Tensor:
    """Bin frequencies in Hz, float64 ``[n_fft // 2 + 1]``."""
    return tf.range(n_fft // 2 + 1, dtype=tf.float64) * (float(sample_rate) / n_fft)


def design_fir(response: tf.Tensor, n_fft: int, hop_size: int) -> tf.Tensor:
    """Frequency sampling: a response on the FFT grid -> the applied FIR's spectrum.

    The response ``H(e^{j 2 pi k / n_fft})`` is inverted to its (time-aliased) impulse
    response, truncated to :func:`applied_ir_length` ``= n_fft - hop_size - crossfade`` samples
    (rectangular window: least-squares optimal for a decaying IR) and transformed back, so that
    convolving a block of ``hop_size + crossfade`` samples with it in an ``n_fft`` FFT is an
    exact linear convolution. Linear in ``response``.

    Args:
        response: complex ``[..., n_fft // 2 + 1]`` (complex64 or complex128).
        n_fft: FFT size.
        hop_size: Block (frame) length in samples.

    Returns:
        complex64 ``[..., n_fft // 2 + 1]``.
    """
    impulse = tf.signal.irfft(response, fft_length=[n_fft])
    length = applied_ir_length(n_fft, hop_size)
    ir = impulse[..., :length]
    rank = len(ir.shape)
    ir = tf.pad(ir, [[0, 0]] * (rank - 1) + [[0, n_fft - length]])  # explicit: rfft refuses empty
    spectrum = tf.signal.rfft(ir, fft_length=[n_fft])
    return tf.cast(spectrum, tf.complex64)


CROSSFADE = 256
"""Samples over which a frame's filter fades in from the previous frame's (see frame_filter)."""


def crossfade_length(hop_size: int) -> int:
    """Crossfade length for a hop: ``min(CROSSFADE, hop_size)``."""
    return min(CROSSFADE, int(hop_size))


def _fade_in(c: int) -> tf.Tensor:
    """Raised-cosine fade-in over ``c`` samples (float32 ``[c]``)."""
    return 0.5 - 0.5 * tf.cos(math.pi * (tf.range(c, dtype=tf.float32) + 0.5) / c)


def filter_state(batch: int, hop_size: int, n_fft: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Initial streaming state of a frame filter: silence before the first frame."""
    m = -(-n_fft // hop_size)
    return (
        tf.zeros([batch, (m - 1) * hop_size], tf.float32),
        tf.zeros([batch, n_fft // 2 + 1], tf.complex64),
        tf.constant(0.0, tf.float32),
    )


def _overlap_add(blocks: tf.Tensor, tail: tf.Tensor, hop: int, m: int):
    """Overlap-add ``blocks [B, F, n_fft]`` (block ``f`` starts at ``f * hop``) onto ``tail``.

    ``tail`` ``[B, (m - 1) * hop]`` holds earlier blocks' contributions to frames ``0 .. m-2``
    (``m = ceil(n_fft / hop)``). Requires ``F >= 1``.
    Returns ``(out [B, F, hop], new_tail [B, (m - 1) * hop])``.
    """
    n_fft = int(blocks.shape[-1])
    if m == 3:
        return _overlap_add3(blocks, tail, hop, n_fft - 2 * hop)
    shape = tf.shape(blocks)
    batch, n_frames = shape[0], shape[1]
    tail_frames = tf.reshape(tail, [batch, m - 1, hop])
    summed = None
    for j in range(m):
        part = blocks[:, :, j * hop : min((j + 1) * hop, n_fft)]
        width = min(hop, n_fft - j * hop)
        if width < hop:
            part = tf.pad(part, [[0, 0], [0, 0], [0, hop - width]])
        # Part j of block f lands in frame f + j of the timeline [0, F + m - 1).
        shifted = tf.pad(part, [[0, 0], [j, m - 1 - j], [0, 0]])
        summed = shifted if summed is None else summed + shifted
    summed += tf.pad(tail_frames, [[0, 0], [0, n_frames], [0, 0]])
    out = summed[:, :n_frames]
    new_tail = tf.reshape(summed[:, n_frames:], [batch, (m - 1) * hop])
    return out, new_tail


def _overlap_add3(blocks: tf.Tensor, tail: tf.Tensor, hop: int, w: int):
    """:func:`_overlap_add` for ``n_fft = 2 * hop + w`` (``0 < w <= hop``), in fewer passes.

    Block ``f`` = ``[p0 | p1 | p2]`` (``hop``, ``hop``, ``w`` samples) lands in frames ``f``,
    ``f + 1``, ``f + 2``. ``p2[f - 1]`` is first folded onto the head of ``p1[f]`` (both land in
    frame ``f + 1``), then ``out[f] = p0[f] + q[f - 1]``; the incoming tail plays
    ``q[-1]`` (frame 0) and is added to ``q[0]`` (frame 1).
    """
    batch = tf.shape(blocks)[0]
    if w == hop:
        p0a, p0b, p1a, p1b, p2 = tf.split(blocks, [w, 0, w, 0, w], axis=-1)
    else:
        p0a, p0b, p1a, p1b, p2 = tf.split(blocks, [w, hop - w, w, hop - w, w], axis=-1)
    t = tf.reshape(tail, [batch, 2, hop])
    t0a, t0b, t1a, t1b = t[:, :1, :w], t[:, :1, w:], t[:, 1:, :w], t[:, 1:, w:]
    qa = p1a + tf.concat([t1a, p2[:, :-1]], 1)  # heads: p1[f] + p2[f - 1] (+ tail frame 1)
    qb = tf.concat([p1b[:, :1] + t1b, p1b[:, 1:]], 1)
    out = tf.concat(
        [p0a + tf.concat([t0a, qa[:, :-1]], 1), p0b + tf.concat([t0b, qb[:, :-1]], 1)], -1
    )
    last_p2 = tf.pad(p2[:, -1:], [[0, 0], [0, 0], [0, hop - w]])
    new_tail = tf.concat([tf.concat([qa[:, -1:], qb[:, -1:]], -1), last_p2], 1)
    return out, tf.reshape(new_tail, [batch, 2 * hop])


def frame_filter(
    frames: tf.Tensor,
    spectra: tf.Tensor,
    n_fft: int,
    state: tuple[tf.Tensor, tf.Tensor, tf.Tensor] | None = None,
    changed: tf.Tensor | None = None,
    varying: bool = True,
) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor, tf.Tensor]]:
    """Filter each frame with its own FIR and overlap-add (ddsp ``fft_convolve`` style).

    Frame ``f`` of the input (``hop_size`` samples) is convolved with the FIR whose spectrum is
    ``spectra[:, f]`` and the convolved blocks are overlap-added. Switching filters abruptly at
    a frame boundary would gate the input (a click when consecutive filters differ a lot), so
    the first ``c = crossfade_length(hop)`` samples of frame ``f`` are crossfaded (raised
    cosine ``r``) from frame ``f - 1``'s filter to frame ``f``'s::

        y = h_f * (x_f - g_f) + h_{f-1} * g_f,    g_f = (1 - r) x_f[:c]

    The faded-out head ``g_f`` is appended to block ``f - 1`` (at offset ``hop``), which the FFT
    size leaves room for (:func:`fft_size`), so the crossfade costs no extra FFT and is exact
    for every frame (where ``h_{f-1} == h_f`` it changes nothing). Only the first frame of a
    streaming call, whose previous block was computed by the previous call, pays one extra
    small FFT (its ``h_{f-1} * g_f`` is added to the carried tail). No look-ahead: frame ``f``'s
    output does not depend on frame ``f + 1``.

    Args:
        frames: float32 ``[batch, n_frames, hop_size]``.
        spectra: complex64 ``[batch or 1, n_frames or 1, n_fft // 2 + 1]`` from
            :func:`design_fir`. With one frame (a static filter) there is no crossfade.
        n_fft: FFT size (``>= hop_size + crossfade_length(hop_size)`` plus the FIR length).
        state: ``(tail, last_spectrum, started)`` from the previous call (see
            :func:`filter_state`); ``None``: silence before, no previous filter.
        changed: Unused (kept for compatibility: the crossfade is now free for every frame).
        varying: False when ``spectra`` is one static filter for every frame and call (then
            there is nothing to crossfade).

    Returns:
        ``(out, state)``: float32 ``[batch, n_frames, hop_size]`` and the new state.
    """
    del changed
    hop = int(frames.shape[-1])
    m = -(-n_fft // hop)
    shape = tf.shape(frames)
    batch, n_frames = shape[0], shape[1]
    fresh = state is None
    if fresh:
        state = (
            tf.zeros([batch, (m - 1) * hop], tf.float32),
            tf.zeros([batch, n_fft // 2 + 1], tf.complex64),
            tf.constant(0.0, tf.float32),
        )
    tail, last, started = state
    new_last = last
    if not varying:
        spectrum = tf.signal.rfft(frames, fft_length=[n_fft]) * spectra  # zero-padded
    else:
        c = crossfade_length(hop)
        n_bins = n_fft // 2 + 1
        # Row (b, f) of spectra, honouring its broadcast dims, without materialising it.
        sb = tf.shape(spectra, out_type=tf.int64)[0]
        sf = tf.shape(spectra, out_type=tf.int64)[1]

        def row(b, f):
            return tf.gather_nd(spectra, tf.stack([b % sb, tf.minimum(f, sf - 1)], axis=1))

        fade_in = _fade_in(c)
        head = frames[:, :, :c]
        faded_out = head - head * fade_in  # g_f, [B, F, c]
        # Frame 0 keeps its whole head unless a previous call's filter precedes it.
        weight0 = tf.zeros([], tf.float32) if fresh else started
        weights = tf.where(tf.range(n_frames) > 0, 1.0, weight0)
        kept = head - faded_out * weights[None, :, None]
        carried = tf.concat([faded_out[:, 1:], tf.zeros_like(faded_out[:, :1])], 1)
        blocks_in = tf.concat([kept, frames[:, :, c:], carried], axis=-1)  # hop + c
        spectrum = tf.signal.rfft(blocks_in, fft_length=[n_fft]) * spectra  # zero-padded
        first = row(tf.range(batch, dtype=tf.int64), tf.zeros([batch], tf.int64))
        before = tf.where(started > 0.0, last, first)  # [batch, n_bins]
        if not fresh:
            # h_{-1} * g_0 for the first frame of this call (its block was the previous call's).
            g0 = tf.reduce_sum(faded_out[:, :1], axis=1) * started  # [B, c]; 0 if no frames
            owed = tf.signal.irfft(
                tf.signal.rfft(tf.pad(g0, [[0, 0], [0, n_fft - c]]), [n_fft]) * before, [n_fft]
            )
            tail = tail + owed[:, : (m - 1) * hop]
        last_index = tf.fill([batch], tf.cast(n_frames, tf.int64) - 1)
        new_last = tf.cond(
            n_frames > 0,
            lambda: row(tf.range(batch, dtype=tf.int64), last_index),
            lambda: before,
        )
        new_last = tf.ensure_shape(new_last, [None, n_bins])
    blocks = tf.signal.irfft(spectrum, fft_length=[n_fft])
    out, new_tail = _overlap_add(blocks, tail, hop, m)
    return out, (new_tail, new_last, tf.ones_like(started))


class _Broadcast(Mapping):
    """Read-through view of controls, cast to float64 and broadcast on access."""

    def __init__(self, controls: Mapping[str, Any], shape: list[Any]) -> None:
        self._controls = controls
        self._shape = shape

    def __getitem__(self, key: str) -> tf.Tensor:
        return tf.broadcast_to(tf.cast(self._controls[key], tf.float64), self._shape)

    def __iter__(self):
        return iter(self._controls)

    def __len__(self) -> int:
        return len(self._controls)


class LinearFilter(Block):
    """A linear frame-rate filter defined by its frequency response.

    Subclasses implement :meth:`response`; the kernel, the fusion of consecutive filters and
    the streaming state come from the frame filter above.
    """

    rate: ClassVar[str] = "frame"

    @property
    def is_linear(self) -> bool:
        return True

    def response(
        self, controls: Mapping[str, tf.Tensor], sample_rate: float, n_fft: int
    ) -> tf.Tensor:
        """Complex response on the FFT grid.

        Args:
            controls: ``{name: float tensor [...]}`` physical values (any common shape).
            sample_rate: Hz: Hz parameters are converted at this rate.
            n_fft: FFT size; bins ``k = 0 .. n_fft // 2`` at ``k * sample_rate / n_fft`` Hz.

        Returns:
            complex128 ``[..., n_fft // 2 + 1]``.
        """
        raise NotImplementedError

    def kernel(
        self,
        audio: tf.Tensor,
        controls: Mapping[str, tf.Tensor],
        sample_rate: float,
        hop_size: int = DEFAULT_HOP_SIZE,
    ) -> tf.Tensor:
        """Filter ``audio`` [batch, n_samples] with controls ``[batch, n_frames]`` or scalars.

        ``n_frames = ceil(n_samples / hop_size)``; frame ``f`` uses the controls at ``f``.
        """
        audio = tf.convert_to_tensor(audio, tf.float32)
        batch = tf.shape(audio)[0]
        n = int(audio.shape[-1])
        if n == 0:
            return tf.identity(audio)
        n_frames = -(-n // hop_size)
        n_fft = fft_size(hop_size, sample_rate)
        ctrl = _Broadcast(controls, [batch, n_frames])
        spectra = design_fir(self.response(ctrl, sample_rate, n_fft), n_fft, hop_size)
        padded = tf.pad(audio, [[0, 0], [0, n_frames * hop_size - n]])
        frames = tf.reshape(padded, [batch, n_frames, hop_size])
        out, _ = frame_filter(frames, spectra, n_fft)
        return tf.reshape(out, [batch, n_frames * hop_size])[:, :n]


__all__ = [
    "Block",
    "DEFAULT_HOP_SIZE",
    "LinearFilter",
    "RATES",
    "CROSSFADE",
    "applied_ir_length",
    "crossfade_length",
    "design_fir",
    "fft_size",
    "filter_state",
    "frame_filter",
    "frequency_grid",
    "get_block",
    "ir_length",
    "register_block",
    "registered_blocks",
]
