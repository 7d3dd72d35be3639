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
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from lactose_audio._tf import tf
from lactose_audio.errors import ParameterError
from lactose_audio.params import ParamSpec, format_value, param_names

RATES = ("sample", "frame")
DEFAULT_HOP_SIZE = 4096
"""Default chain hop (samples): filters update every 93 ms at 44.1 kHz. See frame_filter."""
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

    def __call__(
        self, audio: Any, sample_rate: float, **values: float
    ) -> tf.Tensor:  # convenience for notebooks and tests
        """Run the kernel with fixed physical values (defaults for those not given)."""
        controls = self.controls(**values)
        return self.kernel(tf.convert_to_tensor(audio, tf.float32), controls, sample_rate)

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
    """Impulse-response length (samples) used at ``sample_rate``.

    4096 samples at 44.1 kHz, scaled with the rate (so a filter's duration, hence its accuracy
    at low cutoffs, does not depend on the rate) and rounded up to a multiple of 256.
    """
    raw = REFERENCE_IR_LENGTH * float(sample_rate) / 44100.0
    return int(math.ceil(raw / 256.0) * 256)


def fft_size(hop_size: int, sample_rate: float) -> int:
    """FFT size of the frame filter: ``hop_size + ir_length(sample_rate)``."""
    return int(hop_size) + ir_length(sample_rate)


