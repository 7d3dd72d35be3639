"""Tests of scripts/make_datasets.py: reproducibility, shape, oracles for the effects."""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pedalboard")

from lactose_audio.audio_io import read_audio  # noqa: E402
from lactose_audio.data import pair_from_arrays  # noqa: E402

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "make_datasets.py"
_spec = importlib.util.spec_from_file_location("make_datasets", SCRIPT)
md = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("make_datasets", md)  # dataclasses look their module up
_spec.loader.exec_module(md)

SECONDS = 6.0


@pytest.fixture(scope="module")
def pairs():
    return {name: md._make(name, SECONDS, None) for name in md.PAIRS}


def test_same_seed_same_arrays_other_seed_differs():
    dry1, wet1, sr = md.make_pair("level_drive", 4.0, seed=7)
    dry2, wet2, _ = md.make_pair("level_drive", 4.0, seed=7)
    np.testing.assert_array_equal(dry1, dry2)
    np.testing.assert_array_equal(wet1, wet2)
    dry3, _, _ = md.make_pair("level_drive", 4.0, seed=8)
    assert not np.array_equal(dry1, dry3)
    assert sr == 44100


@pytest.mark.parametrize("name", list(md.PAIRS))
def test_pair_shape_levels_and_loadable(pairs, name):
    dry, wet, notes = pairs[name]
    n = round(SECONDS * md.SAMPLE_RATE)
    assert dry.shape == wet.shape == (n,)
    assert dry.dtype == wet.dtype == np.float32
    assert np.all(np.isfinite(wet))
    assert 0.1 < np.max(np.abs(dry)) <= md.MAX_PEAK + 1e-6
    assert 0.05 < np.max(np.abs(wet)) < 0.999  # not silent, no clipping flag
    # Phrases are separated by digital silence, and it stays silent through the effect.
    assert np.mean(dry == 0.0) > 0.05
    # Pitches inside E2..E5; notes end before the take does.
    assert all(md.LOWEST_MIDI <= note.midi <= md.HIGHEST_MIDI for note in notes)
    release = round(md.RELEASE_SECONDS * md.SAMPLE_RATE)
    assert max(note.onset + note.hold + release for note in notes) <= n
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no clipping / polarity / correlation warning
        pair = pair_from_arrays(dry, wet, md.SAMPLE_RATE, max_latency=100)
    assert 0 <= pair.latency_samples <= 3


def test_tanh_drive_matches_closed_form(pairs):
    dry, wet, _ = pairs["tanh_drive"]
    p = md.PAIRS["tanh_drive"].params
    # Oracle: pedalboard's Distortion is tanh(x * 10**(drive_db/20)); Gain multiplies.
    gain_in = 10.0 ** ((p["input_gain_db"] + p["drive_db"]) / 20.0)
    expected = 10.0 ** (p["output_gain_db"] / 20.0) * np.tanh(dry.astype(np.float64) * gain_in)
    np.testing.assert_allclose(wet, expected, rtol=0, atol=2e-6)


def test_fuzz_is_asymmetric_and_offset_free(pairs):
    dry, wet, _ = pairs["fuzz"]
    # Oracle of the waveshaper alone (before the filters): bias moves the clipping point.
    p = md.PAIRS["fuzz"].params
    g = 10.0 ** (p["drive_db"] / 20.0)
    shaped = np.tanh(g * (dry + p["bias"])) - np.tanh(g * p["bias"])
    assert shaped.max() < 0.1 < -shaped.min()  # the positive side clips far earlier
    assert abs(np.mean(wet)) < 1e-3  # high-pass removes the DC of the asymmetry


def test_pitch_drive_is_monophonic_and_covers_every_bucket(pairs):
    _, _, notes = md._make("pitch_drive", 32.0, None)
    release = round(md.RELEASE_SECONDS * md.SAMPLE_RATE)
    for before, after in zip(notes[:-1], notes[1:], strict=True):
        assert before.onset + before.hold + release <= after.onset
    edges = md.PAIRS["pitch_drive"].params["edges_midi"]
    buckets = np.bincount([md.pitch_bucket(n.midi, edges) for n in notes], minlength=3)
    assert np.all(buckets >= 5)
    assert md.pitch_bucket(51, edges) == 0 and md.pitch_bucket(52, edges) == 1
    assert md.pitch_bucket(64, edges) == 2


