"""Time-varying biquads as trapezoidal state-variable filters: the maths and numba kernels.

The training graph applies filter groups frame-wise by frequency sampling (FFT convolution with
a 4096-tap truncation of each frame's biquads, :mod:`lactose_audio.blocks.base`). Rendering
(:mod:`lactose_audio.iir`) runs every filter group made only of biquads and DC blockers as the
exact recursions their parameters describe, with the kernels of this module; the per-frame
parameters come from the blocks' own ``coefficients`` (one row per range, indexed per frame by
the stage's selection). No TensorFlow.

Parameterisation: a trapezoidal (topology-preserving) state-variable filter, A. Simper's
"linear trap SVF". Each biquad ``(b, a)`` is converted *exactly* to SVF parameters
``(g, k, m0, m1, m2)`` (:func:`svf_parameters`): the denominator gives the integrator gain
``g = sqrt(A(1) / A(-1))`` and damping ``k = 2 (a0 - a2) / (A(-1) g)`` (``A(1)``, ``A(-1)`` the
denominator at DC and Nyquist), the numerator the output mix
``y = m0 x + m1 band + m2 low``. With fixed parameters the SVF's transfer function is the
biquad's (tested against ``scipy.signal.sosfilt`` to 1e-6); a real-pole filter (the first-order
DC blocker, ``k > 2``) is the same structure.

Why an SVF: its states are the two integrators' (trapezoidal) charges, whose meaning does not
depend on the coefficients, and for any ``g, k > 0`` -- every stable biquad maps to one -- the
state update ``s <- P s + q x`` is the Cayley transform of a dissipative matrix, hence a
contraction in the Euclidean norm of the state: ``||P||_2 <= 1`` (tested). Per sample it is
computed expanded, ``y = c.s + d x``, ``s <- P s + q x`` (9 coefficients per lane,
:func:`_lane_coefficients`). Between frames (``hop_size`` samples), over the first
``c = crossfade_length(hop)`` (256) samples of a frame, these 9 coefficients move from the
previous frame's values to the new ones along the raised cosine that the graph's frame filter
uses to crossfade filters (``r_i = 0.5 - 0.5 cos(pi (i + 0.5) / c)``). A convex combination of
matrices of norm ``<= 1`` has norm ``<= 1``, so the fade cannot make the filter unstable or
blow up, whatever the two filters (tested with extreme parameters alternating every frame,
down to every sample); direct-form coefficients give no such guarantee. The first frame of a
fresh render has no predecessor (no fade), as in the graph. This differs from the graph's
crossfade (which fades the *input* between two FIRs, each ringing out on its own) only during
transitions; with fixed parameters both compute the same filter (the graph up to its 4096-tap
truncation).

Speed: outside fades the coefficients are fixed, and the lane runs as direct form II (5
multiply-adds, one in the recursion) in the similar basis ``x = T^-1 s``
(:func:`_df2_form`: ``T`` maps the controllable canonical form to the SVF, exactly); the
state is converted back at the end of the segment, so fades always start from the SVF state.
Two consecutive hard stages share one loop.

Soft edges: a stage with ``soft_width > 0`` runs two SVF lanes on the same input, one per
neighbouring row (``lower[f]``, ``upper[f]``), and mixes their outputs
``(1 - frac) y_lower + frac y_upper``: the response is the crossfade of the two rows'
responses, as in the graph (:mod:`lactose_audio.graph`), not a filter with interpolated
coefficients (which would be a different filter). ``frac`` is faded like the parameters. Both
lanes always run for such a stage (also in frames whose selection is hard), so that chunked
and whole renders agree.

Several consecutive stages of a group run in one kernel call: frame by frame, each stage over
the frame's float64 buffer in turn (pairs of hard stages together), float32 in and out. State
(integrators, previous frame's parameters) carries across frames and calls, and the work done
depends only on the frame grid: chunked rendering equals whole-file rendering.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lactose_audio._numba import jit as _jit

N_PARAMS = 5
"""SVF parameters per lane: ``g, k, m0, m1, m2``."""


# ---- biquad -> SVF ---------------------------------------------------------------------------


def svf_parameters(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Exact SVF parameters of stable biquads ``(b0 + b1 z^-1 + b2 z^-2) / (a0 + ...)``.

    The trapezoidal SVF with integrator gain ``g`` and damping ``k`` has denominator
    ``D + (2 g^2 - 2) z^-1 + (1 - g k + g^2) z^-2`` (``D = 1 + g k + g^2``), band output
    ``g (1 - z^-2) / den`` and low output ``g^2 (1 + z^-1)^2 / den``; matching the biquad gives
    ``g^2 = A(1) / A(-1)``, ``g k = 2 (1 - a2) / A(-1)`` (normalised ``a``), ``m0 = H(-1)``,
    ``m2 = H(1) - m0`` and ``m1 = (D (b0 - m0) - m2 g^2) / g``.

    Args:
        b: float64 ``[..., 3]`` numerator (any scale, together with ``a``).
        a: float64 ``[..., 3]`` denominator; must be stable (``|a2| < a0``,
            ``|a1| < a0 + a2``).

    Returns:
        float64 ``[..., 5]``: ``g, k, m0, m1, m2`` (``g > 0``, ``k > 0``).

    Raises:
        ValueError: If a biquad is not strictly stable.
    """
    b = np.asarray(b, np.float64)
    a = np.asarray(a, np.float64)
    dc, ny = (a[..., 0] + a[..., 1] + a[..., 2]), (a[..., 0] - a[..., 1] + a[..., 2])
    if not (
        np.all(dc / a[..., 0] > 0.0)
        and np.all(ny / a[..., 0] > 0.0)
        and np.all(np.abs(a[..., 2] / a[..., 0]) < 1.0)
    ):
        raise ValueError("svf_parameters needs strictly stable biquads")
    params = svf_formula(tuple(b[..., i] for i in range(3)), tuple(a[..., i] for i in range(3)), np)
    return np.stack(params, axis=-1)


