"""Array namespaces: one formula, evaluated in numpy (rendering) or TensorFlow (training).

A formula that both backends need -- a parameter scaling, a biquad's RBJ coefficients, a
filter's frequency response -- is written once against an ``xp`` argument and called with
:data:`NP` (numpy, float64, no TensorFlow import) or :func:`tf_ops` (TensorFlow, differentiable).
Only the operations those formulas use are here; kernels that differ per backend for speed (the
waveshapers' ``kernel`` and ``kernel_np``) are written per backend instead, side by side.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class NumpyOps:
    """numpy namespace; ``real`` is float64 (render precision)."""

    name = "numpy"
    pi = np.pi

    @staticmethod
    def real(x: Any) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)

    f64 = real

    @staticmethod
    def rate(sample_rate: Any) -> float:
        """The sample rate as a number (a symbol in code-generating namespaces)."""
        return float(sample_rate)

    @staticmethod
    def sigmoid(x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return 0.5 * (1.0 + np.tanh(0.5 * x))  # stable for any |x|

    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    sqrt = staticmethod(np.sqrt)
    clip = staticmethod(np.clip)
    minimum = staticmethod(np.minimum)
    maximum = staticmethod(np.maximum)
    zeros_like = staticmethod(np.zeros_like)
    ones_like = staticmethod(np.ones_like)
    floor = staticmethod(np.floor)

    @staticmethod
    def stack(values: Any, axis: int = 0) -> np.ndarray:
        return np.stack([np.asarray(v) for v in values], axis=axis)

    @staticmethod
    def arange(n: int) -> np.ndarray:
        return np.arange(n, dtype=np.float64)

    @staticmethod
    def to_int(x: Any) -> np.ndarray:
        return np.asarray(x).astype(np.int32)

    @staticmethod
    def take_last(values: Any, index: Any) -> np.ndarray:
        """``values[..., index]`` (gather along the last axis)."""
        return np.take(values, index, axis=-1)

    @staticmethod
    def complex(real: Any, imag: Any) -> np.ndarray:
        return np.asarray(real) + 1j * np.asarray(imag)

    @staticmethod
    def rfft(x: Any, n: int) -> np.ndarray:
        return np.fft.rfft(x, n=n)

    @staticmethod
    def irfft(x: Any, n: int) -> np.ndarray:
        return np.fft.irfft(x, n=n)

    @staticmethod
    def matmul_last(x: Any, basis: np.ndarray) -> np.ndarray:
        """``x [..., m] @ basis [m, k] -> [..., k]``."""
        return np.asarray(x) @ basis


class TfOps:
    """TensorFlow namespace; ``real`` is float32 (training precision), ``f64`` float64."""

    name = "tensorflow"
    pi = np.pi

    def __init__(self) -> None:
        from lactose_audio._tf import tf

        self._tf = tf
        self.sigmoid = tf.sigmoid
        self.exp = tf.exp
        self.log = tf.math.log
        self.sin = tf.sin
        self.cos = tf.cos
        self.sqrt = tf.sqrt
        self.clip = tf.clip_by_value
        self.minimum = tf.minimum
        self.maximum = tf.maximum
        self.zeros_like = tf.zeros_like
        self.ones_like = tf.ones_like
        self.floor = tf.floor
        self.stack = tf.stack
        self.complex = tf.complex

    def real(self, x: Any) -> Any:
        return self._tf.cast(x, self._tf.float32)

    @staticmethod
    def rate(sample_rate: Any) -> float:
        return float(sample_rate)

    def f64(self, x: Any) -> Any:
        return self._tf.cast(x, self._tf.float64)

    def arange(self, n: int) -> Any:
        return self._tf.range(n, dtype=self._tf.float64)

    def to_int(self, x: Any) -> Any:
        return self._tf.cast(x, self._tf.int32)

    def take_last(self, values: Any, index: Any) -> Any:
        return self._tf.gather(values, index, axis=-1)

    def rfft(self, x: Any, n: int) -> Any:
        return self._tf.signal.rfft(x, fft_length=[n])

    def irfft(self, x: Any, n: int) -> Any:
        return self._tf.signal.irfft(x, fft_length=[n])

    def matmul_last(self, x: Any, basis: np.ndarray) -> Any:
        tf = self._tf
        x = tf.convert_to_tensor(x, tf.float64)
        flat = tf.reshape(x, [-1, int(basis.shape[0])])  # one matmul: broadcasts are slow
        shape = tf.concat([tf.shape(x)[:-1], [int(basis.shape[1])]], axis=0)
        return tf.reshape(tf.matmul(flat, tf.constant(basis)), shape)


NP = NumpyOps()
_TF_OPS: TfOps | None = None


def dry_wet(wet: Any, dry: Any, mix: float) -> Any:
    """THE fixed dry/wet mix: ``mix * wet + (1 - mix) * dry``.

    One formula for a chain level's ``mix`` in every array backend (numpy rendering, TF
    training) and for ``render(..., mix=)``; anything with ``*`` and ``+`` works (numpy arrays
    keep their float32 dtype: ``mix`` is a Python float). The Faust export writes the same
    expression in Faust. The learned ``mix`` *block* is a different thing (a per-range
    parameter, ``dry + wet * (x - dry)``: :mod:`lactose_audio.blocks.utility`).

    Args:
        wet: The processed signal.
        dry: The input it is mixed with, same shape.
        mix: Wet fraction in ``[0, 1]`` (validated by the caller).

    Returns:
        The mixed signal, like ``wet``.
    """
    return mix * wet + (1.0 - mix) * dry


def tf_ops() -> TfOps:
    """The TensorFlow namespace (imports TensorFlow on first call)."""
    global _TF_OPS
    if _TF_OPS is None:
        _TF_OPS = TfOps()
    return _TF_OPS


def namespace_of(x: Any) -> Any:
    """:data:`NP` for numpy arrays and Python numbers, else the TensorFlow namespace."""
    if isinstance(x, np.ndarray | np.generic | float | int):
        return NP
    return tf_ops()


__all__ = ["NP", "NumpyOps", "TfOps", "dry_wet", "namespace_of", "tf_ops"]
