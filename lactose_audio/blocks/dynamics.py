"""Dynamics: a differentiable feed-forward compressor, the toolkit's one block with memory.

``compressor`` (Giannoulis, Massberg & Reiss 2012, *Digital Dynamic Range Compressor Design --
A Tutorial and Analysis*, JAES 60(6)), per sample ``n``:

1. **Level** of the input in dB, peak (instantaneous ``|x|``, not RMS):
   ``x_G = 10 log10(x^2 + 1e-10)`` (``20 log10 |x|`` floored at -100 dBFS, smooth at 0).
2. **Static curve** with a soft knee of width ``W = knee_db`` around ``T = threshold_db`` and
   ratio ``R``; the gain reduction ``x_L = x_G - y_G >= 0`` is, branch-free,
   ``x_L = (1 - 1/R) (c^2 / (2W) + max(d - W/2, 0))`` with ``d = x_G - T`` and
   ``c = clip(d + W/2, 0, W)`` -- exactly the paper's three cases (below the knee, inside it,
   above it). ``W`` is floored at ``KNEE_FLOOR_DB`` (a hard knee is the limit ``W -> 0``).
3. **Ballistics** on the reduction in dB, the paper's smooth *branching* one-pole:
   ``y_L[n] = a y_L[n-1] + (1 - a) x_L[n]`` with ``a = a_A`` when the reduction grows
   (``x_L[n] > y_L[n-1]``, attack) and ``a = a_R`` when it shrinks (release),
   ``a = exp(-1 / (tau fs))``, ``tau = attack_ms / 1000`` or ``release_ms / 1000``. Every
   backend computes the step ``b = 1 - a = -expm1(-1 / (tau fs))`` and runs
   ``y_L[n] = y_L[n-1] + b (x_L[n] - y_L[n-1])``: in float32 (training, plugins), ``1 - exp``
   of a 2 s release at 48 kHz (``b ~ 1e-5``) would be off by ~1 %.
4. **Output** ``y = x 10^((makeup_db - y_L) / 20)``.

The smoother is a recursion, so the block is *stateful* (``Block.stateful``): the state is
``y_L`` at the end of the previous call, in dB of reduction (0: silence before). Its kernels
come in two forms: :meth:`Compressor.step` / :meth:`Compressor.step_np` take and return the
state (the renderer carries it across chunks and frames), and ``kernel`` / ``kernel_np`` (the
block contract) start every row from silence. Rows of ``audio`` are independent signals.

The recursion runs in numba (float64 inside, float32 out) for both backends. In TensorFlow it
is an op with a custom gradient (:func:`smooth_tf`, :func:`tf.numpy_function` around numba):
the forward pass records which branch each sample took, the backward pass is the adjoint
recursion run backwards in time (``lam[n] = u[n] + (1 - b[n+1]) lam[n+1]``, as for any
all-pole filter), giving the gradients with respect to the reduction (hence threshold, ratio,
knee and the input), to the attack and release steps per sample and to the initial state.
The branch choice itself is piecewise constant (no gradient through the comparison), as in
any max/if.

Training runs segments that start from silence after a warm-up context (the filters'
impulse response, ~93 ms at 44.1 kHz): a release much longer than that is not fully settled at
a segment's first scored sample. Rendering carries the state exactly (chunked == whole).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lactose_audio._numba import jit as _jit
from lactose_audio._tf import tf
from lactose_audio.blocks.base import Block
from lactose_audio.params import ParamSpec

LEVEL_FLOOR = 1e-10
"""Added to ``x^2`` before the log: the level detector's floor is -100 dBFS."""
KNEE_FLOOR_DB = 1e-3
"""Smallest knee width used by the kernels (dB): ``knee_db = 0`` is a hard knee in the limit."""
_LN10_20 = math.log(10.0) / 20.0


# ---- the branching one-pole smoother (numba) ---------------------------------------------------


@_jit
def _smooth_forward(g, b_att, b_rel, y0, y, attack, last):  # pragma: no cover - compiled
    for r in range(g.shape[0]):
        prev = y0[r]
        for n in range(g.shape[1]):
            gn = np.float64(g[r, n])
            grows = gn > prev
            b = np.float64(b_att[r, n]) if grows else np.float64(b_rel[r, n])
            prev = prev + b * (gn - prev)
            y[r, n] = prev
            attack[r, n] = grows
        last[r] = prev


@_jit
def _smooth_backward(
    u, g, y, y0, b_att, b_rel, attack, dg, db_att, db_rel, dy0
):  # pragma: no cover
    # adjoint of y[n] = (1 - b[n]) y[n-1] + b[n] g[n]: lam[n] = u[n] + (1 - b[n+1]) lam[n+1]
    for r in range(g.shape[0]):
        carry = 0.0
        for n in range(g.shape[1] - 1, -1, -1):
            lam = np.float64(u[r, n]) + carry
            b = np.float64(b_att[r, n]) if attack[r, n] else np.float64(b_rel[r, n])
            prev = np.float64(y[r, n - 1]) if n > 0 else np.float64(y0[r])
            dg[r, n] = b * lam
            db = lam * (np.float64(g[r, n]) - prev)
            if attack[r, n]:
                db_att[r, n] = db
                db_rel[r, n] = 0.0
            else:
                db_att[r, n] = 0.0
                db_rel[r, n] = db
            carry = (1.0 - b) * lam
        dy0[r] = carry