def svf_formula(b: tuple, a: tuple, xp: Any) -> tuple:
    """:func:`svf_parameters` on three numerator and three denominator values, any namespace.

    The one home of the biquad -> SVF formula: numpy arrays here, Faust expressions in
    :mod:`lactose_audio.faust` (``xp`` needs only ``sqrt``; the rest is arithmetic). No
    stability check.

    Returns:
        ``(g, k, m0, m1, m2)``.
    """
    b0, b1, b2 = (v / a[0] for v in b)
    a1, a2 = a[1] / a[0], a[2] / a[0]
    dc, ny = 1.0 + a1 + a2, 1.0 - a1 + a2  # A(1), A(-1)
    g = xp.sqrt(dc / ny)
    k = 2.0 * (1.0 - a2) / (ny * g)
    m0 = (b0 - b1 + b2) / ny
    m2 = (b0 + b1 + b2) / dc - m0
    d = 1.0 + g * k + g * g
    m1 = (d * (b0 - m0) - m2 * g * g) / g
    return g, k, m0, m1, m2


# ---- the kernel ------------------------------------------------------------------------------
#
# Per sample and lane, Simper's SVF (a1 = 1 / (1 + g (g + k)), a2 = g a1, a3 = g a2):
#     v3 = v - s2;  v1 = a1 s1 + a2 v3;  v2 = s2 + a2 s1 + a3 v3
#     s1 <- 2 v1 - s1;  s2 <- 2 v2 - s2;  y = m0 v + m1 v1 + m2 v2
# is computed expanded as the same linear map (shorter dependency chains per sample):
#     y = c1 s1 + c2 s2 + d v;  s1 <- p11 s1 + p12 s2 + q1 v;  s2 <- p21 s1 + p22 s2 + q2 v.
N_COEFS = 9
"""Expanded coefficients per lane: ``p11, p12, p21, p22, q1, q2, c1, c2, d``."""


def lane_coefficients(g, k, m0, m1, m2) -> tuple:
    """The 9 expanded coefficients ``p11, p12, p21, p22, q1, q2, c1, c2, d`` of one lane.

    Plain arithmetic, so the one formula serves the numba kernel (:func:`_lane_coefficients`)
    and the Faust export (on expressions).
    """
    a1 = 1.0 / (1.0 + g * (g + k))
    a2 = g * a1
    a3 = g * a2
    return (
        2.0 * a1 - 1.0,
        -2.0 * a2,
        2.0 * a2,
        1.0 - 2.0 * a3,
        2.0 * a2,
        2.0 * a3,
        m1 * a1 + m2 * a2,
        m2 * (1.0 - a3) - m1 * a2,
        m0 + m1 * a2 + m2 * a3,
    )


