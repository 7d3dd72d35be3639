"""Knobs (issue 12): control keys, interpolation in the declared scaling, captures, automation.

Oracles: closed-form interpolation (dB linear, Hz geometric), the captured rows bit for bit,
a plain one-row chain, scipy's filters and tanh for the captured effect.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.signal as ss
import soundfile as sf

from lactose_audio import cli
from lactose_audio.chain_spec import ControlKey
from lactose_audio.chains import Chain, Stage
from lactose_audio.errors import ParameterError, PresetError
from lactose_audio.knobs import resolve, stage_row
from lactose_audio.presets import Effect, load_preset, save_preset
from lactose_audio.render import RenderStream, render

SR = 44100
ROWS_TANH = [[0.0, 0.0, 0.0], [12.0, 0.1, -6.0], [24.0, 0.0, -12.0]]
ROWS_LP = [[1000.0, 0.5], [2000.0, 0.7071], [8000.0, 2.0]]


def _chain(settings=(0.0, 5.0, 10.0), tanh=ROWS_TANH, lowpass=ROWS_LP) -> Chain:
    key = ControlKey("gain", settings)
    chain = Chain.from_spec("tanh>lowpass", key=key)
    chain[0].set_physical(tanh)
    chain[1].set_physical(lowpass)
    return chain


def _signal(n=SR // 2, seed=0) -> np.ndarray:
    t = np.arange(n) / SR
    noise = np.random.default_rng(seed).standard_normal(n)
    return (0.4 * np.sin(2 * np.pi * 220 * t) + 0.05 * noise).astype(np.float32)


def test_interpolation_follows_the_declared_scaling():
    chain = _chain()
    for value, (k, t) in ((2.5, (0, 0.5)), (6.0, (1, 0.2)), (9.0, (1, 0.8))):
        resolved = resolve(chain, {"gain": value})
        tanh, lowpass = resolved[0].physical()[0], resolved[1].physical()[0]
        lin = (1 - t) * np.array(ROWS_TANH[k]) + t * np.array(ROWS_TANH[k + 1])
        np.testing.assert_allclose(tanh, lin, rtol=1e-5, atol=1e-5)  # dB: linear
        a, b = np.array(ROWS_LP[k]), np.array(ROWS_LP[k + 1])
        geometric = np.exp((1 - t) * np.log(a) + t * np.log(b))
        arithmetic = (1 - t) * a + t * b
        scalings = [p.scaling for p in chain[1].block.params]
        assert scalings[0] == "log"  # cutoff_hz: Hz on a log axis
        expected = [
            g if s == "log" else m for g, m, s in zip(geometric, arithmetic, scalings, strict=True)
        ]
        np.testing.assert_allclose(lowpass, expected, rtol=1e-5)
        assert not resolved[0].keyed and resolved[0].n_ranges == 1


def test_captured_settings_reproduce_their_rows_exactly():
    chain = _chain()
    x = _signal()
    for k, value in enumerate((0.0, 5.0, 10.0)):
        for stage in chain.stages:
            np.testing.assert_array_equal(stage_row(stage, value), stage.bank.numpy()[k])
        plain = Chain([Stage("tanh"), Stage("lowpass")])
        plain[0].set_physical(ROWS_TANH[k])
        plain[1].set_physical(ROWS_LP[k])
        np.testing.assert_array_equal(render(chain, x, SR, controls={"gain": value}), plain(x, SR))


def test_a_captured_effect_matches_scipy_at_its_settings():
    """Third-party oracle: tanh drive + scipy's Butterworth low-pass (Q 0.7071) per setting."""
    chain = _chain()
    x = _signal(SR)
    for k, value in enumerate((0.0, 5.0)):
        drive, _, out_db = ROWS_TANH[k]
        sos = ss.butter(2, ROWS_LP[0][0] if k == 0 else ROWS_LP[1][0], fs=SR, output="sos")
        if k == 0:
            continue  # q 0.5 is not a Butterworth; setting 5 has q 0.7071
        expected = ss.sosfilt(sos, np.tanh(10 ** (drive / 20) * x.astype(np.float64) + 0.1))
        expected = expected - ss.sosfilt(sos, np.full_like(expected, np.tanh(0.1)))
        expected *= 10 ** (out_db / 20)
        got = render(chain, x, SR, controls={"gain": value})
        err = np.sum((got - expected) ** 2) / np.sum(expected**2)
        assert err < 1e-4, err