def smooth_np(
    g: np.ndarray, b_att: np.ndarray, b_rel: np.ndarray, y0: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The branching one-pole over rows (numba; float64 inside).

    Args:
        g: Gain reduction in dB, ``[rows, n]``.
        b_att: Attack step ``1 - a`` per sample, same shape as ``g``.
        b_rel: Release step per sample, same shape.
        y0: State before the first sample, ``[rows]``.

    Returns:
        ``(y float32 [rows, n], attack bool [rows, n], last float64 [rows])``: the smoothed
        reduction, which branch each sample took, the state after the last sample.
    """
    g = np.ascontiguousarray(g)
    shape = g.shape
    b_att = np.ascontiguousarray(np.broadcast_to(b_att, shape))
    b_rel = np.ascontiguousarray(np.broadcast_to(b_rel, shape))
    y0 = np.ascontiguousarray(np.broadcast_to(np.asarray(y0, np.float64), shape[:1]))
    y = np.empty(shape, np.float32)
    attack = np.empty(shape, np.bool_)
    last = np.empty(shape[0], np.float64)
    _smooth_forward(g, b_att, b_rel, y0, y, attack, last)
    return y, attack, last


def smooth_backward_np(u, g, y, y0, b_att, b_rel, attack):
    """The adjoint of :func:`smooth_np` (same shapes): ``(dg, db_att, db_rel, dy0)``, float32."""
    shape = g.shape
    dg, db_att, db_rel = (np.empty(shape, np.float32) for _ in range(3))
    dy0 = np.empty(shape[0], np.float32)
    args = [np.ascontiguousarray(v) for v in (u, g, y, y0, b_att, b_rel, attack)]
    _smooth_backward(*args, dg, db_att, db_rel, dy0)
    return dg, db_att, db_rel, dy0


def smooth_tf(g, b_att, b_rel, y0):
    """:func:`smooth_np` as a differentiable TF op (float32 ``[rows, n]`` each, ``y0 [rows]``).

    Returns:
        The smoothed reduction ``[rows, n]``; gradients flow to all four inputs through the
        adjoint recursion (:func:`smooth_backward_np`), run backwards in time.
    """

    @tf.custom_gradient
    def op(g, b_att, b_rel, y0):
        def forward(g, b_att, b_rel, y0):
            y, attack, _ = smooth_np(g, b_att, b_rel, y0)
            return y, attack

        y, attack = tf.numpy_function(forward, [g, b_att, b_rel, y0], [tf.float32, tf.bool])
        y.set_shape(g.shape)
        attack.set_shape(g.shape)

        def grad(u):
            grads = tf.numpy_function(
                smooth_backward_np, [u, g, y, y0, b_att, b_rel, attack], [tf.float32] * 4
            )
            for t, like in zip(grads, (g, g, g, y0), strict=True):
                t.set_shape(like.shape)
            return tuple(grads)

        return y, grad

    return op(g, b_att, b_rel, y0)


# ---- the static curve, written once for both backends -------------------------------------------


def gain_reduction(level_db, threshold_db, ratio, knee_db, xp):
    """Gain reduction in dB (``>= 0``) of the soft-knee static curve (see the module doc).

    Args:
        level_db, threshold_db, ratio, knee_db: Arrays or tensors (broadcastable).
        xp: ``np`` or ``tf.math``-like namespace with ``maximum``, ``minimum``.
    """
    w = xp.maximum(knee_db, KNEE_FLOOR_DB)
    d = level_db - threshold_db
    c = xp.minimum(xp.maximum(d + 0.5 * w, 0.0), w)
    return (1.0 - 1.0 / ratio) * (c * c / (2.0 * w) + xp.maximum(d - 0.5 * w, 0.0))


def step_size(time_ms, sample_rate: float, xp):
    """One-pole step ``b = 1 - exp(-1 / (tau fs))`` of a time constant in ms (``expm1``)."""
    return -xp.expm1(-1000.0 / (time_ms * float(sample_rate)))


class Compressor(Block):
    """Feed-forward compressor: peak level, soft-knee curve, branching attack/release ballistics
    on the reduction in dB, makeup gain (Giannoulis et al. 2012; see the module docstring).

    ``y = x * 10**((makeup_db - smoothed_reduction) / 20)``. Stateful: the smoother's state is
    carried across a render's chunks and frames (``step_np``).
    """

    name = "compressor"
    rate = "sample"
    stateful = True
    params = (
        ParamSpec("threshold_db", "dBFS", -60.0, 0.0, "linear", -20.0),
        ParamSpec("ratio", "", 1.0, 20.0, "log", 4.0),
        ParamSpec("knee_db", "dB", 0.0, 24.0, "linear", 6.0),
        ParamSpec("attack_ms", "ms", 0.1, 200.0, "log", 10.0),
        ParamSpec("release_ms", "ms", 5.0, 2000.0, "log", 100.0),
        ParamSpec("makeup_db", "dB", -24.0, 24.0, "linear", 0.0),
    )

    # ---- TensorFlow (training, engine="graph")
    def step(self, audio, controls: Mapping[str, Any], sample_rate: float, state=None):
        """TF kernel with state: ``audio [rows, n]``, ``state [rows]`` (``None``: silence).

        Returns:
            ``(out [rows, n], state [rows])``.
        """
        audio = tf.convert_to_tensor(audio, tf.float32)
        shape = tf.shape(audio)

        def full(value):  # the smoother's op takes per-sample arrays
            return tf.broadcast_to(tf.cast(value, tf.float32), shape)

        level = 10.0 / math.log(10.0) * tf.math.log(audio * audio + LEVEL_FLOOR)
        g = gain_reduction(
            level, controls["threshold_db"], controls["ratio"], controls["knee_db"], tf.math
        )
        b_att = step_size(full(controls["attack_ms"]), sample_rate, tf.math)
        b_rel = step_size(full(controls["release_ms"]), sample_rate, tf.math)
        y0 = tf.zeros(shape[:1], tf.float32) if state is None else tf.cast(state, tf.float32)
        smoothed = smooth_tf(full(g), b_att, b_rel, y0)
        out = audio * tf.exp((controls["makeup_db"] - smoothed) * _LN10_20)
        last = tf.concat([y0[:, None], smoothed], axis=1)[:, -1]
        return out, last

    def kernel(self, audio, controls: Mapping[str, Any], sample_rate: float):
        return self.step(audio, controls, sample_rate)[0]

    # ---- numpy (rendering)
    def initial_state_np(self, rows: int) -> np.ndarray:
        """Silence before the first sample: no reduction, float64 ``[rows]``."""
        return np.zeros(rows, np.float64)

    def step_np(self, audio, controls: Mapping[str, Any], sample_rate: float, state=None):
        """numpy kernel with state: ``audio`` float32 ``[rows, n]``, ``state`` float64 ``[rows]``.

        Returns:
            ``(out float32 [rows, n], state float64 [rows])``.
        """
        audio = np.asarray(audio, np.float32)
        shape = audio.shape

        def f64(value):
            return np.asarray(value, np.float64)

        x = audio.astype(np.float64)
        level = 10.0 * np.log10(x * x + LEVEL_FLOOR)
        t, r, w = (f64(controls[k]) for k in ("threshold_db", "ratio", "knee_db"))
        g = np.broadcast_to(gain_reduction(level, t, r, w, np), shape)
        b_att = step_size(f64(controls["attack_ms"]), sample_rate, np)
        b_rel = step_size(f64(controls["release_ms"]), sample_rate, np)
        y0 = self.initial_state_np(shape[0]) if state is None else state
        smoothed, _, last = smooth_np(g, b_att, b_rel, y0)
        out = x * np.exp((f64(controls["makeup_db"]) - smoothed) * _LN10_20)
        return out.astype(np.float32), last

    def kernel_np(self, audio, controls: Mapping[str, Any], sample_rate: float):
        return self.step_np(audio, controls, sample_rate)[0]

    # ---- Faust (export): the same formulas, the smoother as a feedback loop (state 0 at start)
    def faust(self, x, controls, dry=None):
        c = controls
        return (
            f"(cx * dbgain({c['makeup_db']} - csm) with {{ cx = {x};"
            f" clv = 10.0 * log10(cx * cx + {LEVEL_FLOOR!r});"
            f" cw = max({c['knee_db']}, {KNEE_FLOOR_DB!r}); cd = clv - {c['threshold_db']};"
            " cc = min(max(cd + 0.5 * cw, 0.0), cw);"
            f" cg = (1.0 - 1.0 / {c['ratio']}) * (cc * cc / (2.0 * cw) + max(cd - 0.5 * cw, 0.0));"
            f" cba = onepolestep(1000.0 / ({c['attack_ms']} * SR));"
            f" cbr = onepolestep(1000.0 / ({c['release_ms']} * SR));"
            " cstep(prev) = prev + select2(cg > prev, cbr, cba) * (cg - prev);"
            " csm = cstep ~ _; })"
        )


__all__ = [
    "Compressor",
    "KNEE_FLOOR_DB",
    "LEVEL_FLOOR",
    "step_size",
    "gain_reduction",
    "smooth_backward_np",
    "smooth_np",
    "smooth_tf",
]
