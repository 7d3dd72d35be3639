"""The ``compressor`` block: oracles for its static curve, ballistics and gradients, and its
state across render chunks.

Oracles: the paper's piecewise static curve and a naive per-sample loop (Giannoulis,
Massberg & Reiss 2012, eqs. 4 and 17) in plain Python float64; central finite differences of
that oracle; ``tf.scan`` autodiff of the same recursion; the whole-file render (chunked ==
whole).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lactose_audio._tf import tf
from lactose_audio.blocks import get_block
from lactose_audio.blocks.dynamics import gain_reduction, smooth_tf
from lactose_audio.chains import Chain, Stage, make_key
from lactose_audio.ranges import RangeEdges
from lactose_audio.render import RenderStream, render

SR = 44100.0
NAMES = ("threshold_db", "ratio", "knee_db", "attack_ms", "release_ms", "makeup_db")


def static_oracle(x_db: float, t: float, r: float, w: float) -> float:
    """Gain reduction ``x_G - y_G`` of the paper's three-case soft-knee curve (eq. 4)."""
    if 2.0 * (x_db - t) < -w:
        y = x_db
    elif 2.0 * abs(x_db - t) <= w:
        y = x_db + (1.0 / r - 1.0) * (x_db - t + w / 2.0) ** 2 / (2.0 * w)
    else:
        y = t + (x_db - t) / r
    return x_db - y


def compressor_oracle(x, params, sample_rate=SR, y0=0.0):
    """Naive loop: ``params`` maps names to scalars or per-sample sequences. Returns
    ``(out, last_state)`` in float64."""
    out = np.empty(len(x))
    prev = y0
    for n, xn in enumerate(np.asarray(x, np.float64)):
        p = {k: float(np.broadcast_to(v, (len(x),))[n]) for k, v in params.items()}
        level = 10.0 * math.log10(xn * xn + 1e-10)
        w = max(p["knee_db"], 1e-3)
        g = static_oracle(level, p["threshold_db"], p["ratio"], w)
        a_att = math.exp(-1.0 / (p["attack_ms"] / 1000.0 * sample_rate))
        a_rel = math.exp(-1.0 / (p["release_ms"] / 1000.0 * sample_rate))
        if g > prev:  # the reduction grows: attack
            prev = a_att * prev + (1.0 - a_att) * g
        else:
            prev = a_rel * prev + (1.0 - a_rel) * g
        out[n] = xn * 10.0 ** ((p["makeup_db"] - prev) / 20.0)
    return out, prev