def test_stages_may_follow_different_controls():
    keys = {"gain": ControlKey("gain", (0.0, 10.0)), "tone": ControlKey("tone", (0.0, 1.0))}
    chain = Chain.from_spec("tanh@gain>lowpass@tone>highpass", keys=keys)
    chain[1].set_physical([[500.0, 0.7071], [5000.0, 0.7071]])
    assert chain.controls == {"gain": (0.0, 10.0), "tone": (0.0, 1.0)}
    resolved = resolve(chain, {"gain": 10, "tone": 0.5})
    np.testing.assert_allclose(resolved[1].physical()[0, 0], np.sqrt(500 * 5000), rtol=1e-5)
    assert resolved[2] is chain[2]  # unkeyed stages are shared
    with pytest.raises(ParameterError, match="missing control tone"):
        render(chain, _signal(), SR, controls={"gain": 3})


@pytest.mark.parametrize(
    ("controls", "message"),
    [
        ({}, "missing control gain"),
        ({"gain": 10.5}, "between 0 and 10"),
        ({"gain": -1}, "between 0 and 10"),
        ({"gain": float("nan")}, "between 0 and 10"),
        ({"gain": 5, "tone": 1}, "unknown control 'tone'"),
    ],
)
def test_bad_control_values_are_refused(controls, message):
    with pytest.raises(ParameterError, match=message):
        render(_chain(), _signal(), SR, controls=controls)


