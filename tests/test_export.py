"""``lactose export``: the generated Faust program equals ``lactose render`` (the oracle).

DawDreamer (a test dependency, PyPI) compiles each program in-process and renders it like a
plugin host; the output, shifted by the declared latency, must equal the numpy renderer's to an
ESR of 1e-5 (the program runs in float32, the renderer in float64) on guitar-like plucks, for
every built-in block that exports, keyed and unkeyed, hard and soft edges, nested chains, at
44.1 and 48 kHz, and for every shipped preset that exports. Clips are whole frames long (the
renderer keys a last partial frame on its own samples, a plugin cannot know where a file ends).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from lactose_audio.blocks import Block, registered_blocks
from lactose_audio.chains import Chain, Stage
from lactose_audio.conditioning import KeySpec
from lactose_audio.errors import ExportError
from lactose_audio.faust import export_faust
from lactose_audio.presets import SHIPPED_DIR, load_preset
from lactose_audio.ranges import RangeEdges
from lactose_audio.render import render

pytest.importorskip("dawdreamer", reason="export tests need DawDreamer (pip install dawdreamer)")

from lactose_audio.plugin import render_faust  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HOP = 1024
TOLERANCE = 1e-5
FRAME_KEY = KeySpec("amplitude", rate="frame")
SAMPLE_KEY = KeySpec("amplitude", rate="sample", attack_ms=2.0, release_ms=80.0)
EDGES = RangeEdges((-36.0, -26.0, -16.0), "dBFS")
POINTWISE = [
    "gain", "tanh", "asym_clip", "hard_clip", "chebyshev", "mlp", "mix", "compressor", "invert",
]  # fmt: skip
FILTERS = [
    "lowpass",
    "highpass",
    "bandpass",
    "peak",
    "lowshelf",
    "highshelf",
    "lowpass1",
    "highpass1",
    "lowshelf1",
    "highshelf1",
    "dc_blocker",
]


def plucks(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Plucked notes (decaying harmonics) at levels from -30 to -1 dBFS, a little noise; whole
    frames long."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate) // HOP * HOP
    out = np.zeros(n, np.float32)
    start = 0
    while start < n:
        length = int(rng.uniform(0.1, 0.6) * sample_rate)
        f0 = 82.41 * 2 ** (rng.integers(0, 30) / 12)
        level = 10 ** (rng.uniform(-30, -1) / 20)
        t = np.arange(min(length, n - start)) / sample_rate
        note = sum(np.sin(2 * np.pi * f0 * k * t) / k**1.5 for k in range(1, 6))
        out[start : start + t.size] += level * np.exp(-t * rng.uniform(2, 8)) * note
        start += length
    return out + 1e-3 * rng.standard_normal(n).astype(np.float32)


def esr(y: np.ndarray, ref: np.ndarray) -> float:
    ref = ref.astype(np.float64)
    return float(np.sum((y.astype(np.float64) - ref) ** 2) / np.sum(ref**2))


def latency_of(code: str) -> int:
    return int(code.split('latency_samples "', 1)[1].split('"', 1)[0])


def plugin_output(code: str, audio: np.ndarray, sample_rate: int, **kwargs) -> np.ndarray:
    """The program's output aligned with the render (its latency removed)."""
    latency = latency_of(code)
    y = render_faust(code, audio, sample_rate, n_samples=audio.size + latency, **kwargs)
    return y[latency:]


def randomise(stage: Stage, rng: np.random.Generator) -> Stage:
    """Per-range parameters drawn inside each scaling's middle (raw values in [-2, 2])."""
    if not stage.block.params:  # nothing to draw (invert)
        return stage
    raw = rng.uniform(-2.0, 2.0, (stage.n_ranges, stage.block.n_params))
    rows = np.stack([p.to_physical_np(raw[:, i]) for i, p in enumerate(stage.block.params)], 1)
    if stage.block.name in ("gain", "tanh", "asym_clip", "hard_clip"):  # keep levels sane
        for i, p in enumerate(stage.block.params):
            if p.name.endswith("drive_db") or p.name == "gain_db":
                rows[:, i] = rng.uniform(-6.0, 18.0, stage.n_ranges)
    stage.set_physical(rows)
    return stage


