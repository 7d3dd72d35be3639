"""Filters: RBJ biquads, first-order sections and a learned minimum-phase FIR EQ, by frequency
sampling.

Each filter is a :class:`~lactose_audio.blocks.base.LinearFilter`: it computes its complex
response ``H(e^{jw})`` analytically from its coefficients (float64, in TF, differentiable) on
the FFT grid of the frame filter; :func:`~lactose_audio.blocks.base.design_fir` turns that into
an FIR of ``ir_length(sample_rate)`` samples (4096 at 44.1 kHz) applied frame-wise with
overlap-add. Coefficients use the Audio EQ Cookbook (R. Bristow-Johnson) with the ``Q`` form
of the shelves.

Accuracy (tested against ``scipy.signal.sosfreqz`` / ``sosfilt``): for ``cutoff_hz >= 40`` and
every declared ``q`` (``0.25 .. 2``), the magnitude is within 0.5 dB of the analytic biquad
from 20 Hz to ``0.45 * sample_rate`` wherever the analytic response is above -60 dB (below, the
truncated FIR's floor is about -60 dB; both are inaudible stop bands). ``q`` is bounded to
``2`` because a sharper resonance at 40 Hz rings longer than 4096 samples.
Cutoffs above ``0.49 * sample_rate`` are clamped there (e.g. 20 kHz at 32 kHz).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lactose_audio.blocks.base import LinearFilter
from lactose_audio.ops import namespace_of
from lactose_audio.params import ParamSpec

CUTOFF = ParamSpec("cutoff_hz", "Hz", 20.0, 20000.0, "log", 1000.0)
Q = ParamSpec("q", "", 0.25, 2.0, "log", 0.7071)
GAIN = ParamSpec("gain_db", "dB", -24.0, 24.0, "linear", 0.0)
#: Highest cutoff used, as a fraction of the sample rate (just below Nyquist).
NYQUIST_FRACTION = 0.4995


def _ns(controls: Mapping[str, Any], xp: Any) -> Any:
    """``xp``, or the namespace of the controls' values (numpy or TensorFlow)."""
    return xp if xp is not None else namespace_of(next(iter(controls.values())))


def biquad_response(b, a, n_fft: int, xp: Any = None) -> Any:
    """``(b0 + b1 z^-1 + b2 z^-2) / (a0 + a1 z^-1 + a2 z^-2)`` on the FFT grid.

    Computed in real float64 arithmetic (``B conj(A) / |A|^2``): the same value as a complex
    division, several times faster for many rows (one response per range).

    Args:
        b: Three float64 arrays/tensors ``[...]`` (numerator).
        a: Three float64 arrays/tensors ``[...]`` (denominator).
        n_fft: FFT size.
        xp: Array namespace (:mod:`lactose_audio.ops`); default: that of ``b[0]``.

    Returns:
        complex128 ``[..., n_fft // 2 + 1]``.
    """
    xp = xp if xp is not None else namespace_of(b[0])
    cos_basis, sin_basis = _unit_circle(n_fft)

    def poly(p):
        # [..., 3] @ [3, K] as one matmul (broadcast elementwise products are slow for many rows)
        coeffs = xp.stack([xp.f64(x) for x in p], axis=-1)
        return xp.matmul_last(coeffs, cos_basis), -xp.matmul_last(coeffs, sin_basis)

    br, bi = poly(b)
    ar, ai = poly(a)
    inv = 1.0 / (ar * ar + ai * ai)
    return xp.complex((br * ar + bi * ai) * inv, (bi * ar - br * ai) * inv)


