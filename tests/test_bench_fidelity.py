"""Tests of scripts/bench_fidelity.py's material and effects (no training): analytic oracles."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pedalboard")

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_fidelity.py"
_spec = importlib.util.spec_from_file_location("bench_fidelity", SCRIPT)
bf = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("bench_fidelity", bf)  # dataclasses look their module up
_spec.loader.exec_module(bf)

SR = 44100


@pytest.fixture(scope="module")
def takes():
    return bf.make_take(0, "train"), bf.make_take(0, "test")


def _sine_take(freq: float, amplitude: float, seconds: float, sr: int = SR):
    t = np.arange(round(seconds * sr)) / sr
    dry = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return bf.Take(dry, [], sr)


def test_takes_deterministic_and_distinct(takes):
    train, test = takes
    again = bf.make_take(0, "train")
    np.testing.assert_array_equal(train.dry, again.dry)
    assert train.notes == again.notes
    assert train.dry.shape == (round(bf.TRAIN_SECONDS * SR),)
    assert test.dry.shape == (round(bf.TEST_SECONDS * SR),)
    assert [n.midi for n in train.notes[:10]] != [n.midi for n in test.notes[:10]]
    assert not np.array_equal(bf.make_take(1, "test").dry, test.dry)
    assert train.dry.dtype == np.float32 and np.all(np.isfinite(train.dry))


def test_material_covers_instruments_pitches_levels_chords_runs_silences(takes):
    train, _ = takes
    notes = train.notes
    midi = [n.midi for n in notes]
    peaks = [n.peak_dbfs for n in notes]
    assert {n.instrument for n in notes} == set(bf.INSTRUMENTS)
    assert bf.E1 <= min(midi) and max(midi) <= bf.E6 and max(midi) - min(midi) >= 48
    assert -45.0 <= min(peaks) <= -35.0 and max(peaks) >= -6.0
    onsets = [n.onset for n in notes]
    assert len(onsets) - len(set(onsets)) >= 2  # chords: several notes on one onset
    assert sum(n.hold < 0.13 * SR for n in notes) >= 5  # fast passages
    silent = np.abs(train.dry) == 0.0
    run = np.diff(np.flatnonzero(np.diff(np.r_[0, silent.astype(np.int8), 0])))[::2]
    assert run.max() >= 0.25 * SR  # silences between sections
    assert np.max(np.abs(train.dry)) <= bf.MAX_PEAK + 1e-6


def test_piano_partials_are_inharmonic():
    f0 = 110.0
    tone = bf.piano_tone(f0, SR, SR, np.random.default_rng(0), 0.8)
    spectrum = np.abs(np.fft.rfft(tone * np.hanning(tone.size)))
    freqs = np.fft.rfftfreq(tone.size, 1 / SR)
    band = (freqs > 9.5 * f0) & (freqs < 10.5 * f0)
    assert freqs[band][np.argmax(spectrum[band])] > 10 * f0 + 1.0  # stretched 10th partial


def test_tanh_is_tanh_of_gained_dry(takes):
    train, _ = takes
    expected = bf.TANH_OUT * np.tanh(10 ** (bf.TANH_DRIVE_DB / 20) * train.dry.astype(np.float64))
    np.testing.assert_allclose(bf.fx_tanh(train), expected, rtol=0, atol=1e-6)


def test_hard_clip_is_bounded_by_threshold(takes):
    wet = bf.fx_hard_clip(takes[0])
    limit = 10 ** (-6 / 20) * 10 ** (-2 / 20)
    assert np.max(np.abs(wet)) == pytest.approx(limit, rel=1e-3)


def test_asym_dc_curve_makes_dc_the_highpass_removes_it():
    take = _sine_take(220.0, 0.3, 4.0)
    curve = bf.asym_curve(take.dry)
    tail = slice(2 * SR, None)  # after the 20 Hz high-pass has settled
    assert abs(np.mean(curve[tail])) > 0.05
    wet = bf.fx_asym_dc(take)
    assert abs(np.mean(wet[tail])) < 1e-3 * np.sqrt(np.mean(wet[tail] ** 2))


def test_fuzz_has_strong_even_harmonics():
    take = _sine_take(200.0, 0.2, 1.0)
    wet = bf.fx_fuzz(take)[SR // 2 :]
    spectrum = np.abs(np.fft.rfft(wet * np.hanning(wet.size)))
    bins = np.fft.rfftfreq(wet.size, 1 / SR)
    h = [spectrum[np.argmin(np.abs(bins - k * 200.0))] for k in (1, 2)]
    assert h[1] > 0.2 * h[0]  # a symmetric drive has none


def _tone_gain_db(wet: np.ndarray, take, freq: float) -> float:
    """Steady-state gain of a sine take at ``freq`` (second half), dB."""
    half = slice(take.dry.size // 2, None)
    return 20 * np.log10(np.std(wet[half]) / np.std(take.dry[half]))


def test_eq_is_linear_with_the_rbj_responses():
    """Oracle: the RBJ cookbook shelves and peak in closed form (what JUCE's filters are)."""
    from scipy.signal import freqz

    def shelf(f0, gain_db, sign):
        amp, w0 = 10 ** (gain_db / 40), 2 * np.pi * f0 / SR
        alpha, cos = np.sin(w0) / (2 * 0.7071067811865476), np.cos(w0)
        s = 2 * np.sqrt(amp) * alpha
        b = [amp * ((amp + 1) - sign * (amp - 1) * cos + s),
             2 * sign * amp * ((amp - 1) - sign * (amp + 1) * cos),
             amp * ((amp + 1) - sign * (amp - 1) * cos - s)]  # fmt: skip
        a = [(amp + 1) + sign * (amp - 1) * cos + s,
             -2 * sign * ((amp - 1) + sign * (amp + 1) * cos),
             (amp + 1) + sign * (amp - 1) * cos - s]  # fmt: skip
        return b, a

    def peak(f0, gain_db, q):
        amp, w0 = 10 ** (gain_db / 40), 2 * np.pi * f0 / SR
        alpha = np.sin(w0) / (2 * q)
        return ([1 + alpha * amp, -2 * np.cos(w0), 1 - alpha * amp],
                [1 + alpha / amp, -2 * np.cos(w0), 1 - alpha / amp])  # fmt: skip

    for freq in (60.0, 900.0, 9000.0):
        take = _sine_take(freq, 0.1, 1.0)
        h = 10 ** (2.0 / 20)
        for b, a in (shelf(150.0, -5.0, 1.0), peak(900.0, 4.0, 1.2), shelf(4000.0, -8.0, -1.0)):
            h = h * freqz(b, a, worN=[freq], fs=SR)[1][0]
        assert _tone_gain_db(bf.fx_eq(take), take, freq) == pytest.approx(
            20 * np.log10(abs(h)), abs=0.05
        )
        louder = bf.Take(2 * take.dry, [], SR)
        np.testing.assert_allclose(bf.fx_eq(louder), 2 * bf.fx_eq(take), atol=1e-5)


def test_emphasis_clip_is_asymmetric_and_tilted():
    """Unequal slopes on either side of zero make even harmonics at any level; the emphasis
    pair leaves a quiet tone's gain at the clipper's mean slope (its net response is flat)."""
    for amplitude in (0.01, 0.3):
        take = _sine_take(500.0, amplitude, 1.0)
        wet = bf.fx_emphasis_clip(take)[SR // 2 :]
        spectrum = np.abs(np.fft.rfft(wet * np.hanning(wet.size)))
        bins = np.fft.rfftfreq(wet.size, 1 / SR)
        h1, h2 = (spectrum[np.argmin(np.abs(bins - k * 500.0))] for k in (1, 2))
        assert h2 > 0.02 * h1
    quiet = _sine_take(500.0, 1e-4, 1.0)
    gain = _tone_gain_db(bf.fx_emphasis_clip(quiet), quiet, 500.0)
    assert gain == pytest.approx(20 * np.log10(0.25 * (6.0 + 2.1) / 2), abs=0.3)


def test_level_xfade_clean_when_soft_driven_when_loud():
    soft = _sine_take(220.0, 10 ** (-45 / 20), 0.5)
    loud = _sine_take(220.0, 0.5, 0.5)
    assert np.max(bf.xfade_weight(soft.dry, SR)[SR // 4 :]) == 0.0
    assert np.min(bf.xfade_weight(loud.dry, SR)[SR // 4 :]) == 1.0


def test_pitch_split_uses_low_branch_below_and_high_branch_above():
    notes = [bf.Note(0, SR // 2, 40, -6.0, "bass"), bf.Note(SR, SR // 2, 70, -6.0, "guitar")]
    dry = bf.render_score(notes, 2 * SR, SR, np.random.default_rng(3))
    take = bf.Take(dry, notes, SR)
    wet = bf.fx_pitch_split(take)
    low, high = bf.pitch_split_branches(dry, SR)
    fade = round(bf.SPLIT_FADE_SECONDS * SR)
    np.testing.assert_allclose(wet[:SR], low[:SR], atol=1e-7)
    np.testing.assert_allclose(wet[SR + fade :], high[SR + fade :], atol=1e-7)
    assert not np.allclose(low[SR + fade :], high[SR + fade :], atol=1e-3)
    assert 40 < bf.SPLIT_MIDI <= 70


def test_every_case_wet_is_sane(takes):
    train, _ = takes
    assert len(bf.CASES) >= 12
    for name, case in bf.CASES.items():
        take = train if case.sample_rate == SR else bf.make_take(0, "train", case.sample_rate)
        wet = case.effect(take)
        assert wet.shape == take.dry.shape, name
        assert np.all(np.isfinite(wet)), name
        assert 0.05 < np.max(np.abs(wet)) < 2.0, name
    assert bf.CASES["wh_48k"].sample_rate == 48000
    assert np.max(np.abs(bf.fx_pitch_split(train))) > 1.0  # peaks above 0 dBFS
    assert set(bf.STATIC_CASES) <= set(bf.CASES)


def test_summary_median_and_ratio():
    cases = {
        "tanh": {"esr": 0.002, "old": {"esr": 0.004}},
        "fuzz": {"esr": 0.006, "old": {"esr": 0.005}},
        "comp_drive": {"esr": 0.02},
    }
    summary = bf.summarise(cases, 5.0)
    assert summary["static_median_esr"] == pytest.approx(0.004)
    assert summary["auto_vs_old_worst_ratio"] == pytest.approx(1.2)
    assert summary["budget"] == 5.0
