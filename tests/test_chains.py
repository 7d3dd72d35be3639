"""Chains: list-like API, spec strings, config round trip, selections/forward for training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lactose_audio._tf import tf
from lactose_audio.chains import Chain, Stage, default_chain, frame_mean, make_key
from lactose_audio.errors import ParameterError
from lactose_audio.ranges import RangeEdges, Selection

SR = 44100


def _guitarish(seconds=1.0, seed=0):
    """Decaying plucks at a few levels: the amplitude key visits several ranges."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    out = np.zeros(n)
    for start in np.arange(0, seconds, 0.25):
        f0, level = rng.choice([82.4, 110.0, 196.0]), rng.choice([0.05, 0.3, 0.9])
        env = np.where(t >= start, np.exp(-(t - start) * 6.0), 0.0)
        out += level * env * np.sin(2 * np.pi * f0 * t) * (t >= start)
    return out.astype(np.float32)


def test_list_like_and_nesting():
    chain = Chain.from_spec("gain>tanh")
    assert len(chain) == 2 and [s.block.name for s in chain] == ["gain", "tanh"]
    chain.append(Stage("lowpass"))
    inner = Chain([Stage("highpass")], mix=0.5)
    chain.append(inner)
    assert len(chain) == 4 and chain[3] is inner
    assert [s.block.name for s in chain.stages] == ["gain", "tanh", "lowpass", "highpass"]
    assert len(chain.trainable_variables) == 4
    with pytest.raises(ParameterError, match="Stage or Chain"):
        chain.append("lowpass")


def test_nested_mix_is_dry_wet_of_the_sub_chain():
    x = _guitarish(0.5)
    sub = Chain([Stage("tanh")], mix=0.25)
    sub[0].set_physical([20.0, 0.0, 0.0])
    outer = Chain([Stage("gain"), sub])
    outer[0].set_physical([-6.0])
    g = np.float32(10 ** (-6 / 20))
    wet = np.tanh(x * g * 10.0)
    np.testing.assert_allclose(outer(x, SR), 0.25 * wet + 0.75 * x * g, rtol=1e-5, atol=1e-6)


def test_from_spec_keys_and_errors():
    chain = Chain.from_spec("gain>tanh>lowpass@none", key=make_key("amplitude"), n_ranges=4)
    assert [s.n_ranges for s in chain] == [4, 4, 1]
    assert chain[0].key.kind == "amplitude" and chain[2].key is None
    assert chain[0].edges.unit == "dBFS"
    with pytest.raises(ParameterError, match="unknown block"):
        Chain.from_spec("gain>fuzzz")
    with pytest.raises(ParameterError, match="unknown key"):
        Chain.from_spec("gain@loudness")
    with pytest.raises(ParameterError, match="at least one block"):
        Chain.from_spec(" > ")


def test_default_chain_and_repr_with_units():
    chain = default_chain()
    assert [s.block.name for s in chain] == ["gain", "tanh", "lowpass", "highpass"]
    assert all(s.n_ranges == 8 and s.key.kind == "amplitude" for s in chain)
    text = repr(chain)
    assert (
        "cutoff_hz=20000 Hz" in text
        and "cutoff_hz=25 Hz" in text
        and "drive_db=0 dB" in text
        and "@amplitude[8]" in text
    )


def test_config_round_trip_is_exact_and_json():
    chain = default_chain(n_ranges=3, soft_width=2.0)
    chain.fit_edges(_guitarish(1.0), SR)
    rng = np.random.default_rng(1)
    for stage in chain:
        stage.bank.assign(rng.normal(0, 2, stage.bank.variable.shape).astype(np.float32))
    config = chain.to_config()
    text = json.dumps(config, sort_keys=True)
    again = Chain.from_config(json.loads(text))
    assert json.dumps(again.to_config(), sort_keys=True) == text
    for a, b in zip(chain, again, strict=True):
        np.testing.assert_array_equal(a.bank.numpy(), b.bank.numpy())
    stage = config["stages"][2]
    assert stage["block"] == "lowpass" and stage["units"] == {"cutoff_hz": "Hz", "q": ""}
    assert len(stage["ranges"]) == 3 and set(stage["ranges"][0]) == {"cutoff_hz", "q"}
    assert config["hop_size"] == chain.hop_size and stage["soft_width"] == 2.0


def test_from_config_validates_physical_values():
    config = Chain.from_spec("lowpass").to_config()
    config["stages"][0]["ranges"][0]["cutoff_hz"] = 5.0
    with pytest.raises(ParameterError, match="cutoff_hz must be between 20 Hz and 22000 Hz"):
        Chain.from_config(config)


