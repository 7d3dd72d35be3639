"""Every command refuses bad input with one line naming the file, exit code 2, no output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from lactose_audio import cli
from lactose_audio.chains import Chain, make_key
from lactose_audio.presets import Effect, load_preset, save_preset

SR = 44100


def _tone(seconds: float = 1.0, sr: int = SR, level: float = 0.3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (level * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(t.size)).astype(
        np.float32
    )


@pytest.fixture()
def files(tmp_path):
    """A valid dry/wet pair, a valid preset, and a zoo of bad files."""
    x = _tone()
    paths = {}

    def wav(name, data, sr=SR, subtype="FLOAT"):
        path = tmp_path / name
        sf.write(path, data, sr, subtype=subtype)
        paths[name] = path
        return path

    wav("dry.wav", x)
    wav("wet.wav", np.tanh(3 * x))
    wav("silent.wav", np.zeros_like(x))
    wav("dc.wav", np.full_like(x, 0.5))
    nan = x.copy()
    nan[100] = np.nan
    wav("nan.wav", nan)
    wav("sr48k.wav", _tone(sr=48000), sr=48000)
    wav("short.wav", x[: x.size // 2])
    wav("stereo.wav", np.stack([x, x], axis=1))
    (tmp_path / "text.wav").write_text("this is not audio\n")
    paths["text.wav"] = tmp_path / "text.wav"
    chain = Chain.from_spec("gain>tanh", key=make_key("amplitude"), n_ranges=2)
    effect = Effect(
        chain=chain,
        name="p",
        description="d",
        coverage=[{"counts": [1, 1], "flagged": [False, False]}] * 2,
    )
    paths["preset.json"] = save_preset(effect, tmp_path / "preset.json")
    (tmp_path / "broken.json").write_text('{"format": "lactose-audio-preset", "version": 7}')
    paths["broken.json"] = tmp_path / "broken.json"
    paths["missing.wav"] = tmp_path / "missing.wav"
    return paths


def _refused(capsys, argv, name: str, problem: str) -> None:
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert name in err and problem in err, err


BAD_PAIRS = [
    ("missing.wav", "wet.wav", "missing.wav", "no such file"),
    ("dry.wav", "missing.wav", "missing.wav", "no such file"),
    ("text.wav", "wet.wav", "text.wav", "audio"),
    ("dry.wav", "silent.wav", "silent.wav", "silent"),
    ("silent.wav", "wet.wav", "silent.wav", "silent"),
    ("dc.wav", "wet.wav", "dc.wav", "DC"),
    ("dry.wav", "nan.wav", "nan.wav", "non-finite"),
    ("dry.wav", "sr48k.wav", "sr48k.wav", "sample rate"),
    ("dry.wav", "short.wav", "short.wav", "length"),
    ("stereo.wav", "wet.wav", "stereo.wav", "channel"),
]


@pytest.mark.parametrize(("dry", "wet", "name", "problem"), BAD_PAIRS)
def test_train_refuses_bad_pairs(files, capsys, tmp_path, dry, wet, name, problem):
    out = tmp_path / "new.json"
    _refused(capsys, ["train", files[dry], files[wet], "--out", out, "--steps", "1"], name, problem)
    assert not out.exists()


@pytest.mark.parametrize(("dry", "wet", "name", "problem"), BAD_PAIRS)
def test_eval_refuses_bad_pairs(files, capsys, dry, wet, name, problem):
    _refused(capsys, ["eval", files["preset.json"], files[dry], files[wet]], name, problem)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("missing.wav", "no such file"),
        ("text.wav", "audio"),
        ("nan.wav", "non-finite"),
        ("stereo.wav", "channel"),
    ],
)
def test_render_refuses_bad_input_and_keeps_existing_output(
    files, capsys, tmp_path, source, problem
):
    out = tmp_path / "out.wav"
    out.write_bytes(b"precious")
    _refused(capsys, ["render", files["preset.json"], files[source], out], source, problem)
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == ["out.wav"]


@pytest.mark.parametrize("command", [["inspect"], ["render"], ["eval"]])
def test_commands_refuse_bad_presets(files, capsys, tmp_path, command):
    tail = {
        "inspect": [],
        "render": [files["dry.wav"], tmp_path / "o.wav"],
        "eval": [files["dry.wav"], files["wet.wav"]],
    }[command[0]]
    _refused(
        capsys, [*command, files["broken.json"], *tail], "broken.json", "unknown preset version 7"
    )
    _refused(capsys, [*command, tmp_path / "nope.json", *tail], "nope.json", "no such preset")
    assert not (tmp_path / "o.wav").exists()


def test_render_refuses_unknown_output_extension_before_work(files, capsys, tmp_path):
    _refused(
        capsys,
        ["render", files["preset.json"], files["dry.wav"], tmp_path / "o.mp3"],
        "o.mp3",
        "extension",
    )
    assert not (tmp_path / "o.mp3").exists()


def test_render_with_channel_and_mix(files, capsys, tmp_path):
    out = tmp_path / "o.wav"
    assert (
        cli.main(
            [
                "render",
                str(files["preset.json"]),
                str(files["stereo.wav"]),
                str(out),
                "--channel",
                "1",
                "--mix",
                "0",
            ]
        )
        == 0
    )
    rendered, _ = sf.read(out, dtype="float32")
    np.testing.assert_allclose(rendered, _tone(), atol=1e-6)  # mix 0 is the input


def test_train_refuses_conflicting_options(files, capsys, tmp_path):
    code = cli.main(
        [
            "train",
            str(files["dry.wav"]),
            str(files["wet.wav"]),
            "--out",
            str(tmp_path / "p.json"),
            "--ranges",
            "4",
            "--edges",
            "-20,-10",
        ]
    )
    assert code == 2
    code = cli.main(
        ["train", str(files["dry.wav"]), str(files["wet.wav"]), "--out", str(tmp_path / "p.txt")]
    )
    assert code == 2 and "p.txt" in capsys.readouterr().err


def test_render_prints_nothing_to_stderr(files, tmp_path):
    """TensorFlow, XLA and numba C++ logs are muted: a render is silent on fd 2 (subprocess,
    because those logs bypass Python's sys.stderr)."""
    import subprocess
    import sys

    out = tmp_path / "quiet.wav"
    done = subprocess.run(
        [sys.executable, "-m", "lactose_audio", "render", str(files["preset.json"]),
         str(files["dry.wav"]), str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert sf.info(out).frames == sf.info(files["dry.wav"]).frames


@pytest.mark.parametrize("samples", [np.zeros(SR, np.float32), np.array([0.25], np.float32)])
def test_render_accepts_silence_and_one_sample(tmp_path, samples):
    """Silence (and a one-sample file) is valid input: the output is the effect's output for
    it. Oracle: gain -> tanh in closed form, y = g_out * (tanh(x * g * d + b) - tanh(b))."""
    chain = Chain.from_spec("gain>tanh")
    chain[0].set_physical([6.0])
    chain[1].set_physical([12.0, 0.2, -3.0])
    coverage = [{"counts": [1], "flagged": [False]}] * 2
    preset = save_preset(Effect(chain=chain, coverage=coverage), tmp_path / "p.json")
    source, out = tmp_path / "in.wav", tmp_path / "o.wav"
    sf.write(source, samples, SR, subtype="FLOAT")
    assert cli.main(["render", str(preset), str(source), str(out)]) == 0
    rendered, sr = sf.read(out, dtype="float32")
    db = lambda v: 10 ** (v / 20)  # noqa: E731
    expected = db(-3.0) * (np.tanh(samples * db(6.0) * db(12.0) + 0.2) - np.tanh(0.2))
    assert sr == SR and rendered.shape == samples.shape
    np.testing.assert_allclose(rendered, expected, atol=1e-5)


def _nested_effect() -> Effect:
    """gain keyed on amplitude (2 ranges), then a nested unkeyed lowpass chain at mix 0.5."""
    key = make_key("amplitude")
    chain = Chain.from_spec("gain", key=key, n_ranges=2)
    chain.append(Chain([Chain.from_spec("lowpass")[0]], mix=0.5))
    coverage = [{"counts": [3, 4], "flagged": [False, True]}, {"counts": [7], "flagged": [False]}]
    return Effect(chain=chain, name="nested", description="n", coverage=coverage)


def test_effect_ranges_on_unkeyed_and_nested_presets():
    ranges = load_preset("tanh_drive").ranges
    assert [r["key"] for r in ranges] == ["none"] * 4
    assert all(r["edges"] == [] and r["n_ranges"] == 1 for r in ranges)
    nested = _nested_effect().ranges
    assert [(r["block"], r["key"], r["n_ranges"]) for r in nested] == [
        ("gain", "amplitude", 2),
        ("lowpass", "none", 1),
    ]


@pytest.mark.parametrize("preset", ["tanh_drive", "nested"])
def test_inspect_text_json_and_plot_on_unkeyed_and_nested(preset, tmp_path, capsys):
    if preset == "nested":
        preset = str(save_preset(_nested_effect(), tmp_path / "nested.json"))
    effect = load_preset(preset)
    assert cli.main(["inspect", preset]) == 0
    text = capsys.readouterr().out
    for i, stage in enumerate(effect.chain.stages):
        assert f"[{i}] {stage.block.name}" in text
    assert cli.main(["inspect", preset, "--json"]) == 0
    tables = json.loads(capsys.readouterr().out)["stages"]
    assert [t["key"] for t in tables] == [r["key"] for r in effect.ranges]
    assert [t["rows"][-1]["count"] for t in tables] == [c["counts"][-1] for c in effect.coverage]
    plot = tmp_path / "plot.png"
    assert cli.main(["inspect", preset, "--plot", str(plot)]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_warnings_print_as_one_lactose_line(files, tmp_path, capsys):
    """A clipping warning is one `lactose: warning:` line, not file:line plus a source line."""
    chain = Chain.from_spec("gain")
    chain[0].set_physical([12.0])
    preset = save_preset(Effect(chain=chain, coverage=[{"counts": [1], "flagged": [False]}]),
                         tmp_path / "loud.json")  # fmt: skip
    out = tmp_path / "o.wav"
    code = cli.main(["render", str(preset), str(files["dry.wav"]), str(out), "--subtype", "PCM_16"])
    err = capsys.readouterr().err
    assert code == 0
    assert err.startswith("lactose: warning: ") and err.count("\n") == 1, err
    assert "clipped" in err and "o.wav" in err and ".py:" not in err