def test_preset_version_2_round_trip_and_python_api(tmp_path):
    effect = Effect(
        chain=_chain(), name="knob", coverage=[{"counts": [1, 1, 1], "flagged": [False] * 3}] * 2
    )
    path = save_preset(effect, tmp_path / "knob.json")
    text = path.read_text()
    assert json.loads(text)["version"] == 2
    loaded = load_preset(path)
    save_preset(loaded, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == text
    x = _signal()
    expected = render(_chain(), x, SR, controls={"gain": 3.7})
    np.testing.assert_allclose(loaded(x, SR, gain=3.7), expected, atol=1e-6)
    loaded.set(gain=3.7)
    np.testing.assert_allclose(loaded(x, SR), expected, atol=1e-6)
    with pytest.raises(ParameterError, match="between 0 and 10"):
        loaded.set(gain=12)
    document = json.loads(text)
    document["version"] = 1
    (tmp_path / "v1.json").write_text(json.dumps(document))
    with pytest.raises(PresetError, match="need preset version 2"):
        load_preset(tmp_path / "v1.json")


def check_stream_and_knob_step(chain, x, cut: int, head_atol: float = 0.0) -> None:
    """Oracle of a knob step while streaming (``gain`` 0 -> 10, chunk boundary at ``cut``):
    the stream at 0 equals the render at 0; the step adds no discontinuity larger than the
    effect's own (the naive switch does, so the test can see a click); before the change the
    output is the render at 0 (``head_atol`` 0: bit for bit), after it the render at 10."""
    y0 = render(chain, x, SR, controls={"gain": 0})
    y1 = render(chain, x, SR, controls={"gain": 10})
    stream = RenderStream(chain, SR, controls={"gain": 0})
    parts = [stream.process(x[i : i + 777]) for i in range(0, x.size, 777)] + [stream.flush()]
    np.testing.assert_allclose(np.concatenate(parts), y0, atol=1e-6)

    stream = RenderStream(chain, SR, controls={"gain": 0})
    head = stream.process(x[:cut])
    stream.set(gain=10)
    y = np.concatenate([head, stream.process(x[cut:]), stream.flush()])
    settle = 2000  # past the filters' start-up transient
    own = max(np.abs(np.diff(y0[settle:])).max(), np.abs(np.diff(y1[settle:])).max())
    naive = np.concatenate([y0[: head.size], y1[head.size :]])
    assert np.abs(np.diff(naive[settle:])).max() > 1.5 * own  # the test can see a click
    assert np.abs(np.diff(y[settle:])).max() <= own * (1 + 1e-6)
    if head_atol == 0.0:
        np.testing.assert_array_equal(y[: head.size], y0[: head.size])  # before the change
    else:
        np.testing.assert_allclose(y[: head.size], y0[: head.size], atol=head_atol)
    later = head.size + 4 * chain.hop_size  # the ramp and the filter's memory have passed
    np.testing.assert_allclose(y[later:], y1[later:], atol=1e-5)


def test_stream_equals_render_and_a_knob_step_does_not_click():
    chain = _chain((0.0, 10.0), [ROWS_TANH[0], ROWS_TANH[2]], [[1000, 0.7071], [8000, 0.7071]])
    x = (0.5 * np.sin(2 * np.pi * 220 * np.arange(SR) / SR)).astype(np.float32)
    check_stream_and_knob_step(chain, x, 10 * chain.hop_size + 300)


# ---- training from captures ---------------------------------------------------------------


def _captures(folder, seconds=3.0, sr=22050):
    rng = np.random.default_rng(1)
    n = int(sr * seconds)
    t = np.arange(n) / sr
    env = 0.05 + 0.5 * np.abs(np.sin(2 * np.pi * 0.7 * t))
    x = env * np.sin(2 * np.pi * 110 * (1 + 0.3 * np.sin(2 * np.pi * 0.3 * t)) * t)
    x = (x + 0.02 * rng.standard_normal(n)).astype(np.float32)
    sf.write(folder / "dry.wav", x, sr, subtype="FLOAT")
    lines = ["file,gain"]
    for g in (0, 5, 10):
        sos = ss.butter(2, 1500 + 300 * g, fs=sr, output="sos")
        y = 0.5 * ss.sosfilt(sos, np.tanh(10 ** ((6 + 2 * g) / 20) * x))
        y = np.concatenate([np.zeros(2 * g), y[: n - 2 * g]]).astype(np.float32)  # own latency
        sf.write(folder / f"wet{g}.wav", y, sr, subtype="FLOAT")
        lines.append(f"wet{g}.wav,{g}")
    (folder / "captures.csv").write_text("\n".join(lines) + "\n")


def test_train_from_captures_folder_and_holdout(tmp_path, capsys):
    _captures(tmp_path)
    out = tmp_path / "knob.json"
    argv = ["train", str(tmp_path), "--chain", "gain>tanh>lowpass", "--steps", "20", "-q",
            "--holdout", "gain=5", "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    effect = load_preset(out)
    assert effect.controls == {"gain": (0.0, 10.0)}
    assert all(stage.control == "gain" for stage in effect.chain.stages)
    captures = effect.training["captures"]
    assert [c["controls"] for c in captures] == [{"gain": 0.0}, {"gain": 10.0}]
    lat0, lat10 = (c["latency_samples"] for c in captures)  # + the filter's group delay
    assert abs((lat10 - lat0) - 20) <= 2  # each capture's own latency (20 samples added)
    # Each setting's row saw only its capture: coverage is per setting.
    counts = [entry["counts"] for entry in effect.coverage]
    assert all(c[0] == c[1] > 0 for c in counts)
    (held,) = effect.training["holdout"]
    assert held["controls"] == {"gain": 5.0} and abs(held["latency_samples"] - lat0 - 10) <= 2
    assert 0.0 < held["esr"] < 1.0
    # The stored per-capture ESR is the saved preset's, at the capture's own row.
    from lactose_audio.data import load_pair
    from lactose_audio.sampling import validation_blocks

    pair = load_pair(tmp_path / "dry.wav", tmp_path / "wet10.wav")
    y = effect(pair.dry, pair.sample_rate, gain=10)
    held_out = np.zeros(pair.n_samples, bool)  # the validation blocks, by hand
    for begin, end in validation_blocks(pair.n_samples, 0.15, 1024, pair.sample_rate):
        held_out[begin:end] = True
    err = np.sum((pair.wet - y)[held_out] ** 2) / np.sum(pair.wet[held_out] ** 2)
    np.testing.assert_allclose(captures[1]["validation_esr"], err, rtol=1e-6)
    # Training selections: each capture picks its own row, hard.
    sels = effect.chain.selections(pair.dry, pair.sample_rate, {"gain": 10.0})
    assert all((s.lower == 1).all() and (s.upper == 1).all() and not s.frac.any() for s in sels)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--chain", "default", "--key", "auto", "--steps", "20"], "--key auto needs --steps of"),
        (["--chain", "default", "--holdout", "gain=7"], "no capture at these settings"),
        (["--chain", "default", "--holdout", "gain=10"], "outside the trained settings"),
    ],
)
def test_capture_options_are_refused(tmp_path, capsys, extra, message):
    _captures(tmp_path, seconds=1.0)
    code = cli.main(["train", str(tmp_path), "--out", str(tmp_path / "p.json"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_chain_auto_searches_on_the_middle_capture_then_fits_every_capture(tmp_path):
    """``--chain auto`` with captures: the family is screened unconditioned on the middle
    capture, the winner is fitted on every capture jointly (one row per setting). The effect
    (tanh drive into a Butterworth low-pass, both following the knob) is in the family
    (``drive_tone``)."""
    from lactose_audio.captures import train_captures
    from lactose_audio.search import FAMILY
    from lactose_audio.training import TrainConfig

    _captures(tmp_path)
    cfg = TrainConfig(steps=300, seed=0, refine_segments=8)  # chain auto is the default
    result = train_captures(tmp_path, None, tmp_path / "auto.json", cfg, progress=False)
    names = [r["name"] for r in result.search]
    assert sorted(names) == sorted([*dict(FAMILY), "captures"])
    joint = result.search[0]  # listed first: the result, validated on every capture
    assert joint["name"] == "captures" and joint["key"] == "control gain"
    structures = sorted((r for r in result.search if r["name"] != "captures"),
                        key=lambda r: r["val_esr"])  # fmt: skip
    assert result.chain == joint["chain"] == structures[0]["chain"]
    assert joint["val_esr"] == pytest.approx(result.validation_esr)
    effect = load_preset(tmp_path / "auto.json")
    assert effect.controls == {"gain": (0.0, 5.0, 10.0)}
    assert all(stage.control == "gain" for stage in effect.chain.stages)
    assert effect.training["chain"] == result.chain
    assert "the joint fit of every capture, then the structures" in result.summary()
    # Each setting's rows learned its capture: far better than the middle capture's fit used
    # at every setting (the joint fit's start, ``unconditioned_esr``), every capture well fitted
    # for 300 steps in all (the joint fit has 40 % of them for 3 settings).
    assert result.validation_esr < 0.5 * result.unconditioned_esr
    per_capture = [c["validation_esr"] for c in effect.training["captures"]]
    assert max(per_capture) < 0.1, per_capture


def test_ctrl_c_during_a_knob_search_saves_no_single_capture_preset(tmp_path, monkeypatch):
    """Ctrl-C while the structure candidates are fitted (middle capture, no controls): those
    fits are not knob presets, so nothing is saved and the message says why."""
    from lactose_audio import training
    from lactose_audio.captures import train_captures
    from lactose_audio.errors import TrainingInterrupted
    from lactose_audio.training import TrainConfig

    _captures(tmp_path, seconds=1.5)

    def interrupt(trainer):
        if trainer.step >= 3 and not trainer.cfg.controls:
            raise KeyboardInterrupt

    original = training.train
    monkeypatch.setattr(training, "train", lambda *a, **k: original(*a, on_step=interrupt, **k))
    cfg = TrainConfig(steps=300, seed=0, refine_segments=4)
    with pytest.raises(TrainingInterrupted, match="during the structure search; nothing saved"):
        train_captures(tmp_path, None, tmp_path / "p.json", cfg, progress=False)
    assert not (tmp_path / "p.json").exists()


def test_middle_capture_is_nearest_the_centre_of_the_settings():
    from types import SimpleNamespace

    from lactose_audio.knobs import middle_capture

    def caps(*points):
        return [SimpleNamespace(controls=p) for p in points]

    one = caps({"g": 0.0}, {"g": 2.0}, {"g": 4.5}, {"g": 10.0})
    assert middle_capture(one, {"g": [0.0, 2.0, 4.5, 10.0]}) is one[2]  # 0.45 of the range
    two = caps({"g": 0.0, "t": 5.0}, {"g": 5.0, "t": 0.0}, {"g": 4.0, "t": 4.0},
               {"g": 10.0, "t": 10.0})  # fmt: skip
    assert middle_capture(two, {"g": [0, 4, 5, 10], "t": [0, 4, 5, 10]}) is two[2]
    tie = caps({"g": 0.0}, {"g": 10.0})
    assert middle_capture(tie, {"g": [0.0, 10.0]}) is tie[0]


def test_chain_auto_with_two_controls_is_refused():
    from lactose_audio.training import TrainConfig

    with pytest.raises(ParameterError, match="--chain auto follows one control"):
        TrainConfig(controls={"gain": [0.0, 1.0], "tone": [0.0, 1.0]}).resolved()


def test_render_set_on_the_command_line(tmp_path, capsys):
    effect = Effect(
        chain=_chain(), name="knob", coverage=[{"counts": [1, 1, 1], "flagged": [False] * 3}] * 2
    )
    preset = save_preset(effect, tmp_path / "knob.json")
    x = _signal()
    sf.write(tmp_path / "in.wav", x, SR, subtype="FLOAT")
    out = tmp_path / "out.wav"
    assert cli.main(["render", str(preset), str(tmp_path / "in.wav"), str(out),
                     "--set", "gain=3.7"]) == 0  # fmt: skip
    y, _ = sf.read(out, dtype="float32")
    np.testing.assert_allclose(y, render(_chain(), x, SR, controls={"gain": 3.7}), atol=1e-6)
    for bad, message in ((["--set", "gain=11"], "between 0 and 10"), ([], "missing control"),
                         (["--set", "gain=1", "--set", "tone=2"], "unknown control")):  # fmt: skip
        capsys.readouterr()
        code = cli.main(["render", str(preset), str(tmp_path / "in.wav"), str(out), *bad])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err, err
    capsys.readouterr()
    assert cli.main(["inspect", str(preset)]) == 0
    text = capsys.readouterr().out
    assert "key=control gain" in text and "gain=5" in text and "gain=10" in text


def test_capture_fits_give_most_of_the_budget_to_the_per_setting_phase():
    """The unconditioned phase of a knob fit takes 1 / (n_captures + 1) of the budget (its one
    set of parameters is only every setting's start); a plain keyed fit keeps half."""
    import dataclasses

    from lactose_audio.data import pair_from_arrays
    from lactose_audio.trainer import UNCONDITIONED_SHARE, Trainer
    from lactose_audio.training import TrainConfig, build_chain

    x = _signal(SR * 2)
    pairs = [
        dataclasses.replace(
            pair_from_arrays(x, np.tanh(g * x), SR, latency=0), controls={"gain": g}
        )
        for g in (1.0, 2.0, 3.0)
    ]
    cfg = TrainConfig(chain_spec="tanh", key="none", steps=40, controls={"gain": [1.0, 2.0, 3.0]})
    cfg = cfg.resolved()
    trainer = Trainer(build_chain(cfg, [p.dry for p in pairs], SR), pairs, cfg, SR)
    assert trainer.unconditioned_share == 0.25 and trainer.phase_budget() == (None, 10)
    plain = dataclasses.replace(cfg, controls=None, key="amplitude", n_ranges=2)
    pair = dataclasses.replace(pairs[0], controls=None)
    trainer = Trainer(build_chain(plain, [x], SR), [pair], plain, SR)
    assert trainer.unconditioned_share == UNCONDITIONED_SHARE == 0.5
    assert trainer.phase_budget() == (None, 20)
