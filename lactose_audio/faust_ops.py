"""Faust expressions as an array namespace (:mod:`lactose_audio.ops`): the export's algebra.

:class:`Sym` is a Faust expression that composes with Python arithmetic, and :data:`FAUST`
(:class:`FaustOps`) the ``ops`` namespace whose values are such expressions, so a formula
written once against ``xp`` (biquad coefficients, SVF conversions, scalings and their
interpolation) emits Faust text. Used by :mod:`lactose_audio.faust`. No TensorFlow.
"""

from __future__ import annotations

import math
from typing import Any

from lactose_audio.errors import ExportError


def num(value: float) -> str:
    """A finite number as a Faust literal."""
    value = float(value)
    if not math.isfinite(value):
        raise ExportError(f"cannot export a non-finite value ({value})")
    return repr(value)


class Sym:
    """A Faust expression that composes with Python arithmetic (``a * b`` -> ``(a * b)``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    @staticmethod
    def of(value: Any) -> str:
        return value.text if isinstance(value, Sym) else num(value)

    def _op(self, op: str, other: Any, swap: bool = False) -> Sym:
        a, b = Sym.of(self), Sym.of(other)
        return Sym(f"({b} {op} {a})" if swap else f"({a} {op} {b})")

    def __add__(self, o):
        return self._op("+", o)

    def __radd__(self, o):
        return self._op("+", o, True)

    def __sub__(self, o):
        return self._op("-", o)

    def __rsub__(self, o):
        return self._op("-", o, True)

    def __mul__(self, o):
        return self._op("*", o)

    def __rmul__(self, o):
        return self._op("*", o, True)

    def __truediv__(self, o):
        return self._op("/", o)

    def __rtruediv__(self, o):
        return self._op("/", o, True)

    def __neg__(self):
        return Sym(f"(0.0 - {self.text})")

    def __pow__(self, n):
        return self * self if n == 2 else Sym(f"pow({self.text}, {Sym.of(n)})")


def _call(name: str, *args: Any) -> Sym:
    return Sym(f"{name}({', '.join(Sym.of(a) for a in args)})")


class FaustOps:
    """The :mod:`lactose_audio.ops` namespace whose values are Faust expressions: the one
    formula (coefficients, scalings) written for numpy and TensorFlow, emitted as Faust."""

    name = "faust"
    pi = math.pi

    @staticmethod
    def real(x: Any) -> Sym:
        return x if isinstance(x, Sym) else Sym(num(x))

    f64 = real

    @staticmethod
    def rate(sample_rate: Any) -> Sym:
        return sample_rate if isinstance(sample_rate, Sym) else Sym(num(sample_rate))

    def sigmoid(self, x: Any) -> Sym:
        return 0.5 * (1.0 + self.tanh(0.5 * self.real(x)))  # as NumpyOps.sigmoid

    def __getattr__(self, name: str) -> Any:
        if name in ("sin", "cos", "sqrt", "exp", "log", "tanh"):
            return lambda x: _call(name, x)
        raise AttributeError(name)

    @staticmethod
    def minimum(a: Any, b: Any) -> Sym:
        return _call("min", a, b)

    @staticmethod
    def maximum(a: Any, b: Any) -> Sym:
        return _call("max", a, b)

    @staticmethod
    def clip(x: Any, lo: Any, hi: Any) -> Sym:
        return _call("max", lo, _call("min", hi, x))

    @staticmethod
    def zeros_like(x: Any) -> Sym:
        return Sym("0.0")

    @staticmethod
    def ones_like(x: Any) -> Sym:
        return Sym("1.0")


FAUST = FaustOps()


__all__ = ["FAUST", "FaustOps", "Sym", "num"]
