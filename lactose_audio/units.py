"""Units and bounded scalings: dB/gain, Hz/MIDI, raw <-> physical maps.

A *scaling* maps an unconstrained raw value (what a bank stores and an optimiser moves) to a
physical value inside ``[minimum, maximum]`` and back. Each scaling is declared once, as a pair
of formulas written against an array namespace, and evaluated three ways from that one
declaration: numpy float64 (presets, validation, inverse), and TensorFlow float32 (the graph).

- ``linear``: ``phys = min + (max - min) * sigmoid(raw)``.
- ``log`` (for Hz and other ratio quantities, never linear Hz): ``phys = exp(log(min) +
  (log(max) - log(min)) * sigmoid(raw))``: ddsp's ``exp_sigmoid``/``unit_to_hz`` idea, a
  sigmoid on a log axis.

Both are strictly increasing and bounded, so kernels only ever see values in range. The
inverse clips the unit value to ``[UNIT_EPS, 1 - UNIT_EPS]`` so that a physical value exactly at
a bound maps to a finite raw value (``|raw| <= ~16``).

This module imports neither TensorFlow nor anything heavy; the TF forward is built lazily.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lactose_audio.ops import NP, tf_ops

UNIT_EPS = 1e-7
"""Smallest distance of the sigmoid's value from 0 or 1 used by the inverse maps."""


def db_to_gain(db: Any) -> Any:
    """Decibels to linear amplitude gain, ``10 ** (db / 20)`` (numpy or scalar)."""
    return np.power(10.0, np.asarray(db, dtype=np.float64) / 20.0)


def gain_to_db(gain: Any) -> Any:
    """Linear amplitude gain (> 0) to decibels, ``20 * log10(gain)`` (numpy or scalar)."""
    return 20.0 * np.log10(np.asarray(gain, dtype=np.float64))


def hz_to_midi(hz: Any) -> Any:
    """Frequency in Hz (> 0) to MIDI note number (A4 = 440 Hz = 69)."""
    return 69.0 + 12.0 * np.log2(np.asarray(hz, dtype=np.float64) / 440.0)


def midi_to_hz(midi: Any) -> Any:
    """MIDI note number to frequency in Hz."""
    return 440.0 * np.power(2.0, (np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


@dataclass(frozen=True)
class Scaling:
    """A named, bounded, invertible raw <-> physical map between ``minimum`` and ``maximum``.

    The forward map is ``phys = outer(inner(min) + (inner(max) - inner(min)) * sigmoid(raw))``
    with ``(inner, outer) = (identity, identity)`` for ``linear`` and ``(log, exp)`` for
    ``log``. Numpy, TF and the inverse are all derived from this one declaration.

    Attributes:
        kind: ``"linear"`` or ``"log"``.
        minimum: Lower bound in physical units (``> 0`` for ``log``).
        maximum: Upper bound in physical units (``> minimum``).
    """

    kind: str
    minimum: float
    maximum: float

    KINDS = ("linear", "log")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"scaling must be one of {self.KINDS}, got {self.kind!r}")
        if not (math.isfinite(self.minimum) and math.isfinite(self.maximum)):
            raise ValueError("scaling bounds must be finite")
        if not self.maximum > self.minimum:
            raise ValueError(f"maximum {self.maximum} must exceed minimum {self.minimum}")
        if self.kind == "log" and self.minimum <= 0:
            raise ValueError(f"log scaling needs minimum > 0, got {self.minimum}")

    # One declaration: inner/outer axis transforms, written against an ops namespace.
    def _inner(self, ops: Any, value: Any) -> Any:
        return ops.log(value) if self.kind == "log" else value

    def _outer(self, ops: Any, value: Any) -> Any:
        return ops.exp(value) if self.kind == "log" else value

    def _forward(self, ops: Any, raw: Any) -> Any:
        lo = self._inner(NP, float(self.minimum))
        hi = self._inner(NP, float(self.maximum))
        phys = self._outer(ops, float(lo) + float(hi - lo) * ops.sigmoid(ops.real(raw)))
        # float32 rounding of exp() may step just outside the bounds: clamp (a no-op in float64)
        return ops.clip(phys, self.minimum, self.maximum)

    def forward_np(self, raw: Any) -> np.ndarray:
        """Raw -> physical in numpy float64. Any shape."""
        return np.asarray(self._forward(NP, raw), dtype=np.float64)

    def forward_tf(self, raw: Any) -> Any:
        """Raw -> physical as a float32 TF tensor (differentiable). Any shape."""
        return self._forward(tf_ops(), raw)

    def interpolate_with(self, ops: Any, start: Any, stop: Any, t: Any) -> Any:
        """Physical values ``t`` of the way from ``start`` to ``stop`` on this scaling's axis,
        in the namespace ``ops``: ``outer(inner(start) + t * (inner(stop) - inner(start)))``
        (linear scalings: the physical values; ``log``: their logarithm, Hz on a log axis)."""
        a, b = self._inner(ops, start), self._inner(ops, stop)
        return self._outer(ops, a + t * (b - a))

    def interpolate_np(self, start: Any, stop: Any, t: Any) -> np.ndarray:
        """:meth:`interpolate_with` in numpy float64.

        ``t = 0`` gives ``start`` and ``t = 1`` gives ``stop``; ``t`` in ``[0, 1]`` stays
        within the bounds.
        """
        start = np.asarray(start, dtype=np.float64)
        stop = np.asarray(stop, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64)
        return np.asarray(self.interpolate_with(NP, start, stop, t), dtype=np.float64)

    def forward_with(self, ops: Any, raw: Any) -> Any:
        """Raw -> physical in the namespace ``ops`` (e.g. Faust expressions for export)."""
        return self._forward(ops, raw)

    def inverse_with(self, ops: Any, phys: Any) -> Any:
        """Physical -> raw in the namespace ``ops`` (no clipping to the bounds); the logit of
        the unit value, clipped like :meth:`inverse_np`."""
        lo = self._inner(NP, float(self.minimum))
        hi = self._inner(NP, float(self.maximum))
        unit = (self._inner(ops, phys) - float(lo)) / float(hi - lo)
        unit = ops.clip(unit, UNIT_EPS, 1.0 - UNIT_EPS)
        return ops.log(unit) - ops.log(1.0 - unit)

    def inverse_np(self, phys: Any) -> np.ndarray:
        """Physical -> raw in numpy float64 (values are clipped to the bounds first)."""
        lo = self._inner(NP, float(self.minimum))
        hi = self._inner(NP, float(self.maximum))
        phys = np.clip(np.asarray(phys, dtype=np.float64), self.minimum, self.maximum)
        unit = (self._inner(NP, phys) - lo) / (hi - lo)
        unit = np.clip(unit, UNIT_EPS, 1.0 - UNIT_EPS)
        return np.log(unit) - np.log1p(-unit)


__all__ = [
    "UNIT_EPS",
    "Scaling",
    "db_to_gain",
    "gain_to_db",
    "hz_to_midi",
    "midi_to_hz",
]