def bursts(n: int, seed: int) -> np.ndarray:
    """Tone bursts at levels from -50 to 0 dBFS: attacks and releases of every depth."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    env = np.repeat(10 ** (rng.uniform(-50, 0, n // 400 + 1) / 20), 400)[:n]
    return (env * np.sin(2 * np.pi * 220.0 * t) + 1e-4 * rng.standard_normal(n)).astype(np.float32)


def test_static_curve_equals_the_papers_three_cases():
    rng = np.random.default_rng(1)
    level = rng.uniform(-90.0, 10.0, 2000)
    t = rng.uniform(-60.0, 0.0, 2000)
    r = np.exp(rng.uniform(0.0, math.log(20.0), 2000))
    w = rng.uniform(0.0, 24.0, 2000)
    w[:200] = 0.0  # hard knee
    ours = gain_reduction(level, t, r, w, np)
    ref = [static_oracle(*v) for v in zip(level, t, r, np.maximum(w, 1e-3), strict=True)]
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-9)
    tf_ours = gain_reduction(*(tf.constant(v, tf.float64) for v in (level, t, r, w)), tf.math)
    np.testing.assert_allclose(tf_ours.numpy(), ref, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("layout", ["scalar", "per_sample"])
def test_numpy_kernel_equals_naive_loop(layout):
    block = get_block("compressor")
    x = bursts(3000, seed=2)
    rng = np.random.default_rng(3)
    if layout == "scalar":
        params = {"threshold_db": -30.0, "ratio": 6.0, "knee_db": 8.0, "attack_ms": 2.0,
                  "release_ms": 40.0, "makeup_db": 5.0}  # fmt: skip
    else:
        params = {p.name: p.to_physical_np(rng.uniform(-2.0, 2.0, x.size)) for p in block.params}
    ref, _ = compressor_oracle(x, params)
    controls = {k: np.asarray(v, np.float64)[None] if np.ndim(v) else v for k, v in params.items()}
    ours = block.kernel_np(x[None], controls, SR)[0]
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7)
    assert np.max(np.abs(ref - x)) > 0.1  # the case compresses


def test_step_np_carries_state_chunked_equals_whole():
    block = get_block("compressor")
    x = bursts(5000, seed=4)[None]
    controls = {p.name: np.float64(p.default) for p in block.params}
    whole, last = block.step_np(x, controls, SR)
    state, parts = block.initial_state_np(1), []
    for start in range(0, x.shape[1], 777):
        y, state = block.step_np(x[:, start : start + 777], controls, SR, state)
        parts.append(y)
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)
    assert state[0] == last[0]


def scan_smoother(g, b_att, b_rel, y0):
    """The same branching one-pole with tf.scan (autodiff through every step)."""

    def step(prev, inputs):
        gn, ba, br = inputs
        b = tf.where(gn > prev, ba, br)
        return (1.0 - b) * prev + b * gn

    elems = tuple(tf.transpose(v) for v in (g, b_att, b_rel))
    return tf.transpose(tf.scan(step, elems, initializer=y0))


def test_custom_gradient_equals_scan_autodiff():
    rng = np.random.default_rng(5)
    rows, n = 3, 400
    g = tf.constant(np.abs(rng.standard_normal((rows, n)) * 6.0).astype(np.float32))
    a_att = tf.constant(rng.uniform(0.01, 0.5, (rows, n)).astype(np.float32))  # steps 1 - a
    a_rel = tf.constant(rng.uniform(0.001, 0.1, (rows, n)).astype(np.float32))
    y0 = tf.constant(rng.uniform(0.0, 3.0, rows).astype(np.float32))
    upstream = tf.constant(rng.standard_normal((rows, n)).astype(np.float32))
    grads = []
    for fn in (smooth_tf, scan_smoother):
        with tf.GradientTape() as tape:
            tape.watch([g, a_att, a_rel, y0])
            y = fn(g, a_att, a_rel, y0)
            loss = tf.reduce_sum(y * upstream)
        grads.append((y.numpy(), *(t.numpy() for t in tape.gradient(loss, [g, a_att, a_rel, y0]))))
    ours, ref = grads
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-5, atol=1e-5)
    for o, r in zip(ours[1:], ref[1:], strict=True):
        np.testing.assert_allclose(o, r, rtol=1e-4, atol=1e-4 * np.abs(r).max())
    assert np.abs(ours[2]).max() > 0 and np.abs(ours[3]).max() > 0  # both branches used


def test_gradients_equal_finite_differences_of_the_oracle():
    """d loss / d (every parameter and a few input samples) through the TF kernel, vs central
    differences of the float64 naive loop."""
    block = get_block("compressor")
    x = bursts(1200, seed=6)
    params = {"threshold_db": -28.0, "ratio": 5.0, "knee_db": 12.0, "attack_ms": 1.5,
              "release_ms": 15.0, "makeup_db": 3.0}  # fmt: skip
    weights = np.random.default_rng(7).uniform(0.5, 1.5, x.size)

    def loss_oracle(p, xx=x):
        return float(np.sum(compressor_oracle(xx, p)[0] ** 2 * weights))

    variables = {k: tf.Variable(v, dtype=tf.float32) for k, v in params.items()}
    x_var = tf.Variable(x[None])
    with tf.GradientTape() as tape:
        y = block.kernel(x_var, variables, SR)
        loss = tf.reduce_sum(y[0] ** 2 * tf.constant(weights, tf.float32))
    grads = tape.gradient(loss, [*variables.values(), x_var])
    for (name, value), grad in zip(params.items(), grads[:-1], strict=True):
        eps = 1e-3 * max(1.0, abs(value))
        plus = loss_oracle({**params, name: value + eps})
        minus = loss_oracle({**params, name: value - eps})
        fd = (plus - minus) / (2 * eps)
        assert abs(float(grad) - fd) <= 2e-2 * abs(fd) + 1e-3, (name, float(grad), fd)
        assert abs(fd) > 1e-3 * abs(loss_oracle(params)), (
            name
        )  # every parameter matters on this signal
    gx = grads[-1].numpy()[0]
    for i in np.argsort(-np.abs(x))[:3]:  # loud samples: level detection matters there
        xp, xm = x.astype(np.float64), x.astype(np.float64)
        xp[i] += 1e-4
        xm[i] -= 1e-4
        fd = (loss_oracle(params, xp) - loss_oracle(params, xm)) / 2e-4
        assert abs(gx[i] - fd) <= 2e-2 * abs(fd) + 1e-3, (i, gx[i], fd)


def keyed_chain(seed: int) -> Chain:
    amp = make_key("amplitude")
    edges = RangeEdges((-35.0, -20.0, -10.0), "dBFS")
    chain = Chain(
        [Stage("compressor", key=amp, edges=edges), Stage("gain"), Stage("tanh"),
         Stage("lowpass")],
        hop_size=512,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    stage = chain[0]
    stage.bank.assign(rng.uniform(-1.5, 1.5, (4, 6)).astype(np.float32))
    return chain


def test_keyed_render_equals_oracle_with_per_frame_parameters():
    """Per-range parameters change per frame; the render keeps one smoother across frames."""
    chain = Chain([keyed_chain(8)[0]], hop_size=512)
    x = bursts(6000, seed=9)
    sel = chain.selections(x, SR)[0]
    rows = chain[0].physical()[np.repeat(sel.lower, 512)[: x.size]]
    ref, _ = compressor_oracle(x, {k: rows[:, i] for i, k in enumerate(NAMES)})
    np.testing.assert_allclose(render(chain, x, SR), ref, rtol=1e-5, atol=1e-7)
    graph = render(chain, x, SR, engine="graph")
    np.testing.assert_allclose(graph, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 511, 777, 4096])
def test_render_stream_chunked_equals_whole(chunk):
    chain = keyed_chain(10)
    x = bursts(9000, seed=11)
    whole = render(chain, x, SR)
    stream = RenderStream(chain, SR)
    parts = [stream.process(x[i : i + chunk]) for i in range(0, x.size, chunk)]
    parts.append(stream.flush())
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_graph_stream_carries_the_state():
    """engine="graph" streams carry the smoother's state with the filter tails."""
    chain = keyed_chain(12)
    x = bursts(9000, seed=13)
    whole = render(chain, x, SR, engine="graph")
    chunked = render(chain, x, SR, engine="graph", block_size=2000)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)


