"""Pitch edges where the effect changes: an optimal segmentation of the notes played.

Quantile edges give every range the same share of the training take's level; they know nothing
of the effect. An effect that switches its processing between two notes then gets an edge
wherever the take's notes happen to thin out, and a range that straddles the switch holds two
processings: on the ``pitch_drive`` dataset (buckets switching at 51.5 and 63.5 MIDI) the
quantile edges were ``48.5 .. 52.5`` and ``62.5 .. 67.5`` and the keyed fit validated at
0.21; with edges on the switches it validates at 0.1 or better.

:func:`effect_edges` places the edges from the dry/wet pair instead:

1. every frame's dry and wet power in :data:`N_BANDS` log-spaced bands (Hann window over the
   frame's ``hop`` samples); frames summed per note (the pitch key rounded to a semitone);
2. each note's *signature*: the wet/dry power ratio per band, in dB (what the effect does to
   that note: a low-pass shows as falling ratios, a drive as rising ones where it adds
   harmonics), weighted per band by the note's wet power in it (the ESR's weighting);
3. the notes (in pitch order) cut into ``n_ranges`` runs minimising the weighted spread of the
   signatures around each run's mean (dynamic programming over the notes with data: exact,
   a few ms); every run holds at least :data:`MIN_SHARE` of the wet power (a range must have
   data to be fitted);
4. each edge halfway between the last note of one run and the first of the next, on ``x.5``
   MIDI (between notes, as quantile pitch edges are).

numpy only.
"""

from __future__ import annotations

import numpy as np

#: Bands of the signature, log-spaced from :data:`LOW_HZ` to 16 kHz (or Nyquist).
N_BANDS = 10
LOW_HZ = 40.0
#: Least share of the total wet power a run of notes (a range) must hold.
MIN_SHARE = 0.02
_RATIO_LIMIT_DB = 60.0


