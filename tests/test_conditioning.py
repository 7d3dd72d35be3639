"""Tests of lactose_audio.conditioning (key signals).

Oracles: closed-form RMS level of a sine, the analytic one-pole step response, frame means
recomputed from the per-sample key, chunked == whole (bit for bit), and known note pitches.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lactose_audio.conditioning import (
    FLOOR_DB,
    UNVOICED_MIDI,
    KeySpec,
    amplitude_envelope,
    compute_key,
)
from lactose_audio.errors import ParameterError

SR = 44100


def _sine(freq_hz: float, seconds: float, amplitude: float = 0.5, sr: int = SR) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def _midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


# ----------------------------------------------------------------------------- KeySpec


def test_keyspec_defaults_units_and_round_trip() -> None:
    assert KeySpec("pitch").rate == "frame"
    assert KeySpec("amplitude").rate == "sample"
    units = {k: KeySpec(k).unit for k in ("none", "sample", "amplitude", "pitch")}
    assert units == {"none": "", "sample": "linear", "amplitude": "dBFS", "pitch": "MIDI"}
    spec = KeySpec("amplitude", "frame", attack_ms=2, release_ms=80)
    assert KeySpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "loudness"}, "kind"),
        ({"kind": "amplitude", "rate": "block"}, "rate"),
        ({"kind": "pitch", "rate": "sample"}, "frame only"),
        ({"kind": "sample", "rate": "frame"}, "sample only"),
        ({"kind": "amplitude", "attack_ms": -1.0}, "attack_ms must be between 0 ms"),
        ({"kind": "amplitude", "attack_ms": 20.0, "release_ms": 10.0}, "release_ms"),
        ({"kind": "pitch", "fmin_hz": 5.0}, "fmin_hz must be between 20 Hz"),
        ({"kind": "pitch", "fmin_hz": 200.0, "fmax_hz": 100.0}, "fmax_hz"),
    ],
)
def test_keyspec_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        KeySpec(**kwargs)


def test_keyspec_from_dict_refuses_unknown_fields() -> None:
    with pytest.raises(ParameterError, match="unknown"):
        KeySpec.from_dict({"kind": "amplitude", "hold_ms": 3})


def test_compute_key_validates_audio() -> None:
    spec = KeySpec("sample")
    with pytest.raises(ParameterError, match="mono"):
        compute_key(spec, np.zeros((2, 10), np.float32), SR)
    with pytest.raises(ParameterError, match="finite"):
        compute_key(spec, np.array([0.0, np.nan], np.float32), SR)
    with pytest.raises(ParameterError, match="hop_size"):
        compute_key(spec, np.zeros(10, np.float32), SR, hop_size=0)
    with pytest.raises(ParameterError, match="sample_rate"):
        compute_key(spec, np.zeros(10, np.float32), -1)


# ----------------------------------------------------------------------------- none / sample


@pytest.mark.parametrize("n_samples", [0, 1, 511, 512, 513, 5000])
def test_none_and_sample_keys(n_samples: int) -> None:
    x = np.random.default_rng(n_samples).uniform(-1, 1, n_samples).astype(np.float32)
    assert compute_key(KeySpec("none"), x, SR, 512).shape == (n_samples,)
    frames = compute_key(KeySpec("none", "frame"), x, SR, 512)
    assert frames.shape == (int(np.ceil(n_samples / 512)),) and not frames.any()
    key = compute_key(KeySpec("sample"), x, SR, 512)
    assert key.dtype == np.float32
    np.testing.assert_array_equal(key, x)


# ----------------------------------------------------------------------------- amplitude


@pytest.mark.parametrize("amplitude", [0.9, 0.5, 0.01])
def test_amplitude_of_steady_sine_is_its_rms_level(amplitude: float) -> None:
    expected_db = 20 * np.log10(amplitude / np.sqrt(2))
    x = _sine(1000.0, 0.5, amplitude)
    key = compute_key(KeySpec("amplitude"), x, SR)
    after_attack = int(0.05 * SR)  # 10 attack time constants
    np.testing.assert_allclose(key[after_attack:], expected_db, atol=0.1)
    frames = compute_key(KeySpec("amplitude", "frame"), _sine(440.0, 1.0, amplitude), SR, 512)
    np.testing.assert_allclose(frames[10:], expected_db, atol=0.1)


def test_amplitude_step_follows_attack_and_release_exponentials() -> None:
    attack_ms, release_ms = 5.0, 50.0
    loud, quiet = 0.8, 0.1  # DC steps: x^2 has no ripple, so the closed form is exact
    n_up = int(0.5 * SR)
    x = np.concatenate([np.full(n_up, loud), np.full(int(0.3 * SR), quiet)]).astype(np.float32)
    key = compute_key(KeySpec("amplitude", attack_ms=attack_ms, release_ms=release_ms), x, SR)
    t_up = (np.arange(n_up) + 1) / SR
    power_up = loud**2 * (1 - np.exp(-t_up / (attack_ms * 1e-3)))
    p0 = power_up[-1]
    t_down = (np.arange(x.size - n_up) + 1) / SR
    # Down: the slow average leads; it started from loud^2 (1 - exp(-t_up / release)).
    slow0 = loud**2 * (1 - np.exp(-n_up / SR / (release_ms * 1e-3)))
    power_down = quiet**2 + (slow0 - quiet**2) * np.exp(-t_down / (release_ms * 1e-3))
    assert p0 > slow0
    expected = 10 * np.log10(np.maximum(np.concatenate([power_up, power_down]), 1e-12))
    np.testing.assert_allclose(key[20:], expected[20:], atol=2e-3)  # float32 dB
    # Time to fall 10 dB of the 18 dB gap follows the release constant.
    assert key[n_up + int(0.01 * SR)] > 10 * np.log10(quiet**2) + 10


def test_amplitude_silence_is_the_floor() -> None:
    key = compute_key(KeySpec("amplitude"), np.zeros(1000, np.float32), SR)
    np.testing.assert_array_equal(key, np.float32(FLOOR_DB))


# ----------------------------------------------------------------------------- streaming


@pytest.mark.parametrize(
    "spec",
    [
        KeySpec("none"),
        KeySpec("none", "frame"),
        KeySpec("sample"),
        KeySpec("amplitude"),
        KeySpec("amplitude", "frame", attack_ms=1.0, release_ms=200.0),
    ],
)
@pytest.mark.parametrize("hop", [512, 500])
def test_stream_equals_whole_for_any_chunking(spec: KeySpec, hop: int) -> None:
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(20_000) * np.repeat(rng.uniform(0, 1, 20), 1000)).astype(np.float32)
    whole = compute_key(spec, x, SR, hop)
    for trial in range(3):
        cuts = np.sort(rng.integers(0, x.size, size=trial * 7 + 1))
        stream = spec.stream(SR, hop)
        parts = [stream.process(c) for c in np.split(x, cuts)]
        parts.append(stream.flush())
        np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_pitch_streams_through_its_own_stream() -> None:
    # KeySpec.stream gives the pitch key a PitchKeyStream (tested in test_pitch.py); the
    # frame-exact KeyStream itself refuses it
    from lactose_audio.conditioning import KeyStream

    assert not isinstance(KeySpec("pitch").stream(SR, 512), KeyStream)
    with pytest.raises(ParameterError, match="pitch"):
        KeyStream(KeySpec("pitch"), SR, 512)


# ----------------------------------------------------------------------------- pitch


def _frame_centres(n_frames: int, hop: int = 512) -> np.ndarray:
    return (np.arange(n_frames) + 0.5) * hop / SR


def test_pitch_of_220_hz_is_midi_57() -> None:
    key = compute_key(KeySpec("pitch"), _sine(220.0, 1.0, 0.3), SR, 512)
    assert key.shape == (int(np.ceil(SR / 512)),) and key.dtype == np.float32
    np.testing.assert_allclose(key, 57.0, atol=0.1)


def test_pitch_follows_a_note_sequence_within_a_quarter_semitone() -> None:
    rng = np.random.default_rng(3)
    notes = np.concatenate([[40.0, 57.0, 69.0, 81.0], rng.uniform(40, 84, 6)])  # some detuned
    seconds = 0.5  # pyin lags a note change by up to ~60 ms: compare 100 ms from transitions
    x = np.concatenate([_sine(_midi_hz(n), seconds, 0.3) for n in notes])
    key = compute_key(KeySpec("pitch"), x, SR, 512)
    centres = _frame_centres(key.size)
    for i, note in enumerate(notes):
        inside = (centres > i * seconds + 0.1) & (centres < (i + 1) * seconds - 0.1)
        assert inside.sum() > 10
        np.testing.assert_allclose(key[inside], note, atol=0.25, err_msg=f"note {i}")


def test_pitch_unvoiced_policy() -> None:
    silence = np.zeros(int(0.5 * SR), np.float32)
    a, b = 57.0, 64.0
    x = np.concatenate([silence, _sine(_midi_hz(a), 0.5, 0.3), silence])
    x = np.concatenate([x, _sine(_midi_hz(b), 0.5, 0.3), silence])
    key = compute_key(KeySpec("pitch"), x, SR, 512)
    c = _frame_centres(key.size)
    margin = 0.1
    np.testing.assert_allclose(key[c < 0.5 - margin], a, atol=0.1)  # before first voiced
    np.testing.assert_allclose(key[(c > 0.5 + margin) & (c < 1.0 - margin)], a, atol=0.1)
    # the gap takes the NEXT note's pitch, so note b's attack is keyed by b
    np.testing.assert_allclose(key[(c > 1.0 + margin) & (c < 1.5 + 0.01)], b, atol=0.1)
    np.testing.assert_allclose(key[(c > 1.5 + margin) & (c < 2.0 - margin)], b, atol=0.1)
    np.testing.assert_allclose(key[c > 2.0 + margin], b, atol=0.1)  # hold to the end
    nothing = compute_key(KeySpec("pitch"), np.zeros(SR, np.float32), SR, 512)
    np.testing.assert_array_equal(nothing, np.float32(UNVOICED_MIDI))


def test_pitch_short_and_empty_inputs() -> None:
    assert compute_key(KeySpec("pitch"), np.zeros(0, np.float32), SR, 512).shape == (0,)
    short = compute_key(KeySpec("pitch"), _sine(220.0, 0.01), SR, 512)
    assert short.shape == (1,)


def test_conditioning_does_not_import_tensorflow() -> None:
    code = (
        "import sys, numpy as np\n"
        "from lactose_audio.conditioning import KeySpec, compute_key\n"
        "compute_key(KeySpec('amplitude', 'frame'), np.zeros(2000, np.float32), 44100, 512)\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ----------------------------------------------------------------------------- frame amplitude


def _frame_key_oracle(x, sr, hop, attack_ms, release_ms) -> np.ndarray:
    """The documented frame-rate amplitude key, straight from its definition (numpy)."""
    coef = [np.exp(-1000.0 / (t * sr)) if t else 0.0 for t in (attack_ms, release_ms)]
    fast = slow = 0.0
    out = []
    for begin in range(0, x.size, hop):
        frame = x[begin : begin + hop].astype(np.float64)
        total = 0.0
        for b in range(0, frame.size, 16):
            block = frame[b : b + 16]
            q, m = np.mean(block**2), block.size
            fast = coef[0] ** m * fast + (1 - coef[0] ** m) * q
            slow = coef[1] ** m * slow + (1 - coef[1] ** m) * q
            total += m * max(fast, slow)
        out.append(10 * np.log10(max(total / frame.size, 1e-12)))
    return np.array(out)


@pytest.mark.parametrize(
    ("n", "hop"), [(0, 512), (1, 512), (15, 512), (17, 512), (512, 512), (10_037, 512),
                   (10_037, 500), (10_037, 64), (3000, 7)],
)  # fmt: skip
def test_frame_amplitude_key_matches_its_definition(n: int, hop: int) -> None:
    x = (np.random.default_rng(n + hop).standard_normal(n) * 0.3).astype(np.float32)
    x *= np.linspace(0.01, 1.0, n, dtype=np.float32)
    spec = KeySpec("amplitude", "frame", attack_ms=2.0, release_ms=80.0)
    key = compute_key(spec, x, SR, hop)
    assert key.shape == (-(-n // hop),) and key.dtype == np.float32
    np.testing.assert_allclose(key, _frame_key_oracle(x, SR, hop, 2.0, 80.0), atol=1e-4)


@pytest.mark.parametrize("hop_size", [64, 500, 1024])
def test_frame_amplitude_key_follows_the_per_sample_envelope(hop_size: int) -> None:
    """Block-resolution ballistics: within 0.1 dB of the frame mean of the per-sample envelope
    once the first attack is over (a 16-sample block is 0.07 attack time constants)."""
    rng = np.random.default_rng(hop_size)
    n = 2 * SR
    x = (rng.standard_normal(n) * np.linspace(0.01, 1, n)).astype(np.float32)
    spec = KeySpec("amplitude", "frame")
    frames = compute_key(spec, x, SR, hop_size)
    power = amplitude_envelope(x, SR, spec.attack_ms, spec.release_ms)
    expected = [10 * np.log10(power[f : f + hop_size].mean()) for f in range(0, n, hop_size)]
    settled = np.arange(frames.size) * hop_size > 0.05 * SR
    np.testing.assert_allclose(frames[settled], np.array(expected)[settled], atol=0.1)


@pytest.mark.parametrize("where", [0, 5000, 10_036])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_frame_amplitude_key_refuses_non_finite_audio(where: int, bad: float) -> None:
    x = np.full(10_037, 0.1, np.float32)
    x[where] = bad
    with pytest.raises(ParameterError, match="finite"):
        compute_key(KeySpec("amplitude", "frame"), x, SR, 512)