def test_spec_and_defaults():
    chain = Chain.from_spec("compressor>gain>tanh>lowpass", key=make_key("amplitude"), n_ranges=4)
    assert [s.block.name for s in chain] == ["compressor", "gain", "tanh", "lowpass"]
    block = get_block("compressor")
    assert block.param_names == NAMES and block.stateful
    assert "threshold_db=-20 dBFS" in repr(block)


def test_preset_round_trip_renders_the_same(tmp_path):
    from lactose_audio.presets import Effect, load_preset, save_preset

    chain = keyed_chain(14)
    x = bursts(4000, seed=15)
    coverage = [{"counts": [1] * st.n_ranges, "flagged": [False] * st.n_ranges} for st in chain]
    path = save_preset(Effect(chain, name="comp", coverage=coverage), tmp_path / "comp.json")
    effect = load_preset(path)
    assert effect.chain[0].block.name == "compressor"
    # physical values are stored (float64 -> raw float32 again): equal to float32 rounding
    np.testing.assert_allclose(effect(x, sample_rate=SR), render(chain, x, SR), atol=1e-6)


def test_rendering_a_compressor_imports_no_tensorflow():
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    probe = (
        "import json, sys, numpy as np\n"
        "from lactose_audio.chains import Chain\n"
        "chain = Chain.from_spec('compressor>gain>tanh>lowpass', n_ranges=1)\n"
        "y = chain(np.sin(np.arange(5000) / 9.0).astype(np.float32), 44100)\n"
        "assert np.all(np.isfinite(y))\n"
        "print('@@' + json.dumps('tensorflow' in sys.modules))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("@@")][-1]
    assert json.loads(line[2:]) is False


def test_the_drive_search_looks_past_a_compressor():
    from lactose_audio.initialise import find_knobs

    chain = Chain.from_spec("compressor>gain>tanh>lowpass>highpass")
    drive, level = find_knobs(chain)
    n_comp = get_block("compressor").n_params
    assert drive[1] == [n_comp]  # the gain after the compressor
    assert level[1] == [n_comp + 1 + 2]  # the tanh's output gain_db