def three_ways(name: str, rng: np.random.Generator, key: KeySpec = FRAME_KEY) -> list[Stage]:
    """The block unkeyed, keyed with hard edges, keyed with 3 dB soft edges."""
    return [
        randomise(Stage(name), rng),
        randomise(Stage(name, key=key, edges=EDGES), rng),
        randomise(Stage(name, key=key, edges=EDGES, soft_width=3.0), rng),
    ]


def check(chain_or_effect, sample_rate: int = 44100, seconds: float = 2.5, seed: int = 0):
    chain = getattr(chain_or_effect, "chain", chain_or_effect)
    audio = plucks(seconds, sample_rate, seed)
    code = export_faust(chain_or_effect)
    ref = render(chain, audio, sample_rate)
    y = plugin_output(code, audio, sample_rate)
    assert esr(y, ref) <= TOLERANCE, esr(y, ref)
    return code, audio, ref


@pytest.mark.parametrize("name", POINTWISE)
def test_pointwise_block_equals_render(name):
    """Each memoryless block unkeyed, hard and soft (frame key), after a drive into range."""
    rng = np.random.default_rng(sorted(registered_blocks()).index(name))
    check(Chain([Stage("tanh"), *three_ways(name, rng)], hop_size=HOP))


@pytest.mark.parametrize("name", FILTERS)
def test_filter_block_equals_render(name):
    """Each filter unkeyed, hard and soft: one group of three SVF stages, crossfaded per frame."""
    rng = np.random.default_rng(sorted(registered_blocks()).index(name))
    check(Chain(three_ways(name, rng), hop_size=HOP))


@pytest.mark.parametrize("sample_rate", [44100, 48000])
def test_nested_chains_and_mix_at_both_rates(sample_rate):
    rng = np.random.default_rng(7)
    inner = Chain([*three_ways("tanh", rng), *three_ways("peak", rng)], mix=0.6)
    chain = Chain(
        [*three_ways("gain", rng), inner, Stage("mix"), *three_ways("lowpass", rng)],
        hop_size=HOP,
        mix=0.9,
    )
    chain[2].set_physical([0.7])
    code, _, _ = check(chain, sample_rate, seed=sample_rate)
    assert latency_of(code) == HOP


def test_per_sample_keys():
    """A sample-rate amplitude key: per sample for shapers, averaged per frame for filters;
    and the signed-sample key."""
    rng = np.random.default_rng(11)
    sample = KeySpec("sample")
    chain = Chain(
        [
            *three_ways("tanh", rng, SAMPLE_KEY),
            *three_ways("highshelf", rng, SAMPLE_KEY),
            randomise(Stage("asym_clip", key=sample, edges=RangeEdges((-0.1, 0.1))), rng),
        ],
        hop_size=HOP,
    )
    check(chain, 48000)


def test_compressor_with_per_sample_keys():
    """The compressor's smoother (a Faust feedback loop) under a per-sample key: parameters
    change every sample, soft edges. (Hard edges on a per-sample key are left out: where the
    float32 plugin's key and the render's fall on two sides of an edge for one sample, the
    smoother carries that sample's difference over its release time.)"""
    rng = np.random.default_rng(13)
    unkeyed, _, soft = three_ways("compressor", rng, SAMPLE_KEY)
    check(Chain([Stage("tanh"), unkeyed, soft], hop_size=HOP), 48000)


def test_unkeyed_chain_has_no_latency():
    rng = np.random.default_rng(3)
    code, _, _ = check(Chain([randomise(Stage(n), rng) for n in ("gain", "tanh", "lowpass")]))
    assert latency_of(code) == 0


def exportable_presets() -> list[str]:
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.json"))


