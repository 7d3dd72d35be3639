"""2-D banks (issue 12): a stage following a knob *and* the amplitude key (settings x ranges).

Oracles: the plain amplitude-keyed chain holding a setting's block of rows (bit for bit at a
captured setting), closed-form interpolation per range (dB linear, Hz geometric), the one-
dimensional selection offset by the setting, the gradient's zero pattern (separated updates:
LACTOSE's naive "if" per capture and range), and the effect's own discontinuity for a knob
step while streaming.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from lactose_audio import cli
from lactose_audio.chain_spec import ControlKey, make_key, parse_spec
from lactose_audio.chains import Chain, Stage
from lactose_audio.errors import ParameterError, PresetError
from lactose_audio.knobs import resolve
from lactose_audio.presets import Effect, load_preset, save_preset
from lactose_audio.ranges import RangeEdges, select
from lactose_audio.render import render

SR = 44100
SETTINGS = (0.0, 10.0)
EDGES = (-20.0,)  # two amplitude ranges: below and above -20 dBFS
# rows: setting 0 (range 0, range 1), then setting 10 (range 0, range 1)
TANH = [[0.0, 0.0, 0.0], [6.0, 0.05, -3.0], [18.0, 0.0, -9.0], [24.0, 0.1, -12.0]]
LOWPASS = [[1000.0, 0.5], [1500.0, 0.7071], [4000.0, 0.9], [8000.0, 2.0]]


def _chain(soft_width: float = 0.0) -> Chain:
    knob = ControlKey("gain", SETTINGS)
    edges = RangeEdges(EDGES, "dBFS")
    stages = [
        Stage("tanh", None, make_key("amplitude"), edges, soft_width, knob),
        Stage("lowpass", None, make_key("amplitude"), edges, soft_width, knob),
    ]
    stages[0].set_physical(TANH)
    stages[1].set_physical(LOWPASS)
    return Chain(stages)


def _plain(rows_tanh, rows_lowpass, soft_width: float = 0.0) -> Chain:
    """The oracle: the amplitude-keyed chain of one setting's rows (no knob)."""
    edges = RangeEdges(EDGES, "dBFS")
    stages = [
        Stage("tanh", None, make_key("amplitude"), edges, soft_width),
        Stage("lowpass", None, make_key("amplitude"), edges, soft_width),
    ]
    stages[0].set_physical(rows_tanh)
    stages[1].set_physical(rows_lowpass)
    return Chain(stages)


def _signal(n: int = SR, seed: int = 0, noise: float = 0.05) -> np.ndarray:
    """A note swelling from -40 to 0 dBFS (peaks at 1/6 s): both amplitude ranges are used."""
    t = np.arange(n) / SR
    level = 10 ** ((-40 + 40 * (0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t))) / 20)
    hiss = noise * np.random.default_rng(seed).standard_normal(n)
    return (level * (0.9 * np.sin(2 * np.pi * 196 * t) + hiss)).astype(np.float32)


def test_a_2d_stage_holds_settings_times_ranges_rows():
    chain = _chain()
    stage = chain[0]
    assert stage.n_ranges == 4 and stage.edges.n_ranges == 2 and stage.keyed
    assert stage.control == "gain" and stage.key.kind == "amplitude" and stage.signal_keyed
    assert chain.controls == {"gain": SETTINGS}
    assert repr(stage).startswith("tanh@gain+amplitude[4]")
    with pytest.raises(ParameterError, match="follows one control"):
        Stage("tanh", None, ControlKey("a", (0.0, 1.0)), None, 0.0, ControlKey("b", (0.0, 1.0)))


