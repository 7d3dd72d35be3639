"""The pitch key's tracker: pYIN (Mauch & Dixon 2014) re-implemented for render speed.

The maths is ``librosa.pyin``'s (librosa 0.11, the settings of :func:`pitch_track`): the YIN
cumulative mean normalised difference (de Cheveigne & Kawahara 2002) of every 64 ms frame,
parabolic refinement of its troughs, the Beta(2, 18) prior over 100 thresholds with the
Boltzmann prior over troughs, 0.25-semitone pitch bins, and a Viterbi decode over voiced and
unvoiced pitch states with pyin's triangular transition matrix (switch probability 0.01). What
differs is how it is computed:

- the autocorrelations of the 4x-overlapping frames come from one FFT per 16 ms block
  (512-point, blocks summed in the spectral domain) instead of one 2048-point FFT per frame;
- troughs, priors and observation probabilities run in one numba kernel per take;
- the Viterbi step only visits the band of the transition matrix that is non-zero (77 bins
  each way), handling the rest (``log(tiny)``) through running maxima: the same values and
  backpointers as librosa's dense decode.

Every value is the same maths in float64; only summation order differs (rounding, ~1e-16), so
the decoded path equals librosa's except at exact near-ties. The decode also streams
(:class:`PitchTracker`): a frame is final as soon as the survivor paths of every state merge
before it (then it is exactly what the whole-take decode gives), or after a bounded look-ahead.

Frame grid of the tracker: audio resampled to :data:`PITCH_SAMPLE_RATE` (soxr HQ, as
``librosa.resample``), padded with ``frame_length // 2`` zeros each side (``center=True``),
frame ``t`` covers padded samples ``[256 t, 256 t + frame_length)``, i.e. it is centred at
``t * 16 ms`` of the original audio.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from lactose_audio._numba import jit as _jit
from lactose_audio.pitch_viterbi import _trace, _viterbi_kernel

#: Rate the audio is resampled to before pitch tracking, Hz.
PITCH_SAMPLE_RATE = 16000
#: Tracker hop at PITCH_SAMPLE_RATE, samples (16 ms).
PITCH_HOP = 256
_RESOLUTION = 0.25  # semitones per pitch bin
# pyin's default (35.92 octaves/s) forbids jumps of more than 7 semitones per 16 ms hop, which
# turns an octave leap between notes into an octave error; 100 octaves/s allows 19 semitones
# per hop at the same cost.
_MAX_TRANSITION_RATE = 100.0
_N_THRESHOLDS = 100
_BETA = (2, 18)
_BOLTZMANN = 2.0
_SWITCH_PROB = 0.01
_NO_TROUGH_PROB = 0.01
_TINY = float(np.finfo(np.float64).tiny)  # librosa's util.tiny: log(p + tiny) avoids -inf


def snap_fmin(fmin_hz: float) -> float:
    """``fmin_hz`` snapped down to a whole MIDI note, Hz (librosa's ``midi_to_hz`` maths)."""
    midi = 12.0 * (np.log2(float(fmin_hz)) - np.log2(440.0)) + 69.0
    return float(440.0 * (2.0 ** ((math.floor(float(midi) + 1e-9) - 69.0) / 12.0)))


def frame_length_for(fmin_hz: float) -> int:
    """pyin frame at 16 kHz: 1024 samples (64 ms), 2048 when ``fmin`` needs two periods."""
    return 1024 if PITCH_SAMPLE_RATE / fmin_hz < 512 else 2048


@dataclass(frozen=True)
class _Setup:
    """Everything that depends only on (fmin, fmax): pyin's constants, as librosa builds them."""

    fmin: float
    frame_length: int
    min_period: int
    max_period: int
    n_bins: int
    n_fft: int
    thresholds: np.ndarray  # [100] upper thresholds 0.01 .. 1
    beta_probs: np.ndarray  # [100]
    beta_prefix: np.ndarray  # [101] np.sum(beta_probs[:k]), as librosa sums it
    freqs: np.ndarray  # [n_bins] Hz of each pitch bin
    half: int  # transition band half-width, bins
    log_same: np.ndarray  # [2 half + 1, n_bins] log(p_stay * T[j + d, j] + tiny)
    log_switch: np.ndarray  # [2 half + 1, n_bins] log(p_switch * T[j + d, j] + tiny)
    from_same: np.ndarray  # [n_bins, 2 half + 1] log_same by predecessor: [i, i - j + half]...
    from_switch: np.ndarray  # ... as log(p * T[i, i - half + e] + tiny), e = 0 .. 2 half
    log_tiny: float
    log_init: float


def _transition_local(n_states: int, width: int) -> np.ndarray:
    """``librosa.sequence.transition_local(n, width, window='triangle', wrap=False)``."""
    from scipy.signal import get_window

    window = get_window("triangle", width, fftbins=False)
    lpad = (n_states - width) // 2
    row0 = np.pad(window, (lpad, n_states - width - lpad))  # librosa's pad_center
    out = np.zeros((n_states, n_states), dtype=np.float64)
    for i in range(n_states):
        row = np.roll(row0, n_states // 2 + i + 1)
        row[min(n_states, i + width // 2 + 1) :] = 0
        row[: max(0, i - width // 2)] = 0
        out[i] = row
    out /= out.sum(axis=1, keepdims=True)
    return out


@functools.lru_cache(maxsize=8)
def _setup(fmin_hz: float, fmax_hz: float) -> _Setup:
    from scipy.stats import beta

    fmin = snap_fmin(fmin_hz)
    frame_length = frame_length_for(fmin)
    sr = PITCH_SAMPLE_RATE
    min_period = int(np.floor(sr / fmax_hz))
    max_period = min(int(np.ceil(sr / fmin)), frame_length - 1)
    thresholds = np.linspace(0, 1, _N_THRESHOLDS + 1)
    beta_probs = np.diff(beta.cdf(thresholds, _BETA[0], _BETA[1]))
    prefix = np.array([np.sum(beta_probs[:k]) for k in range(_N_THRESHOLDS + 1)])
    per_semitone = int(np.ceil(1.0 / _RESOLUTION))
    n_bins = int(np.floor(12 * per_semitone * np.log2(fmax_hz / fmin))) + 1
    semitones = round(_MAX_TRANSITION_RATE * 12 * PITCH_HOP / sr)
    width = semitones * per_semitone + 1
    trans = _transition_local(n_bins, width)
    stay = 1.0 - _SWITCH_PROB
    switch = (1.0 - stay) / 1  # librosa's transition_loop(2, 1 - switch_prob) off-diagonal
    half = width // 2
    log_same = np.full((2 * half + 1, n_bins), np.log(_TINY))
    log_switch = log_same.copy()
    for d in range(-half, half + 1):
        j = np.arange(max(0, -d), min(n_bins, n_bins - d))
        log_same[d + half, j] = np.log(stay * trans[j + d, j] + _TINY)
        log_switch[d + half, j] = np.log(switch * trans[j + d, j] + _TINY)
    from_same = np.full((n_bins, 2 * half + 1), np.log(_TINY))
    from_switch = from_same.copy()
    for e in range(2 * half + 1):  # by predecessor i: target j = i - half + e
        i = np.arange(max(0, half - e), min(n_bins, n_bins + half - e))
        from_same[i, e] = log_same[2 * half - e, i - half + e]
        from_switch[i, e] = log_switch[2 * half - e, i - half + e]
    n_fft = 1 << int(math.ceil(math.log2(PITCH_HOP + max_period + 1)))
    return _Setup(
        fmin=fmin,
        frame_length=frame_length,
        min_period=min_period,
        max_period=max_period,
        n_bins=n_bins,
        n_fft=n_fft,
        thresholds=np.ascontiguousarray(thresholds[1:]),
        beta_probs=beta_probs,
        beta_prefix=prefix,
        freqs=fmin * 2 ** (np.arange(n_bins) / (12 * per_semitone)),
        half=half,
        log_same=log_same,
        log_switch=log_switch,
        from_same=from_same,
        from_switch=from_switch,
        log_tiny=float(np.log(_TINY)),
        log_init=float(np.log(1.0 / (2 * n_bins) + _TINY)),
    )


# ----------------------------------------------------------------------------- observations


def _frame_acf(yp: np.ndarray, n_frames: int, s: _Setup) -> tuple[np.ndarray, np.ndarray]:
    """Autocorrelation and energy prefix of frames ``0..n_frames-1`` of the padded ``yp``.

    Frame ``t`` is ``yp[256 t : 256 t + frame_length]``. Its autocorrelation at lag ``k`` is the
    sum over its 16 ms blocks ``b`` of ``sum_m yp[m] yp[m + k]`` (``m`` in ``b``, ``m + k`` in
    the frame): a block whose partner samples all lie in the frame uses ``yp[256 b :
    256 b + n_fft]``, the last ones their truncated partner. All in the spectral domain, so one
    inverse FFT per frame. ``yp`` must hold ``256 (n_frames - 1) + extent`` samples.

    Returns:
        ``acf`` float64 ``[n_frames, max_period + 1]``, ``cum_energy`` float64
        ``[n_frames, max_period]`` (``sum_{m <= k} yp[256 t + m]^2``).
    """
    hop, n_fft, lag = PITCH_HOP, s.n_fft, s.max_period
    n_blocks_frame = s.frame_length // hop
    n_blocks = n_frames + n_blocks_frame - 1
    blocks = yp[: n_blocks * hop].reshape(n_blocks, hop)
    spec_a = np.fft.rfft(blocks, n=n_fft, axis=1)
    conj_a = np.conj(spec_a)
    total = np.zeros((n_frames, n_fft // 2 + 1), dtype=np.complex128)
    starts = np.arange(n_blocks)[:, None] * hop
    full = [j for j in range(n_blocks_frame) if (j + 1) * hop - 1 + lag <= s.frame_length - 1]
    if full:  # block b with its n_fft-sample partner yp[256 b : 256 b + n_fft], once per block
        n_used = n_frames + full[-1]
        if n_fft == 2 * hop:  # the partner is blocks b and b + 1: A_b + (-1)^k A_(b+1)
            sign = np.where(np.arange(n_fft // 2 + 1) % 2 == 0, 1.0, -1.0)
            partner = spec_a[:n_used] + sign * spec_a[1 : n_used + 1]
        else:
            partner = np.fft.rfft(yp[starts[:n_used] + np.arange(n_fft)], axis=1)
        cross = conj_a[:n_used] * partner
    for j in range(n_blocks_frame):
        follow = n_blocks_frame - j  # samples from block j to the frame end: follow * hop
        sel = slice(j, j + n_frames)
        if j in full:
            total += cross[sel]
        elif follow == 1:
            total += conj_a[sel] * spec_a[sel]
        else:
            seg = yp[starts[sel] + np.arange(follow * hop)[None, :]]
            total += conj_a[sel] * np.fft.rfft(seg, n=n_fft, axis=1)
    acf = np.fft.irfft(total, n=n_fft, axis=1)[:, : lag + 1]
    head = yp[np.arange(n_frames)[:, None] * hop + np.arange(lag)[None, :]]
    return np.ascontiguousarray(acf), np.cumsum(head * head, axis=1)


def _extent(s: _Setup) -> int:
    """Padded samples a frame's computation reads, from its start."""
    hop = PITCH_HOP
    full = [
        j
        for j in range(s.frame_length // hop)
        if (j + 1) * hop - 1 + s.max_period <= s.frame_length - 1
    ]
    return max(s.frame_length, (max(full) * hop + s.n_fft) if full else 0)


@_jit
def _observation_kernel(
    acf,
    cum_energy,
    min_period,
    max_period,
    sr,
    fmin,
    n_bins,
    thresholds,
    beta_probs,
    beta_prefix,
    boltzmann,
    no_trough_prob,
    tiny,
    log_v,
    log_u,
):  # pragma: no cover - compiled
    # librosa.pyin's _cumulative_mean_normalized_difference, _parabolic_interpolation and
    # __pyin_helper, one frame at a time: log_v[t, b] = log(P(voiced, bin b) + tiny),
    # log_u[t] = log((1 - P(voiced)) / n_bins + tiny).
    n_lags = max_period - min_period + 1
    n_thr = thresholds.shape[0]
    yin = np.empty(n_lags)
    diff = np.empty(max_period + 1)
    trough = np.empty(n_lags, dtype=np.int64)
    probs = np.empty(n_lags)
    obs = np.zeros(n_bins)
    first_below = np.empty(n_lags, dtype=np.int64)
    fact = np.empty(n_lags + 1)  # scipy.stats.boltzmann.pmf(k, lambda, n) = fact[n] decay[k]
    decay = np.empty(n_lags + 1)
    for n in range(n_lags + 1):
        fact[n] = (1.0 - np.exp(-boltzmann)) / (1.0 - np.exp(-boltzmann * n)) if n else 0.0
        decay[n] = np.exp(-boltzmann * n)
    for t in range(acf.shape[0]):
        diff[0] = 0.0
        for k in range(1, max_period + 1):
            diff[k] = 2.0 * (acf[t, 0] - acf[t, k]) - cum_energy[t, k - 1]
        total = 0.0
        for k in range(1, max_period + 1):
            total += diff[k]
            if k >= min_period:
                yin[k - min_period] = diff[k] / (total / k + tiny)
        # troughs: x[i] < x[i-1] and x[i] <= x[i+1]; ends compared with their one neighbour
        n_tr = 0
        for i in range(n_lags):
            if i == 0:
                is_tr = n_lags > 1 and yin[0] < yin[1]
            elif i == n_lags - 1:
                is_tr = yin[i] < yin[i - 1]
            else:
                is_tr = yin[i] < yin[i - 1] and yin[i] <= yin[i + 1]
            if is_tr:
                trough[n_tr] = i
                n_tr += 1
        for b in range(n_bins):
            obs[b] = 0.0
        if n_tr > 0:
            for r in range(n_tr):
                probs[r] = 0.0
            gmin = 0
            for r in range(1, n_tr):
                if yin[trough[r]] < yin[trough[gmin]]:
                    gmin = r
            # trough r lies below thresholds q >= first_below[r] (thresholds ascend)
            lowest = n_thr
            for r in range(n_tr):
                q = 0
                while q < n_thr and not yin[trough[r]] < thresholds[q]:
                    q += 1
                first_below[r] = q
                lowest = min(lowest, q)
            for q in range(lowest, n_thr):
                below = 0
                for r in range(n_tr):
                    below += first_below[r] <= q
                pos = 0
                for r in range(n_tr):
                    if first_below[r] <= q:  # Boltzmann prior of its rank among those below
                        probs[r] += fact[below] * decay[pos] * beta_probs[q]
                        pos += 1
            n_not_below = first_below[gmin]
            probs[gmin] += no_trough_prob * beta_prefix[n_not_below]
            for r in range(n_tr):
                if probs[r] == 0.0:
                    continue
                i = trough[r]
                shift = 0.0
                if 0 < i < n_lags - 1:
                    a = yin[i + 1] + yin[i - 1] - 2 * yin[i]
                    half_b = (yin[i + 1] - yin[i - 1]) / 2
                    if np.abs(half_b) < np.abs(a):
                        shift = -half_b / a
                f0 = sr / ((min_period + i) + shift)
                b = np.rint(48.0 * np.log2(f0 / fmin)) if n_bins > 0 else 0.0
                b = min(max(b, 0.0), float(n_bins))
                if b < n_bins:  # librosa clips to n_bins, which then lands outside the voiced
                    obs[int(b)] = probs[r]
        voiced = 0.0
        for b in range(n_bins):
            voiced += obs[b]
        voiced = min(max(voiced, 0.0), 1.0)
        log_tiny = np.log(tiny)
        for b in range(n_bins):  # log(0 + tiny) is log_tiny: no log for the empty bins
            log_v[t, b] = np.log(obs[b] + tiny) if obs[b] != 0.0 else log_tiny
        log_u[t] = np.log((1.0 - voiced) / n_bins + tiny)
    return log_v, log_u


def _observations(yp: np.ndarray, n_frames: int, s: _Setup) -> tuple[np.ndarray, np.ndarray]:
    """Log observation likelihoods of frames ``0..n_frames-1`` of padded ``yp`` (float64)."""
    log_v = np.empty((n_frames, s.n_bins))
    log_u = np.empty(n_frames)
    if n_frames == 0:
        return log_v, log_u
    acf, cum_energy = _frame_acf(yp, n_frames, s)
    return _observation_kernel(
        acf,
        cum_energy,
        s.min_period,
        s.max_period,
        float(PITCH_SAMPLE_RATE),
        s.fmin,
        s.n_bins,
        s.thresholds,
        s.beta_probs,
        s.beta_prefix,
        _BOLTZMANN,
        _NO_TROUGH_PROB,
        _TINY,
        log_v,
        log_u,
    )


# ----------------------------------------------------------------------------- Viterbi


def _forward(log_v, log_u, value, s: _Setup) -> tuple[np.ndarray, np.ndarray]:
    """Viterbi rows for frames of ``log_v``/``log_u`` after the state values ``value``."""
    n_steps = log_v.shape[0]
    values = np.empty((n_steps, 2 * s.n_bins))
    ptr = np.empty((n_steps, 2 * s.n_bins), dtype=np.int64)
    if n_steps:
        _viterbi_kernel(
            log_v,
            log_u,
            value.copy(),
            s.log_same,
            s.log_switch,
            s.from_same,
            s.from_switch,
            s.log_tiny,
            values,
            ptr,
        )
    return values, ptr


def _initial_value(log_v: np.ndarray, log_u: float, s: _Setup) -> np.ndarray:
    """State values of the first frame: ``log P(obs | state) + log(1 / (2 n_bins))``."""
    return np.concatenate([log_v, np.full(s.n_bins, log_u)]) + s.log_init


def decode(log_v: np.ndarray, log_u: np.ndarray, s: _Setup) -> np.ndarray:
    """Most likely state per frame (int64 ``[n_frames]``; ``< n_bins`` voiced), whole take."""
    n_steps = log_v.shape[0]
    if n_steps == 0:
        return np.zeros(0, dtype=np.int64)
    first = _initial_value(log_v[0], log_u[0], s)
    values, ptr = _forward(log_v[1:], log_u[1:], first, s)
    last = values[-1] if n_steps > 1 else first
    rows = np.concatenate([np.zeros((1, 2 * s.n_bins), np.int64), ptr])
    return _trace(rows, int(np.argmax(last)), np.empty(n_steps, dtype=np.int64))


def _resample(x: np.ndarray, sample_rate: float) -> np.ndarray:
    """``x`` at :data:`PITCH_SAMPLE_RATE` (soxr HQ, bit for bit ``librosa.resample``)."""
    if float(sample_rate) == PITCH_SAMPLE_RATE:
        return np.asarray(x, dtype=np.float32)
    import soxr

    return soxr.resample(x, float(sample_rate), PITCH_SAMPLE_RATE, quality="soxr_hq")


def _padded(y16: np.ndarray, s: _Setup) -> tuple[np.ndarray, int]:
    """``y16`` with pyin's centre padding and the zeros the last frame's FFTs read; frames."""
    pad = s.frame_length // 2
    n_frames = 1 + y16.size // PITCH_HOP
    total = PITCH_HOP * (n_frames - 1) + _extent(s)
    yp = np.zeros(max(total, pad + y16.size + pad), dtype=np.float64)
    yp[pad : pad + y16.size] = y16
    return yp, n_frames


# ----------------------------------------------------------------------------- pitch rules

#: ``lowest``: a partial sounds when its spectral peak is within this many dB of the frame's
#: strongest one. The common period of a chord (pyin's "virtual pitch", often two octaves
#: below its lowest note) has no energy at all (< -60 dB); an instrument's fundamental is
#: rarely more than ~20 dB below its strongest partial.
PARTIAL_FLOOR_DB = 30.0
_BAND = 2.0 ** (0.5 / 12.0)  # the fundamental is searched within half a semitone of f0


def frame_spectra(yp: np.ndarray, frames: np.ndarray, frame_length: int) -> np.ndarray:
    """Magnitude spectra of tracker frames ``frames`` (int ``[m]``) of the padded signal ``yp``
    (frame ``t`` = ``yp[256 t : 256 t + frame_length]``), Hann-windowed: float64
    ``[m, frame_length // 2 + 1]``, bin ``j`` at ``j * 16000 / frame_length`` Hz."""
    index = np.asarray(frames)[:, None] * PITCH_HOP + np.arange(frame_length)[None, :]
    return np.abs(np.fft.rfft(yp[index] * np.hanning(frame_length), axis=1))


def lowest_partial(f0_hz: np.ndarray, voiced: np.ndarray, yp: np.ndarray, s: _Setup):
    """The ``lowest`` pitch rule: a voiced frame whose f0 does not sound is keyed by its lowest
    sounding partial.

    pYIN finds the period at which the frame repeats. On one note that is the note's; on a
    chord or two overlapping notes it is often their *common* period, well below every note
    played (a C#4-E4-G#4-B4 chord decodes as C#2 or E2, C4 with A5 as F2): the key then says
    "low note" while no low note is in the audio. This rule checks the frame's spectrum: when
    no spectral peak (a bin above both neighbours) within half a semitone of f0 reaches
    :data:`PARTIAL_FLOOR_DB` below the frame's strongest peak, the frame is keyed by the lowest
    peak between ``fmin`` and the top pitch bin that does: the chord's lowest note. A note
    whose fundamental sounds keeps its pitch exactly. The moved pitch is the peak's frequency
    (parabolic interpolation of the log magnitude; Hann window, 64 ms, no zero padding)
    snapped to the nearest pitch bin.

    Args:
        f0_hz: float64 ``[n]`` decoded f0 per tracker frame, Hz.
        voiced: bool ``[n]``.
        yp: the padded signal, frame ``t`` at ``yp[256 t :]`` (:func:`frame_spectra`).
        s: the tracker's setup.

    Returns:
        float64 ``[n]`` f0, Hz (unvoiced frames and sounding fundamentals unchanged).
    """
    out = np.array(f0_hz, dtype=np.float64, copy=True)
    rows = np.flatnonzero(voiced)
    if rows.size == 0:
        return out
    mags = frame_spectra(yp, rows, s.frame_length)
    hz_per_bin = PITCH_SAMPLE_RATE / s.frame_length
    first = max(1, int(np.floor(s.fmin / _BAND / hz_per_bin)))
    last = min(mags.shape[1] - 2, int(np.ceil(s.freqs[-1] * _BAND / hz_per_bin)))
    inner = mags[:, first : last + 1]
    peaks = (inner > mags[:, first - 1 : last]) & (inner > mags[:, first + 1 : last + 2])
    floor = inner.max(axis=1, keepdims=True) * 10.0 ** (-PARTIAL_FLOOR_DB / 20.0)
    sounding = peaks & (inner >= floor) & (floor > 0.0)
    centre = out[rows] / hz_per_bin - first  # f0 in bins of `inner`
    j = np.arange(inner.shape[1])[None, :]
    near_f0 = (j >= np.floor(centre / _BAND)[:, None]) & (j <= np.ceil(centre * _BAND)[:, None])
    move = sounding.any(axis=1) & ~(sounding & near_f0).any(axis=1)
    if not move.any():
        return out
    r = np.flatnonzero(move)
    k = first + np.argmax(sounding[r], axis=1)  # the lowest sounding peak, bins
    a, b, c = (np.log(mags[r, k + d] + 1e-300) for d in (-1, 0, 1))
    denom = a - 2.0 * b + c
    shift = np.where(denom < 0.0, 0.5 * (a - c) / np.where(denom < 0.0, denom, 1.0), 0.0)
    hz = (k + np.clip(shift, -0.5, 0.5)) * hz_per_bin
    nearest = np.rint(12.0 / _RESOLUTION * np.log2(hz / s.fmin)).astype(np.int64)
    out[rows[r]] = s.freqs[np.clip(nearest, 0, s.n_bins - 1)]
    return out


def track(
    y16: np.ndarray, fmin_hz: float, fmax_hz: float, rule: str = "pyin"
) -> tuple[np.ndarray, np.ndarray]:
    """pYIN f0 track of a 16 kHz signal (the fast tracker).

    Args:
        y16: ``[n]`` float signal at :data:`PITCH_SAMPLE_RATE`.
        fmin_hz: Lowest f0, Hz (snapped down to a whole MIDI note, :func:`snap_fmin`).
        fmax_hz: Highest f0, Hz.
        rule: ``pyin`` (the decoded pitch) or ``lowest`` (:func:`lowest_partial`).

    Returns:
        ``f0_hz`` float64 ``[1 + n // 256]`` (the decoded bin's frequency, also where
        unvoiced) and ``voiced`` bool ``[1 + n // 256]``, frame ``t`` centred at ``t * 16 ms``:
        what ``librosa.pyin(..., fill_na=None)`` returns with :func:`pyin_track`'s settings.
    """
    s = _setup(float(fmin_hz), float(fmax_hz))
    yp, n_frames = _padded(np.asarray(y16, dtype=np.float64), s)
    log_v, log_u = _observations(yp, n_frames, s)
    states = decode(log_v, log_u, s)
    f0, voiced = s.freqs[states % s.n_bins], states < s.n_bins
    if rule == "lowest":
        f0 = lowest_partial(f0, voiced, yp, s)
    return f0, voiced


def pyin_track(y16: np.ndarray, fmin_hz: float, fmax_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """The same track from ``librosa.pyin`` itself (the reference; ~10x slower than :func:`track`).

    Settings: frame :func:`frame_length_for` (64 ms), hop 16 ms, 0.25-semitone bins from
    ``snap_fmin(fmin_hz)``, max transition rate 100 octaves/s, ``center=True``.
    """
    import librosa  # heavy import: only for the reference tracker

    fmin = snap_fmin(fmin_hz)
    f0, voiced, _ = librosa.pyin(
        np.asarray(y16, dtype=np.float64),
        fmin=fmin,
        fmax=float(fmax_hz),
        sr=PITCH_SAMPLE_RATE,
        frame_length=frame_length_for(fmin),
        hop_length=PITCH_HOP,
        resolution=_RESOLUTION,
        max_transition_rate=_MAX_TRANSITION_RATE,
        center=True,
        fill_na=None,
    )
    return np.asarray(f0, np.float64), np.asarray(voiced, dtype=bool)