@pytest.mark.parametrize("name", exportable_presets())
def test_shipped_presets_equal_render_or_are_refused(name):
    effect = load_preset(name)
    if any(s.keyed and s.key.kind == "pitch" for s in effect.chain.stages):
        with pytest.raises(ExportError, match="pitch"):
            export_faust(effect)
        return
    for sample_rate in (44100, 48000):
        code, _, _ = check(effect, sample_rate, seconds=3.0, seed=sample_rate)
    assert f'declare name "{name}"' in code
    assert f'lactose_validation_esr "{effect.training["validation_esr"]:.6g}"' in code


def test_any_host_block_size_gives_the_same_output():
    effect = load_preset("drive_tone")
    audio = plucks(1.5, 44100, seed=5)
    code = export_faust(effect)
    outputs = [plugin_output(code, audio, 44100, block_size=b) for b in (7, 128, 1000, 4096)]
    for y in outputs[1:]:
        np.testing.assert_allclose(y, outputs[0], rtol=0, atol=1e-6)


def test_mix_and_output_sliders():
    effect = load_preset("fuzz")
    audio = plucks(1.5, 44100, seed=9)
    code = export_faust(effect)
    y = plugin_output(code, audio, 44100, controls={"mix": 40.0, "output": -6.0})
    ref = render(effect.chain, audio, 44100, mix=0.4) * 10 ** (-6 / 20)
    assert esr(y, ref) <= TOLERANCE


def test_readable_tables_and_metadata():
    effect = load_preset("drive_tone")
    code = export_faust(effect)
    cutoffs = effect.chain[2].params["cutoff_hz"]
    assert f"s2_lowpass_cutoff_hz = ({', '.join(repr(v) for v in cutoffs)});  // Hz" in code
    for line in ('declare version "', 'declare description "', 'declare latency_samples "1024"'):
        assert line in code
    assert 'hslider("[0]mix [unit:%]"' in code and 'hslider("[1]output [unit:dB]"' in code


def test_edited_table_changes_the_plugin():
    """The tables are the parameters: editing a cutoff in the text is editing the effect."""
    effect = load_preset("tanh_drive")
    audio = plucks(1.0, 44100, seed=2)
    code = export_faust(effect).replace(
        f"s2_lowpass_cutoff_hz = {effect.chain[2].params['cutoff_hz'][0]!r};",
        "s2_lowpass_cutoff_hz = 1000.0;",
    )
    effect.chain[2].set_physical([1000.0, effect.chain[2].params["q"][0]])
    assert esr(plugin_output(code, audio, 44100), render(effect.chain, audio, 44100)) <= 1e-5


def test_blocks_without_a_faust_kernel_are_refused():
    # defined here, not at import: other modules parametrise over the registry when collected
    class NoFaust(registered_blocks()["tanh"]):
        """A plugin's block: a TF and a numpy kernel, no Faust kernel."""

        name = "test_export_no_faust"
        faust = Block.faust  # the default: refuses

    with pytest.raises(ExportError, match="test_export_no_faust.*no Faust kernel"):
        export_faust(Chain([Stage("gain"), Stage("test_export_no_faust")]))


def test_frequency_sampled_filter_equals_render_at_its_rates():
    """An unkeyed fir_eq fused with a biquad (one frame-filter group) after a keyed drive: the
    program's FIR has the renderer's taps for each rate it carries (equal within float32), and
    mutes the group at a rate it does not carry. 8 and 16 kHz: the FIR is 768 / 1536 taps
    (4132 at 44.1 kHz compiles in ~1.5 min; the same code, measured by bench_export)."""
    rng = np.random.default_rng(11)
    fir = randomise(Stage("fir_eq"), rng)
    chain = Chain(
        [*three_ways("gain", rng)[1:], Stage("tanh"), fir, randomise(Stage("lowpass"), rng)],
        hop_size=512,
    )
    code = export_faust(chain, sample_rates=(16000, 8000))
    assert 'declare lactose_fir_sample_rates "8000 16000";' in code
    assert f"s3_fir_eq_g1000hz_db = {float(fir.physical()[0, 5])!r};  // dB" in code  # readable
    for sample_rate in (8000, 16000):
        audio = plucks(2.0, sample_rate, seed=sample_rate)
        ref = render(chain, audio, sample_rate)
        y = plugin_output(code, audio, sample_rate)
        assert esr(y, ref) <= TOLERANCE, (sample_rate, esr(y, ref))
    audio = plucks(1.0, 22050)  # not a rate it carries: the wet is muted (what remains is the
    # dry at DawDreamer's rounding of the 100 % mix slider, ~1e-8)
    assert np.abs(plugin_output(code, audio, 22050)).max() <= 1e-6 * np.abs(audio).max()
    assert np.abs(render(chain, audio, 22050)).max() > 1e-3


