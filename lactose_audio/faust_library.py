"""The fixed part of every exported Faust program: frame clock, fades, knob ramps, key
detectors' helpers and the SVF lane (:func:`library`). Used by :mod:`lactose_audio.faust`.

No TensorFlow.
"""

from __future__ import annotations

import math

from lactose_audio.blocks.base import crossfade_length
from lactose_audio.conditioning import ENVELOPE_BLOCK, FLOOR_DB
from lactose_audio.faust_ops import FAUST, Sym, num
from lactose_audio.svf import N_COEFS, lane_coefficients, svf_formula

SR_DEFINITION = "SR = ma.SR;  // the host's sample rate, Hz"
"""The program's sample-rate line (:func:`lactose_audio.plugin.build_plugin` replaces it)."""


# ---- the fixed part of every program -----------------------------------------------------------

_SVF_ARGS = ("b0", "b1", "b2", "a0", "a1", "a2")
_LANE_ARGS = ("g", "k", "m0", "m1", "m2")


def library(hop: int, first_frame: int) -> str:
    """Frame clock, key detectors and the SVF lane, as Faust definitions."""
    svf = svf_formula(
        tuple(Sym(n) for n in _SVF_ARGS[:3]), tuple(Sym(n) for n in _SVF_ARGS[3:]), FAUST
    )
    lane = lane_coefficients(*(Sym(n) for n in _LANE_ARGS))
    block_len = str(ENVELOPE_BLOCK) if hop % ENVELOPE_BLOCK == 0 else "(bpos + 1)"
    return f"""
{SR_DEFINITION}

// ---- frame clock (the renderer's frame grid: frame f = samples [f * HOP, (f + 1) * HOP)) ----
HOP = {hop};  // samples per frame: keys and filter parameters change once per frame
FADE = {crossfade_length(hop)};  // filters crossfade coefficients over a frame's first FADE samples
BLOCK = {ENVELOPE_BLOCK};  // envelope step of the frame-rate amplitude key, samples
FLOOR = {num(10.0 ** (FLOOR_DB / 10.0))};  // power floor of the amplitude key ({FLOOR_DB:g} dBFS)
phase = ((+(1) : %(HOP)) ~ _) + (HOP - 1) : %(HOP);  // 0 at every frame start
newframe = phase == 0;
frames = newframe : ((+ : min(3)) ~ _);  // frames started so far (saturates at 3)
ramp = rdtable(FADE, 0.5 - 0.5 * cos(ma.PI * (float(ba.time) + 0.5) / FADE), min(phase, FADE - 1));
// the crossfade weight of the new coefficients (none in the first frame)
fade = select2(frames <= {first_frame}, select2(phase < FADE, 1.0, ramp), 1.0);
atframe(s) = ba.sAndH(newframe, s');  // s at the end of the previous frame, held for this one
fadeto(s) = atframe(s) + fade * (s - atframe(s));  // from the previous frame's value to s
fadepair(new, old) = old + fade * (new - old);
// a filter stage's 9 SVF coefficients for range i, faded from the previous frame's range's
fadelane(lane, i) = (lane(i), lane(atframe(i))) : ro.interleave({N_COEFS}, 2)
                    : par(j, {N_COEFS}, fadepair);
// knobs: a value computed from the sliders, taken at each frame start; after a change it
// ramps over that frame from the previous frame's value (pointwise stages), or a filter's
// 9 coefficients crossfade like fadelane (filter stages)
knobramp = select2(frames <= 1, (phase + 1) / HOP, 1.0);
knob(s) = atframe(h) + knobramp * (h - atframe(h)) with {{ h = ba.sAndH(newframe, s); }};
// a 2-D bank's filter (knob and key): range i's coefficients at this frame's sliders,
// faded from the previous frame's range's at the previous frame's sliders
knobfadelane(new, old, i) = (new(i), old(atframe(i))) : ro.interleave({N_COEFS}, 2)
                            : par(j, {N_COEFS}, fadepair);
knoblane(lane) = lane : par(j, {N_COEFS}, ba.sAndH(newframe)) <: (si.bus({N_COEFS}),
                 par(j, {N_COEFS}, atframe)) : ro.interleave({N_COEFS}, 2)
                 : par(j, {N_COEFS}, fadepair);

// ---- helpers ----
tanh(v) = 1.0 - 2.0 / (exp(2.0 * v) + 1.0);  // one exp (libm's tanhf is slower)
dbgain(d) = exp(d * {num(math.log(10.0) / 20.0)});  // 10^(d / 20)
softplus(v) = max(v, 0.0) + log(1.0 + exp(0.0 - abs(v)));
table(n, values, i) = rdtable(n, values : ba.selectn(n, ba.time), int(i));  // values[i]
acc_step(prev, v, keep) = v + keep * prev;  // a running sum that restarts where keep == 0
inband(v, e, w) = (v >= e - 0.5 * w) & (v < e + 0.5 * w);  // the soft band of edge e
inband_frac(v, e, w) = max(0.0, min(1.0, (v - (e - 0.5 * w)) / w));
pole_step(k, prev, p) = k * prev + (1.0 - k) * p;
env_step(k, prev, q, e) = select2(e, prev, k * prev + (1.0 - k) * q);
// 1 - exp(-u) (a one-pole's step), accurate in float32 for small u (long time constants)
onepolestep(u) = select2(u < 1e-3, 1.0 - exp(0.0 - u), u * (1.0 - u * (0.5 - u / 6.0)));

// ---- amplitude keys (lactose_audio.conditioning), dBFS ----
// RMS envelope: max of a fast (attack) and a slow (release) one-pole average of x^2.
samplecoef(ms) = select2(ms > 0, 0.0, exp(-1000.0 / (max(ms, 1e-9) * SR)));
amp_sample_power(attack_ms, release_ms, x) = max(fast, slow) with {{
  fast = x * x : (pole_step(samplecoef(attack_ms)) ~ _);
  slow = x * x : (pole_step(samplecoef(release_ms)) ~ _);
}};
// Per frame: the envelope stepped once per block of BLOCK samples (cut from the frame start)
// with the block's mean square; the key is the frame's mean envelope power, in dB.
blockcoef(ms, m) = select2(ms > 0, 0.0, exp(-1000.0 * m / (max(ms, 1e-9) * SR)));
amp_frame_power(attack_ms, release_ms, x) = acc / HOP with {{
  bpos = phase % BLOCK;
  bend = (bpos == BLOCK - 1) | (phase == HOP - 1);
  m = {block_len};
  q = (x * x, bpos != 0) : (acc_step ~ _) : /(m);
  fast = (q, bend) : (env_step(blockcoef(attack_ms, m)) ~ _);
  slow = (q, bend) : (env_step(blockcoef(release_ms, m)) ~ _);
  acc = (max(fast, slow) * m * bend, phase != 0) : (acc_step ~ _);
}};
todb(p) = 10.0 * log10(max(p, FLOOR));  // dBFS (hard edges compare powers: no log needed)
frame_mean(k) = atframe((k, phase != 0) : (acc_step ~ _) : /(HOP));

// ---- filters: biquad -> trapezoidal SVF lane (lactose_audio.svf) ----
svf_params({", ".join(_SVF_ARGS)}) = {", ".join(str(v) for v in svf)};
lane_coefs({", ".join(_LANE_ARGS)}) = {", ".join(str(v) for v in lane)};
// y = c1 s1 + c2 s2 + d v;  s <- P s + q v  (coefficients may move every sample)
svf_lane(p11, p12, p21, p22, q1, q2, c1, c2, d, v) = (step ~ (_, _)) : (!, !, _) with {{
  step(s1, s2) = p11 * s1 + p12 * s2 + q1 * v, p21 * s1 + p22 * s2 + q2 * v,
                 c1 * s1 + c2 * s2 + d * v;
}};
"""


__all__ = ["SR_DEFINITION", "library"]
