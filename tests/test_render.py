"""Render: chunked (streaming) output equals whole-file output, for blocks and chains."""

from __future__ import annotations

import numpy as np
import pytest

from lactose_audio.blocks import registered_blocks
from lactose_audio.chains import Chain, Stage, default_chain, make_key
from lactose_audio.errors import ParameterError
from lactose_audio.losses import esr
from lactose_audio.ranges import RangeEdges
from lactose_audio.render import RenderStream, SelectionStream, render

SR = 44100
BLOCK_SIZES = [1, 37, 512, 4096, 10000]


def _signal(n=30000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    env = np.abs(np.sin(2 * np.pi * 1.5 * t)) ** 2  # level sweeps through the ranges
    return (env * (0.8 * np.sin(2 * np.pi * 110 * t) + 0.1 * rng.standard_normal(n))).astype(
        np.float32
    )


def _keyed_random_stage(name, seed, soft_width=0.0):
    stage = Stage(name, key=make_key("amplitude"), edges=RangeEdges((-30.0, -15.0, -6.0), "dBFS"),
                  soft_width=soft_width)  # fmt: skip
    rng = np.random.default_rng(seed)
    rows = [[rng.uniform(p.minimum, p.maximum) if p.scaling == "linear" else
             p.minimum * (p.maximum / p.minimum) ** rng.uniform(0.3, 0.9)
             for p in stage.block.params] for _ in range(stage.n_ranges)]  # fmt: skip
    if name in ("chebyshev", "mlp"):  # keep the polynomial/MLP tame
        rows = np.array(rows) * 0.3
    stage.set_physical(rows)
    return stage


ENGINES = ["graph", "iir"]


def _check_chunked(chain, x, sizes=BLOCK_SIZES, engine="graph"):
    whole = render(chain, x, SR, engine=engine)
    assert whole.shape == x.shape and np.all(np.isfinite(whole))
    for size in sizes:
        chunked = render(chain, x, SR, block_size=size, engine=engine)
        # float32: different frame counts per call may round a few ulps differently
        np.testing.assert_allclose(chunked, whole, rtol=1e-6, atol=1e-6, err_msg=f"block {size}")
    return whole


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(registered_blocks()))
def test_every_block_chunked_equals_whole(name, engine):
    chain = Chain([_keyed_random_stage(name, seed=3)], hop_size=512)
    x = _signal(6000)
    _check_chunked(chain, x, sizes=[37, 512, 4096], engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_default_chain_chunked_equals_whole_all_sizes(engine):
    chain = default_chain(n_ranges=8)
    x = _signal(30000)
    chain.fit_edges(x, SR)
    for i, stage in enumerate(chain):
        stage.set_physical(_keyed_random_stage(stage.block.name, seed=i).physical()[:1])
    chain[1].set_physical(np.array([[24.0 - 2 * k, 0.1, -3.0] for k in range(8)]))
    whole = _check_chunked(chain, x, engine=engine)
    assert np.abs(whole).max() > 0.05


@pytest.mark.parametrize("engine", ENGINES)
def test_soft_edges_mixed_keys_and_nested_chain_stream(engine):
    stages = [
        _keyed_random_stage("gain", 1, soft_width=3.0),
        Stage(
            "tanh", key=make_key("amplitude", rate="sample"), edges=RangeEdges((-20.0,), "dBFS")
        ),  # fmt: skip
        _keyed_random_stage("mix", 7, soft_width=3.0),  # learned dry/wet: dry = chain input
        _keyed_random_stage("lowpass", 2, soft_width=3.0),
        _keyed_random_stage("peak", 4),
        Chain(
            [
                _keyed_random_stage("highshelf", 5),
                Stage("dc_blocker"),
                _keyed_random_stage("mix", 6),
            ],
            mix=0.7,
        ),
    ]
    stages[1].set_physical([[6.0, 0.0, 0.0], [18.0, 0.2, -6.0]])
    chain = Chain(stages, hop_size=1024)
    _check_chunked(chain, _signal(20000), sizes=[1, 37, 1024, 5000], engine=engine)


def test_mix_argument_and_stream_object():
    chain = default_chain(n_ranges=2)
    x = _signal(9000)
    wet = render(chain, x, SR)
    np.testing.assert_allclose(render(chain, x, SR, mix=0.3), 0.3 * wet + 0.7 * x, atol=1e-6)
    stream = RenderStream(chain, SR, mix=0.3)
    parts = [stream.process(x[:5000]), stream.process(x[5000:]), stream.flush()]
    assert parts[0].size == 4096  # whole frames only: latency < hop_size
    np.testing.assert_allclose(np.concatenate(parts), 0.3 * wet + 0.7 * x, atol=1e-6)
    with pytest.raises(ParameterError, match="mix must be between 0 and 1"):
        render(chain, x, SR, mix=1.5)


def _notes(seconds=6.0, gap_seconds=(0.0, 0.3, 1.2), seed=1):
    """Harmonic notes (110-440 Hz, 0.6-1.2 s) separated by silent gaps, float32 ``[n]``."""
    rng = np.random.default_rng(seed)
    out = []
    n_total = int(seconds * SR)
    while sum(p.size for p in out) < n_total:
        n = int(rng.uniform(0.6, 1.2) * SR)
        t = np.arange(n) / SR
        f0 = 110.0 * 2 ** rng.uniform(0, 2)
        note = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 5))
        out.append((0.5 * np.exp(-2.5 * t) * note).astype(np.float32))
        out.append(np.zeros(int(rng.choice(gap_seconds) * SR), np.float32))
    return np.concatenate(out)[:n_total]


