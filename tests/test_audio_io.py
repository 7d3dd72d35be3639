"""Tests of lactose_audio.audio_io: reading, refusals, atomic writes, resampling."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest
import soundfile as sf

from lactose_audio import audio_io
from lactose_audio.atomic import atomic_write_bytes, atomic_write_text, deferred_directory_sync
from lactose_audio.audio_io import ClippingWarning, read_audio, resample, write_audio
from lactose_audio.errors import DataError, ParameterError

SR = 44100


def _noise(n: int = 4410, seed: int = 0, scale: float = 0.5) -> np.ndarray:
    return (np.random.default_rng(seed).uniform(-1, 1, n) * scale).astype(np.float32)


# --- reading ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "subtype", "atol"),
    [
        (".wav", "PCM_U8", 2.0**-7),
        (".wav", "PCM_16", 2.0**-15),
        (".wav", "PCM_24", 2.0**-23),
        (".wav", "PCM_32", 2.0**-31),
        (".wav", "FLOAT", 0.0),
        (".wav", "DOUBLE", 0.0),
        (".flac", "PCM_16", 2.0**-15),
        (".flac", "PCM_24", 2.0**-23),
        (".aiff", "PCM_16", 2.0**-15),
        (".aif", "FLOAT", 0.0),
    ],
)
def test_read_formats_and_subtypes_to_float32(tmp_path, ext, subtype, atol):
    x = _noise()
    path = tmp_path / f"x{ext}"
    sf.write(path, x, SR, subtype=subtype, format=audio_io.FORMATS[ext])
    audio, sample_rate = read_audio(path)
    assert audio.dtype == np.float32 and audio.shape == x.shape
    assert sample_rate == SR
    # Oracle: the samples written, within one quantisation step of the subtype.
    np.testing.assert_allclose(audio, x, rtol=0, atol=atol)


def test_read_float_keeps_samples_beyond_full_scale(tmp_path):
    x = np.array([0.0, 1.5, -2.25, 0.5], dtype=np.float32)
    sf.write(tmp_path / "hot.wav", x, SR, subtype="FLOAT")
    audio, _ = read_audio(tmp_path / "hot.wav")
    np.testing.assert_array_equal(audio, x)


def test_multichannel_needs_channel(tmp_path):
    stereo = np.stack([_noise(seed=1), _noise(seed=2)], axis=1)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, SR, subtype="FLOAT")
    with pytest.raises(DataError, match=r"stereo\.wav: has 2 channels.*--channel 0\.\.1"):
        read_audio(path)
    right, _ = read_audio(path, channel=1)
    np.testing.assert_array_equal(right, stereo[:, 1])
    with pytest.raises(ParameterError, match="channel 2 does not exist"):
        read_audio(path, channel=2)
    with pytest.raises(ParameterError, match="0 or more"):
        read_audio(path, channel=-1)


def test_mono_file_ignores_channel(tmp_path):
    x = _noise()
    sf.write(tmp_path / "m.wav", x, SR, subtype="FLOAT")
    np.testing.assert_array_equal(read_audio(tmp_path / "m.wav", channel=0)[0], x)


def test_refuses_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.wav: no such file"):
        read_audio(tmp_path / "nope.wav")


def test_refuses_directory(tmp_path):
    (tmp_path / "d.wav").mkdir()
    with pytest.raises(DataError, match="is a directory"):
        read_audio(tmp_path / "d.wav")


def test_refuses_text_named_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n")
    with pytest.raises(DataError, match=r"notes\.wav: cannot read as audio") as info:
        read_audio(path)
    assert "\n" not in str(info.value)


def test_refuses_truncated_header(tmp_path):
    sf.write(tmp_path / "full.wav", _noise(), SR, subtype="PCM_16")
    truncated = tmp_path / "cut.wav"
    truncated.write_bytes((tmp_path / "full.wav").read_bytes()[:20])
    with pytest.raises(DataError, match=r"cut\.wav: cannot read as audio"):
        read_audio(truncated)


def test_refuses_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), SR, subtype="PCM_16")
    with pytest.raises(DataError, match=r"empty\.wav: is empty \(0 samples\)"):
        read_audio(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_refuses_non_finite(tmp_path, bad):
    x = _noise()
    x[[100, 200, 4000]] = bad
    path = tmp_path / "bad.wav"
    sf.write(path, x, SR, subtype="FLOAT")
    with pytest.raises(DataError, match=r"bad\.wav: 3 non-finite samples.*first at sample 100"):
        read_audio(path)


def test_label_names_the_file_in_messages(tmp_path):
    with pytest.raises(DataError, match=r"^dry\.wav: no such file$"):
        read_audio(tmp_path / "x.wav", label="dry.wav")


# --- writing ------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".wav", ".aif", ".aiff"])
def test_write_default_is_float_and_exact(tmp_path, ext):
    x = np.array([0.0, 0.25, -1.75, 3.0], dtype=np.float32)  # beyond 0 dBFS is kept
    path = tmp_path / f"out{ext}"
    write_audio(path, x, SR)
    info = sf.info(path)
    assert info.subtype == "FLOAT" and info.samplerate == SR and info.channels == 1
    np.testing.assert_array_equal(sf.read(path, dtype="float32")[0], x)


def test_write_flac_defaults_to_pcm24(tmp_path):
    x = _noise()
    write_audio(tmp_path / "out.flac", x, SR)
    assert sf.info(tmp_path / "out.flac").subtype == "PCM_24"
    np.testing.assert_allclose(sf.read(tmp_path / "out.flac")[0], x, atol=2.0**-23)


def test_write_same_audio_gives_same_bytes(tmp_path):
    x = _noise()
    write_audio(tmp_path / "a.wav", x, SR)
    # libsndfile's PEAK chunk holds a timestamp; it must not be in our files.
    write_audio(tmp_path / "b.wav", x, SR)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    assert b"PEAK" not in (tmp_path / "a.wav").read_bytes()


def test_integer_subtype_clips_and_warns(tmp_path):
    x = np.array([0.5, 1.5, -2.0, 0.25], dtype=np.float32)
    path = tmp_path / "clip.wav"
    with pytest.warns(ClippingWarning, match=r"clip\.wav: 2 samples beyond ±1\.0 clipped"):
        write_audio(path, x, SR, subtype="PCM_16")
    # Oracle: saturated at full scale, not wrapped around.
    expected = np.clip(x, -1.0, 1.0)
    np.testing.assert_allclose(sf.read(path)[0], expected, atol=2.0**-15)


def test_integer_subtype_within_range_does_not_warn(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_audio(tmp_path / "ok.wav", _noise(), SR, subtype="PCM_24")


def test_write_refuses_unknown_extension_before_any_work(tmp_path):
    with pytest.raises(ParameterError, match=r"unknown audio extension '\.mp4'"):
        write_audio(tmp_path / "out.mp4", _noise(), SR)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("o.flac", {"subtype": "FLOAT"}, "not supported for FLAC"),
        ("o.wav", {"subtype": "ULAW"}, "not supported for WAV"),
        ("o.wav", {"sample_rate": 0}, "sample_rate must be positive"),
        ("o.wav", {"sample_rate": 44100.0}, "sample_rate must be an integer"),
        ("o.wav", {"audio": np.zeros((10, 2), np.float32)}, "must be mono"),
    ],
)
def test_write_refuses_bad_options(tmp_path, name, kwargs, match):
    args = {"audio": _noise(), "sample_rate": SR, **kwargs}
    with pytest.raises(ParameterError, match=match):
        write_audio(tmp_path / name, **args)
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_non_finite(tmp_path):
    x = _noise()
    x[5] = np.nan
    with pytest.raises(DataError, match="non-finite"):
        write_audio(tmp_path / "o.wav", x, SR)
    assert list(tmp_path.iterdir()) == []


def test_write_into_missing_directory(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        write_audio(tmp_path / "no" / "o.wav", _noise(), SR)


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_interrupted_write_leaves_existing_file_and_no_temp(tmp_path, monkeypatch, exc):
    path = tmp_path / "keep.wav"
    original = _noise(seed=3)
    write_audio(path, original, SR)
    before = path.read_bytes()

    original_write = sf.SoundFile.write

    def interrupted(self, data):
        original_write(self, data[:100])  # part of the audio reaches the temporary file
        raise exc("interrupted")

    monkeypatch.setattr(sf.SoundFile, "write", interrupted)
    with pytest.raises(exc):
        write_audio(path, _noise(seed=4), SR)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"]


def test_failed_os_replace_leaves_no_temp(tmp_path, monkeypatch):
    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audio_io.os, "replace", fail)
    with pytest.raises(DataError, match=r"t\.json: cannot write \(No space left on device\)"):
        atomic_write_text(tmp_path / "t.json", "{}")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_text_and_bytes(tmp_path):
    path = tmp_path / "p.json"
    atomic_write_text(path, '{"a": "é"}\n')
    assert path.read_bytes() == '{"a": "é"}\n'.encode()
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_atomic_write_keeps_existing_permissions(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("old")
    os.chmod(path, 0o640)
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert os.stat(path).st_mode & 0o777 == 0o640


def _count_fsyncs(monkeypatch):
    """Wrap os.fsync: a list of (is a directory) per call."""
    calls: list[bool] = []
    real = os.fsync

    def counted(fd):
        import stat

        calls.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        return real(fd)

    monkeypatch.setattr(os, "fsync", counted)
    return calls


def test_deferred_directory_sync_syncs_each_directory_once(tmp_path, monkeypatch):
    """Every file is still fsync'ed and complete when its write returns; the directories are
    fsync'ed once each at the end of the block, also when the block raises."""
    calls = _count_fsyncs(monkeypatch)
    for name in "ab":
        atomic_write_text(tmp_path / name, name)
    assert calls == [False, True, False, True]  # per file: data, then directory

    calls.clear()
    (tmp_path / "sub").mkdir()
    with deferred_directory_sync():
        for name in ("c", "d", "e", "sub/f"):
            atomic_write_text(tmp_path / name, name)
            assert (tmp_path / name).read_text() == name  # renamed at once
        with deferred_directory_sync():  # nested: synced by the outer block
            atomic_write_text(tmp_path / "g", "g")
        assert calls == [False] * 5
    assert calls == [False] * 5 + [True, True]  # tmp_path and sub, once each

    calls.clear()
    with pytest.raises(RuntimeError), deferred_directory_sync():
        atomic_write_text(tmp_path / "h", "h")
        raise RuntimeError("stop")
    assert calls == [False, True] and (tmp_path / "h").read_text() == "h"
    atomic_write_text(tmp_path / "i", "i")  # the block's end restored per-file syncs
    assert calls == [False, True, False, True]


# --- resampling ---------------------------------------------------------------------------


def test_resample_sine_oracle():
    from_sr, to_sr, f0 = 48000, 44100, 440.0
    t_in = np.arange(48000) / from_sr
    x = np.sin(2 * np.pi * f0 * t_in).astype(np.float32)
    y = resample(x, from_sr, to_sr)
    assert y.dtype == np.float32 and y.shape == (44100,)
    t_out = np.arange(y.shape[0]) / to_sr
    inner = slice(1000, -1000)  # away from the filter's edge transients
    np.testing.assert_allclose(y[inner], np.sin(2 * np.pi * f0 * t_out)[inner], atol=2e-3)


def test_resample_same_rate_is_copy():
    x = _noise()
    y = resample(x, SR, SR)
    np.testing.assert_array_equal(x, y)
    assert y is not x


@pytest.mark.parametrize("rate", [0, -1, 44100.5, True])
def test_resample_refuses_bad_rates(rate):
    with pytest.raises(ParameterError, match="positive integer"):
        resample(_noise(), rate, SR)