def test_spec_items_follow_a_control_and_a_key():
    keys = {"gain": ControlKey("gain", SETTINGS), "tone": ControlKey("tone", (0.0, 1.0))}
    items = parse_spec("gain@gain>tanh@gain+amplitude>lowpass@tone", keys=keys, n_ranges=3)
    assert [(i.key.kind, i.knob) for i in items[:1]] == [("control", None)]
    assert items[1].key.kind == "amplitude" and items[1].knob.name == "gain"
    assert items[1].edges.n_ranges == 3
    assert items[2].key.name == "tone" and items[2].knob is None
    # unmarked items take the default key and knob: every stage 2-D
    chain = Chain.from_spec("gain>tanh", key=make_key("amplitude"), n_ranges=2,
                            knob=keys["gain"])  # fmt: skip
    assert all(s.knob.name == "gain" and s.n_ranges == 4 for s in chain.stages)
    for bad, message in (("tanh@gain+tone", "two controls"),
                         ("tanh@amplitude+pitch", "two signal keys"),
                         ("tanh@gain+loudness", "unknown key")):  # fmt: skip
        with pytest.raises(ParameterError, match=message):
            parse_spec(bad, keys=keys)


def test_selections_offset_the_key_ranges_by_the_setting():
    chain, x = _chain(soft_width=4.0), _signal()
    for value, offset in ((0.0, 0), (10.0, 2)):
        sels = chain.selections(x, SR, {"gain": value})
        key = chain._stage_key_values(chain[0], x, SR, {})
        plain = select(key, chain[0].edges, 4.0)
        for sel in sels:
            np.testing.assert_array_equal(sel.lower, plain.lower + offset)
            np.testing.assert_array_equal(sel.upper, plain.upper + offset)
            np.testing.assert_array_equal(sel.frac, plain.frac)
        assert set(np.unique(sels[0].lower)) == {offset, offset + 1}  # both ranges used


@pytest.mark.parametrize("soft_width", [0.0, 4.0])
def test_render_at_a_captured_setting_is_that_settings_keyed_chain(soft_width):
    chain, x = _chain(soft_width), _signal()
    for value, rows in ((0.0, slice(0, 2)), (10.0, slice(2, 4))):
        oracle = _plain(TANH[rows], LOWPASS[rows], soft_width)
        np.testing.assert_array_equal(
            render(chain, x, SR, controls={"gain": value}), render(oracle, x, SR)
        )


def test_between_settings_each_range_interpolates_in_its_declared_scaling():
    chain = _chain()
    resolved = resolve(chain, {"gain": 2.5})
    t = 0.25
    tanh, lowpass = resolved[0].physical(), resolved[1].physical()
    assert resolved[0].n_ranges == 2 and resolved[0].knob is None
    assert resolved[0].edges.edges == EDGES and resolved[0].key.kind == "amplitude"
    for r in range(2):
        a, b = np.array(TANH[r]), np.array(TANH[2 + r])
        np.testing.assert_allclose(tanh[r], (1 - t) * a + t * b, rtol=1e-5, atol=1e-5)
        a, b = np.array(LOWPASS[r]), np.array(LOWPASS[2 + r])
        for i, spec in enumerate(chain[1].block.params):  # cutoff_hz: log; q as declared
            expected = a[i] ** (1 - t) * b[i] ** t if spec.scaling == "log" else (
                (1 - t) * a[i] + t * b[i])  # fmt: skip
            np.testing.assert_allclose(lowpass[r, i], expected, rtol=1e-5)
        assert chain[1].block.params[0].scaling == "log"


def test_gradients_of_a_capture_reach_only_its_settings_rows_in_the_ranges_it_used():
    """Separated updates in two dimensions: a capture at setting 10 that stays below the edge
    trains row (10, range 0) only, every other row's gradient is exactly zero."""
    from lactose_audio._tf import tf

    chain = _chain()
    quiet = 0.03 * _signal(8192)  # below -20 dBFS throughout: range 0 only
    sels = chain.selections(quiet, SR, {"gain": 10.0})
    assert all(set(np.unique(s.lower)) == {2} for s in sels)
    weights = np.random.default_rng(2).standard_normal((1, quiet.size)).astype(np.float32)
    with tf.GradientTape() as tape:
        out = chain.forward(quiet[None], sels, SR)
        loss = tf.reduce_sum(out * weights) + tf.reduce_sum(out**2)
    grads = tape.gradient(loss, chain.trainable_variables)
    for grad in grads:
        grad = tf.convert_to_tensor(grad).numpy()
        assert np.all(grad[[0, 1, 3]] == 0.0)
        assert grad[2].any()


