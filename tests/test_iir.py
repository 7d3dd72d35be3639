"""The "iir" render engine: exact biquads (vs scipy), vs the graph, streaming, clicks, stability."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from oracles import first_order, rbj

from lactose_audio import iir, svf
from lactose_audio._tf import tf
from lactose_audio.blocks import get_block
from lactose_audio.chains import Chain, Stage, default_chain, make_key
from lactose_audio.errors import ParameterError
from lactose_audio.ranges import UNKEYED, RangeEdges, Selection
from lactose_audio.render import RenderStream, render

SR = 44100.0
BLOCK_SIZES = [1, 37, 512, 4096, 10000]


CASES = [
    ("lowpass", 20.0, 0.25, 0.0),
    ("lowpass", 3000.0, 0.7071, 0.0),
    ("lowpass", 21000.0, 2.0, 0.0),
    ("highpass", 20.0, 2.0, 0.0),
    ("highpass", 120.0, 0.7071, 0.0),
    ("highpass", 15000.0, 0.25, 0.0),
    ("bandpass", 40.0, 2.0, 0.0),
    ("bandpass", 800.0, 0.5, 0.0),
    ("peak", 1000.0, 1.2, 12.0),
    ("peak", 60.0, 0.25, -24.0),
    ("lowshelf", 200.0, 0.7071, -12.0),
    ("lowshelf", 20.0, 2.0, 24.0),
    ("highshelf", 5000.0, 0.7071, 12.0),
    ("highshelf", 19000.0, 0.25, -24.0),
]


def _controls(kind, fc, q, gain_db):
    values = {"cutoff_hz": fc, "q": q, "gain_db": gain_db}
    names = get_block(kind).param_names
    return {n: np.float64(values[n]) for n in names}


@pytest.mark.parametrize("kind,fc,q,gain_db", CASES)
def test_biquad_equals_sosfilt_float64(kind, fc, q, gain_db):
    x = np.random.default_rng(0).standard_normal(20000)
    b, a = iir.block_coefficients(get_block(kind), _controls(kind, fc, q, gain_db), SR)
    y = svf.filter_static(b, a, x)
    ref = scipy.signal.sosfilt(rbj(kind, fc, q, gain_db, SR), x)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-6 * max(1.0, np.abs(ref).max()))


@pytest.mark.parametrize("kind", ["lowshelf1", "highshelf1"])
@pytest.mark.parametrize("fc,gain_db", [(20.0, 24.0), (1000.0, -24.0), (20000.0, 12.0)])
def test_first_order_equals_lfilter_float64(kind, fc, gain_db):
    x = np.random.default_rng(2).standard_normal(20000)
    controls = {"cutoff_hz": np.float64(fc), "gain_db": np.float64(gain_db)}
    b, a = iir.block_coefficients(get_block(kind), controls, SR)
    y = svf.filter_static(b, a, x)
    ref = scipy.signal.lfilter(*first_order(kind, fc, gain_db, SR), x)
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-6 * max(1.0, np.abs(ref).max()))


def test_cascade_and_dc_blocker_equal_scipy():
    x = np.random.default_rng(1).standard_normal(20000)
    blocks = [("lowpass", 4000.0, 0.9, 0.0), ("peak", 800.0, 1.2, 6.0)]
    coeffs = [iir.block_coefficients(get_block(k), _controls(k, f, q, g), SR) for k, f, q, g in
              blocks]  # fmt: skip
    b = np.stack([c[0] for c in coeffs])
    a = np.stack([c[1] for c in coeffs])
    ref = scipy.signal.sosfilt(np.concatenate([rbj(*c, SR) for c in blocks]), x)
    np.testing.assert_allclose(svf.filter_static(b, a, x), ref, atol=1e-6)
    # DC blocker: its response (TF and numpy) is the closed form (1 - z^-1) / (1 - R z^-1)
    dc = get_block("dc_blocker")
    fc = np.array([10.0, 20.0, 80.0])
    b, a = iir.block_coefficients(dc, {"cutoff_hz": fc}, SR)
    z1 = np.exp(-1j * np.pi * np.arange(513) / 512)
    for response in (
        dc.response({"cutoff_hz": fc}, SR, 1024),
        dc.response({"cutoff_hz": tf.constant(fc)}, SR, 1024).numpy(),
    ):
        for row in range(3):
            pole = np.exp(-2 * np.pi * fc[row] / SR)
            np.testing.assert_allclose(response[row], (1 - z1) / (1 - pole * z1), atol=1e-9)
    for row in range(3):
        pole = np.exp(-2 * np.pi * fc[row] / SR)
        ref = scipy.signal.lfilter([1.0, -1.0], [1.0, -pole], x)
        np.testing.assert_allclose(svf.filter_static(b[row], a[row], x), ref, atol=1e-6)


def guitar_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Plucked notes (decaying harmonics) at varied levels plus a little noise (as the bench)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n, np.float32)
    start = 0
    while start < n:
        length = int(rng.uniform(0.2, 0.8) * SR)
        f0 = 82.41 * 2 ** (rng.integers(0, 30) / 12)
        level = 10 ** (rng.uniform(-30, -1) / 20)
        t = np.arange(min(length, n - start)) / SR
        note = sum(np.sin(2 * np.pi * f0 * k * t) / k**1.5 for k in range(1, 6))
        out[start : start + t.size] += level * np.exp(-t * rng.uniform(2, 8)) * note
        start += length
    return out + 1e-3 * rng.standard_normal(n).astype(np.float32)


def _bench_chain(audio, n_ranges=8, soft_width=0.0):
    chain = default_chain(n_ranges=n_ranges, soft_width=soft_width)
    chain.fit_edges(audio, SR)
    k = np.linspace(0.0, 1.0, n_ranges)[:, None]
    chain[0].set_physical(np.hstack([6.0 - 6.0 * k]))
    chain[1].set_physical(np.hstack([20.0 + 10.0 * k, 0.1 * k, -6.0 + 0.0 * k]))
    chain[2].set_physical(np.hstack([5000.0 - 2000.0 * k, 0.7071 + 0.3 * k]))
    chain[3].set_physical(np.hstack([80.0 + 40.0 * k, 0.7071 + 0.0 * k]))
    return chain


def _esr(y, ref):
    return float(np.sum((y.astype(np.float64) - ref) ** 2) / np.sum(ref.astype(np.float64) ** 2))


@pytest.mark.parametrize("soft_width", [0.0, 0.3])
def test_chain_iir_matches_graph(soft_width):
    audio = guitar_like(6.0)
    chain = _bench_chain(audio, soft_width=soft_width)
    graph = render(chain, audio, SR)
    fast = render(chain, audio, SR, engine="iir")
    assert fast.dtype == np.float32 and fast.shape == audio.shape
    assert _esr(fast, graph) <= 1e-3


def test_chain_with_more_filters_nested_mix_and_fallback():
    audio = guitar_like(3.0, seed=2)
    key = make_key("amplitude")
    edges = RangeEdges((-30.0, -15.0), "dBFS")
    inner = Chain([Stage("tanh"), Stage("peak"), Stage("lowshelf")], mix=0.5)
    inner[1].set_physical([900.0, 1.0, 9.0])
    inner[2].set_physical([150.0, 0.7071, -6.0])
    hp = Stage("highpass", key=key, edges=edges, soft_width=2.0)
    hp.set_physical([[60.0, 0.7071], [120.0, 1.0], [300.0, 0.5]])
    chain = Chain([Stage("gain"), inner, Stage("dc_blocker"), hp, Stage("bandpass")])
    chain[4].set_physical([2000.0, 0.5])
    esr = _esr(render(chain, audio, SR, engine="iir"), render(chain, audio, SR))
    assert esr <= 1e-3
    # a group with a FIR EQ falls back to the graph's frame filter: same output
    eq = Chain([Stage("tanh"), Stage("lowpass"), Stage("fir_eq"), Stage("gain")])
    eq[2].set_physical(np.linspace(-6.0, 6.0, 10))
    from lactose_audio.iir import NumpyBackend

    assert NumpyBackend(eq, SR).fallback_groups == 1
    np.testing.assert_allclose(
        render(eq, audio, SR, engine="iir"), render(eq, audio, SR), atol=1e-5
    )


@pytest.mark.parametrize("soft_width", [0.0, 0.3])
def test_chunked_equals_whole(soft_width):
    audio = guitar_like(1.5, seed=3)
    chain = _bench_chain(audio, soft_width=soft_width)
    whole = render(chain, audio, SR, engine="iir")
    for size in BLOCK_SIZES:
        chunked = render(chain, audio, SR, block_size=size, engine="iir")
        np.testing.assert_allclose(chunked, whole, rtol=1e-6, atol=1e-6, err_msg=f"block {size}")
    stream = RenderStream(chain, SR, engine="iir")
    parts = [stream.process(audio[i : i + 1000]) for i in range(0, audio.size, 1000)]
    np.testing.assert_allclose(np.concatenate([*parts, stream.flush()]), whole, atol=1e-6)


def _alternating_group(kind, rows, hop, soft=False):
    """A one-stage group with two ranges, the selection alternating every frame."""
    stage = Stage(kind, key=make_key("amplitude"), edges=RangeEdges((-20.0,), "dBFS"),
                  soft_width=1.0 if soft else 0.0)  # fmt: skip
    stage.set_physical(rows)
    return iir.BiquadGroup([stage], SR, hop)


def _alternate(n_frames, soft=False):
    lower = (np.arange(n_frames) % 2).astype(np.int32)
    if soft:  # swing across the soft band: weights 0.1 / 0.9 between the rows
        return Selection(np.zeros(n_frames, np.int32), np.ones(n_frames, np.int32),
                         np.where(lower == 1, 0.9, 0.1).astype(np.float32))  # fmt: skip
    return Selection(lower, lower, np.zeros(n_frames, np.float32))


@pytest.mark.parametrize("soft", [False, True])
def test_no_clicks_when_cutoff_alternates_every_frame(soft):
    hop = 512
    n = 40 * hop
    x = (0.5 * np.sin(2 * np.pi * 220.0 * np.arange(n) / SR)).astype(np.float32)
    group = _alternating_group("lowpass", [[300.0, 0.7071], [3000.0, 0.7071]], hop, soft)
    y = group.process(x, [_alternate(n // hop, soft)])
    steady = slice(8 * hop, n)
    jump_in = np.abs(np.diff(x)).max()
    jump_out = np.abs(np.diff(y[steady])).max()
    assert jump_out <= 1.5 * jump_in, (jump_out, jump_in)
    fixed = iir.BiquadGroup([Stage("lowpass")], SR, hop)
    fixed.stages[0].set_physical([300.0, 0.7071])
    assert np.abs(fixed.process(x, [UNKEYED])[steady] - y[steady]).max() > 1e-3


EXTREMES = [
    ("lowpass", [[20.0, 2.0], [22000.0, 0.25]]),
    ("lowpass", [[20.0, 0.25], [22000.0, 2.0]]),
    ("highpass", [[20.0, 0.25], [20000.0, 2.0]]),
    ("bandpass", [[20.0, 2.0], [20000.0, 0.25]]),
    ("peak", [[20.0, 2.0, 24.0], [20000.0, 0.25, -24.0]]),
    ("lowshelf", [[20.0, 2.0, 24.0], [20000.0, 0.25, -24.0]]),
    ("lowshelf", [[20000.0, 2.0, 24.0], [20.0, 0.25, -24.0]]),
    ("highshelf", [[20.0, 0.25, 24.0], [20000.0, 2.0, -24.0]]),
    ("highshelf", [[20000.0, 2.0, 24.0], [20.0, 2.0, -24.0]]),
    ("dc_blocker", [[10.0], [80.0]]),
    ("lowshelf1", [[20.0, 24.0], [20000.0, -24.0]]),
    ("highshelf1", [[20000.0, -24.0], [20.0, 24.0]]),
    ("lowpass1", [[20.0], [22000.0]]),
    ("highpass1", [[5.0], [20000.0]]),
]


@pytest.mark.parametrize("kind,rows", EXTREMES)
@pytest.mark.parametrize("hop", [1, 64, 512])
def test_extreme_parameters_alternating_stay_bounded(kind, rows, hop):
    rng = np.random.default_rng(4)
    n = 60000
    x = rng.standard_normal(n).astype(np.float32)
    for soft in (False, True):
        group = _alternating_group(kind, rows, hop, soft)
        y = group.process(x, [_alternate(-(-n // hop), soft)])
        assert np.all(np.isfinite(y))
        # the largest static gain of these filters is 30 dB (x31, a q = 2 shelf's overshoot);
        # switching every frame (or sample) must not add more than a factor of 2
        assert np.abs(y).max() < 2.0 * 31.2 * np.abs(x).max(), np.abs(y).max()
        assert np.abs(group.state).max() < 1e3


def test_engine_is_checked():
    chain = Chain([Stage("lowpass")])
    with pytest.raises(ParameterError, match="engine"):
        render(chain, np.zeros(100, np.float32), SR, engine="fft")
    with pytest.raises(ParameterError, match="engine"):
        RenderStream(chain, SR, engine="fast")


def test_state_update_is_a_contraction_for_any_g_k():
    """Why interpolated coefficients stay stable: every SVF state matrix has norm <= 1, so
    every convex combination of them (the per-sample fade) does too."""
    rng = np.random.default_rng(5)
    row = np.empty(svf.N_COEFS)
    for g, k in zip(10 ** rng.uniform(-4, 4, 2000), 10 ** rng.uniform(-3, 3, 2000), strict=True):
        svf._lane_coefficients(g, k, 1.0, 0.0, 0.0, row)
        assert np.linalg.norm(row[:4].reshape(2, 2), 2) <= 1.0 + 1e-12


def test_output_is_writeable_float32():
    audio = guitar_like(0.5)
    y = render(Chain([Stage("lowpass"), Stage("tanh")]), audio, SR, engine="iir")
    assert y.dtype == np.float32 and y.flags.writeable
