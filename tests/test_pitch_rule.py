"""The pitch key's ``lowest`` rule (:func:`lactose_audio.pitch.lowest_partial`).

Oracle: the notes synthesized. pYIN keys a chord by the period the chord repeats at (often an
octave or two below every note played); the ``lowest`` rule must key it by its lowest note,
and leave single notes exactly as pYIN keys them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lactose_audio.chain_spec import make_key
from lactose_audio.conditioning import KeySpec, compute_key
from lactose_audio.errors import ParameterError
from lactose_audio.presets import load_preset

REPO = Path(__file__).resolve().parent.parent
SR = 44100
HOP = 512
# chords pYIN voices (it leaves some, such as G2-D3-G3, unvoiced: the key then fills them)
CHORDS = [(61, 64, 68, 71), (60, 81), (52, 59, 64), (57, 64), (50, 57, 62), (55, 59, 62, 67)]
CHORD_S, GAP_S = 0.8, 0.3


def _tone(midi: float, seconds: float, phase: float, n_harm: int = 12) -> np.ndarray:
    """A sawtooth-like note (harmonics 1/k up to ``n_harm`` or 16 kHz), 10 ms ramps."""
    f0 = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    t = np.arange(int(round(seconds * SR))) / SR
    ks = [k for k in range(1, n_harm + 1) if k * f0 < 16000]
    x = sum(np.sin(2 * np.pi * k * f0 * t + phase * k) / k for k in ks)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01)
    return x * fade


def _take(groups, seed: int) -> tuple[np.ndarray, list[tuple[float, float, int]]]:
    """Each group of notes played together, then a gap; ``(start s, end s, lowest)`` each."""
    rng = np.random.default_rng(seed)
    parts, truth, t = [], [], 0.0
    gap = np.zeros(int(GAP_S * SR))
    for notes in groups:
        chord = sum(_tone(m, CHORD_S, rng.uniform(0, 2 * np.pi)) for m in notes)
        parts += [0.25 * chord / np.max(np.abs(chord)), gap]
        truth.append((t, t + CHORD_S, min(notes)))
        t += CHORD_S + GAP_S
    return np.concatenate(parts).astype(np.float32), truth


def _middles(truth, n_frames: int):
    """(frame mask of each group's middle, 0.15 s from either end; its lowest note)."""
    centres = (np.arange(n_frames) + 0.5) * HOP / SR
    return [((centres > a + 0.15) & (centres < b - 0.15), low) for a, b, low in truth]


def test_lowest_rule_keys_each_chord_by_its_lowest_note() -> None:
    x, truth = _take(CHORDS, seed=1)
    lowest = compute_key(KeySpec("pitch", pitch_rule="lowest"), x, SR, HOP)
    pyin = compute_key(KeySpec("pitch"), x, SR, HOP)
    missed_by_pyin = 0
    for mask, low in _middles(truth, lowest.size):
        assert mask.sum() > 20
        assert np.mean(np.abs(lowest[mask] - low) <= 0.26) >= 0.9, (low, lowest[mask])
        missed_by_pyin += np.mean(np.abs(pyin[mask] - low) > 5.0) > 0.5
    # the rule is what makes the difference: pYIN keys some of these chords far below them
    assert missed_by_pyin >= 2


def test_lowest_rule_leaves_single_notes_as_pyin_keys_them() -> None:
    notes = [(m,) for m in range(38, 90, 5)]  # D2 .. E6, one at a time
    x, truth = _take(notes, seed=2)
    lowest = compute_key(KeySpec("pitch", pitch_rule="lowest"), x, SR, HOP)
    pyin = compute_key(KeySpec("pitch"), x, SR, HOP)
    for mask, low in _middles(truth, lowest.size):
        assert np.all(np.abs(pyin[mask] - low) <= 0.26)
    assert np.mean(lowest == pyin) >= 0.99


@pytest.mark.parametrize("chunk", [1000, 4096, 30011])
def test_lowest_rule_streams_exactly(chunk: int) -> None:
    x, _ = _take(CHORDS[:4], seed=3)
    spec = KeySpec("pitch", pitch_rule="lowest")
    whole = compute_key(spec, x, SR, HOP)
    stream = spec.stream(SR, HOP)
    parts = [stream.process(x[i : i + chunk]) for i in range(0, x.size, chunk)]
    parts.append(stream.flush())
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_pitch_rule_field_round_trips_and_is_validated() -> None:
    assert "pitch_rule" not in KeySpec("pitch").to_dict()  # presets before the field
    assert "pitch_rule" not in KeySpec("amplitude").to_dict()
    lowest = KeySpec("pitch", pitch_rule="lowest")
    assert lowest.to_dict()["pitch_rule"] == "lowest"
    assert KeySpec.from_dict(lowest.to_dict()) == lowest
    assert make_key("pitch").pitch_rule == "lowest"  # keys made by name (--key pitch)
    assert make_key("pitch", pitch_rule="pyin").pitch_rule == "pyin"
    with pytest.raises(ParameterError, match="pitch_rule"):
        KeySpec("pitch", pitch_rule="highest")
    with pytest.raises(ParameterError, match="pitch_rule"):
        KeySpec("amplitude", pitch_rule="lowest")


def test_shipped_pitch_preset_keeps_the_pyin_rule() -> None:
    document = json.loads((REPO / "presets" / "pitch_drive.json").read_text())
    keys = [s["key"] for s in document["chain"]["stages"] if s["key"]["kind"] == "pitch"]
    assert keys and all("pitch_rule" not in k for k in keys)
    effect = load_preset(REPO / "presets" / "pitch_drive.json")
    assert all(s.key.pitch_rule == "pyin" for s in effect.chain.stages if s.keyed)


def test_a_lowest_rule_preset_saves_loads_and_renders_alike(tmp_path) -> None:
    from lactose_audio.chains import Chain
    from lactose_audio.presets import Effect, save_preset

    x, _ = _take(CHORDS[:3], seed=4)
    chain = Chain.from_spec("gain>tanh>lowpass", key=make_key("pitch"), n_ranges=3)
    chain.fit_edges(x, SR)
    cover = [{"counts": [1, 1, 1], "flagged": [False] * 3}] * 3
    effect = Effect(chain=chain, sample_rate=SR, coverage=cover)
    path = save_preset(effect, tmp_path / "lowest.json")
    assert json.loads(path.read_text())["chain"]["stages"][0]["key"]["pitch_rule"] == "lowest"
    loaded = load_preset(path)
    assert loaded.chain.stages[0].key.pitch_rule == "lowest"
    np.testing.assert_array_equal(loaded(x, SR), effect(x, SR))


@pytest.mark.parametrize("rule", [5, "highest"])
def test_a_bad_pitch_rule_in_a_preset_is_refused(tmp_path, rule) -> None:
    from lactose_audio.errors import PresetError

    document = json.loads((REPO / "presets" / "pitch_drive.json").read_text())
    for stage in document["chain"]["stages"]:
        stage["key"]["pitch_rule"] = rule
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(PresetError, match="pitch_rule"):
        load_preset(path)
