"""Contract suite over the block registry, plus each waveshaper/utility kernel vs its oracle."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from numpy.polynomial import chebyshev

from lactose_audio._tf import tf
from lactose_audio.blocks import Block, get_block, registered_blocks
from lactose_audio.blocks.waveshapers import MLP_HIDDEN
from lactose_audio.chains import Chain, Stage, make_key
from lactose_audio.errors import ParameterError
from lactose_audio.params import ParamSpec, physical_controls_tf
from lactose_audio.ranges import UNKEYED, RangeEdges, Selection

SR = 44100.0


class PluginFuzz(Block):
    """A block defined outside the package: registers itself on subclassing."""

    name = "test_plugin_fuzz"
    rate = "sample"
    params = (
        ParamSpec("drive_db", "dB", 0.0, 40.0, "linear", 12.0),
        ParamSpec("level_db", "dB", -24.0, 0.0, "linear", -6.0),
    )

    def kernel(self, audio, controls, sample_rate):
        drive = tf.pow(10.0, controls["drive_db"] / 20.0)
        return (
            tf.sign(audio)
            * (1.0 - tf.exp(-tf.abs(audio) * drive))
            * tf.pow(10.0, controls["level_db"] / 20.0)
        )


ALL_BLOCKS = sorted(registered_blocks())
#: Blocks with parameters (``invert`` has none: no bank to train or select).
PARAMETRIC = [n for n in ALL_BLOCKS if get_block(n).params]


def _noise(n, seed=0, scale=0.5, batch=1):
    return (scale * np.random.default_rng(seed).standard_normal((batch, n))).astype(np.float32)


class RecordingDict(dict):
    """Records which keys a kernel reads."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)


def _run(block, audio, **values):
    return block(audio, SR, **values).numpy()


def test_registry_holds_builtins_and_plugin():
    expected = {
        "gain", "dc_blocker", "tanh", "asym_clip", "hard_clip", "chebyshev", "mlp", "lowpass",
        "highpass", "bandpass", "peak", "lowshelf", "highshelf", "fir_eq", "mix",
        "test_plugin_fuzz",
    }  # fmt: skip
    assert expected <= set(ALL_BLOCKS)
    with pytest.raises(ParameterError, match="unknown block 'nope'"):
        get_block("nope")


@pytest.mark.parametrize("name", ALL_BLOCKS)
def test_declared_names_equal_kernel_control_names(name):
    block = get_block(name)
    controls = RecordingDict(block.controls())
    audio = tf.constant(_noise(64))
    block.kernel(audio, controls, SR, **({"dry": 0.5 * audio} if block.uses_dry else {}))
    assert controls.read == set(block.param_names)


@pytest.mark.parametrize("name", ALL_BLOCKS)
@pytest.mark.parametrize("n", [0, 1, 1000])
def test_shape_kept_and_finite(name, n):
    block = get_block(name)
    out = _run(block, _noise(n, batch=2))
    assert out.shape == (2, n)
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("name", ALL_BLOCKS)
def test_declared_defaults_and_ranges_round_trip(name):
    for spec in get_block(name).params:
        assert spec.minimum <= spec.default <= spec.maximum
        assert spec.to_physical_np(spec.default_raw) == pytest.approx(spec.default, abs=1e-6)


def _interior_row(block, seed=5):
    """Physical values away from the defaults (a 0 dB peak makes q irrelevant)."""
    rng = np.random.default_rng(seed)
    return np.array([rng.uniform(p.minimum, p.maximum) if p.scaling == "linear" else
                     np.sqrt(p.minimum * p.maximum) for p in block.params])  # fmt: skip


def _keyed_stage(name, rows):
    """A 3-range amplitude-keyed stage with the given physical rows [3, n_params]."""
    stage = Stage(name, key=make_key("amplitude"), edges=RangeEdges((-30.0, -10.0), "dBFS"))
    stage.set_physical(rows)
    return stage


def _drive_first(stage):
    """The stage alone, or after a fixed tanh for blocks that mix with the dry signal (alone,
    a dry/wet mix of the chain's input with itself is the identity: nothing to learn)."""
    if not stage.block.uses_dry:
        return [stage]
    drive = Stage("tanh")
    drive.set_physical(np.array([12.0, 0.2, 0.0]))
    return [drive, stage]