def test_keyed_frequency_sampled_filters_are_refused():
    """A FIR that changes every frame (keyed or following a knob) is refused with one line."""
    keyed = Stage("fir_eq", key=FRAME_KEY, edges=EDGES)
    with pytest.raises(ExportError, match=r"fir_eq\) following the amplitude key") as info:
        export_faust(Chain([Stage("tanh"), Stage("lowpass"), keyed]))
    assert "\n" not in str(info.value)
    with pytest.raises(ExportError, match="sample rates"):
        export_faust(Chain([Stage("fir_eq")]), sample_rates=(10,))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "lactose_audio", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def test_cli_export_and_refusals(tmp_path):
    done = _cli("export", "level_drive", "--out", "fx.dsp", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "fx.dsp").read_text() == export_faust(load_preset("level_drive"))
    done = _cli("export", "pitch_drive", "--out", "p.dsp", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "pitch" in done.stderr and not (tmp_path / "p.dsp").exists()
    if shutil.which("faust2lv2") is None:
        done = _cli("export", "fuzz", "--format", "lv2", "--out", "lv2", cwd=tmp_path)
        assert done.returncode == 2 and "apt-get install -y faust" in done.stderr


def test_cli_export_fir_eq_rates_and_keyed_refusal(tmp_path):
    """``--sample-rate`` picks the rates a fir_eq's taps are designed for; a keyed fir_eq is
    refused with exit 2, one line, and no file written."""
    from lactose_audio.presets import Effect, save_preset

    one, four = ({"counts": [1] * n, "flagged": [False] * n} for n in (1, 4))
    plain = Chain([Stage("tanh"), Stage("fir_eq")])
    keyed = Chain([Stage("tanh"), Stage("fir_eq", key=FRAME_KEY, edges=EDGES)])
    save_preset(Effect(chain=plain, name="eq", coverage=[one, one]), tmp_path / "eq.json")
    save_preset(Effect(chain=keyed, name="keyed", coverage=[one, four]), tmp_path / "k.json")
    done = _cli("export", "eq.json", "--out", "eq.dsp", "--sample-rate", "8000",
                "--sample-rate", "96000", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert 'lactose_fir_sample_rates "8000 96000"' in (tmp_path / "eq.dsp").read_text()
    done = _cli("export", "k.json", "--out", "k.dsp", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "fir_eq" in done.stderr and not (tmp_path / "k.dsp").exists()


@pytest.mark.skipif(
    shutil.which("faust2lv2") is None or shutil.which("lv2file") is None,
    reason="needs Faust's faust2lv2 and lv2file (make plugin-deps)",
)
def test_lv2_plugin_built_and_run_equals_render(tmp_path):  # pragma: no cover - toolchain
    import soundfile as sf

    done = _cli("export", "fuzz", "--format", "lv2", "--out", str(tmp_path / "lv2"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    bundle = next((tmp_path / "lv2").glob("*.lv2"))
    audio = plucks(2.0, 44100, seed=4)
    latency = latency_of(export_faust(load_preset("fuzz")))
    sf.write(tmp_path / "in.wav", np.concatenate([audio, np.zeros(latency, np.float32)]), 44100)
    env = dict(os.environ, LV2_PATH=str(bundle.parent))
    uri = f"https://faustlv2.bitbucket.io/{bundle.stem}"
    run = subprocess.run(
        ["lv2file", "-i", "in.wav", "-o", "out.wav", uri],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    y, _ = sf.read(tmp_path / "out.wav", dtype="float32")
    y = y if y.ndim == 1 else y[:, 0]
    ref = render(load_preset("fuzz").chain, audio, 44100)
    # built in double precision (faust2lv2 -double), like the float64 renderer: equal to
    # rounding (measured 4e-15 with Debian 12's Faust 2.54)
    assert esr(y[latency : latency + audio.size], ref) <= 1e-10


def test_every_builtin_block_exports_or_is_refused_by_design():
    """A contract over the registry: a built-in block has a Faust kernel (memoryless), runs as
    an SVF (filters) or as a FIR (fir_eq, unkeyed; keyed it is refused with its reason)."""
    from lactose_audio.faust import check_exportable

    builtin = [n for n, cls in registered_blocks().items() if cls.__module__.startswith("lactose")]
    assert sorted(builtin) == sorted([*POINTWISE, *FILTERS, "fir_eq"])
    for name in builtin:
        chain = Chain([Stage(name)])
        check_exportable(chain)
        if name == "fir_eq":
            with pytest.raises(ExportError, match="not exported"):
                check_exportable(Chain([Stage(name, key=FRAME_KEY, edges=EDGES)]))


# ---- knobs (control keys): plugin sliders, interpolated like render ---------------------------


def knob_effect():
    """A knob preset (version 2) on every kind of stage: gain, tanh, a low-pass and a high-pass
    follow ``gain`` (settings 0, 5, 10), a peak follows ``tone`` (2 settings), a shelf the
    amplitude key, inside a nested chain."""
    from lactose_audio.chain_spec import ControlKey
    from lactose_audio.presets import Effect

    gain, tone = ControlKey("gain", (0.0, 5.0, 10.0)), ControlKey("tone", (-1.0, 1.0))
    rng = np.random.default_rng(21)
    inner = Chain([randomise(Stage("highshelf", key=FRAME_KEY, edges=EDGES), rng)], mix=0.8)
    chain = Chain(
        [
            randomise(Stage("gain", key=gain), rng),
            randomise(Stage("tanh", key=gain), rng),
            randomise(Stage("lowpass", key=gain), rng),
            randomise(Stage("peak", key=tone), rng),
            inner,
            randomise(Stage("highpass", key=gain), rng),
        ],
        hop_size=HOP,
    )
    coverage = [{"counts": [1] * s.n_ranges, "flagged": [False] * s.n_ranges} for s in chain.stages]
    return Effect(chain=chain, name="knob", coverage=coverage)


@pytest.mark.parametrize(
    "values",
    [{"gain": 5.0, "tone": -1.0}, {"gain": 10.0, "tone": 1.0}, {"gain": 3.7, "tone": 0.25}],
    ids=["captured", "last", "between"],
)
def test_knob_sliders_equal_render_with_the_same_values(values, tmp_path):
    """At captured settings and between them (parameters interpolated in their declared
    scaling, as knobs.stage_row), the plugin with its sliders set equals effect(x, sr, **v)."""
    from lactose_audio.presets import save_preset

    effect = load_preset(save_preset(knob_effect(), tmp_path / "knob.json"))
    audio = plucks(2.0, 44100, seed=13)
    code = export_faust(effect)
    y = plugin_output(code, audio, 44100, controls=values)
    ref = effect(audio, 44100, **values)
    # At gain 10 a 14 Hz high-pass follows a biased drive with +12.8 dB: the float32 plugin's
    # high-pass state loses the subsonic residue of the DC it removes (ESR 1.3e-5, 94 % of
    # the error below 30 Hz, on an AVX-512 CPU). Above 30 Hz the usual bound holds.
    assert esr(y, ref) <= 10 * TOLERANCE
    sos = butter(4, 30.0, "highpass", fs=44100, output="sos")
    assert esr(sosfilt(sos, y), sosfilt(sos, ref)) <= TOLERANCE
    assert latency_of(code) == HOP  # the amplitude key's frame


def test_knob_slider_default_is_the_middle_setting_and_range_is_captured():
    effect = knob_effect()
    code = export_faust(effect)
    assert 'hslider("[2]gain", 5.0, 0.0, 10.0, 0.01)' in code
    assert 'hslider("[3]tone", -1.0, -1.0, 1.0, 0.001)' in code  # of two settings, the first
    audio = plucks(1.0, 44100, seed=14)
    y = plugin_output(code, audio, 44100)
    assert esr(y, effect(audio, 44100, gain=5.0, tone=-1.0)) <= TOLERANCE


def test_knob_named_like_a_fixed_slider_gets_its_own_label():
    from lactose_audio.chain_spec import ControlKey

    chain = Chain([Stage("tanh", key=ControlKey("mix", (0.0, 1.0)))])
    chain[0].set_physical([[0.0, 0.0, 0.0], [18.0, 0.0, -6.0]])
    code = export_faust(chain)
    assert 'hslider("[2]mix knob", 0.0, 0.0, 1.0, 0.001)' in code
    audio = plucks(1.0, 44100, seed=15)
    y = plugin_output(code, audio, 44100, controls={"mix knob": 0.6, "mix": 50.0})
    ref = 0.5 * render(chain, audio, 44100, controls={"mix": 0.6}) + 0.5 * audio
    assert esr(y, ref) <= TOLERANCE


def test_cli_exports_a_knob_preset_equal_to_render_set(tmp_path):
    """``lactose export`` of a knob preset, against ``lactose render --set``."""
    import soundfile as sf

    from lactose_audio.presets import save_preset

    preset = save_preset(knob_effect(), tmp_path / "knob.json")
    done = _cli("export", str(preset), "--out", "fx.dsp", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    audio = plucks(1.5, 44100, seed=16)
    sf.write(tmp_path / "in.wav", audio, 44100, subtype="FLOAT")
    done = _cli("render", str(preset), "in.wav", "out.wav", "--set", "gain=6.25", "--set",
                "tone=0.5", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    ref, _ = sf.read(tmp_path / "out.wav", dtype="float32")
    code = (tmp_path / "fx.dsp").read_text()
    y = plugin_output(code, audio, 44100, controls={"gain": 6.25, "tone": 0.5})
    assert esr(y, ref) <= TOLERANCE


def test_a_knob_moved_during_playback_equals_render_stream_set_and_does_not_click():
    """Slider automation: the plugin reads the knob at frame starts and ramps like
    ``RenderStream.set`` (oracle: the stream with the change at the same frame); the step
    is no larger than the static renders' own (the naive switch's is, so a click would show)."""
    from lactose_audio.chain_spec import ControlKey
    from lactose_audio.plugin import FaustHost, faust_parameters
    from lactose_audio.render import RenderStream

    sr, frame = 44100, 11
    chain = Chain.from_spec("tanh>lowpass", key=ControlKey("gain", (0.0, 10.0)), hop_size=HOP)
    chain[0].set_physical([[0.0, 0.0, 0.0], [24.0, 0.0, -12.0]])
    chain[1].set_physical([[1000.0, 0.7071], [8000.0, 0.7071]])
    x = (0.5 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr)).astype(np.float32)
    host = FaustHost(export_faust(chain), sr, 512)
    moved = np.arange(x.size + 512) >= (frame - 1) * HOP + 300  # read at frame 11's start
    host.faust.set_automation(faust_parameters(host.faust)["gain"], np.where(moved, 10.0, 0.0))
    host.load(x)
    y = host.run()
    stream = RenderStream(chain, sr, controls={"gain": 0})
    head = stream.process(x[: frame * HOP])
    stream.set(gain=10)
    expected = np.concatenate([head, stream.process(x[frame * HOP :]), stream.flush()])
    assert esr(y, expected) <= TOLERANCE
    y0 = render(chain, x, sr, controls={"gain": 0})
    y1 = render(chain, x, sr, controls={"gain": 10})
    settle = 2000  # past the filter's start-up
    own = max(np.abs(np.diff(y0[settle:])).max(), np.abs(np.diff(y1[settle:])).max())
    naive = np.concatenate([y0[: frame * HOP], y1[frame * HOP :]])
    assert np.abs(np.diff(naive[settle:])).max() > 1.5 * own
    assert np.abs(np.diff(y[settle:])).max() <= own * (1 + 1e-4)


# ---- 2-D banks: a knob and the amplitude key on one stage --------------------------------------


def knob_2d_chain(soft_width: float) -> Chain:
    """Every stage follows ``gain`` (0, 5, 10) and an amplitude key (4 ranges): frame-rate
    drive and low-pass, a sample-rate-keyed asymmetric clipper and peak."""
    from lactose_audio.chain_spec import ControlKey

    gain = ControlKey("gain", (0.0, 5.0, 10.0))
    rng = np.random.default_rng(22)
    stages = [
        Stage("tanh", None, FRAME_KEY, EDGES, soft_width, gain),
        Stage("lowpass", None, FRAME_KEY, EDGES, soft_width, gain),
        Stage("asym_clip", None, SAMPLE_KEY, EDGES, soft_width, gain),
        Stage("peak", None, SAMPLE_KEY, EDGES, soft_width, gain),
    ]
    return Chain([randomise(s, rng) for s in stages], hop_size=HOP)


@pytest.mark.parametrize("soft_width", [0.0, 4.0], ids=["hard", "soft"])
def test_2d_bank_sliders_equal_render_at_and_between_settings(soft_width):
    chain = knob_2d_chain(soft_width)
    assert all(s.n_ranges == 12 for s in chain.stages)
    code = export_faust(chain)
    audio = plucks(2.0, 44100, seed=17)
    for value in (5.0, 3.7, 10.0):
        y = plugin_output(code, audio, 44100, controls={"gain": value})
        assert esr(y, render(chain, audio, 44100, controls={"gain": value})) <= TOLERANCE, value


def test_a_2d_knob_moved_during_playback_equals_render_stream_set():
    """Automation of a 2-D bank: the plugin reads the slider at a frame start and ramps each
    range's parameters (pointwise) or fades the coefficients (filters) like
    ``RenderStream.set``, within the key's range of every frame."""
    from lactose_audio.chain_spec import ControlKey
    from lactose_audio.plugin import FaustHost, faust_parameters
    from lactose_audio.render import RenderStream

    sr, frame = 44100, 11
    gain = ControlKey("gain", (0.0, 10.0))
    edges = RangeEdges((-12.0,), "dBFS")
    chain = Chain(
        [Stage("tanh", None, FRAME_KEY, edges, 0.0, gain),
         Stage("lowpass", None, FRAME_KEY, edges, 0.0, gain)], hop_size=HOP,
    )  # fmt: skip
    chain[0].set_physical(
        [[0.0, 0.0, 0.0], [6.0, 0.0, -3.0], [18.0, 0.0, -9.0], [24.0, 0.0, -12.0]]
    )
    chain[1].set_physical([[1000.0, 0.7071], [2000.0, 0.7071], [6000.0, 0.7071], [8000.0, 1.0]])
    t = np.arange(sr) / sr
    x = (0.5 * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)) * np.sin(2 * np.pi * 220 * t)).astype(
        np.float32
    )
    code = export_faust(chain)
    latency = latency_of(code)
    host = FaustHost(code, sr, 512)
    n = x.size + latency
    moved = np.arange(n + 512) >= frame * HOP + 300  # read at the start of input frame 11
    host.faust.set_automation(faust_parameters(host.faust)["gain"], np.where(moved, 10.0, 0.0))
    host.load(x, n)
    y = host.run()[latency:]
    stream = RenderStream(chain, sr, controls={"gain": 0})
    head = stream.process(x[: frame * HOP])
    stream.set(gain=10)
    expected = np.concatenate([head, stream.process(x[frame * HOP :]), stream.flush()])
    assert esr(y, expected) <= TOLERANCE
    around = slice((frame - 1) * HOP, (frame + 3) * HOP)  # the change: ramps and fades
    assert esr(y[around], expected[around]) <= TOLERANCE
    assert esr(y, render(chain, x, sr, controls={"gain": 0})) > 0.01  # the knob did move