def test_pitch_drive_notes_use_their_bucket_chain(pairs):
    dry, wet, notes = pairs["pitch_drive"]
    p = md.PAIRS["pitch_drive"].params
    from pedalboard import Distortion, Gain, HighpassFilter, LowpassFilter, Pedalboard

    filters = {"lowpass": LowpassFilter, "highpass": HighpassFilter}
    onsets = [n.onset for n in notes] + [dry.shape[0]]
    for i in (0, len(notes) // 2, len(notes) - 1):
        b = p["buckets"][md.pitch_bucket(notes[i].midi, p["edges_midi"])]
        board = Pedalboard(
            [
                Distortion(drive_db=b["drive_db"]),
                filters[b["filter"]](cutoff_frequency_hz=b["cutoff_hz"]),
                Gain(gain_db=b["gain_db"]),
            ]
        )
        piece = slice(onsets[i], onsets[i + 1])
        np.testing.assert_array_equal(wet[piece], board(dry[piece], md.SAMPLE_RATE))


def test_level_drive_depends_on_level():
    dry, wet, _ = md._make("level_drive", 32.0, None)  # long enough for every level
    p = md.PAIRS["level_drive"].params
    level = md.envelope_dbfs(dry, md.SAMPLE_RATE, p["envelope_hold_ms"], p["envelope_release_ms"])
    quiet = (level < p["blend_low_dbfs"]) & (np.abs(dry) > 1e-4)
    loud = level > p["blend_high_dbfs"]
    assert quiet.sum() > 10000 and loud.sum() > 10000
    # Oracle: where the level is outside the blend band, the wet is exactly one chain's output.
    from pedalboard import Distortion, Gain, HighpassFilter, Pedalboard

    clean = Pedalboard(
        [
            Distortion(drive_db=p["clean_drive_db"]),
            HighpassFilter(cutoff_frequency_hz=p["clean_highpass_hz"]),
            Gain(gain_db=p["clean_gain_db"]),
        ]
    )(dry, md.SAMPLE_RATE)
    np.testing.assert_allclose(wet[quiet], clean[quiet], rtol=0, atol=1e-7)
    # Quiet passages come out relatively louder than loud ones (the driven chain compresses).
    ratio_quiet = np.std(wet[quiet]) / np.std(dry[quiet])
    ratio_loud = np.std(wet[loud]) / np.std(dry[loud])
    assert ratio_quiet > 2.0 * ratio_loud


def test_envelope_is_causal_with_instant_attack():
    x = np.zeros(2000)
    x[1000] = 0.5
    level = md.envelope_dbfs(x, 1000, hold_ms=10.0, release_ms=5.0)
    assert np.all(level[:1000] == -200.0)  # nothing before the impulse
    assert level[1000] == pytest.approx(20 * np.log10(0.5))  # instant attack
    assert level[1009] == pytest.approx(20 * np.log10(0.5))  # held for 10 ms
    assert level[1030] < level[1010]  # then released


def test_two_runs_write_identical_files_and_manifest(tmp_path):
    runs = []
    for run in ("a", "b"):
        out = tmp_path / run / "audio"
        manifest = tmp_path / run / "manifest.json"
        md.build(out, ["tanh_drive", "pitch_drive"], 3.0, manifest, log=lambda _: None)
        runs.append((out, manifest))
    (out_a, man_a), (out_b, man_b) = runs
    assert man_a.read_bytes() == man_b.read_bytes()
    document = json.loads(man_a.read_text())
    assert [e["name"] for e in document["pairs"]] == ["tanh_drive", "pitch_drive"]
    for entry in document["pairs"]:
        assert entry["n_samples"] == 3 * 44100 and entry["sample_rate"] == 44100
        for role in ("dry", "wet"):
            name = f"{entry['name']}_{role}.wav"
            assert (out_a / name).read_bytes() == (out_b / name).read_bytes()
            assert entry["files"][role]["sha256"] == md._sha256(out_a / name)
            assert entry["files"][role]["path"] == f"audio/{name}"
        audio, sample_rate = read_audio(out_a / f"{entry['name']}_dry.wav")
        np.testing.assert_array_equal(audio, md.make_pair(entry["name"], 3.0)[0])


def test_cli_refuses_unknown_pair(capsys):
    assert md.main(["--only", "nope", "--manifest", "/nonexistent/m.json"]) == 2
    assert "unknown pair 'nope'" in capsys.readouterr().err