_lane_formula = _jit(contract=True)(lane_coefficients)


@_jit(contract=True)
def _lane_coefficients(g, k, m0, m1, m2, row):  # pragma: no cover - compiled
    c = _lane_formula(g, k, m0, m1, m2)
    for j in range(N_COEFS):
        row[j] = c[j]


@_jit(contract=True)
def _df2_form(cf, lane):  # pragma: no cover - compiled
    """The lane's fixed filter as direct form II, and the change of state basis.

    The SVF ``(P, q)`` and the controllable canonical form ``A = [[-a1, -a2], [1, 0]]``,
    ``B = (1, 0)`` (``a1 = -tr P``, ``a2 = det P``) are similar, ``s = T x`` with
    ``T = [q, a1 q + P q]`` (invertible: the SVF is controllable for ``g > 0``); the output is
    ``y = (c T) x + d v``. Returns ``a1, a2, e1, e2, t11, t12, t21, t22, det T``.
    """
    p11, p12, p21, p22 = cf[lane, 0], cf[lane, 1], cf[lane, 2], cf[lane, 3]
    q1, q2, c1, c2 = cf[lane, 4], cf[lane, 5], cf[lane, 6], cf[lane, 7]
    a1 = -(p11 + p22)
    a2 = p11 * p22 - p12 * p21
    t12 = a1 * q1 + p11 * q1 + p12 * q2
    t22 = a1 * q2 + p21 * q1 + p22 * q2
    e1 = c1 * q1 + c2 * q2
    e2 = c1 * t12 + c2 * t22
    return a1, a2, e1, e2, q1, t12, q2, t22, q1 * t22 - t12 * q2


@_jit(contract=True)
def _steady_lane(buf, start, stop, cf, state, lane):  # pragma: no cover - compiled
    # One lane, fixed coefficients, in place on buf[start:stop]; state in registers. Runs as
    # direct form II (5 multiply-adds, one in the recursion) in the basis x = T^-1 s and
    # converts back: the same linear system, cheaper than the SVF's 9 (module docstring).
    if stop <= start:
        return
    a1, a2, e1, e2, t11, t12, t21, t22, det = _df2_form(cf, lane)
    d = cf[lane, 8]
    s1 = state[lane, 0]
    s2 = state[lane, 1]
    if not (abs(det) > 1e-250 and math.isfinite(det)):  # never for g > 0; guard only
        p11, p12, p21, p22 = cf[lane, 0], cf[lane, 1], cf[lane, 2], cf[lane, 3]
        q1, q2, c1, c2 = cf[lane, 4], cf[lane, 5], cf[lane, 6], cf[lane, 7]
        for i in range(start, stop):
            v = buf[i]
            buf[i] = c1 * s1 + c2 * s2 + d * v
            n1 = p11 * s1 + p12 * s2 + q1 * v
            s2 = p21 * s1 + p22 * s2 + q2 * v
            s1 = n1
        state[lane, 0] = s1
        state[lane, 1] = s2
        return
    x1 = (t22 * s1 - t12 * s2) / det
    x2 = (t11 * s2 - t21 * s1) / det
    for i in range(start, stop):
        v = buf[i]
        buf[i] = d * v + e1 * x1 + e2 * x2
        u = v - a1 * x1 - a2 * x2
        x2 = x1
        x1 = u
    state[lane, 0] = t11 * x1 + t12 * x2
    state[lane, 1] = t21 * x1 + t22 * x2