def test_stream_equals_render_and_a_knob_step_does_not_click():
    from test_knobs import check_stream_and_knob_step

    chain = _chain()
    # a level step of 12 dB between the settings, in both ranges, and gentle drives: a switch
    # from one setting's output to the other's is a click the effect never makes itself
    chain[0].set_physical([[0.0, 0.0, -12.0], [3.0, 0.0, -12.0], [2.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    x = _signal(noise=0.0)
    # near the swell's peak (1/6 s); the 2-D stream's pointwise stages run per sample (the
    # ramp), the render per frame: equal to float32 rounding before the change
    check_stream_and_knob_step(chain, x, 7 * chain.hop_size + 300, head_atol=1e-6)


def test_preset_version_3_round_trip_and_older_versions_refuse_it(tmp_path):
    counts = {"counts": [5, 6, 7, 8], "flagged": [False] * 4}
    effect = Effect(chain=_chain(), name="knob2d", coverage=[counts, counts])
    path = save_preset(effect, tmp_path / "k.json")
    document = json.loads(path.read_text())
    assert document["version"] == 3
    stage = document["chain"]["stages"][0]
    assert stage["control"] == {"kind": "control", "name": "gain", "settings": list(SETTINGS)}
    assert [r["drive_db"] for r in stage["ranges"]] == pytest.approx([r[0] for r in TANH], abs=1e-6)
    loaded = load_preset(path)
    save_preset(loaded, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == path.read_text()
    x = _signal()
    expected = render(_chain(), x, SR, controls={"gain": 3.0})
    np.testing.assert_array_equal(loaded(x, SR, gain=3.0), expected)
    assert loaded.ranges[0]["control"] == "gain" and loaded.ranges[0]["n_ranges"] == 2
    document["version"] = 2
    (tmp_path / "v2.json").write_text(json.dumps(document))
    with pytest.raises(PresetError, match="needs preset version 3"):
        load_preset(tmp_path / "v2.json")
    document["version"] = 3
    document["chain"]["stages"][0]["key"] = {"kind": "none"}
    (tmp_path / "bad.json").write_text(json.dumps(document))
    with pytest.raises(PresetError, match="needs a signal key"):
        load_preset(tmp_path / "bad.json")


def test_export_writes_a_2d_bank_as_a_slider_and_per_range_tables(tmp_path, capsys):
    """The program's equality with render is tested with DawDreamer in test_export.py."""
    counts = {"counts": [1, 1, 1, 1], "flagged": [False] * 4}
    path = save_preset(Effect(chain=_chain(), name="k", coverage=[counts, counts]),
                       tmp_path / "k.json")  # fmt: skip
    assert cli.main(["export", str(path), "--out", str(tmp_path / "k.dsp")]) == 0
    code = (tmp_path / "k.dsp").read_text()
    assert 'hslider("[2]gain", 0.0, 0.0, 10.0' in code
    assert "for each captured setting of knob_gain (0.0, 10.0) one row per range" in code
    assert "s0_tanh_drive_db_at1 = " in code and "ba.selectn(4, knob_gain_k * 2 + 1)" in code


def test_train_captures_with_the_amplitude_key_fits_2d_banks(tmp_path, capsys):
    """``lactose train DIR --key amplitude``: every stage follows the knob and the key; each
    (setting, range) row is fitted on its capture's samples in its range, and inspect shows
    the rows setting by setting."""
    from test_knobs import _captures

    _captures(tmp_path)
    out = tmp_path / "k.json"
    argv = ["train", str(tmp_path), "--chain", "gain>tanh>lowpass", "--key", "amplitude",
            "--ranges", "2", "--steps", "40", "-q", "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert "key amplitude, control gain" in capsys.readouterr().out
    effect = load_preset(out)
    assert effect.controls == {"gain": (0.0, 5.0, 10.0)}
    for stage, entry in zip(effect.chain.stages, effect.coverage, strict=True):
        assert stage.knob.name == "gain" and stage.key.kind == "amplitude"
        assert stage.n_ranges == 6 and len(entry["counts"]) == 6
        counts = np.reshape(entry["counts"], (3, 2))
        assert (counts > 0).all() and (counts == counts[0]).all()  # one dry take per setting
    # the fit follows the knob: the captured drive rises with the setting in both ranges
    drive = effect.chain[1].physical()[:, 0].reshape(3, 2)
    assert (np.diff(drive, axis=0) > 0).all(), drive
    assert cli.main(["inspect", str(out), "--plot", str(tmp_path / "k.png")]) == 0
    text = capsys.readouterr().out
    assert "key=control gain + amplitude  ranges=6" in text
    assert "gain=5, -inf .. " in text
    assert (tmp_path / "k.png").stat().st_size > 0 and (tmp_path / "k-knobs.png").stat().st_size
    # eval at a captured setting: the capture's latency, the preset rendered at the setting
    from lactose_audio.data import load_pair
    from lactose_audio.losses import esr

    argv = ["eval", str(out), str(tmp_path / "dry.wav"), str(tmp_path / "wet5.wav"), "--set",
            "gain=5", "--json"]  # fmt: skip
    assert cli.main(argv) == 0
    metrics = json.loads(capsys.readouterr().out)
    (capture,) = [c for c in effect.training["captures"] if c["controls"] == {"gain": 5.0}]
    assert metrics["latency_samples"] == capture["latency_samples"]
    pair = load_pair(tmp_path / "dry.wav", tmp_path / "wet5.wav",
                     latency=capture["latency_samples"])  # fmt: skip
    expected = esr(pair.wet, effect(pair.dry, pair.sample_rate, gain=5.0))
    assert metrics["esr"] == pytest.approx(expected, rel=1e-4)
    assert cli.main(argv[:4]) == 2  # a knob preset needs its control's value
    assert "missing control gain" in capsys.readouterr().err


def test_knob_plot_draws_each_parameter_as_rendering_interpolates_it():
    """Oracle: the interpolation in closed form (dB linearly, Hz geometrically), per range."""
    from lactose_audio.knob_plot import knob_figure

    fig = knob_figure(_chain())
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles[:3] == ["1. tanh: drive_db", "1. tanh: bias", "1. tanh: gain_db"]
    assert titles[3:] == ["2. lowpass: cutoff_hz", "2. lowpass: q"]
    drive, cutoff = fig.axes[0], fig.axes[3]
    assert cutoff.get_yscale() == "log" and drive.get_yscale() == "linear"
    for r in range(2):  # one line per amplitude range (then its dots at the settings)
        x, y = drive.lines[2 * r].get_data()
        t = x / 10.0
        np.testing.assert_allclose(y, (1 - t) * TANH[r][0] + t * TANH[2 + r][0], atol=1e-4)
        x, y = cutoff.lines[2 * r].get_data()
        geometric = LOWPASS[r][0] ** (1 - x / 10.0) * LOWPASS[2 + r][0] ** (x / 10.0)
        np.testing.assert_allclose(y, geometric, rtol=1e-5)
        np.testing.assert_allclose(drive.lines[2 * r + 1].get_data()[1], [TANH[r][0],
                                   TANH[2 + r][0]], atol=1e-5)  # fmt: skip
    with pytest.raises(ParameterError, match="no stage follows a control"):
        knob_figure(_plain(TANH[:2], LOWPASS[:2]))


def test_key_auto_with_captures_keeps_a_key_only_by_the_documented_margin(tmp_path):
    """``--key auto`` with captures: joint fits with the knob alone (the baseline) and with
    each key (2-D banks); a key is kept only at <= KEY_MARGIN x the knob alone's validation
    ESR, and the kept fit is listed first."""
    from test_knobs import _captures

    from lactose_audio.captures import train_captures
    from lactose_audio.search import KEY_MARGIN
    from lactose_audio.training import TrainConfig

    _captures(tmp_path, seconds=2.0)
    cfg = TrainConfig(chain_spec="gain>tanh>lowpass", key="auto", steps=200, seed=0,
                      refine_segments=8)  # fmt: skip
    result = train_captures(tmp_path, None, tmp_path / "k.json", cfg, progress=False)
    joint = {r["key"]: r["val_esr"] for r in result.search if r["name"] == "captures"}
    assert set(joint) == {"control gain", "control gain + amplitude", "control gain + pitch"}
    alone = joint["control gain"]
    keyed = {k: v for k, v in joint.items() if k != "control gain" and v <= KEY_MARGIN * alone}
    expected = min(keyed, key=keyed.get) if keyed else "control gain"
    assert result.search[0]["key"] == expected
    assert result.validation_esr == pytest.approx(joint[expected])
    effect = load_preset(tmp_path / "k.json")
    two_d = expected != "control gain"
    assert all((stage.knob is not None) == two_d for stage in effect.chain.stages)


def test_a_flagged_2d_row_takes_the_nearest_trained_range_of_its_setting():
    from lactose_audio.sampling import nearest_trained

    values = np.arange(8, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)  # row i = i
    flagged = np.array([False, True, True, False, True, True, True, True])  # 2 settings x 4
    fallback = np.full((8, 2), -1.0, np.float32)
    out = nearest_trained(values, flagged, 4, fallback)
    # setting 0: ranges 1, 2 from 0 and 3 (nearest; ties to the lower); setting 1: none trained
    np.testing.assert_array_equal(out[:4, 0], [0, 0, 3, 3])
    np.testing.assert_array_equal(out[4:, 0], [-1, -1, -1, -1])


def test_each_settings_rows_start_at_its_captures_level_and_coverage_is_per_setting():
    """At the start of the per-setting phase the output level (here the tanh's ``gain_db``)
    of each setting's rows is the least-squares level of its capture: captures that are the
    start model's output times 0.5 and times 0.25 move those rows by -6.02 and -12.04 dB (closed
    form). Coverage flags a 2-D row against its own setting's samples."""
    import dataclasses

    from lactose_audio.data import pair_from_arrays
    from lactose_audio.initialise import match_capture_levels
    from lactose_audio.sampling import coverage_counts, prepare_tracks

    x = _signal(2 * SR)
    chain = _chain()
    start = np.array([[12.0, 0.0, -3.0]] * 4)  # every row alike: one start for both settings
    chain[0].set_physical(start)
    chain[1].set_physical([[3000.0, 0.7071]] * 4)
    pairs = []
    for g, k in ((0.0, 0.5), (10.0, 0.25)):
        wet = (k * render(chain, x, SR, controls={"gain": g})).astype(np.float32)
        pair = pair_from_arrays(x, wet, SR, latency=0, name=f"g{g}")
        pairs.append(dataclasses.replace(pair, controls={"gain": g}))
    tracks = prepare_tracks(pairs, chain, 0.15, SR)
    assert match_capture_levels(chain, tracks, SR)
    gains = chain[0].physical()[:, 2].reshape(2, 2)  # [setting, range]
    np.testing.assert_allclose(gains[0], -3.0 + 20 * np.log10(0.5), atol=1e-3)
    np.testing.assert_allclose(gains[1], -3.0 + 20 * np.log10(0.25), atol=1e-3)
    np.testing.assert_allclose(chain[0].physical()[:, :2], start[:, :2], atol=1e-4)  # the rest
    cover = coverage_counts(chain, tracks, 0.3)[0]
    counts = np.reshape(cover["counts"], (2, 2))
    flagged = np.reshape(cover["flagged"], (2, 2))
    per_setting = counts / counts.sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(flagged, per_setting < 0.3)