def _stage_forward(stage, audio, hop=256):
    chain = Chain(_drive_first(stage), hop_size=hop)
    n_frames = -(-audio.shape[-1] // hop)
    rng = np.random.default_rng(3)
    length = audio.shape[-1] if stage.control_rate == "sample" else n_frames
    lower = rng.integers(0, stage.n_ranges, length).astype(np.int32)
    sel = Selection(lower, lower, np.zeros(length, np.float32))
    return chain, [UNKEYED] * (len(chain.stages) - 1) + [sel]


@pytest.mark.parametrize("name", PARAMETRIC)
def test_gradients_finite_nonzero_and_reach_only_selected_rows(name):
    block = get_block(name)
    row = _interior_row(block)
    stage = _keyed_stage(name, np.broadcast_to(row, (3, len(row))))
    audio = tf.constant(_noise(2048, seed=1))
    chain, sels = _stage_forward(stage, audio)
    lower = sels[-1].lower
    lower = np.where(lower == 2, 1, lower).astype(np.int32)
    sels = [*sels[:-1], Selection(lower, lower, sels[-1].frac)]
    weights = tf.constant(np.random.default_rng(2).standard_normal((1, 2048)).astype(np.float32))
    with tf.GradientTape() as tape:
        out = chain.forward(audio, sels, SR)
        loss = tf.reduce_sum(out * weights) + tf.reduce_sum(out**2)
    grad = tape.gradient(loss, stage.bank.variable)
    grad = tf.convert_to_tensor(grad).numpy()
    assert np.all(np.isfinite(grad))
    assert np.all(grad[2] == 0.0)  # range 2 never selected: untouched (separated backprop)
    used = grad[:2].any(axis=0)
    assert used.all(), f"zero gradient for {np.array(block.param_names)[~used]}"


@pytest.mark.parametrize("name", ALL_BLOCKS)
def test_equal_rows_equal_unconditioned_block(name):
    block = get_block(name)
    row = _interior_row(block)
    stage = _keyed_stage(name, np.broadcast_to(row, (3, len(row))))
    audio = _noise(3000, seed=4)
    chain, sels = _stage_forward(stage, audio)
    keyed = chain.forward(audio, sels, SR).numpy()
    plain = Stage(name)
    plain.set_physical(row)
    plain_chain = Chain(_drive_first(plain), hop_size=256)
    unkeyed = plain_chain.forward(audio, [UNKEYED] * len(plain_chain.stages), SR).numpy()
    # Same rows, same values; only SIMD-vs-scalar float32 rounding may differ.
    np.testing.assert_allclose(keyed, unkeyed, rtol=1e-5, atol=1e-5)
    # ... and the unconditioned chain equals the kernel with the same physical values.
    values = dict(zip(block.param_names, stage.physical()[0], strict=True))
    extra = {"hop_size": 256} if block.is_linear else {}
    x = tf.constant(audio)
    if block.uses_dry:
        extra = {"dry": x}
        x = plain_chain.stages[0].block(x, SR, drive_db=12.0, bias=0.2, gain_db=0.0)
    kernel = block.kernel(x, block.controls(**values), SR, **extra).numpy()
    np.testing.assert_allclose(unkeyed, kernel, rtol=1e-5, atol=1e-5)


# ---- oracles ----------------------------------------------------------------------------------


def _db(x):
    return 10.0 ** (np.asarray(x, np.float64) / 20.0)


@pytest.mark.parametrize("drive_db,gain_db", [(0.0, 0.0), (18.0, -6.0), (-12.0, 3.0)])
def test_tanh_matches_pedalboard_formula(drive_db, gain_db):
    x = _noise(4096, seed=6)
    out = _run(get_block("tanh"), x, drive_db=drive_db, gain_db=gain_db)
    np.testing.assert_allclose(out, np.tanh(x * _db(drive_db)) * _db(gain_db), rtol=1e-6, atol=1e-7)


def test_tanh_bias_is_asymmetric_without_dc_at_silence():
    x = _noise(4096, seed=7)
    out = _run(get_block("tanh"), x, drive_db=6.0, bias=0.4)
    expected = np.tanh(x * _db(6.0) + 0.4) - np.tanh(0.4)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert _run(get_block("tanh"), np.zeros((1, 8), np.float32), bias=0.7).max() == 0.0


def test_asymmetric_clip_oracle():
    x = _noise(4096, seed=8)
    out = _run(get_block("asym_clip"), x, drive_pos_db=12.0, drive_neg_db=-3.0, gain_db=-2.0)
    expected = np.where(x >= 0, np.tanh(x * _db(12.0)), np.tanh(x * _db(-3.0))) * _db(-2.0)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_smooth_hard_clip_oracle_and_limit():
    x = _noise(4096, seed=9, scale=1.0)
    out = _run(get_block("hard_clip"), x, drive_db=6.0, ceiling_db=-6.0, knee=0.05)
    u, t = x * _db(6.0), _db(-6.0)
    s = 0.05 * t
    expected = u - s * np.logaddexp(0, (u - t) / s) + s * np.logaddexp(0, (-u - t) / s)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    sharp = _run(get_block("hard_clip"), x, drive_db=6.0, ceiling_db=-6.0, knee=0.01)
    np.testing.assert_allclose(sharp, np.clip(u, -t, t), atol=0.01 * t)


def test_chebyshev_oracle():
    x = _noise(4096, seed=10, scale=0.7)
    coeffs = np.random.default_rng(11).uniform(-1, 1, 9)
    values = {f"c{k + 1}": float(c) for k, c in enumerate(coeffs)}
    out = _run(get_block("chebyshev"), x, **values)
    full = np.concatenate([[0.0], coeffs])
    xc = np.clip(x, -1, 1).astype(np.float64)
    expected = chebyshev.chebval(xc, full) - chebyshev.chebval(0.0, full)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=2e-5)


