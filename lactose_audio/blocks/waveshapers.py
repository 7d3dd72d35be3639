"""Waveshapers: memoryless, sample-rate blocks (parameters may change every sample).

Each block has two kernels side by side on the same physical controls: ``kernel`` (TensorFlow,
float32, differentiable: training and ``engine="graph"``) and ``kernel_np`` (numpy, float32:
rendering, no TensorFlow import); ``tests/test_block_contract.py`` checks that they agree on
random inputs and parameters for every registered block.

Every shaper maps silence to silence (``f(0) = 0``): where a formula would add a DC offset
(a biased tanh, even Chebyshev terms, an MLP) its value at 0 is subtracted, so a learned
asymmetry shows up as even harmonics, not as DC.
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

_LN10_20 = math.log(10.0) / 20.0


def db_gain_tf(db: tf.Tensor) -> tf.Tensor:
    """``10 ** (db / 20)`` as a TF op."""
    return tf.exp(tf.cast(db, tf.float32) * _LN10_20)


def db_gain_np(db: np.ndarray) -> np.ndarray:
    """``10 ** (db / 20)``, float32 (computed in float64), any shape."""
    return np.exp(np.asarray(db, np.float64) * _LN10_20).astype(np.float32)


@_jit(contract=True)
def _affine_rows(audio, scale, offset, out):  # pragma: no cover - compiled
    # out[r, i] = audio[r, i] * scale[r] + offset[r]: one vectorised pass (numpy's broadcast of
    # a [rows, 1] operand is about 3x slower than its scalar fast path)
    for r in range(audio.shape[0]):
        s = scale[r]
        o = offset[r]
        for i in range(audio.shape[1]):
            out[r, i] = audio[r, i] * s + o


def affine_np(audio: np.ndarray, scale: Any, offset: Any = 0.0) -> np.ndarray:
    """``audio * scale + offset`` in float32, in one pass for per-row controls.

    Args:
        audio: float32 ``[rows, n]`` (rows: frames, or 1).
        scale: Scalar, ``[rows, 1]`` (per frame) or broadcastable (per sample).
        offset: Same shapes as ``scale``.

    Returns:
        float32 ``[rows, n]`` (a new array).
    """
    scale = np.asarray(scale, np.float32)
    offset = np.asarray(offset, np.float32)
    rows = audio.shape[0] if audio.ndim == 2 else -1
    per_row = all(v.ndim == 0 or v.shape == (rows, 1) for v in (scale, offset))
    if not per_row or audio.dtype != np.float32 or not audio.flags.c_contiguous:
        return np.asarray(audio * scale + offset, np.float32)
    out = np.empty_like(audio)
    _affine_rows(
        audio,
        np.ascontiguousarray(np.broadcast_to(scale.reshape(-1), (rows,))),
        np.ascontiguousarray(np.broadcast_to(offset.reshape(-1), (rows,))),
        out,
    )
    return out


def _f32(value: np.ndarray) -> np.ndarray:
    return np.asarray(value, np.float32)


def _softplus_np(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(np.float32(0.0), x)


class TanhDrive(Block):
    """``y = (tanh(x * 10**(drive_db/20) + bias) - tanh(bias)) * 10**(gain_db/20)``.

    With ``bias = 0`` this is exactly pedalboard's ``Distortion``: ``tanh(x * drive) * gain``.
    The bias makes the curve asymmetric (even harmonics); ``tanh(bias)`` is subtracted so the
    bias adds no DC at silence.
    """

    name = "tanh"
    rate = "sample"
    params = (
        ParamSpec("drive_db", "dB", -24.0, 48.0, "linear", 0.0),
        ParamSpec("bias", "", -1.0, 1.0, "linear", 0.0),
        ParamSpec("gain_db", "dB", -48.0, 24.0, "linear", 0.0),
    )

    def kernel(self, audio, controls: Mapping[str, tf.Tensor], sample_rate: float):
        bias = controls["bias"]
        shaped = tf.tanh(audio * db_gain_tf(controls["drive_db"]) + bias) - tf.tanh(bias)
        return shaped * db_gain_tf(controls["gain_db"])

    def kernel_np(self, audio, controls: Mapping[str, np.ndarray], sample_rate: float):
        bias = _f32(controls["bias"])
        gain = db_gain_np(controls["gain_db"])
        y = affine_np(audio, db_gain_np(controls["drive_db"]), bias)
        np.tanh(y, out=y)
        return affine_np(y, gain, -np.tanh(bias) * gain)

    def faust_derived(self, controls):
        c = controls
        return {
            "drive": f"dbgain({c['drive_db']})",
            "offset": f"tanh({c['bias']})",
            "gain": f"dbgain({c['gain_db']})",
        }

    def faust(self, x, controls, dry=None):
        c = controls
        return f"(tanh({x} * {c['drive']} + {c['bias']}) - {c['offset']}) * {c['gain']}"


class AsymmetricClip(Block):
    """Soft clip with separate drive for each polarity.

    ``y = tanh(x * 10**(drive_pos_db/20))`` for ``x >= 0``, ``tanh(x * 10**(drive_neg_db/20))``
    for ``x < 0``, times ``10**(gain_db/20)`` (a diode pair with unequal thresholds).
    """

    name = "asym_clip"
    rate = "sample"
    params = (
        ParamSpec("drive_pos_db", "dB", -24.0, 48.0, "linear", 0.0),
        ParamSpec("drive_neg_db", "dB", -24.0, 48.0, "linear", 0.0),
        ParamSpec("gain_db", "dB", -48.0, 24.0, "linear", 0.0),
    )

    def kernel(self, audio, controls: Mapping[str, tf.Tensor], sample_rate: float):
        pos = tf.tanh(audio * db_gain_tf(controls["drive_pos_db"]))
        neg = tf.tanh(audio * db_gain_tf(controls["drive_neg_db"]))
        return tf.where(audio >= 0.0, pos, neg) * db_gain_tf(controls["gain_db"])

    def kernel_np(self, audio, controls: Mapping[str, np.ndarray], sample_rate: float):
        drive = np.where(
            audio >= 0.0, db_gain_np(controls["drive_pos_db"]), db_gain_np(controls["drive_neg_db"])
        )
        return np.tanh(audio * drive) * db_gain_np(controls["gain_db"])

    def faust_derived(self, controls):
        c = controls
        return {
            "pos": f"dbgain({c['drive_pos_db']})",
            "neg": f"dbgain({c['drive_neg_db']})",
            "gain": f"dbgain({c['gain_db']})",
        }

    def faust(self, x, controls, dry=None):
        c = controls
        return f"tanh({x} * select2({x} >= 0, {c['neg']}, {c['pos']})) * {c['gain']}"


class SmoothHardClip(Block):
    """A hard clip at ``+-t`` with rounded corners (softplus knees).

    ``u = x * 10**(drive_db/20)``, ``t = 10**(ceiling_db/20)``, ``s = knee * t``:
    ``y = u - s * softplus((u - t) / s) + s * softplus((-u - t) / s)``. Tends to ``clip(u, -t,
    t)`` as ``knee -> 0``; odd, so ``y(0) = 0``.
    """

    name = "hard_clip"
    rate = "sample"
    params = (
        ParamSpec("drive_db", "dB", -24.0, 48.0, "linear", 0.0),
        ParamSpec("ceiling_db", "dBFS", -40.0, 0.0, "linear", -6.0),
        ParamSpec("knee", "", 0.01, 1.0, "log", 0.1),
    )

    def kernel(self, audio, controls: Mapping[str, tf.Tensor], sample_rate: float):
        u = audio * db_gain_tf(controls["drive_db"])
        t = db_gain_tf(controls["ceiling_db"])
        s = controls["knee"] * t
        return u - s * tf.nn.softplus((u - t) / s) + s * tf.nn.softplus((-u - t) / s)

    def kernel_np(self, audio, controls: Mapping[str, np.ndarray], sample_rate: float):
        u = audio * db_gain_np(controls["drive_db"])
        t = db_gain_np(controls["ceiling_db"])
        s = _f32(controls["knee"]) * t
        return u - s * _softplus_np((u - t) / s) + s * _softplus_np((-u - t) / s)

    def faust_derived(self, controls):
        c = controls
        return {
            "drive": f"dbgain({c['drive_db']})",
            "t": f"dbgain({c['ceiling_db']})",
            "s": f"{c['knee']} * dbgain({c['ceiling_db']})",
        }

    def faust(self, x, controls, dry=None):
        c = controls
        t, s = c["t"], c["s"]
        return (
            f"(u - {s} * softplus((u - {t}) / {s}) + {s} * softplus((0 - u - {t}) / {s})"
            f" with {{ u = {x} * {c['drive']}; }})"
        )


CHEBYSHEV_ORDER = 9


def _chebyshev_terms_np(x: np.ndarray) -> list[np.ndarray]:
    """``[T_k(x) - T_k(0) for k = 1..CHEBYSHEV_ORDER]`` in ``x``'s dtype (``x`` in [-1, 1])."""
    terms, t_prev, t_cur = [x], np.ones_like(x), x
    for k in range(2, CHEBYSHEV_ORDER + 1):
        t_prev, t_cur = t_cur, 2.0 * x * t_cur - t_prev
        at_zero = (-1.0) ** (k // 2) if k % 2 == 0 else 0.0
        terms.append(t_cur - x.dtype.type(at_zero))
    return terms


class ChebyshevShaper(Block):
    """Polynomial shaper: ``y = sum_k c_k (T_k(clip(x, -1, 1)) - T_k(0))``, ``k = 1..9``.

    ``T_k`` are Chebyshev polynomials of the first kind (``c_k`` sets the level of harmonic
    ``k`` for a full-scale sine). The input is hard-clipped to ``[-1, 1]``, the polynomials'
    domain; ``T_k(0)`` is subtracted so silence stays silent. Default: identity (``c1 = 1``).
    """

    name = "chebyshev"
    rate = "sample"
    params = tuple(
        ParamSpec(f"c{k}", "", -2.0, 2.0, "linear", 1.0 if k == 1 else 0.0)
        for k in range(1, CHEBYSHEV_ORDER + 1)
    )

    def kernel(self, audio, controls: Mapping[str, tf.Tensor], sample_rate: float):
        x = tf.clip_by_value(audio, -1.0, 1.0)
        t_prev, t_cur = tf.ones_like(x), x
        out = controls["c1"] * x
        for k in range(2, CHEBYSHEV_ORDER + 1):
            t_prev, t_cur = t_cur, 2.0 * x * t_cur - t_prev
            at_zero = (-1.0) ** (k // 2) if k % 2 == 0 else 0.0
            out += controls[f"c{k}"] * (t_cur - at_zero)
        return out

    def kernel_np(self, audio, controls: Mapping[str, np.ndarray], sample_rate: float):
        terms = _chebyshev_terms_np(np.clip(audio, -1.0, 1.0))
        out = _f32(controls["c1"]) * terms[0]
        for k, term in enumerate(terms[1:], start=2):
            out = out + _f32(controls[f"c{k}"]) * term
        return out

    def fit_curve(self, u, y, weight, start):
        """Coefficients for ``y ~ sum_k c_k (T_k(clip(u)) - T_k(0))``: weighted linear least
        squares within the bounds (``scipy.optimize.lsq_linear``), exact in one solve."""
        from scipy.optimize import lsq_linear

        columns = _chebyshev_terms_np(np.clip(np.asarray(u, np.float64), -1.0, 1.0))
        root = np.sqrt(np.asarray(weight, np.float64))
        result = lsq_linear(
            np.stack(columns, axis=1) * root[:, None],
            np.asarray(y, np.float64) * root,
            bounds=([p.minimum for p in self.params], [p.maximum for p in self.params]),
        )
        if not np.all(np.isfinite(result.x)):
            return None
        return {p.name: float(c) for p, c in zip(self.params, result.x, strict=True)}

    def faust(self, x, controls, dry=None):
        defs = [f"t1 = max(-1.0, min(1.0, {x}));", "t0 = 1.0;"]
        terms = [f"{controls['c1']} * t1"]
        for k in range(2, CHEBYSHEV_ORDER + 1):
            defs.append(f"t{k} = 2.0 * t1 * t{k - 1} - t{k - 2};")
            at_zero = (-1.0) ** (k // 2) if k % 2 == 0 else 0.0
            terms.append(f"{controls[f'c{k}']} * (t{k} - ({at_zero!r}))")
        return f"({' + '.join(terms)} with {{ {' '.join(defs)} }})"


MLP_HIDDEN = 8


def _mlp_layout() -> list[tuple[str, tuple[int, ...]]]:
    h = MLP_HIDDEN
    return [("w1", (h,)), ("b1", (h,)), ("w2", (h, h)), ("b2", (h,)), ("w3", (h,))]


#: The default curve: hidden path 0 alone, ``m(u) = 2 tanh(0.5 tanh(u))`` (slope 1 at 0, a
#: tanh-like saturation at +-0.92), so a fit starts where a tanh drive would and the level
#: and drive found for it carry over; the other units start with random inputs and zero
#: output weight (their gradients are non-zero, so they join in as the fit needs them).
MLP_TANH_PATH = {"w1": {0: 1.0}, "b1": {0: 0.0}, "w2": {0: 0.5}, "w3": {0: 2.0}}


#: The random part of the defaults, rounded to 4 decimals: ``w1`` and ``w2`` drawn uniformly in
#: ``+-1/sqrt(fan_in)`` by ``numpy.random.default_rng(20250215)``, then :data:`MLP_TANH_PATH`
#: written over them and ``W2[i, 0] = 0`` (only hidden unit 0 feeds output unit 0); ``b1``,
#: ``b2`` and ``w3`` start at 0. Written out (``tests/test_blocks.py`` draws them again) so
#: that importing the blocks does not import ``numpy.random`` (15 ms of every ``lactose``
#: command).
MLP_DEFAULT_W1 = (1.0, 0.3869, 0.0314, -0.3221, -0.2952, 0.919, 0.2448, 0.5548)
MLP_DEFAULT_W2 = (
    0.5, 0.229, 0.1899, 0.2471, 0.1504, 0.2257, -0.1644, 0.323,
    0.0, -0.3384, 0.312, 0.0036, -0.0052, 0.3033, 0.2964, 0.0067,
    0.0, -0.1777, 0.0553, 0.2748, -0.1415, 0.1146, -0.3026, 0.1692,
    0.0, -0.0931, -0.2254, 0.174, 0.0206, 0.1466, 0.3169, -0.1533,
    0.0, -0.2453, -0.1647, 0.0782, -0.0794, -0.1767, -0.1656, 0.0257,
    0.0, 0.3316, -0.1625, 0.2588, -0.0305, 0.0988, 0.3424, 0.0357,
    0.0, -0.0315, -0.3011, 0.2521, 0.0984, -0.0341, -0.0811, 0.2029,
    0.0, 0.2562, 0.2488, -0.1669, -0.3451, -0.1418, -0.2428, -0.0201,
)  # fmt: skip


def _mlp_params() -> tuple[ParamSpec, ...]:
    drawn = {"w1": MLP_DEFAULT_W1, "w2": MLP_DEFAULT_W2}
    specs = []
    for group, shape in _mlp_layout():
        init = drawn.get(group, (0.0,) * math.prod(shape))
        for i, value in enumerate(init):
            value = MLP_TANH_PATH.get(group, {}).get(i, value)
            specs.append(ParamSpec(f"{group}_{i}", "", -4.0, 4.0, "linear", float(value)))
    return tuple(specs)


class MLPShaper(Block):
    """A small MLP waveshaper ``1 -> 8 -> 8 -> 1`` with tanh hidden units.

    The bank row *is* the weights (96 parameters ``w1_*, b1_*, w2_*, b2_*, w3_*``, each bounded
    to ``[-4, 4]``): ``y = m(x) - m(0)`` with ``m(x) = w3 . tanh(W2^T tanh(w1 x + b1) + b2)``
    (``W2[i, j] = w2_{8 i + j}``), so silence stays silent (an output bias would cancel).
    Defaults: a tanh-like curve (:data:`MLP_TANH_PATH`).
    """

    name = "mlp"
    rate = "sample"
    params = _mlp_params()

    def _stack(self, controls, group: str, size: int) -> tf.Tensor:
        values = [tf.cast(controls[f"{group}_{i}"], tf.float32) for i in range(size)]
        return tf.stack(values, axis=-1)

    def _forward(self, x, w1, b1, w2, b2, w3):
        h1 = tf.tanh(x[..., None] * w1 + b1)  # [..., 8]
        # [..., 1, 8] @ [..., 8, 8]: the batched product broadcasts the (per-row) weights
        # instead of materialising an [..., 8, 8] tensor per sample
        h2 = tf.tanh(tf.squeeze(tf.matmul(h1[..., None, :], w2), axis=-2) + b2)
        return tf.reduce_sum(h2 * w3, axis=-1)

    def kernel(self, audio, controls: Mapping[str, tf.Tensor], sample_rate: float):
        h = MLP_HIDDEN
        w1 = self._stack(controls, "w1", h)
        b1 = self._stack(controls, "b1", h)
        w2 = self._stack(controls, "w2", h * h)
        w2 = tf.reshape(w2, tf.concat([tf.shape(w2)[:-1], [h, h]], axis=0))
        b2 = self._stack(controls, "b2", h)
        w3 = self._stack(controls, "w3", h)
        weights = (w1, b1, w2, b2, w3)
        # m(0) per control row: zeros shaped like the controls, not like the audio
        at_zero = self._forward(tf.zeros_like(w1[..., 0]), *weights)
        return self._forward(audio, *weights) - at_zero

    def kernel_np(self, audio, controls: Mapping[str, np.ndarray], sample_rate: float):
        """numpy kernel; controls ``[...]`` broadcast against ``audio [..., n]``.

        Per-row controls (last axis 1, e.g. per frame ``[n_frames, 1]``) run one batched
        ``[n, 8] @ [8, 8]`` product per row; per-sample controls one 8x8 product per sample.
        """
        h = MLP_HIDDEN

        def stack(group: str, size: int) -> np.ndarray:
            return np.stack([_f32(controls[f"{group}_{i}"]) for i in range(size)], axis=-1)

        w1, b1, b2, w3 = stack("w1", h), stack("b1", h), stack("b2", h), stack("w3", h)
        w2 = stack("w2", h * h).reshape(w1.shape[:-1] + (h, h))
        lead = w1.shape[:-1]
        per_row = len(lead) == 0 or (len(lead) == audio.ndim and lead[-1] == 1)

        def hidden2(h1, w2):
            if per_row:
                w2 = w2 if len(lead) == 0 else w2[..., 0, :, :]
                return h1 @ w2
            return np.einsum("...i,...ij->...j", h1, w2)

        h1 = np.tanh(audio[..., None] * w1 + b1)  # [..., n, 8]
        y = np.sum(np.tanh(hidden2(h1, w2) + b2) * w3, axis=-1)
        h0 = np.tanh(b1)  # m(0), per control row
        m0 = np.sum(np.tanh(np.einsum("...i,...ij->...j", h0, w2) + b2) * w3, axis=-1)
        return (y - m0).astype(np.float32)

    def fit_curve(self, u, y, weight, start):
        """Least-squares weights for ``m(u) - m(0) ~ y`` (L-BFGS-B within the bounds, from
        ``start``, exact gradient); the fitted weights, or ``None`` if the fit failed."""
        from scipy.optimize import minimize

        h = MLP_HIDDEN
        names = self.param_names
        lo = np.array([p.minimum for p in self.params])
        hi = np.array([p.maximum for p in self.params])
        x0 = np.clip(np.array([float(start[n]) for n in names]), lo, hi)
        u = np.asarray(u, np.float64)
        y = np.asarray(y, np.float64)
        w = np.asarray(weight, np.float64) / max(float(np.sum(weight * y * y)), 1e-30)
        cuts = np.cumsum([0] + [int(np.prod(shape)) for _, shape in _mlp_layout()])

        def loss_and_grad(theta):
            w1, b1, w2, b2, w3 = (theta[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True))
            w2 = w2.reshape(h, h)
            h1 = np.tanh(u[:, None] * w1 + b1)
            h2 = np.tanh(h1 @ w2 + b2)
            h1z = np.tanh(b1)
            h2z = np.tanh(h1z @ w2 + b2)
            r = h2 @ w3 - h2z @ w3 - y
            g = 2.0 * w * r  # dL/dm(u)
            gz = -np.sum(g)  # dL/dm(0)
            da2 = g[:, None] * w3 * (1.0 - h2 * h2)
            da2z = gz * w3 * (1.0 - h2z * h2z)
            dz1 = (da2 @ w2.T) * (1.0 - h1 * h1)
            dz1z = (w2 @ da2z) * (1.0 - h1z * h1z)
            grad = np.concatenate([
                dz1.T @ u,
                dz1.sum(0) + dz1z,
                (h1.T @ da2 + np.outer(h1z, da2z)).reshape(-1),
                da2.sum(0) + da2z,
                h2.T @ g + h2z * gz,
            ])  # fmt: skip
            return float(np.sum(w * r * r)), grad

        bounds = list(zip(lo, hi, strict=True))
        result = minimize(
            loss_and_grad, x0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 500}
        )
        if not np.all(np.isfinite(result.x)):
            return None
        return {n: float(v) for n, v in zip(names, result.x, strict=True)}

    @staticmethod
    def _faust_net(u: str, c, tag: str) -> str:
        """``m(u)`` as a Faust expression (definitions named ``{tag}...``)."""
        h = MLP_HIDDEN
        defs = [f"{tag}1_{i} = tanh({u} * {c[f'w1_{i}']} + {c[f'b1_{i}']});" for i in range(h)]
        for j in range(h):
            dot = " + ".join(f"{tag}1_{i} * {c[f'w2_{h * i + j}']}" for i in range(h))
            defs.append(f"{tag}2_{j} = tanh({dot} + {c[f'b2_{j}']});")
        out = " + ".join(f"{tag}2_{j} * {c[f'w3_{j}']}" for j in range(h))
        return f"({tag} with {{ {' '.join(defs)} {tag} = {out}; }})"

    def faust_derived(self, controls):
        return {"at_zero": self._faust_net("0.0", controls, "z")}  # m(0)

    def faust(self, x, controls, dry=None):
        return f"{self._faust_net(f'({x})', controls, 'm')} - {controls['at_zero']}"


__all__ = [
    "AsymmetricClip",
    "affine_np",
    "ChebyshevShaper",
    "MLPShaper",
    "SmoothHardClip",
    "TanhDrive",
    "db_gain_np",
    "db_gain_tf",
]
