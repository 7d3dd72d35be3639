"""Tests of lactose_audio.data: pair validation, latency, split and folder layouts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf

from lactose_audio.data import (
    DataWarning,
    Pair,
    estimate_latency,
    find_pairs,
    load_pair,
    load_pairs,
    pair_from_arrays,
    split_pair,
)
from lactose_audio.errors import DataError, ParameterError

SR = 8000  # small files keep the tests fast


def _dry(n: int = 8000, seed: int = 0) -> np.ndarray:
    """Band-limited noise with decaying bursts: a plausible, non-periodic dry signal."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(n)
    smooth = np.convolve(noise, np.hanning(9) / np.hanning(9).sum(), mode="same")
    envelope = np.exp(-(np.arange(n) % 1000) / 300.0)
    return (0.4 * smooth * envelope / np.max(np.abs(smooth))).astype(np.float32)


def _effect(x: np.ndarray) -> np.ndarray:
    return np.tanh(4.0 * x).astype(np.float32)


def _delayed(x: np.ndarray, delay: int) -> np.ndarray:
    """``out[t] = x[t - delay]`` with zeros shifted in; same length as ``x``."""
    out = np.zeros_like(x)
    if delay >= 0:
        out[delay:] = x[: x.shape[0] - delay]
    else:
        out[:delay] = x[-delay:]
    return out


def _write(path, audio, sample_rate=SR, subtype="FLOAT"):
    sf.write(path, audio, sample_rate, subtype=subtype)
    return path


def _pair_files(tmp_path, dry, wet, sr_dry=SR, sr_wet=SR, stem="take"):
    d = _write(tmp_path / f"{stem}_dry.wav", dry, sr_dry)
    w = _write(tmp_path / f"{stem}_wet.wav", wet, sr_wet)
    return d, w


# --- latency ------------------------------------------------------------------------------


@pytest.mark.parametrize("delay", [0, 1, 37, 250, -1, -64])
def test_latency_recovered_exactly(tmp_path, delay):
    dry = _dry()
    wet = _effect(_delayed(dry, delay))  # oracle: the delay applied
    d, w = _pair_files(tmp_path, dry, wet)
    pair = load_pair(d, w, max_latency=300)
    assert pair.latency_samples == delay
    assert not pair.latency_was_given
    # After alignment the wet is exactly the effect of the dry.
    n = pair.n_samples
    assert n == dry.shape[0] - abs(delay)
    start = max(0, -delay)
    np.testing.assert_array_equal(pair.dry, dry[start : start + n])
    np.testing.assert_array_equal(pair.wet, _effect(dry[start : start + n]))


def test_latency_with_longer_wet_tail():
    dry = _dry()
    wet = _effect(np.concatenate([np.zeros(25, np.float32), dry]))  # wet 25 samples longer
    pair = pair_from_arrays(dry, wet, SR)
    assert pair.latency_samples == 25
    np.testing.assert_array_equal(pair.wet, _effect(dry))
    np.testing.assert_array_equal(pair.dry, dry)


def test_latency_override_is_honoured():
    dry = _dry()
    wet = _effect(_delayed(dry, 40))
    pair = pair_from_arrays(dry, wet, SR, latency=10)
    assert pair.latency_samples == 10 and pair.latency_was_given
    np.testing.assert_array_equal(pair.wet, wet[10:])
    np.testing.assert_array_equal(pair.dry, dry[: dry.shape[0] - 10])


def test_inverted_polarity_is_aligned_and_flagged():
    dry = _dry()
    wet = -_effect(_delayed(dry, 12))
    with pytest.warns(DataWarning, match="inverts polarity"):
        pair = pair_from_arrays(dry, wet, SR)
    assert pair.latency_samples == 12 and pair.polarity_inverted
    np.testing.assert_array_equal(pair.wet, wet[12:])  # kept as recorded, not flipped