def test_mlp_oracle():
    block = get_block("mlp")
    h = MLP_HIDDEN
    assert block.n_params == h + h + h * h + h + h
    rng = np.random.default_rng(12)
    values = {p.name: float(rng.uniform(-1, 1)) for p in block.params}
    x = _noise(2048, seed=13)

    def group(g, n):
        return np.array([values[f"{g}_{i}"] for i in range(n)])

    w1, b1, w2 = group("w1", h), group("b1", h), group("w2", h * h).reshape(h, h)
    b2, w3 = group("b2", h), group("w3", h)

    def mlp(v):
        h1 = np.tanh(v[..., None] * w1 + b1)
        return np.tanh(h1 @ w2 + b2) @ w3

    out = _run(block, x, **values)
    np.testing.assert_allclose(out, mlp(x.astype(np.float64)) - mlp(np.zeros(1)), atol=2e-5)


def test_chebyshev_fit_curve_recovers_known_coefficients():
    """A curve made from numpy's Chebyshev series (in bounds) is fitted exactly; a target
    beyond the bounds gets coefficients on them."""
    block = get_block("chebyshev")
    coeffs = np.array([0.9, 0.3, -0.2, 0.1, 0.0, 0.05, 0.0, -0.02, 0.01])
    u = np.linspace(-1.2, 1.2, 97)
    full = np.concatenate([[0.0], coeffs])
    y = chebyshev.chebval(np.clip(u, -1, 1), full) - chebyshev.chebval(0.0, full)
    start = {p.name: p.default for p in block.params}
    fitted = block.fit_curve(u, y, np.ones_like(u), start)
    np.testing.assert_allclose([fitted[f"c{k}"] for k in range(1, 10)], coeffs, atol=1e-8)
    huge = block.fit_curve(u, 10.0 * np.clip(u, -1, 1), np.ones_like(u), start)
    assert huge["c1"] == pytest.approx(2.0)  # the bound


def test_mlp_default_curve_is_tanh_like():
    """The declared defaults start a fit at ``2 tanh(0.5 tanh(x))`` (the TF kernel and the
    numpy one), so the drive and level found for a tanh carry over to the MLP."""
    block = get_block("mlp")
    x = np.linspace(-4.0, 4.0, 401).astype(np.float32)
    defaults = {p.name: p.default for p in block.params}
    expected = 2.0 * np.tanh(0.5 * np.tanh(x.astype(np.float64)))
    np.testing.assert_allclose(_run(block, x, **defaults), expected, atol=2e-5)
    controls = {k: np.float32(v) for k, v in defaults.items()}
    np.testing.assert_allclose(block.kernel_np(x, controls, 44100.0), expected, atol=2e-5)
    # the other units are live: inputs random, output weights zero
    assert all(defaults[f"w3_{j}"] == 0.0 for j in range(1, MLP_HIDDEN))
    assert len({defaults[f"w1_{j}"] for j in range(1, MLP_HIDDEN)}) == MLP_HIDDEN - 1


def test_mlp_written_defaults_are_the_seeded_draw():
    """The written-out random defaults are the declared draw: ``default_rng(20250215)``,
    uniform in ``+-1/sqrt(fan_in)`` per group in layout order, rounded to 4 decimals."""
    rng = np.random.default_rng(20250215)
    defaults = {p.name: p.default for p in get_block("mlp").params}
    h = MLP_HIDDEN
    for group, fan_in, size in (("w1", 1, h), ("b1", None, h), ("w2", h, h * h)):
        scale = 1.0 / np.sqrt(fan_in) if fan_in else 0.0
        drawn = rng.uniform(-scale, scale, size=size)
        if group == "b1":
            continue
        for i, value in enumerate(drawn):
            if (group == "w1" and i == 0) or (group == "w2" and i % h == 0):
                continue  # the tanh path and W2[i, 0] = 0 are written over the draw
            assert defaults[f"{group}_{i}"] == round(float(value), 4), f"{group}_{i}"
    assert [defaults[f"w2_{h * i}"] for i in range(h)] == [0.5] + [0.0] * (h - 1)