def note_signatures(
    notes: np.ndarray, dry: np.ndarray, wet: np.ndarray, hop: int, sample_rate: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-note band powers of a pair.

    Args:
        notes: int ``[n_frames]`` note of each frame (frame ``f`` = samples
            ``[f * hop, (f + 1) * hop)``).
        dry, wet: float ``[n_samples]`` aligned signals.
        hop: frame length, samples.
        sample_rate: Hz.

    Returns:
        ``(notes [u], dry power [u, N_BANDS], wet power [u, N_BANDS])``, the notes sorted.
    """
    n = min(dry.size, wet.size, notes.size * hop) // hop
    if n == 0:
        return np.zeros(0, np.int64), np.zeros((0, N_BANDS)), np.zeros((0, N_BANDS))
    window = np.hanning(hop)
    spec_dry = np.abs(np.fft.rfft(dry[: n * hop].reshape(n, hop) * window, axis=1)) ** 2
    spec_wet = np.abs(np.fft.rfft(wet[: n * hop].reshape(n, hop) * window, axis=1)) ** 2
    freqs = np.fft.rfftfreq(hop, 1.0 / sample_rate)
    cuts = np.geomspace(LOW_HZ, min(16000.0, 0.5 * sample_rate), N_BANDS + 1)
    band = np.searchsorted(cuts, freqs, side="right") - 1
    inside = (band >= 0) & (band < N_BANDS)
    to_band = np.zeros((freqs.size, N_BANDS))
    to_band[np.flatnonzero(inside), band[inside]] = 1.0
    uniq, inverse = np.unique(np.asarray(notes[:n], np.int64), return_inverse=True)
    d = np.zeros((uniq.size, N_BANDS))
    w = np.zeros((uniq.size, N_BANDS))
    np.add.at(d, inverse, spec_dry @ to_band)
    np.add.at(w, inverse, spec_wet @ to_band)
    return uniq, d, w


def segment(signature: np.ndarray, weight: np.ndarray, n_runs: int, min_share: float):
    """Cut rows (in order) into ``n_runs`` contiguous runs minimising the weighted spread.

    Cost of a run: ``sum_b sum_i w[i, b] (s[i, b] - m_b)^2``, ``m_b`` the run's weighted mean
    of band ``b``; every run's total weight at least ``min_share`` of the whole (or an equal
    share, if that is less).

    Args:
        signature: float ``[u, B]``.
        weight: float ``[u, B]``, >= 0.
        n_runs: runs wanted.
        min_share: least share of the total weight per run.

    Returns:
        int ``[n_runs - 1]``: the first row of every run after the first (empty when the rows
        cannot be cut so).
    """
    u = signature.shape[0]
    total = float(weight.sum())
    if total <= 0.0 or n_runs < 2 or u < n_runs:
        return np.zeros(0, np.int64)
    least = min(min_share, 1.0 / n_runs) * total * (1.0 - 1e-9)
    zero = np.zeros((1, signature.shape[1]))
    s0 = np.concatenate([zero, np.cumsum(weight, axis=0)])
    s1 = np.concatenate([zero, np.cumsum(weight * signature, axis=0)])
    s2 = np.concatenate([zero, np.cumsum(weight * signature**2, axis=0)])
    w0 = s0[None, :, :] - s0[:, None, :]  # [i, j, B]: rows i .. j-1
    w1 = s1[None, :, :] - s1[:, None, :]
    w2 = s2[None, :, :] - s2[:, None, :]
    spread = np.where(w0 > 0.0, w2 - w1**2 / np.where(w0 > 0.0, w0, 1.0), 0.0)
    i, j = np.meshgrid(np.arange(u + 1), np.arange(u + 1), indexing="ij")
    valid = (j > i) & (w0.sum(axis=2) >= least)
    cost = np.where(valid, np.maximum(spread.sum(axis=2), 0.0), np.inf)
    best = np.full((n_runs + 1, u + 1), np.inf)
    back = np.zeros((n_runs + 1, u + 1), np.int64)
    best[0, 0] = 0.0
    columns = np.arange(u + 1)
    for k in range(1, n_runs + 1):
        options = best[k - 1][:, None] + cost
        back[k] = np.argmin(options, axis=0)
        best[k] = options[back[k], columns]
    if not np.isfinite(best[n_runs, u]):
        return np.zeros(0, np.int64)
    starts, end = [], u
    for k in range(n_runs, 0, -1):
        end = int(back[k, end])
        starts.append(end)
    return np.asarray(sorted(starts)[1:], np.int64)


def effect_edges(
    keys: np.ndarray,
    dry: np.ndarray,
    wet: np.ndarray,
    hop: int,
    sample_rate: float,
    n_ranges: int,
    min_share: float = MIN_SHARE,
) -> tuple[float, ...] | None:
    """Pitch edges (``x.5`` MIDI, increasing) where the effect's per-note signature changes.

    Args:
        keys: float ``[n_frames]`` pitch key, MIDI (frame ``f`` = samples
            ``[f * hop, (f + 1) * hop)``).
        dry, wet: ``[n_samples]`` aligned training audio.
        hop: the key's frame hop, samples.
        sample_rate: Hz.
        n_ranges: ranges wanted.
        min_share: least share of the wet power per range.

    Returns:
        ``n_ranges - 1`` edges, or ``None`` when fewer than ``n_ranges`` notes hold data or no
        cut gives every range its share (the caller keeps quantile edges).
    """
    notes = np.rint(np.asarray(keys, np.float64)).astype(np.int64)
    uniq, d, w = note_signatures(
        notes, np.asarray(dry, np.float64), np.asarray(wet, np.float64), hop, sample_rate
    )
    keep = w.sum(axis=1) > 0.0
    uniq, d, w = uniq[keep], d[keep], w[keep]
    if n_ranges < 2 or uniq.size < n_ranges:
        return None
    floor = 1e-12 * max(float(d.max()), float(w.max()), 1e-30)
    ratio = 10.0 * np.log10((w + floor) / (d + floor))
    signature = np.clip(ratio, -_RATIO_LIMIT_DB, _RATIO_LIMIT_DB)
    starts = segment(signature, w, n_ranges, min_share)
    if starts.size != n_ranges - 1:
        return None
    return tuple(float(np.floor(0.5 * (uniq[s - 1] + uniq[s]))) + 0.5 for s in starts)
