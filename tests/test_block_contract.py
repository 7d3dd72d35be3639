"""Every registered block: its numpy side equals its TF side, and a numpy render equals the
TF-kernel render (today's ``iir`` engine, ESR <= 1e-7) and the training graph (ESR <= 1e-4).

Oracles: each block's TF ``kernel`` / ``response`` / ``coefficients`` on the same physical
values; ``engine="graph"`` (the training graph) for whole chains.
"""

from __future__ import annotations

import numpy as np
import pytest

from lactose_audio._tf import tf
from lactose_audio.blocks import get_block, registered_blocks
from lactose_audio.blocks.filters import Biquad
from lactose_audio.chains import Chain, Stage, make_key
from lactose_audio.iir import NumpyBackend
from lactose_audio.ops import NP, tf_ops
from lactose_audio.ranges import RangeEdges
from lactose_audio.render import render

SR = 44100.0
BUILTIN = sorted(
    n for n, cls in registered_blocks().items() if cls.__module__.startswith("lactose_audio.")
)
POINTWISE = [n for n in BUILTIN if not get_block(n).is_linear]
LINEAR = [n for n in BUILTIN if get_block(n).is_linear]


def esr(ref: np.ndarray, out: np.ndarray) -> float:
    ref = np.asarray(ref, np.float64)
    return float(np.sum((ref - np.asarray(out, np.float64)) ** 2) / np.sum(ref**2))


def random_physical(block, rng, shape) -> dict[str, np.ndarray]:
    """Physical values drawn through the raw axis (raw uniform in [-2, 2]): whole ranges."""
    return {p.name: p.to_physical_np(rng.uniform(-2.0, 2.0, size=shape)) for p in block.params}


def tf_kernel(block, audio, controls, **extra):
    const = {k: tf.constant(np.asarray(v, np.float32)) for k, v in controls.items()}
    extra = {k: tf.constant(v) for k, v in extra.items()}
    return np.asarray(block.kernel(tf.constant(audio), const, SR, **extra))


@pytest.mark.parametrize("name", POINTWISE)
@pytest.mark.parametrize("layout", ["per_row", "per_sample", "scalar"])
def test_numpy_kernel_equals_tf_kernel(name, layout):
    block = get_block(name)
    rng = np.random.default_rng(7)
    audio = (rng.standard_normal((6, 301)) * rng.uniform(0.01, 2.0, (6, 1))).astype(np.float32)
    shape = {"per_row": (6, 1), "per_sample": (6, 301), "scalar": ()}[layout]
    controls = random_physical(block, rng, shape)
    controls = {k: np.asarray(v, np.float32).astype(np.float64) for k, v in controls.items()}
    extra = {"dry": rng.standard_normal(audio.shape).astype(np.float32)} if block.uses_dry else {}
    ours = block.kernel_np(audio, controls, SR, **extra)
    ref = tf_kernel(block, audio, controls, **extra)
    assert ours.dtype == np.float32 and ours.shape == audio.shape
    # float32 rounding of the largest intermediate (a 48 dB drive before a clip that subtracts
    # two large terms) bounds the disagreement of two float32 kernels
    drive = max(
        [1.0] + [10 ** (float(np.max(v)) / 20) for k, v in controls.items() if k.endswith("_db")]
    )
    scale = max(1.0, float(np.abs(ref).max()), float(np.abs(audio).max()) * drive)
    np.testing.assert_allclose(ours, ref, rtol=2e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("name", POINTWISE)
def test_numpy_kernel_empty_and_one_sample(name):
    block = get_block(name)
    controls = {p.name: np.float64(p.default) for p in block.params}
    for n in (0, 1):
        audio = np.full((1, n), 0.25, np.float32)
        extra = {"dry": audio} if block.uses_dry else {}
        out = block.kernel_np(audio, controls, SR, **extra)
        assert out.shape == (1, n) and np.all(np.isfinite(out))


@pytest.mark.parametrize("name", LINEAR)
def test_numpy_response_equals_tf_response(name):
    block = get_block(name)
    controls = random_physical(block, np.random.default_rng(11), (5,))
    ours = block.response(controls, SR, 1024, NP)
    ref = block.response({k: tf.constant(v) for k, v in controls.items()}, SR, 1024).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)
    if isinstance(block, Biquad) or name == "dc_blocker":
        b_np, a_np = block.coefficients(controls, SR, NP)
        b_tf, a_tf = block.coefficients(controls, SR, tf_ops())
        for ours_c, ref_c in zip((*b_np, *a_np), (*b_tf, *a_tf), strict=True):
            np.testing.assert_allclose(ours_c, np.asarray(ref_c), rtol=1e-12, atol=1e-15)


