"""From a pitch track to the pitch key: voicing erosion, the gap policy, the frame grid; and the
streaming pitch key (:class:`PitchKeyStream`, issue 13).

The tracker (:mod:`lactose_audio.pitch`) gives one decoded state per 16 ms tracker frame. The
key of output frame ``f`` (samples ``[f * hop_size, (f + 1) * hop_size)``) is the filled track
linearly interpolated (in MIDI) at the frame's centre ``(f + 0.5) * hop_size / sample_rate``.
"""

from __future__ import annotations

import numpy as np

from lactose_audio import pitch, pitch_viterbi
from lactose_audio.pitch import PITCH_HOP, PITCH_SAMPLE_RATE

__all__ = ["PitchKeyStream", "key_from_track", "DEFAULT_LOOKAHEAD_SECONDS"]

#: Default look-ahead of the streaming pitch key, s: the longest gap that still takes the next
#: note's pitch, and the longest a Viterbi decision may wait (see :class:`PitchKeyStream`).
DEFAULT_LOOKAHEAD_SECONDS = 2.0


def hz_to_midi(f0_hz: np.ndarray) -> np.ndarray:
    """MIDI note of ``f0_hz`` (librosa's ``hz_to_midi`` maths), float64."""
    return 12.0 * (np.log2(np.asarray(f0_hz, dtype=np.float64)) - np.log2(440.0)) + 69.0


def _erode(voiced: np.ndarray, radius: int) -> np.ndarray:
    """Voiced frames whose ``radius`` neighbours on both sides are voiced too.

    Frames within half a pyin frame of silence see part silence and give biased pitches
    (a quarter to a semitone off at note on- and offsets); they must not be the pitch that is
    held. If erosion would remove every voiced frame, the original flags are kept.
    """
    if radius <= 0 or not voiced.any():
        return voiced
    padded = np.pad(voiced, radius, constant_values=False)
    out = voiced.copy()
    for shift in range(1, radius + 1):
        out &= padded[radius - shift : radius - shift + voiced.size]
        out &= padded[radius + shift : radius + shift + voiced.size]
    return out if out.any() else voiced


def _fill_unvoiced(midi: np.ndarray, voiced: np.ndarray, unvoiced_midi: float) -> np.ndarray:
    """Unvoiced policy: take the pitch of the next voiced frame; after the last voiced frame
    hold the last voiced pitch; with no voiced frame at all, ``unvoiced_midi``.

    Looking ahead (the key is computed offline, over the whole file) keys a note's attack by
    that note even though the tracker reports voicing a few tens of ms late, and the attack is
    the loudest part of a note; what it costs is the release of the previous note (quiet)
    taking the next note's range.
    """
    if not voiced.any():
        return np.full(midi.shape, unvoiced_midi, dtype=np.float64)
    index = np.arange(midi.size)
    # next voiced position at or after each frame (reverse running minimum)
    ahead = np.where(voiced, index, midi.size)
    nxt = np.minimum.accumulate(ahead[::-1])[::-1]
    last_voiced = int(np.flatnonzero(voiced)[-1])
    nxt[nxt >= midi.size] = last_voiced
    return midi[nxt]


def track_times(n_track: int) -> np.ndarray:
    """Centre of each tracker frame in the original audio, s (``t * 16 ms``)."""
    return np.arange(n_track) * (PITCH_HOP / PITCH_SAMPLE_RATE)


def frame_times(first: int, stop: int, hop_size: int, sample_rate: float) -> np.ndarray:
    """Centre of output frames ``first..stop-1``, ``(f + 0.5) * hop_size / sample_rate`` s."""
    return (np.arange(first, stop) + 0.5) * (hop_size / float(sample_rate))