def test_gain_oracle_and_validation():
    x = _noise(1000, seed=14)
    np.testing.assert_allclose(_run(get_block("gain"), x, gain_db=-9.0), x * _db(-9.0), rtol=1e-6)
    with pytest.raises(
        ParameterError, match=r"gain_db must be between -60 dB and 36 dB, got 99 dB"
    ):
        get_block("gain").controls(gain_db=99.0)
    with pytest.raises(ParameterError, match="no parameter"):
        get_block("gain").controls(drive_db=1.0)


def test_dc_blocker_vs_scipy_recursion():
    x = _noise(44100, seed=15) + 0.3  # with DC
    out = _run(get_block("dc_blocker"), x, cutoff_hz=20.0)[0]
    pole = np.exp(-2 * np.pi * 20.0 / SR)
    ref = scipy.signal.lfilter([1.0, -1.0], [1.0, -pole], x[0].astype(np.float64))
    esr = np.sum((ref - out) ** 2) / np.sum(ref**2)
    assert esr < 1e-4
    assert abs(out[22050:].mean()) < 3e-3  # the 0.3 DC offset is removed


def test_plugin_block_works_in_chain_and_config():
    chain = Chain.from_spec("gain>test_plugin_fuzz>lowpass")
    assert chain[1].block.name == "test_plugin_fuzz"
    x = _noise(5000, seed=16)[0]
    y = chain(x, SR)
    again = Chain.from_config(chain.to_config())
    np.testing.assert_array_equal(again(x, SR), y)
    drive = _db(12.0)
    fuzz = np.sign(x) * (1 - np.exp(-np.abs(x) * drive)) * _db(-6.0)
    np.testing.assert_allclose(PluginFuzz()(x[None], SR).numpy()[0], fuzz, rtol=1e-5, atol=1e-6)
    assert "test_plugin_fuzz" in repr(chain) and "drive_db=12 dB" in repr(chain)


def test_physical_controls_split_matches_declaration():
    block = get_block("tanh")
    raw = tf.constant(np.zeros((2, 3), np.float32))
    controls = physical_controls_tf(block.params, raw)
    assert list(controls) == ["drive_db", "bias", "gain_db"]
    np.testing.assert_allclose(controls["drive_db"].numpy(), [12.0, 12.0])


def test_mix_oracle_per_range_and_nested():
    """y = wet * x + (1 - wet) * dry, dry = the input of the chain the stage sits in."""
    rng = np.random.default_rng(8)
    audio = (0.4 * rng.standard_normal((1, 4096))).astype(np.float32)
    gain = Stage("gain")
    gain.set_physical(np.array([6.0]))
    mix = Stage("mix", key=make_key("amplitude"), edges=RangeEdges((-30.0, -10.0), "dBFS"))
    wets = np.array([0.1, 0.5, 0.9])
    mix.set_physical(wets[:, None])
    chain = Chain([gain, mix], hop_size=256)
    lower = rng.integers(0, 3, 16).astype(np.int32)
    out = chain.forward(audio, [UNKEYED, Selection(lower, lower, np.zeros(16, np.float32))], SR)
    w = np.repeat(wets[lower], 256)[None]
    g = 10 ** (6.0 / 20.0)
    np.testing.assert_allclose(out.numpy(), w * g * audio + (1 - w) * audio, atol=1e-6)
    # nested: the inner chain's input is the dry signal of its mix
    inner_mix = Stage("mix")
    inner_mix.set_physical(np.array([0.25]))
    inner_gain = Stage("gain")
    inner_gain.set_physical(np.array([-6.0]))
    outer = Chain([gain, Chain([inner_gain, inner_mix])], hop_size=256)
    y = outer.forward(audio, [UNKEYED] * 3, SR).numpy()
    x_in = g * audio
    np.testing.assert_allclose(y, 0.25 * x_in / g + 0.75 * x_in, rtol=1e-5, atol=1e-6)
    # alone it is the identity, and a kernel call without dry= is refused
    np.testing.assert_allclose(get_block("mix")(audio, SR, wet=0.3).numpy(), audio, atol=1e-7)
    with pytest.raises(ParameterError, match="dry"):
        get_block("mix").kernel(tf.constant(audio), get_block("mix").controls(), SR)


def test_invert_negates_and_is_never_keyed():
    """``invert``: y = -x exactly in both kernels; a stage of it has nothing to select, so a
    key given to it (``Chain.from_spec(..., key=)``) leaves it unkeyed, one range."""
    x = _noise(1500, seed=7)
    block = get_block("invert")
    np.testing.assert_array_equal(block.kernel_np(x, {}, SR), -x)
    np.testing.assert_array_equal(block.kernel(tf.constant(x), {}, SR).numpy(), -x)
    chain = Chain.from_spec("gain>invert", key=make_key("amplitude"), n_ranges=4)
    assert chain.stages[0].keyed and not chain.stages[1].keyed
    assert chain.stages[1].n_ranges == 1