# ---- whole chains: numpy render vs the TF kernels (today's iir) and vs the graph -------------


def guitar_like(seconds: float, seed: int) -> np.ndarray:
    """Decaying harmonic notes at varied levels (the amplitude key moves between ranges)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n, np.float32)
    start = 0
    while start < n:
        length = int(rng.uniform(0.15, 0.5) * SR)
        f0 = 82.41 * 2 ** (rng.integers(0, 30) / 12)
        t = np.arange(min(length, n - start)) / SR
        note = sum(np.sin(2 * np.pi * f0 * k * t) / k**1.5 for k in range(1, 6))
        level = 10 ** (rng.uniform(-36, -3) / 20)
        out[start : start + t.size] += level * np.exp(-t * rng.uniform(2, 8)) * note
        start += length
    return out + 1e-3 * rng.standard_normal(n).astype(np.float32)


def chain_for(name: str, soft: bool, seed: int) -> Chain:
    """``name`` keyed on amplitude (4 ranges) and on the sample (pointwise only), then a nested
    chain (``name`` unkeyed, then ``mix`` keyed) mixed 0.7 with its input."""
    amp = make_key("amplitude")
    width = 4.0 if soft else 0.0
    edges = RangeEdges((-40.0, -25.0, -12.0), "dBFS")
    items = [Stage(name, key=amp, edges=edges, soft_width=width)]
    if not get_block(name).is_linear:
        sample_edges = RangeEdges((-0.1, 0.0, 0.1), "")
        items.append(
            Stage(name, key=make_key("sample"), edges=sample_edges, soft_width=0.05 * soft)
        )
    nested = Chain([Stage(name), Stage("mix", key=amp, edges=edges, soft_width=width)], mix=0.7)
    chain = Chain([*items, nested, Stage("highpass")], hop_size=1024)
    rng = np.random.default_rng(seed)
    for stage in chain.stages:
        raw = rng.uniform(-1.0, 1.0, (stage.n_ranges, stage.bank.n_params))
        if stage.block.is_linear:
            # neighbouring ranges of a trained filter differ moderately; the engines differ
            # only in how a filter change is faded (the graph fades the input between FIRs)
            raw = raw[:1] + 0.15 * (raw - raw[:1])
        if stage.block.name in ("gain", "tanh", "asym_clip", "hard_clip"):
            raw[:] = np.clip(raw, -1.0, 0.0)  # keep the levels sensible (no +36 dB twice)
        stage.bank.assign(raw.astype(np.float32))
    return chain


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("name", BUILTIN)
def test_numpy_render_equals_tf_kernels_and_graph(name, soft):
    x = guitar_like(1.5, seed=1)
    chain = chain_for(name, soft, seed=BUILTIN.index(name))
    ours = render(chain, x, SR)
    sels = chain.selections(x, SR)
    oracle = NumpyBackend(chain, SR, tf_kernels=True).process(x, sels)
    assert esr(oracle, ours) <= 1e-7
    graph = render(chain, x, SR, engine="graph")
    assert esr(graph, ours) <= 1e-4
    # chunked == whole
    chunked = render(chain, x, SR, block_size=3000)
    np.testing.assert_allclose(chunked, ours, atol=1e-6)


@pytest.mark.parametrize("soft", [0.0, 4.0], ids=["hard", "soft"])
def test_numpy_frame_filter_equals_graph(soft):
    """A group the recursion cannot run (``fir_eq`` with biquads, several selections) runs the
    graph's frame filter in numpy: same algorithm, so equal to float32 rounding, also chunked."""
    amp = make_key("amplitude")
    edges = RangeEdges((-40.0, -25.0, -12.0), "dBFS")
    chain = Chain(
        [
            Stage("fir_eq", key=amp, edges=edges, soft_width=soft),
            Stage("lowpass", key=amp, edges=RangeEdges((-30.0,), "dBFS"), soft_width=soft),
            Stage("dc_blocker"),
        ]
    )
    rng = np.random.default_rng(5)
    for stage in chain.stages:
        raw = rng.uniform(-1.5, 1.5, (stage.n_ranges, stage.block.n_params))
        stage.bank.assign(raw.astype(np.float32))
    x = guitar_like(1.0, seed=2)
    assert NumpyBackend(chain, SR).fallback_groups == 1
    ours = render(chain, x, SR)
    assert esr(render(chain, x, SR, engine="graph"), ours) <= 1e-8
    np.testing.assert_allclose(render(chain, x, SR, block_size=777), ours, atol=1e-6)