def test_polarity_at_a_given_latency_is_flagged_without_a_warning():
    dry = _dry()
    wet = _delayed(dry, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the user aligned the pair: no warning
        flipped = pair_from_arrays(dry, -_effect(wet), SR, latency=12)
        kept = pair_from_arrays(dry, _effect(wet), SR, latency=12)
        unrelated = pair_from_arrays(dry, _dry(seed=5), SR, latency=0)
    assert flipped.polarity_inverted and not kept.polarity_inverted
    assert not unrelated.polarity_inverted  # |correlation| < MIN_CORRELATION: no sign


def test_polarity_spec_appends_invert_only_when_every_pair_inverts():
    from lactose_audio.training import polarity_spec

    dry = _dry()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inverted = pair_from_arrays(dry, -_effect(dry), SR, latency=0)
        kept = pair_from_arrays(dry, _effect(dry), SR, latency=0)
    assert polarity_spec("gain>tanh", [inverted]) == "gain>tanh>invert"
    assert polarity_spec("gain>tanh>invert", [inverted]) == "gain>tanh>invert"
    assert polarity_spec("gain>tanh", [inverted, kept]) == "gain>tanh"
    assert polarity_spec("auto", [inverted]) == "auto"


def test_latency_on_window_edge_is_refused():
    # A smooth signal's correlation still rises at the window's edge when the true delay
    # (130 samples) lies beyond it (100 samples).
    smooth = np.convolve(_dry(), np.hanning(301), mode="same").astype(np.float32)
    smooth *= 0.2 / np.max(np.abs(smooth))
    wet = _effect(_delayed(smooth, 130))
    with pytest.raises(
        DataError, match=r"wet: best alignment is at the edge.*\(100 samples of ±100"
    ):
        pair_from_arrays(smooth, wet, SR, max_latency=100)


def test_estimate_latency_normalised_correlation():
    dry = _dry()
    lag, correlation = estimate_latency(dry, _delayed(dry, 7), 50)
    assert lag == 7
    # Oracle: the delayed copy lost its last 7 samples of energy.
    expected = np.sqrt(np.sum(dry[:-7].astype(np.float64) ** 2) / np.sum(dry.astype(float) ** 2))
    assert correlation == pytest.approx(expected, rel=1e-9)


# --- refusals (each makes a real malformed file) -----------------------------------------


def test_refuses_missing_dry(tmp_path):
    w = _write(tmp_path / "w.wav", _dry())
    with pytest.raises(DataError, match=r"d\.wav: no such file"):
        load_pair(tmp_path / "d.wav", w)


def test_refuses_unreadable_wet(tmp_path):
    d = _write(tmp_path / "d.wav", _dry())
    w = tmp_path / "w.wav"
    w.write_bytes(b"RIFF\x00\x00")
    with pytest.raises(DataError, match=r"w\.wav: cannot read as audio"):
        load_pair(d, w)


def _tones(sample_rate: int, seconds: float = 1.0) -> np.ndarray:
    """Decaying incommensurate sines below 3 kHz: the same signal at any rate above 6 kHz."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    tones = sum(
        a * np.sin(2 * np.pi * f * t) for a, f in ((0.3, 220.0), (0.2, 977.0), (0.1, 2711.0))
    )
    return (tones * np.exp(-2.0 * t)).astype(np.float32)


def test_refuses_sample_rate_mismatch_unless_resample(tmp_path):
    d = _write(tmp_path / "d.wav", _tones(8000), 8000)
    w = _write(tmp_path / "w.wav", _tones(16000), 16000)
    with pytest.raises(
        DataError,
        match=r"w\.wav: sample rate 16000 Hz does not match .*d\.wav \(8000 Hz\); pass --resample",
    ):
        load_pair(d, w)
    pair = load_pair(d, w, resample=True)
    assert pair.sample_rate == 8000 and pair.wet_resampled_from == 16000
    assert pair.latency_samples == 0
    # Oracle: the same tones sampled at 8 kHz (away from the resampling filter's edges).
    np.testing.assert_allclose(pair.wet[200:-200], _tones(8000)[200:-200], atol=2e-3)


def test_refuses_length_mismatch_beyond_window(tmp_path):
    d, w = _pair_files(tmp_path, _dry(8000), _effect(_dry(8000))[:6000])
    with pytest.raises(DataError, match=r"take_wet\.wav: 6000 samples .*differ by 2000 samples"):
        load_pair(d, w, max_latency=1000)


@pytest.mark.parametrize("role", ["dry", "wet"])
@pytest.mark.parametrize(
    "make", [lambda n: np.zeros(n), lambda n: np.full(n, 1e-5)], ids=["zeros", "below_-90dBFS"]
)
def test_refuses_silence(tmp_path, role, make):
    silent = make(8000).astype(np.float32)
    dry, wet = (silent, _dry()) if role == "dry" else (_dry(), silent)
    d, w = _pair_files(tmp_path, dry, wet)
    with pytest.raises(DataError, match=rf"take_{role}\.wav: {role} is silent"):
        load_pair(d, w)


def test_refuses_silent_16_bit_dither(tmp_path):
    # ±1 LSB of 16-bit (-90.3 dBFS) is below the -90 dBFS silence threshold.
    lsb = np.random.default_rng(1).choice([-1, 0, 1], 8000) * 2.0**-15
    d, w = _pair_files(tmp_path, lsb.astype(np.float32), _dry())
    _write(d, lsb, subtype="PCM_16")
    with pytest.raises(DataError, match="dry is silent"):
        load_pair(d, w)


def test_refuses_dc_only_dry(tmp_path):
    wobble = 1e-4 * np.sin(np.arange(8000) / 10.0)  # std 7e-5 < 1e-3 * 0.5
    dc = (0.5 + wobble).astype(np.float32)
    d, w = _pair_files(tmp_path, dc, _dry())
    with pytest.raises(DataError, match=r"take_dry\.wav: dry is \(nearly\) constant: mean 0\.5"):
        load_pair(d, w)


def test_refuses_non_finite_wet(tmp_path):
    wet = _effect(_dry())
    wet[17] = np.nan
    d, w = _pair_files(tmp_path, _dry(), wet)
    with pytest.raises(DataError, match=r"take_wet\.wav: 1 non-finite samples .*sample 17"):
        load_pair(d, w)


def test_refuses_stereo_without_channel(tmp_path):
    dry = _dry()
    stereo = np.stack([_effect(dry), -_effect(dry)], axis=1)
    d = _write(tmp_path / "d.wav", dry)
    w = _write(tmp_path / "w.wav", stereo)
    with pytest.raises(DataError, match=r"w\.wav: has 2 channels.*--channel"):
        load_pair(d, w)
    pair = load_pair(d, w, channel=0)  # mono dry read as is, channel 0 of the wet
    np.testing.assert_array_equal(pair.wet, _effect(dry))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_latency": -1}, "max_latency must be 0 samples or more"),
        ({"latency": 2.5}, "latency must be an integer"),
        ({"validation_fraction": 1.0}, r"validation_fraction must be in \[0, 1\)"),
    ],
)
def test_refuses_bad_options(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        pair_from_arrays(_dry(), _effect(_dry()), SR, **kwargs)


# --- warnings -----------------------------------------------------------------------------


def test_clipped_wet_warns_and_flags(tmp_path):
    dry = _dry()
    wet = np.clip(_effect(dry) * 3.0, -1.0, 1.0)
    d, w = _pair_files(tmp_path, dry, wet)
    with pytest.warns(DataWarning, match=r"take_wet\.wav: wet looks clipped \(\d+ samples"):
        pair = load_pair(d, w)
    assert pair.clipped_wet


def test_few_full_scale_samples_do_not_warn():
    dry = _dry()
    wet = _effect(dry)
    wet[[10, 500, 900]] = 1.0  # 3 < CLIP_MIN_SAMPLES
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pair = pair_from_arrays(dry, wet, SR)
    assert not pair.clipped_wet


def test_unrelated_audio_warns():
    with pytest.warns(DataWarning, match="correlates only"):
        pair_from_arrays(_dry(seed=1), _dry(seed=2), SR, max_latency=0)


# --- split --------------------------------------------------------------------------------


def test_split_by_time_last_fraction():
    dry = _dry(8000)
    pair = pair_from_arrays(dry, _effect(dry), SR)
    train, validation = pair.split()
    assert (train.n_samples, validation.n_samples) == (6800, 1200)
    np.testing.assert_array_equal(np.concatenate([train.dry, validation.dry]), pair.dry)
    np.testing.assert_array_equal(np.concatenate([train.wet, validation.wet]), pair.wet)
    train, validation = split_pair(pair, 0.5)
    assert (train.n_samples, validation.n_samples) == (4000, 4000)
    assert split_pair(pair, 0.0)[1].n_samples == 0
    assert isinstance(train, Pair) and train.sample_rate == SR


# --- folders ------------------------------------------------------------------------------


def test_load_pairs_by_stem_and_nam_layout(tmp_path):
    dry = _dry()
    _pair_files(tmp_path, dry, _effect(_delayed(dry, 3)), stem="b")
    _pair_files(tmp_path, dry, _effect(dry), stem="a")
    (tmp_path / "README.txt").write_text("ignored")
    pairs = load_pairs(tmp_path, max_latency=50)
    assert [p.name for p in pairs] == ["a", "b"]
    assert [p.latency_samples for p in pairs] == [0, 3]

    nam = tmp_path / "my_amp"
    nam.mkdir()
    _write(nam / "input.wav", dry)
    _write(nam / "output.wav", _effect(dry))
    (pair,) = load_pairs(nam)
    assert pair.name == "my_amp"
    np.testing.assert_array_equal(pair.wet, _effect(dry))


def test_load_pairs_refuses_unmatched_dry(tmp_path):
    _pair_files(tmp_path, _dry(), _effect(_dry()), stem="a")
    _write(tmp_path / "b_dry.wav", _dry())
    with pytest.raises(DataError, match=r"b_dry\.wav: has no matching wet file"):
        find_pairs(tmp_path)


def test_load_pairs_refuses_stray_audio(tmp_path):
    _pair_files(tmp_path, _dry(), _effect(_dry()), stem="a")
    _write(tmp_path / "notes.flac", _dry(), subtype="PCM_16")
    with pytest.raises(DataError, match=r"notes\.flac: does not fit a pair layout"):
        find_pairs(tmp_path)


def test_load_pairs_refuses_output_without_input(tmp_path):
    _write(tmp_path / "output.wav", _dry())
    with pytest.raises(DataError, match=r"output\.wav: has no matching dry file"):
        find_pairs(tmp_path)


def test_load_pairs_refuses_empty_and_missing_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("no audio here")
    with pytest.raises(DataError, match="no dry/wet pairs found"):
        load_pairs(tmp_path)
    with pytest.raises(DataError, match="no such folder"):
        load_pairs(tmp_path / "missing")


def test_load_pairs_refuses_two_files_for_one_role(tmp_path):
    _pair_files(tmp_path, _dry(), _effect(_dry()), stem="a")
    _write(tmp_path / "a_dry.flac", _dry(), subtype="PCM_24")
    with pytest.raises(DataError, match=r"a second dry file for 'a'"):
        find_pairs(tmp_path)


def test_latency_is_found_blockwise_as_on_the_whole_file(monkeypatch):
    """The cross-correlation runs over blocks of the dry signal (bounded memory): with tiny
    blocks it gives the same lag and correlation as the direct sum ``sum_t w[t+k] d[t]``."""
    import lactose_audio.data as data_module

    rng = np.random.default_rng(21)
    dry = rng.standard_normal(5000)
    wet = np.concatenate([np.zeros(37), 0.5 * dry[:-37]]) + 0.01 * rng.standard_normal(5000)
    monkeypatch.setattr(data_module, "XCORR_BLOCK", 700)
    lag, corr = data_module.estimate_latency(dry, wet, max_latency=100)
    direct = np.array(
        [np.dot(wet[max(k, 0) : 5000 + min(k, 0)], dry[max(-k, 0) : 5000 - max(k, 0)])
         for k in range(-100, 101)]
    )  # fmt: skip
    assert lag == 37 == int(np.argmax(np.abs(direct))) - 100
    expected = direct[lag + 100] / (np.linalg.norm(dry) * np.linalg.norm(wet))
    assert corr == pytest.approx(expected, rel=1e-9)