@_jit(contract=True)
def _steady_pair(buf, start, stop, cf, state, la, lb):  # pragma: no cover - compiled
    # Two lanes in cascade (la then lb) in one loop (their recursions overlap in the CPU),
    # each as direct form II like _steady_lane.
    if stop <= start:
        return
    a1, a2, e1, e2, t11, t12, t21, t22, det = _df2_form(cf, la)
    b1, b2, f1, f2, u11, u12, u21, u22, det_b = _df2_form(cf, lb)
    ok = abs(det) > 1e-250 and math.isfinite(det) and abs(det_b) > 1e-250
    if not (ok and math.isfinite(det_b)):  # never for g > 0; guard only
        _steady_lane(buf, start, stop, cf, state, la)
        _steady_lane(buf, start, stop, cf, state, lb)
        return
    d = cf[la, 8]
    h = cf[lb, 8]
    s1, s2 = state[la, 0], state[la, 1]
    x1 = (t22 * s1 - t12 * s2) / det
    x2 = (t11 * s2 - t21 * s1) / det
    s1, s2 = state[lb, 0], state[lb, 1]
    z1 = (u22 * s1 - u12 * s2) / det_b
    z2 = (u11 * s2 - u21 * s1) / det_b
    for i in range(start, stop):
        v = buf[i]
        y = d * v + e1 * x1 + e2 * x2
        u = v - a1 * x1 - a2 * x2
        x2 = x1
        x1 = u
        buf[i] = h * y + f1 * z1 + f2 * z2
        u = y - b1 * z1 - b2 * z2
        z2 = z1
        z1 = u
    state[la, 0] = t11 * x1 + t12 * x2
    state[la, 1] = t21 * x1 + t22 * x2
    state[lb, 0] = u11 * z1 + u12 * z2
    state[lb, 1] = u21 * z1 + u22 * z2


@_jit(contract=True)
def _steady_soft(buf, start, stop, cf, state, lane, w):  # pragma: no cover - compiled
    # Two lanes (lane, lane + 1) on the same input, outputs mixed (1 - w, w); fixed coefficients.
    s1 = state[lane, 0]
    s2 = state[lane, 1]
    t1 = state[lane + 1, 0]
    t2 = state[lane + 1, 1]
    p11, p12, p21, p22 = cf[lane, 0], cf[lane, 1], cf[lane, 2], cf[lane, 3]
    q1, q2, c1, c2, d = cf[lane, 4], cf[lane, 5], cf[lane, 6], cf[lane, 7], cf[lane, 8]
    u = lane + 1
    r11, r12, r21, r22 = cf[u, 0], cf[u, 1], cf[u, 2], cf[u, 3]
    e1, e2, f1, f2, h = cf[u, 4], cf[u, 5], cf[u, 6], cf[u, 7], cf[u, 8]
    for i in range(start, stop):
        v = buf[i]
        y = c1 * s1 + c2 * s2 + d * v
        yu = f1 * t1 + f2 * t2 + h * v
        buf[i] = y + w * (yu - y)
        n1 = p11 * s1 + p12 * s2 + q1 * v
        s2 = p21 * s1 + p22 * s2 + q2 * v
        s1 = n1
        n1 = r11 * t1 + r12 * t2 + e1 * v
        t2 = r21 * t1 + r22 * t2 + e2 * v
        t1 = n1
    state[lane, 0] = s1
    state[lane, 1] = s2
    state[u, 0] = t1
    state[u, 1] = t2


@_jit(contract=True)
def _fade_ends(old, new, lane):  # pragma: no cover - compiled
    # A lane's 9 coefficients at the start of the fade and their change over it.
    o = (old[lane, 0], old[lane, 1], old[lane, 2], old[lane, 3], old[lane, 4],
         old[lane, 5], old[lane, 6], old[lane, 7], old[lane, 8])  # fmt: skip
    d = (new[lane, 0] - o[0], new[lane, 1] - o[1], new[lane, 2] - o[2],
         new[lane, 3] - o[3], new[lane, 4] - o[4], new[lane, 5] - o[5],
         new[lane, 6] - o[6], new[lane, 7] - o[7], new[lane, 8] - o[8])  # fmt: skip
    return o, d


@_jit(contract=True)
def _fade_step(o, d, r, s1, s2, v):  # pragma: no cover - compiled
    # One sample of a lane whose coefficients are o + r d: returns (output, s1', s2').
    y = (o[6] + r * d[6]) * s1 + (o[7] + r * d[7]) * s2 + (o[8] + r * d[8]) * v
    n1 = (o[0] + r * d[0]) * s1 + (o[1] + r * d[1]) * s2 + (o[4] + r * d[4]) * v
    n2 = (o[2] + r * d[2]) * s1 + (o[3] + r * d[3]) * s2 + (o[5] + r * d[5]) * v
    return y, n1, n2