def key_from_track(
    f0_hz: np.ndarray,
    voiced: np.ndarray,
    frame_length: int,
    n_frames: int,
    hop_size: int,
    sample_rate: float,
    unvoiced_midi: float,
) -> np.ndarray:
    """Pitch key of a tracker output: erode, fill the gaps, interpolate to the frame grid.

    Args:
        f0_hz: float ``[n_track]`` decoded f0, Hz (ignored where unvoiced).
        voiced: bool ``[n_track]``.
        frame_length: Tracker frame, samples at 16 kHz (erosion radius
            ``frame_length // 512`` frames).
        n_frames: Output frames.
        hop_size: Output hop, samples at ``sample_rate``.
        sample_rate: Hz.
        unvoiced_midi: Key when nothing is voiced, MIDI.

    Returns:
        float32 ``[n_frames]`` MIDI notes.
    """
    voiced = np.asarray(voiced, dtype=bool) & np.isfinite(f0_hz)
    midi = np.where(voiced, hz_to_midi(np.where(voiced, f0_hz, 1.0)), 0.0)
    voiced = _erode(voiced, frame_length // (2 * PITCH_HOP))
    midi = _fill_unvoiced(midi, voiced, unvoiced_midi)
    times = frame_times(0, n_frames, hop_size, sample_rate)
    return np.interp(times, track_times(midi.size), midi).astype(np.float32)


class PitchKeyStream:
    """The pitch key, chunk by chunk (``KeySpec("pitch").stream(sample_rate, hop_size)``).

    ``process(chunk)`` returns the keys of the output frames that are final after ``chunk``
    (float32 MIDI, in frame order, possibly none); ``flush()`` returns the rest. Their
    concatenation is the whole-take key (:func:`lactose_audio.conditioning.compute_key`) bit for
    bit whenever the look-ahead suffices (below); otherwise it differs only in the frames named.

    What is streamed: the resampler (soxr's stream, bit for bit its one-shot output), the
    tracker's observations (frame by frame, the same bits as over the whole take), the Viterbi
    forward pass (carried state values), and then the decisions:

    - Viterbi: a tracker frame is decided once the survivor paths of every state merge at or
      after it: exactly the whole-take path. If they have not merged ``lookahead_seconds``
      after a frame (long silences keep the unvoiced paths apart), the frame is decided from
      the best current state (in silence: unvoiced, as the whole take decides it).
    - Erosion: 2 tracker frames (32 ms) of look-ahead.
    - Gap policy: an unvoiced frame takes the next voiced pitch; if none comes within
      ``lookahead_seconds`` it takes the last voiced pitch (held), or
      :data:`~lactose_audio.conditioning.UNVOICED_MIDI` before the first note. So gaps longer
      than the look-ahead (and a leading silence longer than it) differ from the whole-take
      key in their first ``gap - lookahead_seconds``; shorter gaps are exact. A take whose
      voiced frames are all removed by erosion (no voiced run of 5 frames) keeps the eroded
      flags here, where the whole-take key falls back to the raw ones.

    Latency (audio fed after a frame before its key is returned): ~0.1-0.2 s inside notes
    and silences (the 64 ms tracker frame, erosion, interpolation, and the few frames the
    survivor paths take to agree at a note onset); in a gap, until the next note is decided or
    ``lookahead_seconds``. Each of the two waits (the Viterbi decision, the gap) is bounded by
    ``lookahead_seconds``, so at most ``2 * lookahead_seconds + 0.1`` s.

    Args:
        sample_rate: Hz.
        hop_size: Output frame hop, samples.
        fmin_hz: Lowest f0, Hz.
        fmax_hz: Highest f0, Hz.
        unvoiced_midi: Key when nothing is voiced, MIDI.
        lookahead_seconds: Bound on the decision and gap look-ahead, s (> 0).
        rule: ``pyin`` or ``lowest`` (:func:`lactose_audio.pitch.lowest_partial`, applied to
            each decided frame: it reads only that frame's audio, so the stream stays exact).
    """

    def __init__(
        self,
        sample_rate: float,
        hop_size: int,
        fmin_hz: float,
        fmax_hz: float,
        unvoiced_midi: float,
        lookahead_seconds: float = DEFAULT_LOOKAHEAD_SECONDS,
        rule: str = "pyin",
    ) -> None:
        self.sample_rate = float(sample_rate)
        self.hop_size = int(hop_size)
        self.unvoiced_midi = float(unvoiced_midi)
        self.lookahead_seconds = float(lookahead_seconds)
        self.rule = rule
        self._setup = pitch._setup(float(fmin_hz), float(fmax_hz))
        self._lag = max(1, int(round(self.lookahead_seconds * PITCH_SAMPLE_RATE / PITCH_HOP)))
        self._radius = self._setup.frame_length // (2 * PITCH_HOP)
        self._extent = pitch._extent(self._setup)
        self.reset()

    def reset(self) -> None:
        """Back to the start of a take."""
        s = self._setup
        self._resampler = None
        if self.sample_rate != PITCH_SAMPLE_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(
                self.sample_rate, PITCH_SAMPLE_RATE, 1, dtype="float32", quality="soxr_hq"
            )
        self._n_in = 0  # input samples seen
        self._n16 = 0  # resampled samples seen
        self._yp = np.zeros(s.frame_length // 2)  # padded signal from frame _n_obs's start
        # padded signal from frame _n_dec's start (the `lowest` rule reads decided frames)
        self._audio = np.zeros(s.frame_length // 2 if self.rule == "lowest" else 0)
        self._n_obs = 0  # tracker frames whose observations are computed
        self._value = None  # Viterbi state values of frame _n_obs - 1
        self._window = np.zeros((0, 2 * s.n_bins), np.int64)  # ptr rows, frames _n_dec..
        self._n_dec = 0  # tracker frames decided
        self._raw = np.zeros(0, bool)  # voicing of decided frames not yet eroded (+ context)
        self._raw_midi = np.zeros(0)
        self._raw_first = 0  # tracker frame of _raw[0]
        self._n_eroded = 0  # tracker frames eroded
        self._held: float | None = None  # last voiced pitch
        self._track: list[float] = []  # final filled MIDI per tracker frame
        self._n_out = 0  # output frames returned

    # ---- the stages ---------------------------------------------------------------------
    def _observe(self, y16: np.ndarray, final: bool) -> int:
        """Buffer ``y16``, run the observations and the Viterbi forward pass over every tracker
        frame it completes; returns how many."""
        s = self._setup
        if y16.size:
            self._yp = np.concatenate([self._yp, y16.astype(np.float64)])
            self._n16 += y16.size
            if self.rule == "lowest":
                self._audio = np.concatenate([self._audio, y16.astype(np.float64)])
        if final:
            n_track = 1 + self._n16 // PITCH_HOP
            need = max(
                PITCH_HOP * (n_track - 1) + self._extent, s.frame_length + self._n16
            )  # both pads, as pitch._padded
            have = self._n_obs * PITCH_HOP + self._yp.size
            if need > have:
                self._yp = np.concatenate([self._yp, np.zeros(need - have)])
                if self.rule == "lowest":
                    self._audio = np.concatenate([self._audio, np.zeros(need - have)])
            n_new = n_track - self._n_obs
        else:
            n_new = max(0, (self._yp.size - self._extent) // PITCH_HOP + 1)
        if n_new <= 0:
            return 0
        log_v, log_u = pitch._observations(self._yp, n_new, s)
        self._yp = self._yp[n_new * PITCH_HOP :]
        rows = np.zeros((0, 2 * s.n_bins), np.int64)
        if self._value is None:
            self._value = pitch._initial_value(log_v[0], log_u[0], s)
            rows = np.zeros((1, 2 * s.n_bins), np.int64)  # frame 0 has no predecessor
            log_v, log_u = log_v[1:], log_u[1:]
        if log_v.shape[0]:
            values, ptr = pitch._forward(log_v, log_u, self._value, s)
            self._value = values[-1].copy()
            rows = np.concatenate([rows, ptr])
        self._window = np.concatenate([self._window, rows])
        self._n_obs += n_new
        return n_new

    def _decide(self, final: bool) -> None:
        w = self._window
        n_bins = self._setup.n_bins
        if w.shape[0] == 0:
            return
        if final:  # the whole-take decode: back from the best last state
            path = pitch_viterbi._trace(
                w, int(np.argmax(self._value)), np.empty(w.shape[0], np.int64)
            )
            self._emit(np.where(path < n_bins, path, -1))
            self._window = w[:0]
            return
        codes = np.empty(w.shape[0], np.int64)
        k = pitch_viterbi._agreed_prefix(w, n_bins, codes)
        if k == 0 and w.shape[0] > self._lag:  # undecided beyond the look-ahead: force
            k = w.shape[0] - self._lag
            path = pitch_viterbi._trace(
                w, int(np.argmax(self._value)), np.empty(w.shape[0], np.int64)
            )
            codes = np.where(path < n_bins, path, -1)
        if k:
            self._emit(codes[:k])
            self._window = w[k:]

    def _emit(self, codes: np.ndarray) -> None:
        """Append decided tracker frames: ``codes`` = voiced state, or -1 (unvoiced)."""
        s = self._setup
        self._n_dec += codes.size
        voiced = codes >= 0
        f0 = s.freqs[np.maximum(codes, 0)]
        if self.rule == "lowest":
            f0 = pitch.lowest_partial(f0, voiced, self._audio, s)
            self._audio = self._audio[codes.size * PITCH_HOP :]
        midi = np.where(voiced, hz_to_midi(f0), 0.0)
        self._raw = np.concatenate([self._raw, voiced])
        self._raw_midi = np.concatenate([self._raw_midi, midi])

    def _erode_and_fill(self, final: bool) -> None:
        r = self._radius
        stop = self._n_dec if final else self._n_dec - r  # erosion looks r frames ahead
        n = stop - self._n_eroded
        if n > 0:
            base = self._raw_first  # tracker frame of _raw[0] (== _n_eroded - r, or 0)
            lo, hi = self._n_eroded - r, stop + r  # context, False outside the take
            context = np.zeros(hi - lo, bool)
            a, b = max(lo, base), min(hi, base + self._raw.size)
            context[a - lo : b - lo] = self._raw[a - base : b - base]
            eroded = np.ones(n, bool)
            for shift in range(2 * r + 1):
                eroded &= context[shift : shift + n]
            midi = self._raw_midi[self._n_eroded - base : stop - base]
            for i in np.flatnonzero(eroded):  # each voiced frame resolves the gap before it
                t = self._n_eroded + int(i)
                value = float(midi[i])
                self._track.extend([value] * (t + 1 - len(self._track)))
                self._held = value
            self._n_eroded = stop
            keep = max(base, stop - r)
            self._raw, self._raw_midi = self._raw[keep - base :], self._raw_midi[keep - base :]
            self._raw_first = keep
        # frames after the last voiced one wait for the next pitch at most `lag` frames
        limit = self._n_eroded if final else self._n_eroded - self._lag
        if limit > len(self._track):
            held = self._held if self._held is not None else self.unvoiced_midi
            self._track.extend([held] * (limit - len(self._track)))

    def _outputs(self, final: bool) -> np.ndarray:
        n_total = -(-self._n_in // self.hop_size)
        n_track = len(self._track)
        if n_track == 0 or self._n_out >= n_total:
            return np.zeros(0, np.float32)
        times = frame_times(self._n_out, n_total, self.hop_size, self.sample_rate)
        if not final:  # both tracker frames around a frame's centre must be final
            t_last = track_times(n_track)[-1]
            times = times[: int(np.searchsorted(times, t_last, side="left"))]
            if times.size == 0:
                return np.zeros(0, np.float32)
        first = max(0, int(times[0] / (PITCH_HOP / PITCH_SAMPLE_RATE)) - 1)
        xp = track_times(n_track)[first:]
        out = np.interp(times, xp, np.asarray(self._track[first:], np.float64))
        self._n_out += times.size
        return out.astype(np.float32)

    # ---- the API --------------------------------------------------------------------------
    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Keys of the output frames final after ``chunk`` (float32 MIDI ``[k]``, k >= 0)."""
        x = np.asarray(chunk, dtype=np.float32)
        self._n_in += x.size
        y16 = x if self._resampler is None else self._resampler.resample_chunk(x, last=False)
        if self._observe(np.asarray(y16, np.float32), final=False) == 0:
            return np.zeros(0, np.float32)  # no new tracker frame: nothing new is final
        self._decide(final=False)
        self._erode_and_fill(final=False)
        return self._outputs(final=False)

    def flush(self) -> np.ndarray:
        """Keys of every remaining output frame (float32 MIDI); the take ends here."""
        y16 = np.zeros(0, np.float32)
        if self._resampler is not None:
            y16 = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        if self._n_in == 0:
            return np.zeros(0, np.float32)
        self._observe(np.asarray(y16, np.float32), final=True)
        self._decide(final=True)
        self._erode_and_fill(final=True)
        return self._outputs(final=True)