def test_pitch_keyed_chain_streams_through_a_delay_line():
    from lactose_audio.conditioning import compute_key
    from lactose_audio.presets import load_preset

    chain = load_preset("pitch_drive").chain
    x = _notes()
    spec = next(s.key for s in chain.stages if s.keyed)
    whole_key = compute_key(spec, x, SR, chain.hop_size)
    key_stream = spec.stream(SR, chain.hop_size)
    streamed_key = np.concatenate([key_stream.process(x), key_stream.flush()])
    np.testing.assert_array_equal(streamed_key, whole_key)  # no gap beyond the look-ahead
    whole = render(chain, x, SR)
    for size in (4096, 65536):
        chunked = render(chain, x, SR, block_size=size)
        assert chunked.shape == x.shape
        assert esr(whole, chunked) <= 1e-7
    stream = RenderStream(chain, SR)
    first = stream.process(x[:8192])
    assert first.size < 8192  # the audio waits for its pitch keys
    rest = [stream.process(x[8192:]), stream.flush()]
    assert esr(whole, np.concatenate([first, *rest])) <= 1e-7
    with pytest.raises(ParameterError, match="pitch"):
        SelectionStream(chain, SR)


def test_pitch_stream_differs_only_where_a_gap_exceeds_the_lookahead():
    from lactose_audio.conditioning import compute_key
    from lactose_audio.presets import load_preset

    chain = load_preset("pitch_drive").chain
    hop = chain.hop_size
    t = np.arange(SR) / SR
    notes = [(0.5 * np.exp(-2.5 * t) * np.sin(2 * np.pi * f0 * t)).astype(np.float32)
             for f0 in (110.0, 330.0, 196.0)]  # fmt: skip
    gap = np.zeros(2 * SR, np.float32)  # 2 s: longer than the 0.5 s look-ahead
    x = np.concatenate([notes[0], gap, notes[1], gap[: SR // 5], notes[2]])
    spec = next(s.key for s in chain.stages if s.keyed)
    whole_key = compute_key(spec, x, SR, hop)
    key_stream = spec.stream(SR, hop, lookahead_seconds=0.5)
    chunks = [key_stream.process(x[i : i + 4096]) for i in range(0, x.size, 4096)]
    streamed_key = np.concatenate([*chunks, key_stream.flush()])
    differ = streamed_key != whole_key
    assert 0 < differ.sum() < 0.5 * differ.size  # the look-ahead is exceeded, in the gaps only
    stream = RenderStream(chain, SR, lookahead_seconds=0.5)
    out = np.concatenate([stream.process(x[i : i + 4096]) for i in range(0, x.size, 4096)]
                         + [stream.flush()])  # fmt: skip
    whole = render(chain, x, SR)
    # oracle: where the streamed key equals the whole-file key (and the filters have had
    # 0.1 s since the last differing frame to forget it), the output is the whole-file render
    settle = int(0.1 * SR / hop)
    recent = np.convolve(differ.astype(float), np.ones(settle + 1))[: differ.size] > 0
    same = np.repeat(~recent, hop)[: x.size]
    assert same.mean() > 0.5
    np.testing.assert_allclose(out[same], whole[same], atol=2e-5)


def test_bad_audio_is_refused_by_render():
    with pytest.raises(ParameterError, match="mono"):
        render(Chain.from_spec("gain"), np.zeros((2, 10), np.float32), SR)
    with pytest.raises(ParameterError, match="finite"):
        render(Chain.from_spec("gain"), np.array([0.0, np.nan], np.float32), SR)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("key", ["amplitude", "sample", "none"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_render_refuses_non_finite_audio_whatever_the_keys(engine, key, bad):
    """Finiteness is checked once, by the key when there is one: every path must refuse."""
    n_ranges = 1 if key == "none" else 3
    chain = Chain.from_spec("gain>tanh>lowpass", key=make_key(key), n_ranges=n_ranges)
    x = np.full(5000, 0.1, np.float32)
    x[4999] = bad
    with pytest.raises(ParameterError, match="finite"):
        render(chain, x, SR, engine=engine)
    with pytest.raises(ParameterError, match="finite"):
        render(chain, x, SR, engine=engine, block_size=1000)
    assert render(Chain.from_spec("gain>lowpass"), np.zeros(0, np.float32), SR).shape == (0,)


def test_cached_filter_tables_follow_bank_changes():
    """render caches the designed per-range filters; changing a bank invalidates them."""
    x = _signal(20000, seed=3)
    chain = default_chain(n_ranges=4)
    chain.fit_edges(x, SR)
    first = render(chain, x, SR)
    np.testing.assert_array_equal(render(chain, x, SR), first)  # cached tables: same bits
    chain[2].set_physical([[800.0, 0.9]] * 4)
    changed = render(chain, x, SR)
    fresh = default_chain(n_ranges=4)
    fresh.fit_edges(x, SR)
    fresh[2].set_physical([[800.0, 0.9]] * 4)
    np.testing.assert_array_equal(changed, render(fresh, x, SR))
    assert np.abs(changed - first).max() > 1e-3
