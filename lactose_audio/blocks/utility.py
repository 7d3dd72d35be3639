"""Utility blocks: gain and DC blocker.

Dry/wet mix is not a block (a block only sees its own input): it is the chain's ``mix``
(``Chain(..., mix=0.5)``: ``y = mix * chain(x) + (1 - mix) * x``, where ``x`` is the chain's
input), so a nested chain gives the mix of any sub-chain, and ``render(..., mix=)`` mixes the
whole chain with the file's dry signal. See :mod:`lactose_audio.chains`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from lactose_audio._tf import tf
from lactose_audio.blocks.base import Block, LinearFilter
from lactose_audio.blocks.waveshapers import db_gain_tf
from lactose_audio.params import ParamSpec


class Gain(Block):
    """``y = x * 10**(gain_db/20)``."""

    name = "gain"
    rate = "sample"
    params = (ParamSpec("gain_db", "dB", -60.0, 36.0, "linear", 0.0),)

    def kernel(self, audio, controls: Mapping[str, tf.Tensor], sample_rate: float):
        return audio * db_gain_tf(controls["gain_db"])


class DCBlocker(LinearFilter):
    """First-order highpass ``H(z) = (1 - z^-1) / (1 - R z^-1)``, ``R = exp(-2 pi fc / fs)``.

    Implemented as a frame filter (frequency sampled like the biquads, FIR of
    ``ir_length(sample_rate)`` samples) rather than an exact recursion, so it fuses with the
    other filters and streams the same way. The truncated FIR leaves a DC gain of ``R**L``
    (-50 dB at the lowest declared cutoff, 10 Hz, at 44.1 kHz).
    """

    name = "dc_blocker"
    params = (ParamSpec("cutoff_hz", "Hz", 10.0, 80.0, "log", 20.0),)

    def response(self, controls: Mapping[str, tf.Tensor], sample_rate: float, n_fft: int):
        fc = tf.cast(controls["cutoff_hz"], tf.float64)
        pole = tf.exp(-2.0 * math.pi * fc / float(sample_rate))[..., None]
        w = tf.range(n_fft // 2 + 1, dtype=tf.float64) * (2.0 * math.pi / n_fft)
        z1 = tf.complex(tf.cos(w), -tf.sin(w))
        one = tf.complex(tf.ones_like(pole), tf.zeros_like(pole))
        return (one - z1) / (one - tf.complex(pole, tf.zeros_like(pole)) * z1)


__all__ = ["DCBlocker", "Gain"]
