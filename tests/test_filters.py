"""Filters vs scipy: RBJ magnitude (sosfreqz), sosfilt ESR, no clicks, rate independence,
fused filter groups, FIR EQ band gains."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from oracles import first_order, rbj

from lactose_audio._tf import tf
from lactose_audio.blocks import design_fir, fft_size, get_block
from lactose_audio.chains import Chain, Stage

SR = 44100.0
HOP = 4096


KINDS = ["lowpass", "highpass", "bandpass", "peak", "lowshelf", "highshelf"]


def applied_response(kind, values, fs, freqs, hop=HOP):
    """Magnitude of the FIR the frame filter actually applies, at ``freqs``."""
    block = get_block(kind)
    n_fft = fft_size(hop, fs)
    controls = {k: tf.constant([v], tf.float64) for k, v in values.items()}
    spectrum = design_fir(block.response(controls, fs, n_fft), n_fft, hop)
    ir = np.fft.irfft(spectrum.numpy()[0], n_fft)
    _, h = scipy.signal.freqz(ir, 1, worN=freqs, fs=fs)
    return h


def _values(kind, fc, q, gain_db):
    values = {"cutoff_hz": fc, "q": q}
    if kind in ("peak", "lowshelf", "highshelf"):
        values["gain_db"] = gain_db
    return values


@pytest.mark.parametrize("kind", KINDS)
def test_magnitude_within_half_db_of_sosfreqz(kind):
    freqs = np.geomspace(20.0, 0.45 * SR, 600)
    q_min, q_max = get_block(kind).params[1].minimum, get_block(kind).params[1].maximum
    for fc in (40.0, 100.0, 1000.0, 15000.0):
        for q in (q_min, 0.7071, q_max):
            for gain_db in (-12.0, 12.0):
                h = applied_response(kind, _values(kind, fc, q, gain_db), SR, freqs)
                _, ref = scipy.signal.sosfreqz(rbj(kind, fc, q, gain_db, SR), worN=freqs, fs=SR)
                floor = 1e-3  # -60 dB: compare where the analytic response is audible
                err = np.abs(
                    20 * np.log10(np.maximum(np.abs(h), floor) / np.maximum(np.abs(ref), floor))
                )
                assert err.max() < 0.5, (kind, fc, q, gain_db, err.max())


@pytest.mark.parametrize("kind", KINDS)
def test_fixed_parameters_match_sosfilt_on_noise(kind):
    x = np.random.default_rng(0).standard_normal(3 * 44100).astype(np.float32)
    values = _values(kind, 300.0 if kind != "lowpass" else 3000.0, 1.5, 9.0)
    y = get_block(kind)(x[None], SR, **values).numpy()[0]
    ref = scipy.signal.sosfilt(rbj(kind, values["cutoff_hz"], 1.5, 9.0, SR), x.astype(np.float64))
    esr = np.sum((ref - y) ** 2) / np.sum(ref**2)
    assert esr <= 1e-3, esr


@pytest.mark.parametrize("kind", ["lowshelf1", "highshelf1", "lowpass1", "highpass1"])
def test_first_order_sections_match_bilinear_prototype_on_noise(kind):
    x = np.random.default_rng(3).standard_normal(3 * 44100).astype(np.float32)
    for fc, gain_db in ((150.0, 12.0), (3894.0, -21.8), (12000.0, -6.0)):
        values = {"cutoff_hz": fc, "gain_db": gain_db}
        values = {n: values[n] for n in get_block(kind).param_names}
        y = get_block(kind)(x[None], SR, **values).numpy()[0]
        ref = scipy.signal.lfilter(*first_order(kind, fc, gain_db, SR), x.astype(np.float64))
        esr = np.sum((ref - y) ** 2) / np.sum(ref**2)
        assert esr <= 1e-4, (kind, fc, gain_db, esr)


def test_first_order_low_shelf_is_exactly_a_pre_emphasis():
    """``1 - a z^-1`` is a low shelf of ``20 log10((1 - a) / (1 + a))`` dB at
    ``fs atan(sqrt((1 - a) / (1 + a))) / pi`` Hz, times ``1 + a`` (the docstring's identity)."""
    a = 0.85
    fc = SR * np.arctan(np.sqrt((1 - a) / (1 + a))) / np.pi
    gain_db = 20 * np.log10((1 - a) / (1 + a))
    controls = {"cutoff_hz": np.float64(fc), "gain_db": np.float64(gain_db)}
    b, d = get_block("lowshelf1").coefficients(controls, SR)
    b = (1 + a) * np.array([float(v) for v in b]) / float(d[0])
    d = np.array([float(v) for v in d]) / float(d[0])
    np.testing.assert_allclose(b, [1.0, -a, 0.0], atol=1e-12)
    np.testing.assert_allclose(d, [1.0, 0.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("kind", ["lowpass1", "highpass1"])
def test_first_order_pass_equals_pedalboard(kind):
    """Third-party oracle: pedalboard's (JUCE's) first-order LowpassFilter/HighpassFilter."""
    import pedalboard

    x = np.random.default_rng(5).standard_normal(2 * 44100).astype(np.float32)
    effect = pedalboard.LowpassFilter if kind == "lowpass1" else pedalboard.HighpassFilter
    for fc in (40.0, 800.0, 6000.0):
        ref = pedalboard.Pedalboard([effect(fc)])(x, SR).astype(np.float64)
        y = get_block(kind)(x[None], SR, cutoff_hz=fc).numpy()[0]
        esr = np.sum((ref - y) ** 2) / np.sum(ref**2)
        assert esr <= 1e-4, (kind, fc, esr)


def test_lowpass_minus_3db_point_is_sample_rate_independent():
    """A Butterworth lowpass at 1 kHz is -3.01 dB at 1 kHz at 44.1 and 48 kHz (Hz recomputed)."""
    for fs in (44100.0, 48000.0, 96000.0):
        h = applied_response("lowpass", {"cutoff_hz": 1000.0, "q": 1 / np.sqrt(2)}, fs, [1000.0])
        assert 20 * np.log10(abs(h[0])) == pytest.approx(-3.0103, abs=0.01)
    # and the chain renders a 1 kHz sine at the same level at both rates
    for fs in (44100, 48000):
        chain = Chain([Stage("lowpass")], hop_size=HOP)
        chain[0].set_physical([1000.0, 1 / np.sqrt(2)])
        t = np.arange(int(fs)) / fs
        y = chain(np.sin(2 * np.pi * 1000.0 * t).astype(np.float32), fs)
        level = np.sqrt(2 * np.mean(y[fs // 2 :] ** 2))
        assert 20 * np.log10(level) == pytest.approx(-3.01, abs=0.05)


def test_no_clicks_when_cutoff_alternates_every_frame():
    hop = 512
    fs = SR
    n = 40 * hop
    x = (0.5 * np.sin(2 * np.pi * 220.0 * np.arange(n) / fs)).astype(np.float32)
    cutoffs = np.where(np.arange(n // hop) % 2 == 0, 300.0, 3000.0).astype(np.float32)
    block = get_block("lowpass")
    y = block.kernel(tf.constant(x[None]), {"cutoff_hz": cutoffs[None], "q": 0.7071}, fs,
                     hop_size=hop).numpy()[0]  # fmt: skip
    steady = slice(8 * hop, n)
    jump_in = np.abs(np.diff(x)).max()
    jump_out = np.abs(np.diff(y[steady])).max()
    assert jump_out <= 1.5 * jump_in, (jump_out, jump_in)
    # the alternation is really there: the frames differ from a fixed-cutoff render
    fixed = block(x[None], fs, cutoff_hz=300.0).numpy()[0]
    assert np.abs(fixed[steady] - y[steady]).max() > 1e-3


def test_fused_group_equals_separate_stages_with_constant_params():
    x = np.random.default_rng(1).standard_normal(2 * 44100).astype(np.float32)
    chain = Chain.from_spec("lowpass>highpass>peak")
    chain[0].set_physical([4000.0, 0.9])
    chain[1].set_physical([120.0, 0.7071])
    chain[2].set_physical([800.0, 1.2, 6.0])
    fused = chain(x, SR)
    separate = x
    for stage in chain:
        separate = Chain([stage])(separate, SR)
    esr = np.sum((fused - separate) ** 2) / np.sum(separate**2)
    assert esr < 1e-6
    ref = x.astype(np.float64)
    for kind, (fc, q, g) in zip(
        ("lowpass", "highpass", "peak"),
        ((4000.0, 0.9, 0), (120.0, 0.7071, 0), (800.0, 1.2, 6.0)),
        strict=True,
    ):
        ref = scipy.signal.sosfilt(rbj(kind, fc, q, g, SR), ref)
    assert np.sum((fused - ref) ** 2) / np.sum(ref**2) < 1e-3


def test_fir_eq_band_gains_and_minimum_phase():
    block = get_block("fir_eq")
    gains = np.array([6.0, -6.0, 3.0, 0.0, -9.0, 12.0, -3.0, 0.0, 4.0, -12.0])
    values = {p.name: float(g) for p, g in zip(block.params, gains, strict=True)}
    n_fft = fft_size(HOP, SR)
    controls = {k: tf.constant([v], tf.float64) for k, v in values.items()}
    spectrum = design_fir(block.response(controls, SR, n_fft), n_fft, HOP).numpy()[0]
    centers = 31.25 * 2.0 ** np.arange(10)
    ir = np.fft.irfft(spectrum, n_fft)
    _, h = scipy.signal.freqz(ir, 1, worN=centers, fs=SR)
    np.testing.assert_allclose(20 * np.log10(np.abs(h)), gains, atol=0.5)
    # interpolation: halfway (in log f) between two centres, halfway in dB
    _, mid = scipy.signal.freqz(ir, 1, worN=[1000 * np.sqrt(2)], fs=SR)
    assert 20 * np.log10(abs(mid[0])) == pytest.approx((12.0 - 3.0) / 2, abs=0.5)
    # minimum phase: the energy is at the start (no linear-phase latency)
    energy = np.cumsum(ir**2) / np.sum(ir**2)
    assert energy[256] > 0.9


def _crossfade_oracle(x, irs, hop, c):
    """y = sum_f h_f * (x_f - g_f) + h_{f-1} * g_f, g_f = (1 - ramp) x_f[:c] (frame 0: no g)."""
    n_frames = x.size // hop
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(c) + 0.5) / c)
    y = np.zeros(x.size + irs.shape[1] + hop)
    for f in range(n_frames):
        seg = x[f * hop : (f + 1) * hop].astype(np.float64)
        g = np.zeros(hop)
        if f > 0:
            g[:c] = (1.0 - ramp) * seg[:c]
            y[f * hop : f * hop + hop + irs.shape[1] - 1] += np.convolve(g, irs[f - 1])
        y[f * hop : f * hop + hop + irs.shape[1] - 1] += np.convolve(seg - g, irs[f])
    return y[: x.size]


@pytest.mark.parametrize("hop", [64, 300, 4096])
def test_frame_filter_equals_crossfade_oracle_whole_and_chunked(hop):
    from lactose_audio.blocks.base import (
        applied_ir_length,
        crossfade_length,
        filter_state,
        frame_filter,
    )

    rng = np.random.default_rng(hop)
    n_fft = fft_size(hop, SR)
    length = applied_ir_length(n_fft, hop)
    n_frames = 7
    x = rng.standard_normal(n_frames * hop).astype(np.float32)
    irs = rng.standard_normal((n_frames, length)) * np.exp(-np.arange(length) / (length / 8))
    spectra = tf.constant(np.fft.rfft(irs, n_fft)[None].astype(np.complex64))
    ref = _crossfade_oracle(x, irs, hop, crossfade_length(hop))
    frames = tf.constant(x.reshape(1, n_frames, hop))
    whole, _ = frame_filter(frames, spectra, n_fft)
    np.testing.assert_allclose(whole.numpy().reshape(-1), ref, atol=2e-4 * np.abs(ref).max())
    state, parts = filter_state(1, hop, n_fft), []
    for lo, hi in ((0, 1), (1, 4), (4, 5), (5, 7)):
        out, state = frame_filter(frames[:, lo:hi], spectra[:, lo:hi], n_fft, state)
        parts.append(out.numpy().reshape(-1))
    scale = np.abs(ref).max()
    np.testing.assert_allclose(np.concatenate(parts), whole.numpy().reshape(-1), atol=2e-6 * scale)
