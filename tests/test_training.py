"""Training end to end: improvement over identity, separated ranges, resume, interrupt, CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lactose_audio import cli
from lactose_audio.data import pair_from_arrays
from lactose_audio.losses import esr
from lactose_audio.presets import load_preset
from lactose_audio.ranges import UNKEYED
from lactose_audio.sampling import pick, validation_blocks
from lactose_audio.training import (
    CHECKPOINT_SUFFIX,
    DEFAULT_SPEC,
    TrainConfig,
    TrainingInterrupted,
    train,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from make_datasets import make_pair  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def drive_pair():
    dry, wet, sample_rate = make_pair("tanh_drive", seconds=8.0, seed=3)
    return pair_from_arrays(dry, wet, sample_rate, latency=0, name="tanh_drive")


def test_training_improves_esr_by_a_large_factor_over_identity(drive_pair, tmp_path):
    identity = esr(drive_pair.wet, drive_pair.dry)
    config = TrainConfig(chain_spec=DEFAULT_SPEC, steps=240, key="none", seed=0)
    result = train(drive_pair, config, out=tmp_path / "drive.json")
    effect = load_preset(tmp_path / "drive.json")
    held = validation_blocks(
        drive_pair.n_samples, 0.15, effect.chain.hop_size, drive_pair.sample_rate
    )
    prediction = effect(drive_pair.dry, drive_pair.sample_rate)
    measured = esr(pick(drive_pair.wet, held), pick(prediction, held))
    assert identity > 0.3
    assert measured < identity / 20, (measured, identity)
    # The preset records what was measured (same validation split, same render engine; each
    # block rendered after its filter context, not after the whole take before it: the exact
    # recursive filters' tails beyond the context make ~0.2 % here).
    assert effect.training["validation_esr"] == pytest.approx(measured, rel=5e-3)
    # The training graph hears the same thing.
    graph = effect(drive_pair.dry, drive_pair.sample_rate, engine="graph")
    assert esr(prediction, graph) < 1e-3
    assert result.steps == effect.training["steps"] <= 240


def test_ranges_start_from_the_unconditioned_fit_and_flag_empty_ranges(drive_pair, tmp_path):
    # Edges far above the data's level: ranges 1 and 2 never see data.
    config = TrainConfig(
        chain_spec=DEFAULT_SPEC, steps=60, key="amplitude", edges=[6.0, 12.0], eval_every=10
    )
    result = train(drive_pair, config, out=tmp_path / "p.json")
    effect = load_preset(tmp_path / "p.json")
    for stage, cover in zip(effect.chain.stages, effect.coverage, strict=True):
        assert cover["counts"][1:] == [0, 0]
        assert cover["flagged"] == [False, True, True]
        values = stage.physical()
        # Flagged ranges hold exactly the unconditioned fit (row 0 at the end of phase 1).
        np.testing.assert_array_equal(values[1], values[2])
    assert "too little data" in result.summary()


def test_ranges_start_with_saturated_parameters_pulled_inside_their_bounds(drive_pair):
    """A parameter the pooled fit left at a bound (its raw sigmoid saturated: a dead gradient,
    so no range could move it) starts the per-range phase pulled in to
    +-START_RAW_LIMIT; that start is re-validated, and the fallback for flagged ranges
    keeps the exact unconditioned values."""
    from lactose_audio.params import START_RAW_LIMIT
    from lactose_audio.trainer import Trainer
    from lactose_audio.training import build_chain

    cfg = TrainConfig(chain_spec=DEFAULT_SPEC, key="amplitude", n_ranges=3, steps=10).resolved()
    chain = build_chain(cfg, [drive_pair.dry], drive_pair.sample_rate)
    trainer = Trainer(chain, [drive_pair], cfg, drive_pair.sample_rate)
    lowpass = chain.stages[2]
    assert lowpass.block.name == "lowpass"
    raw = lowpass.bank.numpy().copy()
    raw[:, 0] = lowpass.block.params[0].to_raw_np(22000.0)  # wide open: at its upper bound
    lowpass.bank.assign(raw)
    assert raw[0, 0] > 3 * START_RAW_LIMIT
    trainer.best_values = [stage.bank.numpy().copy() for stage in chain.stages]
    trainer.best_esr = 1.0
    trainer.start_ranges()
    started = lowpass.bank.numpy()
    np.testing.assert_array_equal(started[:, 0], START_RAW_LIMIT)
    assert all(np.abs(s.bank.numpy()).max() <= START_RAW_LIMIT for s in chain.stages)
    assert 20000.0 < lowpass.physical()[0][0] < 22000.0  # still out of the way
    assert trainer.unconditioned_values[2][0, 0] == raw[0, 0]
    assert trainer.best_esr == pytest.approx(trainer.validation_esr(), rel=1e-9)
    np.testing.assert_array_equal(trainer.best_values[2], started)


@pytest.mark.parametrize("segment", [8192, 3 * 1024])
def test_validation_esr_is_the_held_out_blocks_esr_after_their_context(drive_pair, segment):
    """Oracle: the chain run block by block (each held-out block whole, after its filter
    context), the error summed over blocks, by the numpy render engine and by the training
    graph. The trainer cuts the blocks into pieces laid out like its training segments
    (rendered by the numpy engine); their contexts cover the filters' impulse response: the
    same ESR, whatever the segment length."""
    from lactose_audio.iir import NumpyBackend
    from lactose_audio.trainer import Trainer
    from lactose_audio.training import build_chain

    cfg = TrainConfig(
        chain_spec=DEFAULT_SPEC, key="amplitude", n_ranges=3, steps=10, segment_samples=segment
    ).resolved()
    chain = build_chain(cfg, [drive_pair.dry], drive_pair.sample_rate)
    rng = np.random.default_rng(5)
    for stage in chain.stages:  # distinct rows, so a wrong row or frame would show
        raw = stage.bank.numpy()
        stage.bank.assign((raw + rng.normal(0.0, 0.3, raw.shape)).astype(raw.dtype))
    trainer = Trainer(chain, [drive_pair], cfg, drive_pair.sample_rate)
    trainer.phase = "ranges"
    track, sr, context = trainer.tracks[0], drive_pair.sample_rate, trainer.context
    errors = graph_errors = energy = 0.0
    for begin, end in track.validation:
        assert begin >= context and (end - begin) % segment  # a masked, padded last piece
        sels = chain.slice_selections(track.selections, begin - context, end - begin + context)
        out = NumpyBackend(chain, sr).process(track.dry[begin - context : end], sels)
        batched = [s if s is UNKEYED else type(s)(*(a[None] for a in s)) for s in sels]
        graph = np.asarray(chain.forward(track.dry[None, begin - context : end], batched, sr))
        target = track.wet[begin:end].astype(np.float64)
        errors += np.sum((target - out[context:]) ** 2)
        graph_errors += np.sum((target - graph[0, context:]) ** 2)
        energy += np.sum(target**2)
    assert 0.001 < errors / energy < 1.0  # a real error to compare, not a trivial one
    assert trainer.validation_esr() == pytest.approx(errors / energy, rel=1e-5)
    # the graph's float32 filters differ from the exact recursion by ~3e-4 relative here
    assert trainer.validation_esr() == pytest.approx(graph_errors / energy, rel=2e-3)


def test_resume_continues_where_the_checkpoint_left_off(drive_pair, tmp_path):
    # Interrupted in the second phase's Adam warm-up: everything after it is deterministic.
    config = TrainConfig(
        chain_spec=DEFAULT_SPEC,
        steps=40,
        key="amplitude",
        n_ranges=2,
        seed=7,
        eval_every=10,
        patience=100,
        warmup_share=0.5,
    )
    straight = train(drive_pair, config, out=tmp_path / "a.json")

    def interrupt(trainer):
        if trainer.step == 25:  # in the second phase
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(drive_pair, config, out=tmp_path / "b.json", on_step=interrupt)
    assert (tmp_path / f"b.json{CHECKPOINT_SUFFIX}").is_file()
    assert load_preset(tmp_path / "b.json").training["steps"] == 25
    resumed = train(drive_pair, config, out=tmp_path / "b.json", resume=True)
    assert resumed.steps == straight.steps == 40
    for s1, s2 in zip(straight.effect.chain.stages, resumed.effect.chain.stages, strict=True):
        np.testing.assert_allclose(s1.bank.numpy(), s2.bank.numpy(), rtol=1e-4, atol=1e-5)
    assert [h["step"] for h in resumed.history] == [h["step"] for h in straight.history]
    np.testing.assert_allclose(
        [h["val_esr"] for h in resumed.history],
        [h["val_esr"] for h in straight.history],
        rtol=1e-4,
    )


def test_resume_without_checkpoint_is_refused(drive_pair, tmp_path):
    from lactose_audio.errors import ParameterError

    with pytest.raises(ParameterError, match="no checkpoint"):
        train(drive_pair, TrainConfig(steps=5), out=tmp_path / "x.json", resume=True)


def test_interrupt_saves_the_best_preset_so_far(drive_pair, tmp_path):
    out = tmp_path / "p.json"

    def interrupt(trainer):
        if trainer.step == 20:  # before it converges (29 steps)
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="saved the best preset so far"):
        train(
            drive_pair,
            TrainConfig(chain_spec=DEFAULT_SPEC, steps=200, key="none", eval_every=10),
            out=out,
            on_step=interrupt,
        )
    effect = load_preset(out)
    assert effect.training["steps"] == 20
    assert np.isfinite(effect.training["validation_esr"])
    assert Path(f"{out}{CHECKPOINT_SUFFIX}").is_file()


def test_cli_train_render_eval_inspect(drive_pair, tmp_path, capsys):
    dry, wet = tmp_path / "dry.wav", tmp_path / "wet.wav"
    sf.write(dry, drive_pair.dry, drive_pair.sample_rate, subtype="PCM_24")
    sf.write(wet, drive_pair.wet, drive_pair.sample_rate, subtype="FLOAT")
    preset = tmp_path / "drive.json"
    code = cli.main(
        [
            "train",
            str(dry),
            str(wet),
            "--out",
            str(preset),
            "--steps",
            "60",
            "--chain",
            "default",
            "--key",
            "amplitude",
            "--ranges",
            "3",
            "--quiet",
            "--latency",
            "0",
            "--report",
            str(tmp_path / "report"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "validation ESR" in capsys.readouterr().out
    assert {p.name for p in (tmp_path / "report").iterdir()} >= {
        "training.png",
        "effect.png",
        "spectrogram.png",
    }

    out = tmp_path / "out.wav"
    assert cli.main(["render", str(preset), str(dry), str(out)]) == 0
    rendered, sample_rate = sf.read(out, dtype="float32")
    assert sample_rate == drive_pair.sample_rate and sf.info(out).subtype == "FLOAT"
    np.testing.assert_allclose(
        rendered, load_preset(preset)(drive_pair.dry.astype(np.float32), sample_rate), atol=1e-6
    )
    capsys.readouterr()
    assert cli.main(["eval", str(preset), str(dry), str(wet), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) >= {"esr", "esr_pre_emphasis", "mr_stft", "snr_db"}
    assert metrics["snr_db"] == pytest.approx(-10 * np.log10(metrics["esr"]), rel=1e-6)
    assert metrics["esr"] == pytest.approx(esr(drive_pair.wet, rendered), rel=1e-4)

    assert cli.main(["inspect", str(preset), "--plot", str(tmp_path / "fx.png")]) == 0
    table = capsys.readouterr().out
    assert "drive_db" in table and "cutoff_hz" in table and "dBFS" in table
    assert (tmp_path / "fx.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["inspect", str(preset), "--json"]) == 0
    stages = json.loads(capsys.readouterr().out)["stages"]
    assert [s["block"] for s in stages] == ["gain", "tanh", "lowpass", "highpass"]
    assert len(stages[1]["rows"]) == 3


def test_cli_ctrl_c_exits_130_after_saving(drive_pair, tmp_path, monkeypatch, capsys):
    import lactose_audio.training as training

    original = training.Trainer.run

    def run(self, *args, **kwargs):
        def interrupt(trainer):
            if trainer.step == 10:  # the fit converges at ~20 steps
                raise KeyboardInterrupt

        kwargs["on_step"] = interrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(training.Trainer, "run", run)
    dry, wet = tmp_path / "dry.wav", tmp_path / "wet.wav"
    sf.write(dry, drive_pair.dry, drive_pair.sample_rate)
    sf.write(wet, drive_pair.wet, drive_pair.sample_rate)
    out = tmp_path / "p.json"
    code = cli.main(
        [
            "train",
            str(dry),
            str(wet),
            "--out",
            str(out),
            "--steps",
            "100",
            "--chain",
            "default",
            "--key",
            "none",
            "--latency",
            "0",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 130, err
    assert "saved the best preset so far" in err and err.count("\n") == 1
    assert load_preset(out).training["steps"] == 10


def test_learned_dry_wet_mix_recovers_a_parallel_drive(tmp_path):
    """A parallel drive (30 % of a tanh drive + 70 % of the dry signal) is learned by
    ``tanh>mix``: the dry share is identifiable, so the learned wet is close to 0.3."""
    rng = np.random.default_rng(12)
    sr = 44100
    n = 6 * sr
    level = np.repeat(rng.uniform(0.05, 0.8, n // 4410 + 1), 4410)[:n]
    dry = (level * np.sin(2 * np.pi * 196.0 * np.arange(n) / sr)).astype(np.float32)
    dry += (0.02 * rng.standard_normal(n)).astype(np.float32)
    wet = (0.3 * np.tanh(10.0 * dry) + 0.7 * dry).astype(np.float32)
    pair = pair_from_arrays(dry, wet, sr, latency=0, name="parallel")
    config = TrainConfig(chain_spec="tanh>mix", key="none", steps=200, seed=0)
    train(pair, config, out=tmp_path / "parallel.json")
    effect = load_preset(tmp_path / "parallel.json")
    learned_wet = effect.chain.stages[1].physical()[0, 0]
    assert abs(learned_wet - 0.3) < 0.05, learned_wet
    assert esr(wet, effect(dry, sr)) < 0.01


def test_an_inverting_effect_is_fitted_with_an_invert_stage(drive_pair, tmp_path):
    """A wet of inverted polarity: no other block makes a negative gain, so the fit ends its
    chain with ``invert`` and reaches the ESR of the same effect not inverted; the chain
    without it is at best silence (oracle: for y = -w, ESR(w, y) = 4 and ESR(w, 0) = 1)."""
    inverted = pair_from_arrays(
        drive_pair.dry, -drive_pair.wet, drive_pair.sample_rate, latency=0, name="inverted"
    )
    assert inverted.polarity_inverted and not drive_pair.polarity_inverted
    config = TrainConfig(chain_spec="gain>tanh", key="none", steps=60, seed=0)
    result = train(inverted, config, out=tmp_path / "inv.json")
    plain = train(drive_pair, config)
    assert result.chain == "gain>tanh>invert" and plain.chain == "gain>tanh"
    effect = load_preset(tmp_path / "inv.json")
    assert [s.block.name for s in effect.chain.stages] == ["gain", "tanh", "invert"]
    assert effect.training["chain"] == "gain>tanh>invert"
    assert result.validation_esr < 0.01
    assert result.validation_esr == pytest.approx(plain.validation_esr, rel=0.05, abs=1e-4)
    out = effect(drive_pair.dry, drive_pair.sample_rate)
    assert esr(-drive_pair.wet, out) < 0.01 < esr(drive_pair.wet, out)