def test_selections_slice_and_forward_match_whole_render():
    chain = default_chain(n_ranges=4, hop_size=1024)
    x = _guitarish(1.0)
    chain.fit_edges(x, SR)
    rng = np.random.default_rng(2)
    for stage in chain:
        rows = np.array([[rng.uniform(p.minimum, p.maximum) if p.scaling == "linear"
                          else p.default for p in stage.block.params]
                         for _ in range(4)])  # fmt: skip
        stage.set_physical(rows)
    sels = chain.selections(x, SR)
    assert all(isinstance(s, Selection) and s.lower.shape == (44,) for s in sels)
    assert len({int(v) for v in sels[0].lower}) > 1  # several ranges really used
    from lactose_audio.render import render

    whole = render(chain, x, SR, engine="graph")  # the training graph, exactly
    forward = chain.forward(tf.constant(x[None]), sels, SR).numpy()[0]
    np.testing.assert_allclose(forward, whole, rtol=1e-5, atol=1e-6)
    # a segment starting on the frame grid, batched twice
    start, n = 8 * 1024, 10 * 1024
    seg = chain.slice_selections(sels, start, n)
    batch = [Selection(*(np.stack([a, a]) for a in s)) for s in seg]
    out = chain.forward(tf.constant(np.stack([x[start : start + n]] * 2)), batch, SR).numpy()
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)
    # same as the whole render once the filter tails from before the segment have decayed
    np.testing.assert_allclose(out[0][6000:], whole[start + 6000 : start + n], atol=1e-5)
    with pytest.raises(ParameterError, match="multiple of hop_size"):
        chain.slice_selections(sels, 100, n)


def test_forward_gradients_reach_every_bank_and_only_used_rows():
    chain = default_chain(n_ranges=4, hop_size=1024)
    x = _guitarish(0.5)
    sels = chain.selections(x, SR)
    sels = [Selection(np.minimum(s.lower, 2), np.minimum(s.upper, 2), s.frac) for s in sels]
    target = tf.constant(np.tanh(3 * x)[None])
    with tf.GradientTape() as tape:
        y = chain.forward(tf.constant(x[None]), sels, SR)
        loss = tf.reduce_mean((y - target) ** 2)
    grads = tape.gradient(loss, chain.trainable_variables)
    for grad in grads:
        grad = tf.convert_to_tensor(grad).numpy()
        assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0
        assert np.all(grad[3] == 0)  # row 3 never selected


def test_frame_mean_of_sample_keys():
    values = np.arange(10, dtype=np.float32)
    np.testing.assert_allclose(frame_mean(values, 4), [1.5, 5.5, 8.5])


def test_bank_shape_mismatch_is_refused():
    from lactose_audio.ranges import RangeBank

    with pytest.raises(ParameterError, match="bank is"):
        Stage("lowpass", bank=RangeBank(2, 2), key=make_key("amplitude"),
              edges=RangeEdges((-20.0, -10.0), "dBFS"))  # fmt: skip
    with pytest.raises(ParameterError, match="need a key"):
        Stage("lowpass", edges=RangeEdges((-20.0,), "dBFS"))


def test_unkeyed_stages_select_the_unkeyed_object():
    import copy
    import pickle

    from lactose_audio.ranges import UNKEYED, Unkeyed
    from lactose_audio.sampling import stack, unconditioned

    chain = Chain.from_spec("gain>tanh>lowpass@amplitude", n_ranges=3)
    x = (0.5 * np.sin(np.arange(4096) / 9.0)).astype(np.float32)
    sels = chain.selections(x, SR)
    assert sels[0] is UNKEYED and sels[1] is UNKEYED and isinstance(sels[2], Selection)
    sliced = chain.slice_selections(sels, chain.hop_size, 2 * chain.hop_size)
    assert sliced[:2] == [UNKEYED, UNKEYED]
    assert unconditioned(sliced)[:2] == [UNKEYED, UNKEYED]
    assert stack([sliced, sliced])[:2] == [UNKEYED, UNKEYED]
    assert Unkeyed() is UNKEYED
    assert pickle.loads(pickle.dumps(UNKEYED)) is UNKEYED
    assert copy.deepcopy([UNKEYED])[0] is UNKEYED and repr(UNKEYED) == "UNKEYED"


def test_pitch_edges_fall_between_notes():
    """fit_edges on a pitch key: every edge halfway between two semitones, so a note sung
    with a 20-cent vibrato stays in one range (oracle: the notes' MIDI numbers)."""
    rng = np.random.default_rng(7)
    notes = [45, 52, 57, 60, 60, 60, 64, 69]  # a loud, repeated middle C
    t = np.arange(int(0.5 * SR)) / SR
    parts = []
    for midi in notes:
        f0 = 440.0 * 2 ** ((midi - 69) / 12)
        cents = 20.0 * np.sin(2 * np.pi * 5.5 * t + rng.uniform(0, 2 * np.pi))
        phase = 2 * np.pi * np.cumsum(f0 * 2 ** (cents / 1200)) / SR
        level = 0.8 if midi == 60 else 0.2
        parts.append(level * sum(np.sin(k * phase) / k for k in (1, 2, 3)) * np.exp(-2 * t))
    x = np.concatenate(parts).astype(np.float32)
    chain = Chain.from_spec("gain>tanh", key=make_key("pitch"), n_ranges=4)
    chain.fit_edges(x, SR)
    edges = np.asarray(chain.stages[0].edges.edges)
    np.testing.assert_array_equal(np.abs(edges - np.round(edges)), 0.5)
    assert len(set(edges)) == 3