_UNIT_CIRCLE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _unit_circle(n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``[1, cos w, cos 2w]`` and ``[0, sin w, sin 2w]`` on the FFT grid (float64, cached)."""
    if n_fft not in _UNIT_CIRCLE:
        w = np.arange(n_fft // 2 + 1, dtype=np.float64) * (2.0 * math.pi / n_fft)
        cos_basis = np.stack([np.ones_like(w), np.cos(w), np.cos(2.0 * w)])
        sin_basis = np.stack([np.zeros_like(w), np.sin(w), np.sin(2.0 * w)])
        _UNIT_CIRCLE[n_fft] = (cos_basis, sin_basis)
    return _UNIT_CIRCLE[n_fft]


class Biquad(LinearFilter):
    """Base of the RBJ biquads: subclasses implement :meth:`coefficients`.

    Each formula is written once against an array namespace ``xp`` (:mod:`lactose_audio.ops`):
    TensorFlow for training (differentiable), numpy for rendering (no TensorFlow import).
    """

    def _prewarp(self, controls: Mapping[str, Any], sample_rate: float, xp: Any):
        # Cutoffs at or above Nyquist are clamped just below it, where the RBJ lowpass is
        # transparent (w0 -> pi gives H = 1): a learned lowpass can "open up" completely.
        rate = xp.rate(sample_rate)
        fc = xp.minimum(xp.f64(controls["cutoff_hz"]), NYQUIST_FRACTION * rate)
        w0 = 2.0 * math.pi * fc / rate
        alpha = xp.sin(w0) / (2.0 * xp.f64(controls["q"]))
        return w0, xp.cos(w0), alpha

    def coefficients(self, controls: Mapping[str, Any], sample_rate: float, xp: Any = None):
        """RBJ ``(b, a)``: two triples of float64 values ``[...]`` (not normalised by ``a0``).

        Args:
            controls: ``{name: [...]}`` physical values (Hz, dB), numpy or TF (or Faust
                expressions with :data:`lactose_audio.faust.FAUST`: the exported plugin
                computes its coefficient tables with these same formulas).
            sample_rate: Hz.
            xp: Array namespace; default: that of the controls.
        """
        xp = _ns(controls, xp)
        return self._coefficients(controls, xp.rate(sample_rate), xp)

    def _coefficients(self, controls: Mapping[str, Any], sample_rate: float, xp: Any):
        raise NotImplementedError

    def response(self, controls: Mapping[str, Any], sample_rate: float, n_fft: int, xp: Any = None):
        xp = _ns(controls, xp)
        b, a = self.coefficients(controls, sample_rate, xp)
        return biquad_response(b, a, n_fft, xp)


class Lowpass(Biquad):
    """RBJ lowpass, 12 dB/octave; ``q = 0.7071`` is Butterworth.

    The cutoff reaches 22 kHz so that at 44.1 kHz the filter can open up to (nearly)
    transparent; the default, 20 kHz, barely colours the sound.
    """

    name = "lowpass"
    params = (ParamSpec("cutoff_hz", "Hz", 20.0, 22000.0, "log", 20000.0), Q)

    def _coefficients(self, controls, sample_rate, xp):
        w0, cos, alpha = self._prewarp(controls, sample_rate, xp)
        one_minus = 2.0 * xp.sin(0.5 * w0) ** 2  # 1 - cos(w0) without cancellation
        return (0.5 * one_minus, one_minus, 0.5 * one_minus), (1.0 + alpha, -2.0 * cos, 1.0 - alpha)


class Highpass(Biquad):
    """RBJ highpass, 12 dB/octave.

    The cutoff goes down to 5 Hz so that a high-pass the true effect does not have can get out
    of the way: at 20 Hz its phase shift on a bass's low E (41 Hz) alone costs ESR ~0.07 on
    bass-heavy material, at 5 Hz ~0.004 (0.0007 with ``q`` 2). The default, 25 Hz, blocks DC.
    """

    name = "highpass"
    params = (ParamSpec("cutoff_hz", "Hz", 5.0, 20000.0, "log", 25.0), Q)

    def _coefficients(self, controls, sample_rate, xp):
        w0, cos, alpha = self._prewarp(controls, sample_rate, xp)
        one_plus = 1.0 + cos
        return (0.5 * one_plus, -one_plus, 0.5 * one_plus), (1.0 + alpha, -2.0 * cos, 1.0 - alpha)


class Bandpass(Biquad):
    """RBJ bandpass, 0 dB peak gain."""

    name = "bandpass"
    params = (CUTOFF, Q)

    def _coefficients(self, controls, sample_rate, xp):
        w0, cos, alpha = self._prewarp(controls, sample_rate, xp)
        zero = xp.zeros_like(alpha)
        return (alpha, zero, -alpha), (1.0 + alpha, -2.0 * cos, 1.0 - alpha)


class Peak(Biquad):
    """RBJ peaking EQ: ``gain_db`` at ``cutoff_hz``, bandwidth set by ``q``."""

    name = "peak"
    params = (CUTOFF, Q, GAIN)

    def _coefficients(self, controls, sample_rate, xp):
        w0, cos, alpha = self._prewarp(controls, sample_rate, xp)
        amp = xp.exp(xp.f64(controls["gain_db"]) * (math.log(10.0) / 40.0))
        b = (1.0 + alpha * amp, -2.0 * cos, 1.0 - alpha * amp)
        return b, (1.0 + alpha / amp, -2.0 * cos, 1.0 - alpha / amp)


class _Shelf(Biquad):
    params = (CUTOFF, Q, GAIN)
    sign = 1.0  # +1 low shelf, -1 high shelf

    def _coefficients(self, controls, sample_rate, xp):
        w0, cos, alpha = self._prewarp(controls, sample_rate, xp)
        amp = xp.exp(xp.f64(controls["gain_db"]) * (math.log(10.0) / 40.0))
        s = 2.0 * xp.sqrt(amp) * alpha
        k = self.sign
        b = (
            amp * ((amp + 1.0) - k * (amp - 1.0) * cos + s),
            2.0 * k * amp * ((amp - 1.0) - k * (amp + 1.0) * cos),
            amp * ((amp + 1.0) - k * (amp - 1.0) * cos - s),
        )
        a = (
            (amp + 1.0) + k * (amp - 1.0) * cos + s,
            -2.0 * k * ((amp - 1.0) + k * (amp + 1.0) * cos),
            (amp + 1.0) + k * (amp - 1.0) * cos - s,
        )
        return b, a


class LowShelf(_Shelf):
    """RBJ low shelf: ``gain_db`` below ``cutoff_hz``."""

    name = "lowshelf"
    sign = 1.0


class HighShelf(_Shelf):
    """RBJ high shelf: ``gain_db`` above ``cutoff_hz``."""

    name = "highshelf"
    sign = -1.0


def _first_order_k(controls, sample_rate, xp):
    """``tan(pi fc / fs)``, ``fc`` clamped below Nyquist: the bilinear transform's prewarped
    corner of a first-order section."""
    fc = xp.minimum(xp.f64(controls["cutoff_hz"]), NYQUIST_FRACTION * sample_rate)
    half = math.pi * fc / sample_rate
    return xp.sin(half) / xp.cos(half)


class _FirstOrderPass(Biquad):
    """First-order (6 dB/octave) low- or high-pass, -3 dB at ``cutoff_hz``: the bilinear
    transform of ``wc / (s + wc)`` or ``s / (s + wc)`` (an RC filter: tone caps, coupling
    caps; pedalboard's ``LowpassFilter`` and ``HighpassFilter``). As a biquad: ``b2 = a2 = 0``.
    """

    low = True

    def _coefficients(self, controls, sample_rate, xp):
        k = _first_order_k(controls, sample_rate, xp)
        zero = xp.zeros_like(k)
        b = (k, k, zero) if self.low else (xp.ones_like(k), -xp.ones_like(k), zero)
        return b, (k + 1.0, k - 1.0, zero)


class Lowpass1(_FirstOrderPass):
    """First-order lowpass, 6 dB/octave (an RC low-pass); 22 kHz is (nearly) transparent."""

    name = "lowpass1"
    params = (ParamSpec("cutoff_hz", "Hz", 20.0, 22000.0, "log", 20000.0),)
    low = True


class Highpass1(_FirstOrderPass):
    """First-order highpass, 6 dB/octave (a coupling capacitor); 5 Hz is out of the way."""

    name = "highpass1"
    params = (ParamSpec("cutoff_hz", "Hz", 5.0, 20000.0, "log", 25.0),)
    low = False


class _FirstOrderShelf(Biquad):
    """First-order (6 dB/octave) shelf: the bilinear transform of
    ``H(s) = (s + wc r) / (s + wc / r)`` (low) with ``r = 10**(gain_db / 40)`` and ``wc``
    prewarped to ``cutoff_hz``, the geometric mean of its pole and zero (where the response is
    half the gain in dB). No ``q``: one real pole and one real zero, the form of tape and tube
    pre-/de-emphasis (``1 - a z^-1`` is a low shelf of ``20 log10((1 - a) / (1 + a))`` dB at
    ``fs atan(sqrt((1 - a) / (1 + a))) / pi`` Hz, times ``1 + a``) and of passive tone
    controls. As a biquad: ``b2 = a2 = 0``.
    """

    params = (CUTOFF, GAIN)
    low = True

    def _coefficients(self, controls, sample_rate, xp):
        k = _first_order_k(controls, sample_rate, xp)
        r = xp.exp(xp.f64(controls["gain_db"]) * (math.log(10.0) / 40.0))
        zero = xp.zeros_like(k)
        if self.low:  # DC gain r^2, Nyquist gain 1
            return (k * r + 1.0, k * r - 1.0, zero), (k / r + 1.0, k / r - 1.0, zero)
        g = r * r  # DC gain 1, Nyquist gain r^2
        return (g * (k / r + 1.0), g * (k / r - 1.0), zero), (k * r + 1.0, k * r - 1.0, zero)


class LowShelf1(_FirstOrderShelf):
    """First-order low shelf: ``gain_db`` below ``cutoff_hz``, 0 dB at Nyquist."""

    name = "lowshelf1"
    low = True


class HighShelf1(_FirstOrderShelf):
    """First-order high shelf: 0 dB at DC, ``gain_db`` at Nyquist."""

    name = "highshelf1"
    low = False


EQ_CENTERS_HZ = tuple(31.25 * 2.0**k for k in range(10))
"""Band centres of the FIR EQ: octaves from 31.25 Hz to 16 kHz."""


def _band_name(hz: float) -> str:
    return f"g{int(round(hz))}hz_db"


class FirEQ(LinearFilter):
    """Learned graphic EQ: 10 octave-band gains, minimum phase (no latency).

    The magnitude at each FFT bin is interpolated linearly in dB over ``log2(f)`` between the
    band centres (constant beyond the outer ones). The phase is the minimum phase of that
    magnitude (real cepstrum folded on the ``n_fft`` grid), so the EQ is causal and adds no
    latency; it is then applied by the shared frame filter (same FIR design as the biquads).
    """

    name = "fir_eq"
    params = tuple(
        ParamSpec(_band_name(f), "dB", -24.0, 24.0, "linear", 0.0) for f in EQ_CENTERS_HZ
    )

    def magnitude_db(
        self, controls: Mapping[str, Any], sample_rate: float, n_fft: int, xp: Any = None
    ):
        """Interpolated magnitude in dB, float64 ``[..., n_fft // 2 + 1]``."""
        xp = _ns(controls, xp)
        freqs = np.arange(n_fft // 2 + 1) * (float(sample_rate) / n_fft)
        pos = np.log2(np.maximum(freqs, EQ_CENTERS_HZ[0]) / EQ_CENTERS_HZ[0])
        pos = np.minimum(pos, float(len(EQ_CENTERS_HZ) - 1))
        lower = np.minimum(np.floor(pos).astype(np.int32), len(EQ_CENTERS_HZ) - 2)
        frac = pos - lower
        gains = xp.stack([xp.f64(controls[_band_name(f)]) for f in EQ_CENTERS_HZ], axis=-1)
        g_lo = xp.take_last(gains, lower)
        g_hi = xp.take_last(gains, lower + 1)
        return g_lo + frac * (g_hi - g_lo)

    def response(self, controls: Mapping[str, Any], sample_rate: float, n_fft: int, xp: Any = None):
        xp = _ns(controls, xp)
        log_mag = self.magnitude_db(controls, sample_rate, n_fft, xp) * (math.log(10.0) / 20.0)
        cepstrum = xp.irfft(xp.complex(log_mag, xp.zeros_like(log_mag)), n_fft)
        half = n_fft // 2
        fold = np.zeros(n_fft)
        fold[0], fold[1:half], fold[half] = 1.0, 2.0, 1.0
        return xp.exp(xp.rfft(cepstrum * fold, n_fft))


__all__ = [
    "Bandpass",
    "Biquad",
    "EQ_CENTERS_HZ",
    "FirEQ",
    "HighShelf",
    "HighShelf1",
    "Highpass",
    "Highpass1",
    "LowShelf",
    "LowShelf1",
    "Lowpass",
    "Lowpass1",
    "Peak",
    "biquad_response",
]