@_jit(contract=True)
def _fade_lane(buf, n_fade, fade, old, new, state, lane):  # pragma: no cover - compiled
    # One hard stage over the fade: each coefficient moves from old[lane] to new[lane].
    o, d = _fade_ends(old, new, lane)
    s1 = state[lane, 0]
    s2 = state[lane, 1]
    for i in range(n_fade):
        buf[i], s1, s2 = _fade_step(o, d, fade[i], s1, s2, buf[i])
    state[lane, 0] = s1
    state[lane, 1] = s2


@_jit(contract=True)
def _fade_pair(buf, n_fade, fade, old, new, state, la, lb):  # pragma: no cover - compiled
    # Two hard stages in cascade (la then lb) over the same fade, in one loop: _fade_lane's
    # arithmetic for each, with their recursions overlapping in the CPU.
    oa, da = _fade_ends(old, new, la)
    ob, db = _fade_ends(old, new, lb)
    s1 = state[la, 0]
    s2 = state[la, 1]
    t1 = state[lb, 0]
    t2 = state[lb, 1]
    for i in range(n_fade):
        r = fade[i]
        y, s1, s2 = _fade_step(oa, da, r, s1, s2, buf[i])
        buf[i], t1, t2 = _fade_step(ob, db, r, t1, t2, y)
    state[la, 0] = s1
    state[la, 1] = s2
    state[lb, 0] = t1
    state[lb, 1] = t2


@_jit(contract=True)
def _fade_lanes(buf, n_fade, fade, old, new, state, lane, soft, w_old, w_new):
    # pragma: no cover - compiled
    # A stage over the fade: every coefficient moves from old[lane] to new[lane] along fade
    # (and the soft weight from w_old to w_new when soft: lanes lane and lane + 1 mixed).
    s1 = state[lane, 0]
    s2 = state[lane, 1]
    t1 = state[lane + 1, 0]
    t2 = state[lane + 1, 1]
    k = np.empty(N_COEFS)
    u = np.empty(N_COEFS)
    for i in range(n_fade):
        r = fade[i]
        for j in range(N_COEFS):
            k[j] = old[lane, j] + r * (new[lane, j] - old[lane, j])
        v = buf[i]
        y = k[6] * s1 + k[7] * s2 + k[8] * v
        n1 = k[0] * s1 + k[1] * s2 + k[4] * v
        s2 = k[2] * s1 + k[3] * s2 + k[5] * v
        s1 = n1
        if soft != 0:
            for j in range(N_COEFS):
                u[j] = old[lane + 1, j] + r * (new[lane + 1, j] - old[lane + 1, j])
            yu = u[6] * t1 + u[7] * t2 + u[8] * v
            n1 = u[0] * t1 + u[1] * t2 + u[4] * v
            t2 = u[2] * t1 + u[3] * t2 + u[5] * v
            t1 = n1
            w = w_old + r * (w_new - w_old)
            y = y + w * (yu - y)
        buf[i] = y
    state[lane, 0] = s1
    state[lane, 1] = s2
    if soft != 0:
        state[lane + 1, 0] = t1
        state[lane + 1, 1] = t2


