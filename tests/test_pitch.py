"""Tests of the fast pitch tracker (lactose_audio.pitch) and the streamed pitch key
(lactose_audio.pitch_key).

Oracles: ``librosa.pyin`` itself (the tracker it re-implements: same voicing and f0 bin per
frame), analytic note frequencies, librosa's own transition matrix, and the whole-take key
(stitched stream == whole, bit for bit).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from oracles import dataset_pair

from lactose_audio import pitch
from lactose_audio.conditioning import UNVOICED_MIDI, KeySpec, compute_key, pitch_track
from lactose_audio.errors import ParameterError
from lactose_audio.pitch_key import PitchKeyStream
from lactose_audio.ranges import range_index

REPO = Path(__file__).resolve().parent.parent
SR = 44100
FMIN, FMAX = 65.40639132514966, 2093.004522404789  # the key's defaults (C2, C7)
E_NOTES = [28, 40, 52, 64, 76, 88]  # E1 .. E6
NOTE_S, GAP_S = 0.6, 0.25


def _hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def _note(kind: str, f0: float, seconds: float, sr: int) -> np.ndarray:
    """One synthesized note: a sine, a sawtooth, a clarinet (odd harmonics), a pluck (decay)."""
    t = np.arange(int(round(seconds * sr))) / sr
    n_harm = max(1, int(0.45 * sr / f0))
    if kind == "sine":
        x = np.sin(2 * np.pi * f0 * t)
    elif kind == "saw":
        x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, min(n_harm, 30) + 1))
    elif kind == "clarinet":
        x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, min(n_harm, 30) + 1, 2))
    else:  # pluck: bright attack, harmonics decaying faster the higher they are
        x = sum(
            np.exp(-t * (1.5 + 0.8 * k)) * np.sin(2 * np.pi * k * f0 * t) / k
            for k in range(1, min(n_harm, 12) + 1)
        )
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01)  # 10 ms ramps, no clicks
    return (0.3 * x / np.max(np.abs(x)) * fade).astype(np.float32)


INSTRUMENTS = ("sine", "saw", "clarinet", "pluck")


@pytest.fixture(scope="module")
def notes_take():
    """E1..E6 on four instruments, each note followed by silence; then silence and noise.

    Returns the 16 kHz signal, the analytic f0 per 16 ms tracker frame (0 where no note
    sounds steadily) and the masks of the silence and noise frames.
    """
    sr = pitch.PITCH_SAMPLE_RATE
    parts, steady = [], []
    gap = np.zeros(int(GAP_S * sr), np.float32)
    for kind in INSTRUMENTS:
        for midi in E_NOTES:
            parts += [_note(kind, _hz(midi), NOTE_S, sr), gap]
            steady.append(_hz(midi))
    silence = np.zeros(sr, np.float32)
    noise = (0.1 * np.random.default_rng(5).standard_normal(sr)).astype(np.float32)
    y = np.concatenate(parts + [silence, noise])
    times = pitch_times = np.arange(1 + y.size // pitch.PITCH_HOP) * pitch.PITCH_HOP / sr
    truth = np.zeros(times.size)
    for i, f0 in enumerate(steady):  # the middle of each note: 0.15 s from either end
        start = i * (NOTE_S + GAP_S)
        truth[(pitch_times > start + 0.15) & (pitch_times < start + NOTE_S - 0.15)] = f0
    end_notes = len(steady) * (NOTE_S + GAP_S)
    is_silence = (times > end_notes + 0.1) & (times < end_notes + 0.9)
    is_noise = (times > end_notes + 1.1) & (times < end_notes + 1.9)
    return y, truth, is_silence, is_noise


@pytest.fixture(scope="module")
def tracks(notes_take):
    """(fast, pyin) tracks of the take, fmin 30 Hz so E1 (41.2 Hz) is in range."""
    y = notes_take[0]
    return pitch.track(y, 30.0, FMAX), pitch.pyin_track(y, 30.0, FMAX)


def test_transition_tables_are_librosas(tmp_path) -> None:
    import librosa

    s = pitch._setup(FMIN, FMAX)
    width = 2 * s.half + 1
    local = librosa.sequence.transition_local(s.n_bins, width, window="triangle", wrap=False)
    dense = np.log(np.kron(librosa.sequence.transition_loop(2, 0.99), local) + pitch._TINY)
    n = s.n_bins
    for i in range(n):
        for d in range(-s.half, s.half + 1):
            j = i - d
            if 0 <= j < n:
                assert s.log_same[d + s.half, j] == dense[i, j] == dense[n + i, n + j]
                assert s.log_switch[d + s.half, j] == dense[i, n + j] == dense[n + i, j]
                assert s.from_same[i, j - i + s.half] == dense[i, j]
    band = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= s.half
    assert np.all(dense[:n, :n][~band] == s.log_tiny)


def test_frame_grid_matches_pyin(tracks, notes_take) -> None:
    (f0, voiced), (f0_ref, voiced_ref) = tracks
    assert f0.shape == voiced.shape == f0_ref.shape == (1 + notes_take[0].size // 256,)
    assert f0.dtype == np.float64 and voiced.dtype == bool


def test_tracker_agrees_with_pyin_frame_by_frame(tracks) -> None:
    (f0, voiced), (f0_ref, voiced_ref) = tracks
    same = (voiced == voiced_ref) & (~voiced_ref | (f0 == f0_ref))
    assert same.mean() >= 0.99, f"{100 * same.mean():.2f} % of frames agree"


@pytest.mark.parametrize("kind", INSTRUMENTS)
def test_steady_notes_within_a_few_cents(tracks, notes_take, kind) -> None:
    (f0, voiced), (f0_ref, _) = tracks
    truth = notes_take[1]
    k = INSTRUMENTS.index(kind)
    per = len(E_NOTES) * (NOTE_S + GAP_S)
    times = np.arange(truth.size) * pitch.PITCH_HOP / pitch.PITCH_SAMPLE_RATE
    mine = (truth > 0) & (times > k * per) & (times < (k + 1) * per)
    assert mine.sum() > 6 * 15
    assert voiced[mine].all() and np.all(f0[mine] == f0_ref[mine])
    cents = 1200 * np.abs(np.log2(f0[mine] / truth[mine]))
    # E notes fall on the 25-cent grid from the snapped fmin: exact, but for a pure 41 Hz sine
    # (E1), where pyin itself alternates with the next bin up (the same frames as the oracle's)
    low = truth[mine] < 50.0
    limit = np.where(low, 25.0 if kind == "sine" else 0.01, 0.01)
    assert np.all(cents <= limit + 1e-6), f"{cents.max():.2f} cents"


def test_silence_and_noise_are_unvoiced(tracks, notes_take) -> None:
    (_, voiced), (_, voiced_ref) = tracks
    _, _, is_silence, is_noise = notes_take
    assert not voiced[is_silence].any() and not voiced_ref[is_silence].any()
    np.testing.assert_array_equal(voiced[is_noise], voiced_ref[is_noise])
    assert voiced[is_noise].mean() < 0.1


def test_legato_octave_leaps_agree_with_pyin() -> None:
    # clean tones with no gap: the unvoiced states die (P(voiced) = 1) and leaps larger than
    # the transition band are decided by the dense matrix's log(tiny) entries
    y = np.concatenate([_note("sine", _hz(m), 0.4, 16000) for m in (40, 57, 69, 81, 45)])
    f0, voiced = pitch.track(y, FMIN, FMAX)
    f0_ref, voiced_ref = pitch.pyin_track(y, FMIN, FMAX)
    same = (voiced == voiced_ref) & (~voiced_ref | (f0 == f0_ref))
    assert same.mean() >= 0.99


def _preset_edges() -> np.ndarray:
    preset = json.loads((REPO / "presets" / "pitch_drive.json").read_text())
    return np.asarray(preset["chain"]["stages"][0]["edges"]["edges"], np.float32)


def test_pitch_drive_ranges_agree_with_pyin() -> None:
    dry, _, sr = dataset_pair("pitch_drive", 12.0, seed=11)
    edges = _preset_edges()
    fast = pitch_track(dry, sr, 1024, tracker="fast")
    ref = pitch_track(dry, sr, 1024, tracker="pyin")
    assert fast.shape == ref.shape == (-(-dry.size // 1024),) and fast.dtype == np.float32
    # voiced frames of the reference (eroded, as the key uses them), on the output grid
    f0_ref, voiced_ref = pitch.pyin_track(pitch._resample(dry, sr), FMIN, FMAX)
    from lactose_audio.pitch_key import _erode, frame_times

    eroded = _erode(voiced_ref, 2)
    nearest = np.rint(frame_times(0, fast.size, 1024, sr) / 0.016).astype(int)
    voiced = eroded[np.minimum(nearest, eroded.size - 1)]
    assert voiced.sum() > 200
    same = range_index(fast, edges) == range_index(ref, edges)
    assert same[voiced].mean() >= 0.99
    assert same.mean() >= 0.99


def test_tracker_option_is_validated() -> None:
    with pytest.raises(ParameterError, match="tracker"):
        pitch_track(np.zeros(1000, np.float32), SR, 512, tracker="crepe")


# ----------------------------------------------------------------------------- streaming


def _stream(spec: KeySpec, x: np.ndarray, sr: int, hop: int, chunks, **kwargs):
    stream = spec.stream(sr, hop, **kwargs)
    parts, i = [], 0
    for n in chunks:
        parts.append(stream.process(x[i : i + n]))
        i += n
    parts.append(stream.process(x[i:]))
    parts.append(stream.flush())
    return np.concatenate(parts), [p.size for p in parts]


@pytest.mark.parametrize("chunk", [1, 777, 4096, 10**7])
def test_stream_equals_whole_on_pitch_drive(chunk: int) -> None:
    dry, _, sr = dataset_pair("pitch_drive", 8.0 if chunk > 1 else 1.5, seed=21)
    spec = KeySpec("pitch")
    whole = compute_key(spec, dry, sr, 1024)
    sizes = [chunk] * (dry.size // chunk)
    stitched, _ = _stream(spec, dry, sr, 1024, sizes)
    np.testing.assert_array_equal(stitched, whole)


def test_stream_random_chunks_at_16_khz_and_odd_hop() -> None:
    sr = pitch.PITCH_SAMPLE_RATE
    rng = np.random.default_rng(8)
    x = np.concatenate(
        [
            _note(k, _hz(m), 0.5, sr)
            for k, m in zip(INSTRUMENTS * 2, [45, 52, 60, 67, 72, 50, 41, 64], strict=True)
        ]
    )
    x = np.concatenate([np.zeros(3000, np.float32), x, np.zeros(5000, np.float32)])
    spec = KeySpec("pitch")
    whole = compute_key(spec, x, sr, 333)
    stitched, _ = _stream(spec, x, sr, 333, rng.integers(1, 9000, 40))
    np.testing.assert_array_equal(stitched, whole)


def test_stream_equals_whole_with_the_long_frame() -> None:
    # fmin 30 Hz: 2048-sample tracker frames, lags beyond one block (the truncated partners)
    x = np.concatenate([_note("saw", _hz(m), 0.4, SR) for m in (28, 33, 40, 31)])
    spec = KeySpec("pitch", fmin_hz=30.0)
    whole = compute_key(spec, x, SR, 256)
    stitched, _ = _stream(spec, x, SR, 256, [3001] * (x.size // 3001))
    np.testing.assert_array_equal(stitched, whole)
    f0, voiced = pitch.track(pitch._resample(x, SR), 30.0, FMAX)
    f0_ref, voiced_ref = pitch.pyin_track(pitch._resample(x, SR), 30.0, FMAX)
    assert ((voiced == voiced_ref) & (~voiced_ref | (f0 == f0_ref))).mean() >= 0.99


def test_stream_look_ahead_bound_and_long_gaps() -> None:
    # a 3 s gap with a 1 s look-ahead: the gap holds the first note's pitch until 1 s (plus
    # the erosion and frame context) before the second note, then takes the second note's
    a, b = 57.0, 64.0
    gap = np.zeros(3 * SR, np.float32)
    x = np.concatenate([_note("sine", _hz(a), 0.5, SR), gap, _note("sine", _hz(b), 0.5, SR)])
    spec = KeySpec("pitch")
    whole = compute_key(spec, x, SR, 512)
    chunk = 2048
    stitched, sizes = _stream(spec, x, SR, 512, [chunk] * (x.size // chunk), lookahead_seconds=1.0)
    centres = (np.arange(whole.size) + 0.5) * 512 / SR
    assert np.all(np.abs(whole[(centres > 0.6) & (centres < 3.4)] - b) < 0.1)  # whole: next
    held = (centres > 0.6) & (centres < 3.5 - 1.0 - 0.1)
    assert np.all(np.abs(stitched[held] - a) < 0.1)  # stream: held beyond the look-ahead
    near = (centres > 3.5 - 1.0 + 0.1) | (centres < 0.4)
    np.testing.assert_array_equal(stitched[near], whole[near])
    # latency: after each chunk every frame older than 2 look-aheads + 0.1 s has been returned
    # (the Viterbi decision and the gap each wait at most one look-ahead)
    returned = np.cumsum(sizes[:-2])
    fed = np.arange(1, returned.size + 1) * chunk / SR
    due = np.floor((fed - 2 * 1.0 - 0.1) * SR / 512).clip(0)
    assert np.all(returned >= due)
    # in the gap's middle (decided at once): the gap's look-ahead + frame context (0.15 s)
    mid = (fed > 2.0) & (fed < 3.4)
    assert np.all(returned[mid] >= np.floor((fed[mid] - 1.0 - 0.15) * SR / 512))


def test_stream_silence_empty_and_validation() -> None:
    spec = KeySpec("pitch")
    stitched, _ = _stream(spec, np.zeros(SR, np.float32), SR, 512, [5000] * 8)
    np.testing.assert_array_equal(stitched, compute_key(spec, np.zeros(SR, np.float32), SR, 512))
    assert np.all(stitched == np.float32(UNVOICED_MIDI))
    empty = spec.stream(SR, 512)
    assert empty.process(np.zeros(0, np.float32)).shape == (0,) and empty.flush().shape == (0,)
    assert isinstance(spec.stream(SR, 512), PitchKeyStream)
    with pytest.raises(ParameterError, match="lookahead_seconds"):
        spec.stream(SR, 512, lookahead_seconds=0.0)
    with pytest.raises(ParameterError, match="hop_size"):
        spec.stream(SR, 0)
