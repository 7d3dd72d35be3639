"""Utility blocks: gain, DC blocker, polarity inversion and the learned dry/wet mix.

Two kinds of dry/wet mix:

- the ``mix`` *block*, a stage like any other: ``y = wet * x + (1 - wet) * dry`` where ``x`` is
  the stage's input and ``dry`` the input of the chain it sits in; ``wet`` is learned, one
  value per range (``"gain>tanh>mix"`` learns a parallel drive whose blend follows the level);
- the chain's fixed ``mix`` setting (``Chain(..., mix=0.5)``, ``render(..., mix=)``,
  ``lactose render --mix``), the user's knob applied on top, never trained.

Nest a chain to mix a sub-chain only. The dry path has no delay: every block of the toolkit is
causal with zero latency, so the two paths are aligned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lactose_audio._tf import tf
from lactose_audio.blocks.base import Block, LinearFilter
from lactose_audio.blocks.filters import biquad_response
from lactose_audio.blocks.waveshapers import affine_np, db_gain_np, db_gain_tf
from lactose_audio.errors import ParameterError
from lactose_audio.ops import namespace_of
from lactose_audio.params import ParamSpec


class Gain(Block):
    """``y = x * 10**(gain_db/20)``."""

    name = "gain"
    rate = "sample"
    params = (ParamSpec("gain_db", "dB", -60.0, 36.0, "linear", 0.0),)

    def kernel(self, audio, controls: Mapping[str, tf.Tensor], sample_rate: float):
        return audio * db_gain_tf(controls["gain_db"])

    def kernel_np(self, audio, controls: Mapping[str, Any], sample_rate: float):
        return affine_np(audio, db_gain_np(controls["gain_db"]))

    def faust_derived(self, controls):
        return {"gain": f"dbgain({controls['gain_db']})"}

    def faust(self, x, controls, dry=None):
        return f"{x} * {controls['gain']}"


class DCBlocker(LinearFilter):
    """First-order highpass ``H(z) = (1 - z^-1) / (1 - R z^-1)``, ``R = exp(-2 pi fc / fs)``.

    In training it is a frame filter (frequency sampled like the biquads, FIR of
    ``ir_length(sample_rate)`` samples), so it fuses with the other filters and streams the
    same way; the truncated FIR leaves a DC gain of ``R**L`` (-50 dB at the lowest declared
    cutoff, 10 Hz, at 44.1 kHz). Rendering runs the exact recursion (a first-order biquad,
    :meth:`coefficients`).
    """

    name = "dc_blocker"
    params = (ParamSpec("cutoff_hz", "Hz", 10.0, 80.0, "log", 20.0),)

    def coefficients(self, controls: Mapping[str, Any], sample_rate: float, xp: Any = None):
        """As a biquad: ``b = (1, -1, 0)``, ``a = (1, -R, 0)``; float64 ``[...]`` each."""
        xp = xp if xp is not None else namespace_of(controls["cutoff_hz"])
        pole = xp.exp(-2.0 * math.pi * xp.f64(controls["cutoff_hz"]) / xp.rate(sample_rate))
        one, zero = xp.ones_like(pole), xp.zeros_like(pole)
        return (one, -one, zero), (one, -pole, zero)

    def response(self, controls: Mapping[str, Any], sample_rate: float, n_fft: int, xp: Any = None):
        xp = xp if xp is not None else namespace_of(controls["cutoff_hz"])
        b, a = self.coefficients(controls, sample_rate, xp)
        return biquad_response(b, a, n_fft, xp)


class Invert(Block):
    """Polarity inversion: ``y = -x``. No parameters.

    Many analogue stages invert polarity (a common-emitter or common-cathode gain stage, some
    fuzzes and amplifiers); no other block can make a negative gain. Training appends it to a
    chain when the pair's wet correlates negatively with its dry
    (:attr:`lactose_audio.data.Pair.polarity_inverted`), so the rest of the chain fits the
    effect as if its polarity were kept.
    """

    name = "invert"
    rate = "sample"
    params = ()

    def kernel(self, audio, controls: Mapping[str, tf.Tensor], sample_rate: float):
        return -audio

    def kernel_np(self, audio, controls: Mapping[str, Any], sample_rate: float):
        return np.negative(audio, dtype=np.float32)

    def faust(self, x, controls, dry=None):
        return f"0.0 - {x}"


class Mix(Block):
    """Learned dry/wet mix: ``y = wet * x + (1 - wet) * dry`` (``dry``: the chain's input).

    ``wet`` is a fraction in ``[0, 1]`` (0: only the dry signal, 1: only this stage's input),
    starting at 0.5. Used alone (``Mix()(x, sample_rate)``) its input is also the dry signal,
    so it is the identity.
    """

    name = "mix"
    rate = "sample"
    uses_dry = True
    params = (ParamSpec("wet", "", 0.0, 1.0, "linear", 0.5),)

    def kernel(self, audio, controls: Mapping[str, tf.Tensor], sample_rate: float, dry=None):
        if dry is None:
            raise ParameterError("the mix block needs the dry signal (dry=): use it in a chain")
        return dry + controls["wet"] * (audio - dry)

    def kernel_np(self, audio, controls: Mapping[str, Any], sample_rate: float, dry=None):
        if dry is None:
            raise ParameterError("the mix block needs the dry signal (dry=): use it in a chain")
        return dry + np.asarray(controls["wet"], np.float32) * (audio - dry)

    def faust(self, x, controls, dry=None):
        return f"{dry} + {controls['wet']} * ({x} - {dry})"


__all__ = ["DCBlocker", "Gain", "Invert", "Mix"]
