"""Exact recursive filters for rendering: time-varying biquads (numba), the ``"iir"`` engine.

The training graph applies filter groups frame-wise by frequency sampling (FFT convolution with
a 4096-tap truncation of each frame's biquads, :mod:`lactose_audio.blocks.base`). For offline
and streaming rendering, :func:`lactose_audio.render.render` with ``engine="iir"`` instead runs
every filter group made only of :class:`~lactose_audio.blocks.filters.Biquad` and
``dc_blocker`` stages as the exact recursions, in one pass over the samples (this module);
waveshapers and gains keep the TF kernels of the graph (the same code, see :class:`IirRenderer`).

The filters are the blocks' own: each stage's ``coefficients(controls, sample_rate)`` (RBJ
``(b, a)``, cutoff clamped below Nyquist) is evaluated once per range (``n_ranges`` rows, from
the bank, cached on the bank's values) and every frame indexes those rows by the stage's
selection, exactly as computed for the graph (``chain.selections`` / key streams).

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
responses, as in the graph (``chains._per_frame``), not a filter with interpolated
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
import weakref
from typing import Any

import numpy as np

from lactose_audio._numba import jit as _jit
from lactose_audio.blocks.base import crossfade_length

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
    b = b / a[..., :1]
    a = a / a[..., :1]
    a1, a2 = a[..., 1], a[..., 2]
    dc, ny = 1.0 + a1 + a2, 1.0 - a1 + a2  # A(1), A(-1)
    if not (np.all(dc > 0.0) and np.all(ny > 0.0) and np.all(np.abs(a2) < 1.0)):
        raise ValueError("svf_parameters needs strictly stable biquads")
    g = np.sqrt(dc / ny)
    k = 2.0 * (1.0 - a2) / (ny * g)
    m0 = (b[..., 0] - b[..., 1] + b[..., 2]) / ny
    m2 = (b[..., 0] + b[..., 1] + b[..., 2]) / dc - m0
    d = 1.0 + g * k + g * g
    m1 = (d * (b[..., 0] - m0) - m2 * g * g) / g
    return np.stack([g, k, m0, m1, m2], axis=-1)


# ---- the kernel ------------------------------------------------------------------------------
#
# Per sample and lane, Simper's SVF (a1 = 1 / (1 + g (g + k)), a2 = g a1, a3 = g a2):
#     v3 = v - s2;  v1 = a1 s1 + a2 v3;  v2 = s2 + a2 s1 + a3 v3
#     s1 <- 2 v1 - s1;  s2 <- 2 v2 - s2;  y = m0 v + m1 v1 + m2 v2
# is computed expanded as the same linear map (shorter dependency chains per sample):
#     y = c1 s1 + c2 s2 + d v;  s1 <- p11 s1 + p12 s2 + q1 v;  s2 <- p21 s1 + p22 s2 + q2 v.
N_COEFS = 9
"""Expanded coefficients per lane: ``p11, p12, p21, p22, q1, q2, c1, c2, d``."""


@_jit(contract=True)
def _lane_coefficients(g, k, m0, m1, m2, row):  # pragma: no cover - compiled
    a1 = 1.0 / (1.0 + g * (g + k))
    a2 = g * a1
    a3 = g * a2
    row[0] = 2.0 * a1 - 1.0
    row[1] = -2.0 * a2
    row[2] = 2.0 * a2
    row[3] = 1.0 - 2.0 * a3
    row[4] = 2.0 * a2
    row[5] = 2.0 * a3
    row[6] = m1 * a1 + m2 * a2
    row[7] = m2 * (1.0 - a3) - m1 * a2
    row[8] = m0 + m1 * a2 + m2 * a3


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
def _svf_group_kernel(
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


# ---- coefficients from the blocks ------------------------------------------------------------


def iir_supported(block: Any) -> bool:
    """True if ``block`` runs as an exact recursion: an RBJ biquad or the DC blocker.

    A subclass that overrides ``response`` (so that ``coefficients`` no longer defines it) is
    not supported.
    """
    from lactose_audio.blocks.filters import Biquad
    from lactose_audio.blocks.utility import DCBlocker

    cls = type(block)
    if isinstance(block, Biquad):
        return cls.response is Biquad.response
    if isinstance(block, DCBlocker):
        return cls.response is DCBlocker.response
    return False


def block_coefficients(block: Any, controls: dict[str, Any], sample_rate: float):
    """Per-row biquad coefficients of a supported block.

    Biquads: ``block.coefficients(controls, sample_rate)`` (their one definition). The DC
    blocker, whose block defines only its response ``(1 - z^-1) / (1 - R z^-1)``,
    ``R = exp(-2 pi fc / fs)``, as a biquad with ``b = (1, -1, 0)``, ``a = (1, -R, 0)`` (the
    tests check it against ``DCBlocker.response``).

    Args:
        block: A block with :func:`iir_supported`.
        controls: ``{name: float64 tensor [R]}`` physical values.
        sample_rate: Hz.

    Returns:
        ``(b, a)``: float64 numpy ``[R, 3]`` each (not normalised).
    """
    from lactose_audio._tf import tf
    from lactose_audio.blocks.filters import Biquad

    if isinstance(block, Biquad):
        b, a = block.coefficients(controls, sample_rate)
    else:
        fc = tf.cast(controls["cutoff_hz"], tf.float64)
        pole = tf.exp(-2.0 * math.pi * fc / float(sample_rate))
        one, zero = tf.ones_like(pole), tf.zeros_like(pole)
        b, a = (one, -one, zero), (one, -pole, zero)
    rows = [np.asarray(v, np.float64) for v in (*b, *a)]
    shape = np.broadcast_shapes(*(r.shape for r in rows))
    stacked = np.stack([np.broadcast_to(r, shape) for r in rows], axis=-1)
    return stacked[..., :3], stacked[..., 3:]


_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def stage_svf_table(stage: Any, sample_rate: float) -> np.ndarray:
    """SVF parameters of every range of a supported stage, float64 ``[n_ranges, 5]``.

    Evaluated from the bank (float32 raw -> physical, as the graph does) with the block's
    coefficients, once per bank state and sample rate (cached on the bank's values).
    """
    from lactose_audio._tf import tf
    from lactose_audio.params import physical_controls_tf

    key = (stage.bank.numpy().tobytes(), float(sample_rate), id(stage.block))
    cached = _TABLES.get(stage)
    if cached is not None and cached[0] == key:
        return cached[1]
    controls = physical_controls_tf(stage.block.params, stage.bank.variable)
    controls = {k: tf.cast(v, tf.float64) for k, v in controls.items()}
    b, a = block_coefficients(stage.block, controls, float(sample_rate))
    table = np.ascontiguousarray(svf_parameters(b, a).reshape(-1, N_PARAMS))
    _TABLES[stage] = (key, table)
    return table


class BiquadGroup:
    """Consecutive supported filter stages run as one time-varying SVF cascade, with state.

    Args:
        stages: The group's stages (each :func:`iir_supported`).
        sample_rate: Hz.
        hop_size: Frame hop in samples (parameters change once per frame).
    """

    def __init__(self, stages: list[Any], sample_rate: float, hop_size: int) -> None:
        self.stages = list(stages)
        self.sample_rate = float(sample_rate)
        self.hop_size = int(hop_size)
        n_stages = len(self.stages)
        self.soft = np.array(
            [1 if st.keyed and st.soft_width > 0.0 else 0 for st in self.stages], np.uint8
        )
        c = crossfade_length(self.hop_size)
        self.fade = 0.5 - 0.5 * np.cos(math.pi * (np.arange(c) + 0.5) / c)
        self.state = np.zeros((2 * n_stages, 2))
        self.prev = np.zeros((2 * n_stages, N_PARAMS))
        self.prev_w = np.zeros(n_stages)
        self.started = np.zeros(1, np.int64)

    def frame_parameters(self, selections: list[Any], n_frames: int):
        """Per-frame lane parameters ``[n_frames, 2 S, 5]`` and upper weights ``[n_frames, S]``.

        Args:
            selections: Per stage ``None`` or a frame-rate ``Selection`` (``[n_frames]``).
            n_frames: Frames in this call.
        """
        n_stages = len(self.stages)
        params = np.empty((n_frames, 2 * n_stages, N_PARAMS))
        weights = np.zeros((n_frames, n_stages))
        for s, (stage, sel) in enumerate(zip(self.stages, selections, strict=True)):
            table = stage_svf_table(stage, self.sample_rate)
            if sel is None:
                params[:, 2 * s] = table[0]
                params[:, 2 * s + 1] = table[0]
                continue
            lower, upper, frac = (np.asarray(v)[:n_frames] for v in sel)
            params[:, 2 * s] = table[lower]
            params[:, 2 * s + 1] = table[upper]
            if self.soft[s]:
                weights[:, s] = frac
        return params, weights

    def process(self, x: np.ndarray, selections: list[Any]) -> np.ndarray:
        """Filter ``x`` (float32 ``[n]``, starting on a frame boundary); returns float32 ``[n]``.

        Args:
            x: The group's input; the call continues the previous one (state carried).
            selections: Per stage ``None`` or a frame-rate ``Selection`` of this call's frames.
        """
        x = np.ascontiguousarray(x, np.float32)
        n_frames = -(-x.size // self.hop_size)
        out = np.empty_like(x)
        if x.size == 0:
            return out
        params, weights = self.frame_parameters(selections, n_frames)
        _svf_group_kernel(
            x, params, weights, self.soft, self.fade, self.hop_size,
            self.state, self.prev, self.prev_w, self.started, out,
        )  # fmt: skip
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
    _svf_group_kernel(
        x, lanes, np.zeros((1, n_stages)), np.zeros(n_stages, np.uint8), np.ones(1), hop,
        np.zeros((2 * n_stages, 2)), np.zeros((2 * n_stages, N_PARAMS)), np.zeros(n_stages),
        np.zeros(1, np.int64), out,
    )  # fmt: skip
    return out


# ---- the engine: a chain with exact filter groups ----------------------------------------------

_POINTWISE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _pointwise_fn(chain: Any, stages: tuple, hard: tuple, sample_rate: float):
    """Cached XLA function running consecutive pointwise stages (the graph's own kernels)."""
    from lactose_audio._tf import xla_function
    from lactose_audio.chains import _pointwise_stage

    cache = _POINTWISE.setdefault(chain, {})
    key = (tuple(id(s) for s in stages), tuple(id(s.block) for s in stages), hard, sample_rate)
    entry = cache.get(key)
    if entry is None:

        def run(frames, sels, dry):
            x = frames
            for stage, sel, h in zip(stages, sels, hard, strict=True):
                x = _pointwise_stage(x, stage, sel, h, sample_rate, dry)
            return x

        entry = (stages, xla_function(run))  # stages kept: ids stay valid
        cache[key] = entry
    return entry[1]


class IirRenderer:
    """Runs a chain with exact recursive filter groups; keeps every state between calls.

    Pointwise stages (waveshapers, gain) run the graph's TF kernels (``chains._pointwise_stage``
    in a cached ``tf.function``); filter groups of :func:`iir_supported` stages run
    :class:`BiquadGroup`; any other filter group (``fir_eq``, plugin linear filters) falls back
    to the graph's frame filter (``chains._filter_group``) with its streaming tail. Nested
    chains and their ``mix`` are honoured. Calls must start on the frame grid (every call but
    the last covers whole frames), as :class:`lactose_audio.render.RenderStream` guarantees.

    Args:
        chain: The chain.
        sample_rate: Hz.
    """

    def __init__(self, chain: Any, sample_rate: float) -> None:
        from lactose_audio.blocks.base import fft_size

        self.chain = chain
        self.sample_rate = float(sample_rate)
        self.hop_size = chain.hop_size
        self.n_fft = fft_size(self.hop_size, self.sample_rate)
        self._index = {id(stage): i for i, stage in enumerate(chain.stages)}
        self._groups: list[Any] = []
        for group in chain._filter_groups():
            if all(iir_supported(st.block) for st in group):
                self._groups.append(BiquadGroup(group, self.sample_rate, self.hop_size))
            else:
                self._groups.append(None)
        self._tails = None
        if any(g is None for g in self._groups):
            self._tails = chain.initial_tails(self.sample_rate)

    @property
    def fallback_groups(self) -> int:
        """How many filter groups run the graph's frame filter (not supported by the engine)."""
        return sum(g is None for g in self._groups)

    def process(self, audio: np.ndarray, selections: list[Any]) -> np.ndarray:
        """Process ``audio`` (float32 ``[n]``) with this call's selections (per stage).

        Returns:
            float32 ``[n]``.
        """
        from lactose_audio.chains import _is_hard

        hop = self.hop_size
        n = audio.shape[0]
        n_frames = -(-n // hop)
        if n == n_frames * hop:
            x = np.asarray(audio, np.float32)
        else:
            x = np.zeros(n_frames * hop, np.float32)
            x[:n] = audio
        ctx = {
            "sels": selections,
            "tensors": {},
            "hard": tuple(_is_hard(s) for s in selections),
            "group": 0,
            "n_frames": n_frames,
        }
        out = np.asarray(self._walk(self.chain, x, ctx), np.float32)[:n]
        return out if out.flags.writeable else out.copy()

    def _walk(self, chain: Any, x: np.ndarray, ctx: dict[str, Any]) -> np.ndarray:
        from lactose_audio.chains import Chain, Stage

        dry = x
        pointwise: list[Any] = []
        group: list[Any] = []
        for item in [*chain, None]:
            if isinstance(item, Stage) and item.block.is_linear:
                x = self._pointwise(x, pointwise, ctx, dry)
                pointwise = []
                group.append(item)
                continue
            if group:
                x = self._filter(x, group, ctx)
                group = []
            if isinstance(item, Chain):
                x = self._pointwise(x, pointwise, ctx, dry)
                pointwise = []
                x = self._walk(item, x, ctx)
            elif isinstance(item, Stage):
                pointwise.append(item)
        x = self._pointwise(x, pointwise, ctx, dry)
        if chain.mix != 1.0:
            x = chain.mix * x + (1.0 - chain.mix) * dry
        return x

    def _tensors(self, ctx: dict[str, Any], i: int) -> Any:
        """Stage ``i``'s selection as graph tensors (only for the stages TF runs), memoised."""
        if i not in ctx["tensors"]:
            from lactose_audio.chains import _sel_tensors

            stage = self.chain.stages[i]
            n_padded = ctx["n_frames"] * self.hop_size if stage.control_rate == "sample" else None
            ctx["tensors"][i] = _sel_tensors(ctx["sels"][i], n_padded)
        return ctx["tensors"][i]

    def _pointwise(
        self, x: np.ndarray, stages: list[Any], ctx: dict[str, Any], dry: np.ndarray
    ) -> np.ndarray:
        if not stages:
            return x
        from lactose_audio._tf import tf

        idx = [self._index[id(st)] for st in stages]
        hard = tuple(ctx["hard"][i] for i in idx)
        fn = _pointwise_fn(self.chain, tuple(stages), hard, self.sample_rate)
        shape = (1, ctx["n_frames"], -1)
        frames = tf.constant(np.asarray(x, np.float32).reshape(shape))
        uses_dry = any(st.block.uses_dry for st in stages)
        dry_frames = tf.constant(np.asarray(dry, np.float32).reshape(shape)) if uses_dry else None
        out = fn(frames, [self._tensors(ctx, i) for i in idx], dry_frames)
        return np.asarray(out).reshape(-1)  # read-only view of the tensor, no copy

    def _filter(self, x: np.ndarray, stages: list[Any], ctx: dict[str, Any]) -> np.ndarray:
        gi = ctx["group"]
        ctx["group"] += 1
        idx = [self._index[id(st)] for st in stages]
        runner = self._groups[gi]
        if runner is not None:
            return runner.process(x, [ctx["sels"][i] for i in idx])
        from lactose_audio._tf import tf
        from lactose_audio.chains import _filter_group

        tables = self.chain.group_tables(self.sample_rate, ctx["hard"])
        group = [
            (st, self._tensors(ctx, i), ctx["hard"][i]) for st, i in zip(stages, idx, strict=True)
        ]
        frames = tf.constant(np.asarray(x, np.float32).reshape(1, ctx["n_frames"], -1))
        out, self._tails[gi] = _filter_group(
            frames, group, self.sample_rate, self.n_fft, self._tails[gi], tables[gi]
        )
        return np.asarray(out).reshape(-1)


__all__ = [
    "BiquadGroup",
    "IirRenderer",
    "block_coefficients",
    "filter_static",
    "iir_supported",
    "stage_svf_table",
    "svf_parameters",
]