@_jit(contract=True)
def svf_group(
    x, params, weights, soft, fade, hop, state, prev, prev_w, started, out
):  # pragma: no cover - compiled
    """Time-varying SVF cascade over frames (see module docstring).

    x: float32 or float64 [n]; params: float64 [n_frames, 2 * S, 5] (lane 2s: lower row of
    stage s, lane 2s + 1: upper row); weights: float64 [n_frames, S] (upper lane's weight);
    soft: uint8 [S] (run the upper lane); fade: float64 [c]; state: float64 [2 * S, 2];
    prev: float64 [2 * S, 5], prev_w: float64 [S] (previous frame's); started: int64 [1].
    Writes out (dtype of x, [n]); updates state, prev, prev_w, started in place.
    """
    n = x.shape[0]
    n_lanes = params.shape[1]
    n_stages = n_lanes // 2
    c = fade.shape[0]
    n_frames = (n + hop - 1) // hop
    cf = np.empty((n_lanes, N_COEFS))
    cf_old = np.empty((n_lanes, N_COEFS))
    n_fade = np.zeros(n_stages, np.int64)
    buf = np.empty(hop)
    for f in range(n_frames):
        start = f * hop
        stop = min(start + hop, n)
        m = stop - start
        for i in range(m):
            buf[i] = x[start + i]
        for s in range(n_stages):
            changed = False
            if started[0] != 0:
                if soft[s] != 0 and weights[f, s] != prev_w[s]:
                    changed = True
                for j in range(1 + soft[s]):
                    for p in range(N_PARAMS):
                        if params[f, 2 * s + j, p] != prev[2 * s + j, p]:
                            changed = True
            n_fade[s] = min(c, m) if changed else 0
            for j in range(1 + soft[s]):
                lane = 2 * s + j
                p = params[f, lane]
                _lane_coefficients(p[0], p[1], p[2], p[3], p[4], cf[lane])
                if changed:
                    p = prev[lane]
                    _lane_coefficients(p[0], p[1], p[2], p[3], p[4], cf_old[lane])
        # Stage by stage: the fade (coefficients interpolated per sample), then the rest of the
        # frame with fixed coefficients (consecutive hard stages in pairs, in one loop).
        s = 0
        while s < n_stages:
            lane = 2 * s
            if (
                n_fade[s] > 0
                and soft[s] == 0
                and s + 1 < n_stages
                and soft[s + 1] == 0
                and n_fade[s + 1] == n_fade[s]
            ):
                # two hard stages fading together (one shared selection): both in one loop
                _fade_pair(buf, n_fade[s], fade, cf_old, cf, state, lane, lane + 2)
                _steady_pair(buf, n_fade[s], m, cf, state, lane, lane + 2)
                s += 2
                continue
            if n_fade[s] > 0 and soft[s] == 0:
                _fade_lane(buf, n_fade[s], fade, cf_old, cf, state, lane)
            elif n_fade[s] > 0:
                _fade_lanes(
                    buf, n_fade[s], fade, cf_old, cf, state, lane, soft[s], prev_w[s],
                    weights[f, s],
                )  # fmt: skip
            if soft[s] != 0:
                _steady_soft(buf, n_fade[s], m, cf, state, lane, weights[f, s])
                s += 1
            elif s + 1 < n_stages and soft[s + 1] == 0:
                # both stages up to the end of the longer fade, one after the other, then the
                # rest of the frame together
                fade_end = max(n_fade[s], n_fade[s + 1])
                _steady_lane(buf, n_fade[s], fade_end, cf, state, lane)
                if n_fade[s + 1] > 0:
                    _fade_lane(buf, n_fade[s + 1], fade, cf_old, cf, state, lane + 2)
                _steady_lane(buf, n_fade[s + 1], fade_end, cf, state, lane + 2)
                _steady_pair(buf, fade_end, m, cf, state, lane, lane + 2)
                s += 2
            else:
                _steady_lane(buf, n_fade[s], m, cf, state, lane)
                s += 1
        for i in range(m):
            out[start + i] = buf[i]
        for lane in range(n_lanes):
            for p in range(N_PARAMS):
                prev[lane, p] = params[f, lane, p]
        for s in range(n_stages):
            prev_w[s] = weights[f, s]
        started[0] = 1
    return out


def filter_static(b: Any, a: Any, x: np.ndarray) -> np.ndarray:
    """Filter ``x`` through fixed biquads in cascade with the SVF kernel (one frame, no fade).

    Args:
        b: ``[S, 3]`` numerators of ``S`` biquads (or ``[3]`` for one).
        a: ``[S, 3]`` denominators (stable).
        x: ``[n]``; float64 input gives a float64 computation and output, float32 a float32
            output (the state is float64 either way).

    Returns:
        ``[n]``, dtype of ``x``.
    """
    params = svf_parameters(np.atleast_2d(b), np.atleast_2d(a))  # [S, 5]
    n_stages = params.shape[0]
    x = np.ascontiguousarray(x)
    if x.dtype != np.float64:
        x = x.astype(np.float32)
    lanes = np.repeat(params, 2, axis=0)[None]  # [1, 2S, 5]
    hop = max(int(x.size), 1)
    out = np.empty_like(x)
    svf_group(
        x, lanes, np.zeros((1, n_stages)), np.zeros(n_stages, np.uint8), np.ones(1), hop,
        np.zeros((2 * n_stages, 2)), np.zeros((2 * n_stages, N_PARAMS)), np.zeros(n_stages),
        np.zeros(1, np.int64), out,
    )  # fmt: skip
    return out


__all__ = [
    "N_COEFS",
    "N_PARAMS",
    "filter_static",
    "lane_coefficients",
    "svf_formula",
    "svf_group",
    "svf_parameters",
]