def frequency_grid(n_fft: int, sample_rate: float) -> tf.Tensor:
    """Bin frequencies in Hz, float64 ``[n_fft // 2 + 1]``."""
    return tf.range(n_fft // 2 + 1, dtype=tf.float64) * (float(sample_rate) / n_fft)


def design_fir(response: tf.Tensor, n_fft: int, hop_size: int) -> tf.Tensor:
    """Frequency sampling: a response on the FFT grid -> the applied FIR's spectrum.

    The response ``H(e^{j 2 pi k / n_fft})`` is inverted to its (time-aliased) impulse
    response, truncated to ``n_fft - hop_size`` samples (rectangular window: least-squares
    optimal for a decaying IR) and transformed back, so that convolving a ``hop_size`` block
    with it in an ``n_fft`` FFT is an exact linear convolution. Linear in ``response``.

    Args:
        response: complex ``[..., n_fft // 2 + 1]`` (complex64 or complex128).
        n_fft: FFT size.
        hop_size: Block (frame) length in samples.

    Returns:
        complex64 ``[..., n_fft // 2 + 1]``.
    """
    impulse = tf.signal.irfft(response, fft_length=[n_fft])
    ir = impulse[..., : n_fft - hop_size]
    rank = len(ir.shape)
    ir = tf.pad(ir, [[0, 0]] * (rank - 1) + [[0, hop_size]])  # explicit: rfft refuses empty
    spectrum = tf.signal.rfft(ir, fft_length=[n_fft])
    return tf.cast(spectrum, tf.complex64)


CROSSFADE = 256
"""Samples over which a frame's filter fades in from the previous frame's (see frame_filter)."""


def crossfade_length(hop_size: int) -> int:
    """Crossfade length for a hop: ``min(CROSSFADE, hop_size)``."""
    return min(CROSSFADE, int(hop_size))


def filter_state(batch: int, hop_size: int, n_fft: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Initial streaming state of a frame filter: silence before the first frame."""
    m = -(-n_fft // hop_size)
    return (
        tf.zeros([batch, (m - 1) * hop_size], tf.float32),
        tf.zeros([batch, n_fft // 2 + 1], tf.complex64),
        tf.constant(0.0, tf.float32),
    )


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
    cosine) from frame ``f - 1``'s filter to frame ``f``'s::

        Y_f = X_f H_f + FFT((1 - ramp) x_f[:c]) (H_{f-1} - H_f)

    which needs no look-ahead (streams causally) and no larger FFT. The correction is only
    computed for frames flagged in ``changed`` (exact: it is zero where ``H_{f-1} == H_f``).

    Args:
        frames: float32 ``[batch, n_frames, hop_size]``.
        spectra: complex64 ``[batch or 1, n_frames or 1, n_fft // 2 + 1]`` from
            :func:`design_fir`. With one frame (a static filter) there is no crossfade.
        n_fft: FFT size (``>= hop_size``).
        state: ``(tail, last_spectrum, started)`` from the previous call (see
            :func:`filter_state`); ``None``: silence before, no previous filter.
        changed: bool ``[batch or 1, n_frames]``: frames whose filter may differ from the
            previous frame's; ``None``: all.
        varying: False when ``spectra`` is one static filter for every frame and call (then
            there is nothing to crossfade).

    Returns:
        ``(out, state)``: float32 ``[batch, n_frames, hop_size]`` and the new state.
    """
    hop = int(frames.shape[-1])
    m = -(-n_fft // hop)
    shape = tf.shape(frames)
    batch, n_frames = shape[0], shape[1]
    padded = tf.pad(frames, [[0, 0], [0, 0], [0, n_fft - hop]])
    spectrum = tf.signal.rfft(padded, fft_length=[n_fft]) * spectra
    if state is None:
        state = (
            tf.zeros([batch, (m - 1) * hop], tf.float32),
            tf.zeros([batch, n_fft // 2 + 1], tf.complex64),
            tf.constant(0.0, tf.float32),
        )
    tail, last, started = state
    new_last = last
    if varying:
        c = crossfade_length(hop)
        n_bins = n_fft // 2 + 1
        # Row (b, f) of spectra, honouring its broadcast dims, without materialising it.
        sb = tf.shape(spectra, out_type=tf.int64)[0]
        sf = tf.shape(spectra, out_type=tf.int64)[1]

        def row(b, f):
            return tf.gather_nd(spectra, tf.stack([b % sb, tf.minimum(f, sf - 1)], axis=1))

        first = row(tf.range(batch, dtype=tf.int64), tf.zeros([batch], tf.int64))
        before = tf.where(started > 0.0, last, first)  # [batch, n_bins]
        flags = tf.ones([batch, n_frames], tf.bool) if changed is None else changed
        idx = tf.where(tf.broadcast_to(flags, [batch, n_frames]))  # [M, 2]
        b_idx, f_idx = idx[:, 0], idx[:, 1]
        prev = tf.where(
            (f_idx > 0)[:, None], row(b_idx, tf.maximum(f_idx - 1, 0)), tf.gather(before, b_idx)
        )
        ramp = 0.5 - 0.5 * tf.cos(math.pi * (tf.range(c, dtype=tf.float32) + 0.5) / c)
        head = tf.gather_nd(frames[:, :, :c], idx) * (1.0 - ramp)
        head_spectrum = tf.signal.rfft(tf.pad(head, [[0, 0], [0, n_fft - c]]), [n_fft])
        delta = prev - row(b_idx, f_idx)
        spectrum = tf.tensor_scatter_nd_add(spectrum, idx, head_spectrum * delta)
        last_index = tf.fill([batch], tf.cast(n_frames, tf.int64) - 1)
        new_last = tf.cond(
            n_frames > 0,
            lambda: row(tf.range(batch, dtype=tf.int64), last_index),
            lambda: before,
        )
        new_last = tf.ensure_shape(new_last, [None, n_bins])
    blocks = tf.signal.irfft(spectrum, fft_length=[n_fft])
    if m * hop != n_fft:
        blocks = tf.pad(blocks, [[0, 0], [0, 0], [0, m * hop - n_fft]])
    parts = tf.reshape(blocks, [batch, n_frames, m, hop])
    summed = tf.pad(parts[:, :, 0], [[0, 0], [0, m - 1], [0, 0]])
    for j in range(1, m):
        summed += tf.pad(parts[:, :, j], [[0, 0], [j, m - 1 - j], [0, 0]])
    summed += tf.pad(tf.reshape(tail, [batch, m - 1, hop]), [[0, 0], [0, n_frames], [0, 0]])
    out = summed[:, :n_frames]
    new_tail = tf.reshape(summed[:, n_frames:], [batch, (m - 1) * hop])
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
