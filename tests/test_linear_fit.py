"""The start of linear chains: the measured response and its least-squares fit.

Oracles: scipy.signal.freqz of a filter run by scipy.signal.lfilter (the measured response);
pedalboard's (JUCE's) shelves and peak, whose settings the fit must recover.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import freqz, lfilter

from lactose_audio.chains import Chain
from lactose_audio.linear_fit import ResponseFit, is_linear_chain, measured_response
from lactose_audio.params import raw_to_physical_np

SR = 44100


def _segments(x: np.ndarray, n: int = 10240, k: int = 12) -> np.ndarray:
    starts = np.linspace(0, x.size - n, k).astype(int)
    return np.stack([x[s : s + n] for s in starts])


def _noise(seconds: float, seed: int) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def test_measured_response_is_the_filters_response():
    """Welch's H = S_xy / S_xx of white noise through a biquad is scipy's freqz of it."""
    b, a = [0.2, 0.3, 0.1], [1.0, -0.5, 0.25]
    x = _noise(6.0, seed=1)
    y = lfilter(b, a, x)
    sxx, sxy, _ = measured_response(_segments(x), _segments(y), 4096)
    _, h = freqz(b, a, worN=2049, fs=SR)
    error = np.sum(np.abs(sxy / sxx - h) ** 2) / np.sum(np.abs(h) ** 2)
    assert error < 1e-4


def test_a_pedalboard_eq_is_recovered_from_its_measured_response():
    pedalboard = pytest.importorskip("pedalboard")
    x = _noise(6.0, seed=2)
    board = pedalboard.Pedalboard(
        [
            pedalboard.LowShelfFilter(150.0, gain_db=-5.0),
            pedalboard.PeakFilter(900.0, gain_db=4.0, q=1.2),
            pedalboard.HighShelfFilter(4000.0, gain_db=-8.0),
            pedalboard.Gain(2.0),
        ]
    )
    y = board(x, SR)
    chain = Chain.from_spec("lowshelf>peak>highshelf>gain")
    fit = ResponseFit(chain, _segments(x), _segments(y), SR, 0.85, level=3)
    raw = np.concatenate([s.bank.numpy()[0, : s.block.n_params] for s in chain.stages])
    best = fit.fit(raw.astype(np.float64), 15.0)
    found, offset = [], 0
    for stage in chain.stages:
        n = stage.block.n_params
        found.append(raw_to_physical_np(stage.block.params, best[offset : offset + n]))
        offset += n
    (ls_hz, ls_q, ls_db), (pk_hz, pk_q, pk_db), (hs_hz, hs_q, hs_db), (gain_db,) = found
    assert ls_hz == pytest.approx(150.0, rel=0.01) and ls_db == pytest.approx(-5.0, abs=0.05)
    assert pk_hz == pytest.approx(900.0, rel=0.01) and pk_q == pytest.approx(1.2, rel=0.02)
    assert pk_db == pytest.approx(4.0, abs=0.05)
    assert hs_hz == pytest.approx(4000.0, rel=0.01) and hs_db == pytest.approx(-8.0, abs=0.05)
    assert ls_q == pytest.approx(0.7071, rel=0.02) and hs_q == pytest.approx(0.7071, rel=0.02)
    assert gain_db == pytest.approx(2.0, abs=0.05)
    # from the block defaults alone (1 kHz peak, 0 dB shelves) the fit does not get there
    alone = ResponseFit(chain, _segments(x), _segments(y), SR, 0.85, level=3)
    assert fit.distance(best) < 0.01 * alone.distance(raw.astype(np.float64))


def test_linear_chains_are_filters_and_gains_only():
    assert is_linear_chain(Chain.from_spec("highpass>lowshelf>peak>highshelf>lowpass>gain"))
    assert is_linear_chain(Chain.from_spec("fir_eq>gain"))
    assert not is_linear_chain(Chain.from_spec("gain>tanh>lowpass"))
    assert not is_linear_chain(Chain.from_spec("highpass>gain>mix"))


def test_the_jacobian_is_the_forward_difference_of_the_whole_chains_residuals():
    """Oracle: forward differences of :meth:`ResponseFit.residuals` with every stage
    re-evaluated (the Jacobian re-evaluates only the stage a parameter belongs to)."""
    x = _noise(3.0, seed=4)
    y = lfilter([0.2, 0.3, 0.1], [1.0, -0.5, 0.25], x)
    chain = Chain.from_spec("highpass>lowshelf>peak>gain>highshelf>lowpass")
    fit = ResponseFit(chain, _segments(x), _segments(y), SR, 0.85, level=3)
    rng = np.random.default_rng(7)
    raw = rng.uniform(-2.0, 2.0, sum(s.block.n_params for s in chain.stages))
    step = 1e-6 * np.maximum(1.0, np.abs(raw))
    base = fit.residuals(raw)
    naive = np.stack(
        [
            (fit.residuals(raw + step[i] * np.eye(raw.size)[i]) - base) / step[i]
            for i in range(raw.size)
        ],
        axis=1,
    )
    jacobian = fit.jacobian(raw)
    assert jacobian.shape == naive.shape == (base.size, raw.size)
    scale = np.abs(naive).max(axis=0)
    assert np.all(scale > 0.0)  # every parameter moves the response
    np.testing.assert_allclose(jacobian, naive, rtol=0, atol=1e-6 * scale.max())
