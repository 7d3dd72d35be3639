"""Long files in constant memory (issue 13): block-wise render/eval == whole-file oracles."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import soundfile as sf

from lactose_audio import cli
from lactose_audio.audio_io import ClippingWarning, write_audio_blocks
from lactose_audio.batch import render_files
from lactose_audio.data import load_pair
from lactose_audio.errors import DataError
from lactose_audio.losses import RunningErrors, esr, evaluate
from lactose_audio.presets import load_preset
from lactose_audio.render import render
from lactose_audio.workflows import evaluate_files

SR = 44100
BLOCK = 65536  # the readers' block: the files below span several


def _guitar(seconds: float, seed: int = 0) -> np.ndarray:
    """Decaying harmonic notes (110-440 Hz) with short gaps, float32 ``[n]``."""
    rng = np.random.default_rng(seed)
    parts, n_total = [], int(seconds * SR)
    while sum(p.size for p in parts) < n_total:
        n = int(rng.uniform(0.5, 1.0) * SR)
        t = np.arange(n) / SR
        f0 = 110.0 * 2 ** rng.uniform(0, 2)
        note = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 5))
        parts.append((0.6 * np.exp(-3 * t) * note).astype(np.float32))
        parts.append(np.zeros(int(rng.uniform(0.0, 0.4) * SR), np.float32))
    return np.concatenate(parts)[:n_total]


@pytest.mark.parametrize("preset", ["level_drive", "pitch_drive"])
def test_cli_render_streams_and_equals_whole_file_render(tmp_path, preset):
    x = _guitar(4.0)
    assert x.size > 2 * BLOCK
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, x, SR, subtype="FLOAT")
    assert cli.main(["render", preset, str(src), str(dst)]) == 0
    out, sr = sf.read(dst, dtype="float32")
    whole = render(load_preset(preset).chain, x, SR)
    assert sr == SR and out.shape == x.shape
    assert esr(whole, out) <= 1e-7
    assert sorted(os.listdir(tmp_path)) == ["in.wav", "out.wav"]  # no temporary left


def test_folder_render_streams_each_file(tmp_path):
    x = _guitar(3.5, seed=2)
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "a.wav", x, SR, subtype="FLOAT")
    result = render_files("pitch_drive", tmp_path / "in", tmp_path / "out")
    assert not result.failed and len(result.written) == 1
    out, _ = sf.read(result.written[0], dtype="float32")
    assert esr(render(load_preset("pitch_drive").chain, x, SR), out) <= 1e-7


def test_block_writer_counts_clipping_across_blocks_and_is_atomic(tmp_path):
    rng = np.random.default_rng(0)
    blocks = [rng.uniform(-1.5, 1.5, 1000).astype(np.float32) for _ in range(3)]
    expected = sum(int(np.count_nonzero(np.abs(b) > 1.0)) for b in blocks)
    path = tmp_path / "o.wav"
    with pytest.warns(ClippingWarning, match=f"{expected} samples beyond"):
        assert write_audio_blocks(path, iter(blocks), SR, "PCM_16") == 3000
    data, _ = sf.read(path, dtype="float32")
    np.testing.assert_allclose(data, np.clip(np.concatenate(blocks), -1, 1), atol=1 / 32767)

    def failing():
        yield blocks[0]
        raise KeyboardInterrupt

    good = path.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        write_audio_blocks(path, failing(), SR, "PCM_16")
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["o.wav"]


def test_failed_render_leaves_existing_output_untouched(tmp_path, capsys):
    x = _guitar(3.0)
    x[100000] = np.nan  # in the second block: found after the first was written
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, x, SR, subtype="FLOAT")
    dst.write_bytes(b"a good earlier render")
    assert cli.main(["render", "level_drive", str(src), str(dst)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "in.wav" in err[0] and "sample 100000" in err[0]
    assert dst.read_bytes() == b"a good earlier render"
    assert sorted(os.listdir(tmp_path)) == ["in.wav", "out.wav"]


def test_running_errors_equal_whole_signal_formulas():
    rng = np.random.default_rng(3)
    target = rng.standard_normal(10000)
    prediction = target + 0.1 * rng.standard_normal(10000)
    running = RunningErrors()
    for i in range(0, 10000, 777):
        running.update(target[i : i + 777], prediction[i : i + 777])
    got = running.metrics()
    whole = evaluate(target, prediction)
    for key in ("esr", "esr_pre_emphasis", "snr_db"):
        assert got[key] == pytest.approx(whole[key], rel=1e-12)


@pytest.mark.parametrize("latency", [0, 37])
def test_streamed_eval_equals_whole_file_eval(tmp_path, latency):
    x = _guitar(3.5, seed=4)
    effect = load_preset("level_drive")
    wet = np.concatenate([np.zeros(latency, np.float32), np.tanh(2.5 * x)[: x.size - latency]])
    sf.write(tmp_path / "dry.wav", x, SR, subtype="FLOAT")
    sf.write(tmp_path / "wet.wav", wet, SR, subtype="FLOAT")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = evaluate_files("level_drive", tmp_path / "dry.wav", tmp_path / "wet.wav",
                             latency=latency or None)  # fmt: skip
        # the oracle: today's whole-file evaluation (latency given, or the preset's stored one)
        stored = effect.training.get("latency_samples")
        pair = load_pair(tmp_path / "dry.wav", tmp_path / "wet.wav", latency=latency or stored)
    expected = evaluate(pair.wet, render(effect.chain, pair.dry, SR))
    assert got["latency_samples"] == pair.latency_samples
    assert got["n_samples"] == pair.dry.size
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6), key


def test_unseekable_file_is_refused_with_one_line(tmp_path, capsys, monkeypatch):
    src = tmp_path / "in.wav"
    sf.write(src, _guitar(0.5), SR, subtype="FLOAT")
    monkeypatch.setattr(sf.SoundFile, "seekable", lambda self: False)  # e.g. a pipe
    assert cli.main(["render", "level_drive", str(src), str(tmp_path / "o.wav")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "in.wav" in err[0] and "cannot be streamed" in err[0]
    assert not (tmp_path / "o.wav").exists()
    with pytest.raises(DataError, match="cannot be streamed"):
        evaluate_files("level_drive", src, src)


def test_streamed_eval_estimates_the_latency_like_the_whole_file_eval(tmp_path):
    from lactose_audio.presets import save_preset

    effect = load_preset("level_drive")
    effect.training.pop("latency_samples", None)  # nothing stored: estimated from the pair
    save_preset(effect, tmp_path / "p.json")
    x = _guitar(3.0, seed=6)
    wet = np.concatenate([np.zeros(53, np.float32), np.tanh(2.5 * x)[:-53]])
    sf.write(tmp_path / "dry.wav", x, SR, subtype="FLOAT")
    sf.write(tmp_path / "wet.wav", wet, SR, subtype="FLOAT")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = evaluate_files(tmp_path / "p.json", tmp_path / "dry.wav", tmp_path / "wet.wav")
        pair = load_pair(tmp_path / "dry.wav", tmp_path / "wet.wav")
    assert got["latency_samples"] == pair.latency_samples == 53
    expected = evaluate(pair.wet, render(effect.chain, pair.dry, SR))
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6), key
