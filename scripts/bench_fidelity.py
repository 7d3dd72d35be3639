"""Fidelity benchmark: learn effects built only from third-party DSP, judge on another take.

    python scripts/bench_fidelity.py [--cases tanh,hard_clip,...] [--budget 120]
                                     [--configs new,old] [--seed 0] [--json]

Every effect here is made with pedalboard processors, scipy.signal filters and numpy curves —
never with lactose_audio's own blocks — so the benchmark cannot flatter our structures
(DESIGN §9). The dry material is synthesized and seeded: plucked guitar and bass
(Karplus-Strong, from ``scripts/make_datasets.py``), a piano-ish additive tone with
inharmonic partials and a two-stage decay, and a synth saw through a resonant filter
envelope; pitches E1..E6, note peaks -45..0 dBFS, phrases with overlapping notes, chords,
fast passages and silences. A TRAIN take (30 s) and a different TEST take (10 s, other notes,
other seed) are rendered through each effect; ``wh_48k`` uses the same scores at 48 kHz.

Per case and configuration a model is trained on the TRAIN pair (latency 0, given) within
``--budget`` seconds, then the TEST take is rendered through it and compared to the effect's
TEST wet (ESR and pre-emphasis ESR of :mod:`lactose_audio.losses`). Configurations:

- ``new``: ``TrainConfig()`` defaults (the project's default options, whatever they are);
- ``old``: ``gain>tanh>lowpass>highpass`` keyed on amplitude with 8 ranges.

Bars (printed PASS/FAIL): every static case (``STATIC_CASES``) ESR <= 0.01 and their median
<= 0.003; ``comp_drive`` and ``level_xfade`` <= 0.03; ``pitch_split`` <= 0.08; ``new`` not
worse than ``old`` by more than 10 % on any case. ``tone_stack`` (a drive into a post-EQ),
``eq`` (linear) and ``emphasis_clip`` (pre-/de-emphasis around an asymmetric clipper) are held
to the static bar but are not in the median's fixed list. Before the first measured run
one 2-step training warms TensorFlow up, so no run pays for its import.

``--json`` prints one JSON object instead of the table: ``{"cases": {name: {"esr",
"pre_emphasis_esr", "chain", "key", "seconds", ..., "old": {same}}}, "static_median_esr",
"auto_vs_old_worst_ratio", "budget"}`` (``esr`` etc. are null for a configuration not run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import butter, lfilter, sosfilt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from make_datasets import envelope_dbfs, pluck  # noqa: E402

TRAIN_SECONDS = 30.0
TEST_SECONDS = 10.0
SAMPLE_RATE = 44100
LEVEL_RANGE_DBFS = (-45.0, 0.0)
LEAD_IN_SECONDS = 0.25
SILENCE_SECONDS = (0.25, 0.8)
MAX_PEAK = 0.98
E1, E6 = 28, 88
#: Instruments and their pitch ranges (MIDI): E1..E6 overall.
INSTRUMENTS = {"guitar": (40, 88), "bass": (28, 55), "piano": (28, 88), "synth": (36, 84)}
RELEASE_SECONDS = {"guitar": 0.06, "bass": 0.08, "piano": 0.15, "synth": 0.05}


# ---- material -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """One note of a score: onset and hold in samples, MIDI pitch, peak dBFS, instrument."""

    onset: int
    hold: int
    midi: int
    peak_dbfs: float
    instrument: str

    def release(self, sample_rate: int) -> int:
        return round(RELEASE_SECONDS[self.instrument] * sample_rate)


def _level(rng: np.random.Generator, base_db: float, spread: float = 6.0) -> float:
    return float(np.clip(base_db + rng.uniform(-spread, spread), *LEVEL_RANGE_DBFS))


def make_score(rng: np.random.Generator, seconds: float, sample_rate: int) -> list[Note]:
    """Sections of one instrument each, separated by silences.

    Kinds of section: a *phrase* (notes of 0.15..1.2 s that often ring into the next, 20 %
    chords), a *fast passage* (8..20 notes of 60..130 ms, steps or arpeggios, one at a time)
    and *chords* (2..4 sustained chords of 3..4 notes). Each section has a base level
    (uniform) with ±6 dB per note, so peaks from -45 to 0 dBFS occur. Every note, with its
    release, ends before ``seconds``.
    """
    notes: list[Note] = []
    end = seconds - 0.1
    t = LEAD_IN_SECONDS
    order: list[str] = []
    while True:
        if not order:  # every instrument once, in a shuffled order, then again
            order = [str(n) for n in rng.permutation(list(INSTRUMENTS))]
        instrument = order.pop()
        lo, hi = INSTRUMENTS[instrument]
        release = RELEASE_SECONDS[instrument]
        base_db = rng.uniform(LEVEL_RANGE_DBFS[0] + 4.0, LEVEL_RANGE_DBFS[1] - 3.0)
        kind = rng.choice(["phrase", "phrase", "fast", "chords"])
        last_end = t

        def add(start: float, hold: float, pitches, level: float, instrument=instrument) -> None:
            for midi in pitches:
                notes.append(
                    Note(round(start * sample_rate), round(hold * sample_rate), int(midi),
                         round(level, 3), instrument)
                )  # fmt: skip

        if kind == "fast":
            midi = int(rng.integers(lo, hi + 1))
            for _ in range(int(rng.integers(8, 21))):
                hold = rng.uniform(0.06, 0.13)
                if t + hold + release > end:
                    break
                add(t, hold, [midi], _level(rng, base_db, 3.0))
                last_end = t + hold + release
                t = last_end + rng.uniform(0.0, 0.03)
                step = int(rng.choice([-4, -3, -2, -1, 1, 2, 3, 4, 5, 7]))
                midi = midi + step if lo <= midi + step <= hi else midi - step
        elif kind == "chords":
            for _ in range(int(rng.integers(2, 4))):
                hold = rng.uniform(0.5, 1.2)
                if t + hold + release > end:
                    break
                shape = [(0, 7, 12), (0, 4, 7, 12), (0, 3, 7, 10)][int(rng.integers(3))]
                root = int(rng.integers(max(lo, 36), min(hi, 76) - 12 + 1))
                level = _level(rng, base_db) - 20.0 * np.log10(len(shape))
                add(t, hold, [root + s for s in shape], max(level, LEVEL_RANGE_DBFS[0]))
                last_end = t + hold + release
                t += hold * rng.uniform(0.8, 1.0)
        else:
            phrase_end = t + rng.uniform(1.2, 3.0)
            while t < phrase_end:
                hold = rng.uniform(0.15, 1.2)
                if t + hold + release > end:
                    break
                level = _level(rng, base_db)
                if rng.uniform() < 0.2 and hi - lo >= 12:
                    root = int(rng.integers(lo, hi - 12 + 1))
                    pitches = [root, root + 7, root + 12]
                    level = max(level - 20.0 * np.log10(3), LEVEL_RANGE_DBFS[0])
                else:
                    pitches = [int(rng.integers(lo, hi + 1))]
                add(t, hold, pitches, level)
                last_end = max(last_end, t + hold + release)
                t += hold * rng.uniform(0.5, 1.0)
        t = max(t, last_end) + rng.uniform(*SILENCE_SECONDS)
        if t + 0.3 > end:
            return sorted(notes, key=lambda n: (n.onset, n.midi))


def piano_tone(f0: float, n: int, sample_rate: int, rng: np.random.Generator, level: float):
    """Additive piano-ish tone: stretched (inharmonic) partials, two-stage decay, hammer."""
    b = 4e-4 * (f0 / 262.0) ** 0.5  # inharmonicity, larger for high strings
    k = np.arange(1, 41, dtype=np.float64)
    freqs = k * f0 * np.sqrt(1.0 + b * k * k)
    keep = freqs < 0.45 * sample_rate
    k, freqs = k[keep], freqs[keep]
    amps = k**-1.1 * np.exp(-k * (0.35 - 0.25 * level))
    tau = float(np.clip(2.0 * np.sqrt(110.0 / f0), 0.3, 4.0)) / (1.0 + 0.25 * k)
    t = np.arange(n) / sample_rate
    phases = rng.uniform(0.0, 2.0 * np.pi, k.shape[0])
    env = 0.7 * np.exp(-t[:, None] / tau) + 0.3 * np.exp(-t[:, None] / (4.0 * tau))
    tone = np.sum(amps * env * np.sin(2.0 * np.pi * freqs * t[:, None] + phases), axis=1)
    attack = min(n, round(0.002 * sample_rate))
    tone[:attack] *= np.linspace(0.0, 1.0, attack)
    thump = min(n, round(0.012 * sample_rate))
    noise = lfilter([0.2], [1.0, -0.8], rng.standard_normal(thump))
    tone[:thump] += 0.15 * np.max(np.abs(tone)) * noise * np.linspace(1.0, 0.0, thump)
    return tone


def _saw(f0: float, n: int, sample_rate: int, phase0: float) -> np.ndarray:
    """Band-limited (polyBLEP) sawtooth in [-1, 1]."""
    dt = f0 / sample_rate
    phase = (phase0 + dt * np.arange(n)) % 1.0
    saw = 2.0 * phase - 1.0
    lo = phase < dt
    x = phase[lo] / dt
    saw[lo] -= x + x - x * x - 1.0
    hi = phase > 1.0 - dt
    x = (phase[hi] - 1.0) / dt
    saw[hi] -= x * x + x + x + 1.0
    return saw


def synth_tone(f0: float, n: int, sample_rate: int, rng: np.random.Generator, level: float):
    """Two detuned saws through a resonant 12 dB/oct low-pass whose cutoff decays (a pluck)."""
    raw = _saw(f0, n, sample_rate, rng.uniform()) + _saw(f0 * 1.004, n, sample_rate, rng.uniform())
    t = np.arange(n) / sample_rate
    peak_hz = f0 * (3.0 + 20.0 * level)
    cutoff = np.minimum(f0 * 1.2 + (peak_hz - f0 * 1.2) * np.exp(-t / 0.12), 0.42 * sample_rate)
    out = np.empty(n)
    zi = np.zeros(2)
    block, q = 64, 2.5
    for start in range(0, n, block):
        w0 = 2.0 * np.pi * cutoff[start] / sample_rate
        alpha = np.sin(w0) / (2.0 * q)
        cw = np.cos(w0)
        b = np.array([(1 - cw) / 2, 1 - cw, (1 - cw) / 2])
        a = np.array([1 + alpha, -2 * cw, 1 - alpha])
        out[start : start + block], zi = lfilter(
            b / a[0], a / a[0], raw[start : start + block], zi=zi
        )
    amp = np.minimum(t / 0.003, 1.0) * (0.6 + 0.4 * np.exp(-t / 0.2))
    return out * amp


def render_score(notes: list[Note], n_samples: int, sample_rate: int, rng) -> np.ndarray:
    """Each note synthesized by its instrument, held, damped, scaled to its peak; float32."""
    dry = np.zeros(n_samples)
    for note in notes:
        release = note.release(sample_rate)
        length = note.hold + release
        f0 = 440.0 * 2.0 ** ((note.midi - 69) / 12.0)
        level = (note.peak_dbfs - LEVEL_RANGE_DBFS[0]) / (LEVEL_RANGE_DBFS[1] - LEVEL_RANGE_DBFS[0])
        if note.instrument == "guitar":
            tone = pluck(f0, length, sample_rate, rng, brightness=0.3 + 0.6 * level)
        elif note.instrument == "bass":
            tone = pluck(f0, length, sample_rate, rng, brightness=0.1 + 0.4 * level)
        elif note.instrument == "piano":
            tone = piano_tone(f0, length, sample_rate, rng, level)
        else:
            tone = synth_tone(f0, length, sample_rate, rng, level)
        tone[note.hold :] *= 0.5 * (1.0 + np.cos(np.linspace(0.0, np.pi, release)))
        tone *= 10.0 ** (note.peak_dbfs / 20.0) / max(np.max(np.abs(tone)), 1e-12)
        stop = min(note.onset + length, n_samples)
        dry[note.onset : stop] += tone[: stop - note.onset]
    peak = np.max(np.abs(dry))
    if peak > MAX_PEAK:
        dry *= MAX_PEAK / peak
    return dry.astype(np.float32)


@dataclass(frozen=True)
class Take:
    """A dry take and its score."""

    dry: np.ndarray
    notes: list[Note]
    sample_rate: int


def make_take(seed: int, role: str, sample_rate: int = SAMPLE_RATE) -> Take:
    """The TRAIN (30 s) or TEST (10 s) take for ``seed``: independent seeded streams."""
    seconds = {"train": TRAIN_SECONDS, "test": TEST_SECONDS}[role]
    rng = np.random.default_rng([int(seed), {"train": 0, "test": 1}[role]])
    notes = make_score(rng, seconds, sample_rate)
    return Take(render_score(notes, round(seconds * sample_rate), sample_rate, rng), notes,
                sample_rate)  # fmt: skip


# ---- effects (third-party DSP only) -------------------------------------------------------


def _board(audio: np.ndarray, sample_rate: int, *plugins) -> np.ndarray:
    from pedalboard import Pedalboard

    out = Pedalboard(list(plugins))(np.asarray(audio, np.float32), sample_rate, reset=True)
    return out.astype(np.float32)


def _db(value: float) -> float:
    return 10.0 ** (value / 20.0)


def _butter(audio, sample_rate, order, cutoff_hz, kind):
    sos = butter(order, cutoff_hz, btype=kind, fs=sample_rate, output="sos")
    return sosfilt(sos, np.asarray(audio, np.float64))


def _rbj_lowpass(cutoff_hz: float, q: float, sample_rate: int) -> np.ndarray:
    """RBJ cookbook low-pass biquad as one scipy SOS row."""
    w0 = 2.0 * np.pi * cutoff_hz / sample_rate
    alpha, cw = np.sin(w0) / (2.0 * q), np.cos(w0)
    b = np.array([(1 - cw) / 2, 1 - cw, (1 - cw) / 2])
    a = np.array([1 + alpha, -2 * cw, 1 - alpha])
    return np.concatenate([b / a[0], a / a[0]])


TANH_DRIVE_DB, TANH_OUT = 18.0, 0.7


def fx_tanh(take: Take) -> np.ndarray:
    """Static tanh drive (numpy): ``0.7 * tanh(10**(18/20) * x)``."""
    return (TANH_OUT * np.tanh(_db(TANH_DRIVE_DB) * take.dry.astype(np.float64))).astype(np.float32)


def fx_hard_clip(take: Take) -> np.ndarray:
    """pedalboard Gain(+20 dB) -> Clipping(-6 dBFS) -> Gain(-2 dB)."""
    from pedalboard import Clipping, Gain

    return _board(take.dry, take.sample_rate, Gain(20.0), Clipping(threshold_db=-6.0), Gain(-2.0))


ASYM_DRIVE_DB, ASYM_BIAS, ASYM_HP_HZ = 14.0, 0.15, 20.0


def asym_curve(x: np.ndarray) -> np.ndarray:
    """Asymmetric static curve with a DC bias: soft positive side, harder negative side."""
    u = _db(ASYM_DRIVE_DB) * np.asarray(x, np.float64) + ASYM_BIAS
    return np.where(u >= 0.0, np.tanh(u), 0.6 * np.tanh(2.0 * u / 0.6))


def fx_asym_dc(take: Take) -> np.ndarray:
    """numpy asymmetric curve (DC-shifted output) -> scipy 2nd-order 20 Hz Butterworth HP."""
    return (
        0.8 * _butter(asym_curve(take.dry), take.sample_rate, 2, ASYM_HP_HZ, "highpass")
    ).astype(np.float32)


def _wh(take: Take, hp_hz: float, drive_db: float, lp_hz: float, out_db: float) -> np.ndarray:
    from pedalboard import Distortion, Gain, HighpassFilter, LowpassFilter

    return _board(
        take.dry, take.sample_rate,
        HighpassFilter(cutoff_frequency_hz=hp_hz), Distortion(drive_db=drive_db),
        LowpassFilter(cutoff_frequency_hz=lp_hz), Gain(out_db),
    )  # fmt: skip


def fx_wh_dark(take: Take) -> np.ndarray:
    """pedalboard HighpassFilter(80 Hz) -> Distortion(24 dB) -> LowpassFilter(1.5 kHz) -> -3 dB."""
    return _wh(take, 80.0, 24.0, 1500.0, -3.0)


def fx_wh_bright(take: Take) -> np.ndarray:
    """scipy Butterworth HP (2nd order, 500 Hz) -> Distortion(16 dB) -> Butterworth LP 7 kHz."""
    from pedalboard import Distortion

    pre = _butter(take.dry, take.sample_rate, 2, 500.0, "highpass").astype(np.float32)
    driven = _board(pre, take.sample_rate, Distortion(drive_db=16.0))
    return (0.8 * _butter(driven, take.sample_rate, 2, 7000.0, "lowpass")).astype(np.float32)


def fx_cascade(take: Take) -> np.ndarray:
    """Distortion(12 dB) -> tone (HP 150 Hz, Peak 800 Hz +6 dB, LP 3 kHz) -> numpy soft clip."""
    from pedalboard import Distortion, HighpassFilter, LowpassFilter, PeakFilter

    first = _board(
        take.dry, take.sample_rate, Distortion(drive_db=12.0),
        HighpassFilter(cutoff_frequency_hz=150.0), PeakFilter(800.0, gain_db=6.0, q=0.7),
        LowpassFilter(cutoff_frequency_hz=3000.0),
    )  # fmt: skip
    u = 3.0 * first.astype(np.float64)
    return (0.7 * u / (1.0 + np.abs(u))).astype(np.float32)


def fx_fuzz(take: Take) -> np.ndarray:
    """Rectifier-ish fuzz (strong even harmonics): ``t + 0.8|t|`` with ``t = tanh(16 dB · x)``,
    then scipy HP 30 Hz (removes the rectified DC) and pedalboard LowpassFilter 2.5 kHz."""
    from pedalboard import LowpassFilter

    t = np.tanh(_db(16.0) * take.dry.astype(np.float64))
    shaped = _butter(t + 0.8 * np.abs(t), take.sample_rate, 2, 30.0, "highpass")
    return 0.6 * _board(shaped, take.sample_rate, LowpassFilter(cutoff_frequency_hz=2500.0))


def fx_comp_drive(take: Take) -> np.ndarray:
    """pedalboard Compressor(-28 dB, 5:1, 3 ms / 120 ms) -> Gain(+18) -> Distortion(10) -> LP."""
    from pedalboard import Compressor, Distortion, Gain, LowpassFilter

    return _board(
        take.dry, take.sample_rate,
        Compressor(threshold_db=-28.0, ratio=5.0, attack_ms=3.0, release_ms=120.0),
        Gain(18.0), Distortion(drive_db=10.0), LowpassFilter(cutoff_frequency_hz=4500.0),
        Gain(-4.0),
    )  # fmt: skip


XFADE_LOW_DBFS, XFADE_HIGH_DBFS = -36.0, -16.0


def xfade_weight(dry: np.ndarray, sample_rate: int) -> np.ndarray:
    """0 (clean) below -36 dBFS of the dry's envelope, 1 (driven) above -16, smoothstep."""
    level = envelope_dbfs(dry, sample_rate, hold_ms=25.0, release_ms=30.0)
    x = np.clip((level - XFADE_LOW_DBFS) / (XFADE_HIGH_DBFS - XFADE_LOW_DBFS), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def fx_level_xfade(take: Take) -> np.ndarray:
    """Clean-ish (Distortion 4 dB, HP 120 Hz, +6 dB) below, driven and dark (Distortion 30 dB,
    LP 1.2 kHz, -8 dB) above, cross-faded by the dry's envelope (:func:`xfade_weight`)."""
    from pedalboard import Distortion, Gain, HighpassFilter, LowpassFilter

    sr = take.sample_rate
    clean = _board(take.dry, sr, Distortion(drive_db=4.0),
                   HighpassFilter(cutoff_frequency_hz=120.0), Gain(6.0))  # fmt: skip
    hot = _board(take.dry, sr, Distortion(drive_db=30.0),
                 LowpassFilter(cutoff_frequency_hz=1200.0), Gain(-8.0))  # fmt: skip
    w = xfade_weight(take.dry, sr)
    return ((1.0 - w) * clean + w * hot).astype(np.float32)


SPLIT_MIDI = 55  # G3: notes below go through the low branch, at or above through the high one
SPLIT_FADE_SECONDS = 0.005


def pitch_split_branches(dry: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(low, high): a resonant 24 dB/oct low-pass at 450 Hz (two RBJ biquads, Q 2.5 and 0.6,
    scipy) at +6 dB; and pedalboard Distortion(20 dB) -> HighShelfFilter(2.5 kHz, +6 dB) ->
    Gain(-5 dB)."""
    from pedalboard import Distortion, Gain, HighShelfFilter

    sos = np.stack([_rbj_lowpass(450.0, 2.5, sample_rate), _rbj_lowpass(450.0, 0.6, sample_rate)])
    low = _db(6.0) * sosfilt(sos, dry.astype(np.float64))
    high = _board(dry, sample_rate, Distortion(drive_db=20.0),
                  HighShelfFilter(cutoff_frequency_hz=2500.0, gain_db=6.0), Gain(-5.0))  # fmt: skip
    return low.astype(np.float32), high


def split_weight(notes: list[Note], n_samples: int, sample_rate: int) -> np.ndarray:
    """1 where the most recent onset's (lowest) note is at or above ``SPLIT_MIDI``, else 0;
    a 5 ms linear cross-fade at each change (branches run continuously, no filter reset)."""
    target = np.zeros(n_samples)
    onsets: dict[int, int] = {}
    for note in notes:
        onsets[note.onset] = min(onsets.get(note.onset, 999), note.midi)
    for onset in sorted(onsets):
        if onset < n_samples:
            target[onset:] = 1.0 if onsets[onset] >= SPLIT_MIDI else 0.0
    fade = max(1, round(SPLIT_FADE_SECONDS * sample_rate))
    kernel = np.ones(fade) / fade  # causal moving average: a linear ramp of `fade` samples
    return np.convolve(target, kernel)[:n_samples]


def fx_pitch_split(take: Take) -> np.ndarray:
    """Pitch-dependent: :func:`pitch_split_branches` switched by the known note
    (:func:`split_weight`); the wet peaks above 0 dBFS."""
    low, high = pitch_split_branches(take.dry, take.sample_rate)
    w = split_weight(take.notes, take.dry.shape[0], take.sample_rate)
    return ((1.0 - w) * low + w * high).astype(np.float32)


def fx_tone_stack(take: Take) -> np.ndarray:
    """Drive into a post-EQ tone stack: pedalboard Gain(+6) -> Distortion(20 dB) ->
    LowShelf(200 Hz, +4 dB) -> Peak(700 Hz, -6 dB, Q 0.8) -> HighShelf(3 kHz, +3 dB) -> -6 dB."""
    from pedalboard import Distortion, Gain, HighShelfFilter, LowShelfFilter, PeakFilter

    return _board(
        take.dry, take.sample_rate, Gain(6.0), Distortion(drive_db=20.0),
        LowShelfFilter(200.0, gain_db=4.0), PeakFilter(700.0, gain_db=-6.0, q=0.8),
        HighShelfFilter(3000.0, gain_db=3.0), Gain(-6.0),
    )  # fmt: skip


def fx_wh_48k(take: Take) -> np.ndarray:
    """At 48 kHz: scipy Butterworth HP (1st order, 120 Hz) -> Distortion(20 dB) ->
    pedalboard LowpassFilter(3.5 kHz) -> -4 dB."""
    from pedalboard import Distortion, Gain, LowpassFilter

    pre = _butter(take.dry, take.sample_rate, 1, 120.0, "highpass")
    return _board(pre, take.sample_rate, Distortion(drive_db=20.0),
                  LowpassFilter(cutoff_frequency_hz=3500.0), Gain(-4.0))  # fmt: skip


def fx_eq(take: Take) -> np.ndarray:
    """Linear (no drive): pedalboard LowShelf(150 Hz, -5 dB) -> Peak(900 Hz, +4 dB, Q 1.2) ->
    HighShelf(4 kHz, -8 dB) -> Gain(+2 dB): an EQ pedal, a clean tone control."""
    from pedalboard import Gain, HighShelfFilter, LowShelfFilter, PeakFilter

    return _board(
        take.dry, take.sample_rate, LowShelfFilter(150.0, gain_db=-5.0),
        PeakFilter(900.0, gain_db=4.0, q=1.2), HighShelfFilter(4000.0, gain_db=-8.0), Gain(2.0),
    )  # fmt: skip


EMPHASIS = 0.85


def fx_emphasis_clip(take: Take) -> np.ndarray:
    """Pre-emphasis, an asymmetric soft clipper, de-emphasis (tape and tube stages): scipy
    lfilter([1, -0.85]) -> tanh(6 x) above zero, 0.7 tanh(3 x) below -> lfilter([1],
    [1, -0.85]) x 0.25 -> pedalboard HighpassFilter(40 Hz) -> LowpassFilter(6 kHz)."""
    from pedalboard import HighpassFilter, LowpassFilter

    x = lfilter([1.0, -EMPHASIS], [1.0], take.dry.astype(np.float64))
    y = np.where(x > 0.0, np.tanh(6.0 * x), 0.7 * np.tanh(3.0 * x))
    y = 0.25 * lfilter([1.0], [1.0, -EMPHASIS], y)
    return _board(y.astype(np.float32), take.sample_rate, HighpassFilter(40.0),
                  LowpassFilter(6000.0))  # fmt: skip


@dataclass(frozen=True)
class Case:
    effect: Callable[[Take], np.ndarray]
    sample_rate: int = SAMPLE_RATE
    bar: float = 0.01


CASES: dict[str, Case] = {
    "tanh": Case(fx_tanh),
    "hard_clip": Case(fx_hard_clip),
    "asym_dc": Case(fx_asym_dc),
    "wh_dark": Case(fx_wh_dark),
    "wh_bright": Case(fx_wh_bright),
    "cascade": Case(fx_cascade),
    "fuzz": Case(fx_fuzz),
    "tone_stack": Case(fx_tone_stack),
    "comp_drive": Case(fx_comp_drive, bar=0.03),
    "level_xfade": Case(fx_level_xfade, bar=0.03),
    "pitch_split": Case(fx_pitch_split, bar=0.08),
    "wh_48k": Case(fx_wh_48k, sample_rate=48000),
    "eq": Case(fx_eq),
    "emphasis_clip": Case(fx_emphasis_clip),
}
STATIC_CASES = ("tanh", "hard_clip", "asym_dc", "wh_dark", "wh_bright", "cascade", "fuzz",
                "wh_48k")  # fmt: skip
STATIC_MEDIAN_BAR = 0.003
NEW_OVER_OLD_BAR = 1.10
OLD_CHAIN = "gain>tanh>lowpass>highpass"


def make_case(name: str, seed: int) -> tuple[Take, np.ndarray, Take, np.ndarray]:
    """``(train_take, train_wet, test_take, test_wet)`` of a case."""
    case = CASES[name]
    train_take = make_take(seed, "train", case.sample_rate)
    test_take = make_take(seed, "test", case.sample_rate)
    return train_take, case.effect(train_take), test_take, case.effect(test_take)


# ---- training and evaluation --------------------------------------------------------------


def describe_chain(chain) -> tuple[str, str, int]:
    """``(chain, key, n_ranges)``: the blocks as a spec (``name@kind`` where a stage's key
    differs from the others'), the key kind(s) and the largest number of ranges."""
    stages = chain.stages
    kinds = [s.key.kind for s in stages if s.keyed]
    common = max(set(kinds), key=kinds.count) if kinds else "none"

    def spec(items) -> str:
        parts = []
        for item in items:
            if hasattr(item, "stages"):
                parts.append("(" + spec(item) + ")")
            else:
                kind = item.key.kind if item.keyed else "none"
                parts.append(item.block.name + ("" if kind == common else f"@{kind}"))
        return ">".join(parts)

    key = "+".join(sorted(set(kinds))) if kinds else "none"
    return spec(chain), key, max((s.n_ranges for s in stages), default=1)


def train_config(config: str, budget: float, seed: int):
    from lactose_audio.training import TrainConfig

    if config == "new":
        return TrainConfig(budget_seconds=budget, seed=seed)
    return TrainConfig(chain_spec=OLD_CHAIN, key="amplitude", n_ranges=8, budget_seconds=budget,
                       seed=seed)  # fmt: skip


def warm_up() -> None:
    """One 2-step training on 3 s of noise, so that the first measured run does not pay for
    importing and initialising TensorFlow (it would otherwise lose seconds of its budget)."""
    from lactose_audio.data import pair_from_arrays
    from lactose_audio.training import TrainConfig, train

    x = (0.3 * np.random.default_rng(0).standard_normal(3 * SAMPLE_RATE)).astype(np.float32)
    pair = pair_from_arrays(x, np.tanh(2.0 * x), SAMPLE_RATE, latency=0, name="warm_up")
    train(pair, TrainConfig(chain_spec=OLD_CHAIN, key="amplitude", n_ranges=2, steps=2))


def run_one(name: str, config: str, data, budget: float, seed: int) -> dict:
    from lactose_audio.data import pair_from_arrays
    from lactose_audio.losses import DEFAULT_PRE_EMPHASIS, esr
    from lactose_audio.training import train

    train_take, train_wet, test_take, test_wet = data
    pair = pair_from_arrays(train_take.dry, train_wet, train_take.sample_rate, latency=0,
                            name=name)  # fmt: skip
    start = time.perf_counter()
    result = train(pair, train_config(config, budget, seed))
    wall = time.perf_counter() - start
    prediction = np.asarray(result.effect(test_take.dry, sample_rate=test_take.sample_rate))
    chain, key, n_ranges = describe_chain(result.effect.chain)
    return {
        "esr": esr(test_wet, prediction),
        "pre_emphasis_esr": esr(test_wet, prediction, DEFAULT_PRE_EMPHASIS),
        "chain": chain,
        "key": key,
        "n_ranges": n_ranges,
        "seconds": round(float(result.seconds), 2),
        "wall_seconds": round(wall, 2),
        "steps": int(result.steps),
        "validation_esr": float(result.validation_esr),
        "chain_repr": repr(result.effect.chain),
        "search": [
            {k: r[k] for k in ("name", "key", "val_esr", "steps", "seconds")} for r in result.search
        ],
    }


def _bar(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "FAIL")


def summarise(cases: dict[str, dict], budget: float) -> dict:
    """The JSON object: per-case results, the static median and the worst new/old ratio."""
    static = [cases[n]["esr"] for n in STATIC_CASES if cases.get(n, {}).get("esr") is not None]
    ratios = [
        c["esr"] / c["old"]["esr"]
        for c in cases.values()
        if c.get("esr") is not None and "old" in c and c["old"]["esr"] > 0
    ]
    return {
        "cases": cases,
        "static_median_esr": statistics.median(static) if static else None,
        "auto_vs_old_worst_ratio": max(ratios) if ratios else None,
        "budget": budget,
    }


def print_table(summary: dict) -> None:
    print(f"{'case':<12} {'config':<6} {'test ESR':>9} {'pre-emph':>9} {'bar':>6}  "
          f"{'chain':<28} {'key':<10} {'seconds':>7}")  # fmt: skip
    for name, entry in summary["cases"].items():
        bar = CASES[name].bar
        for config, r in (("new", entry), ("old", entry.get("old"))):
            if not r or r.get("esr") is None:
                continue
            ok = _bar(r["esr"] <= bar)
            print(f"{name:<12} {config:<6} {r['esr']:>9.5f} {r['pre_emphasis_esr']:>9.5f} "
                  f"{'<=' + format(bar, 'g'):>6} {ok:<4} {r['chain']:<28} "
                  f"{r['key'] + ' x' + str(r['n_ranges']):<10} {r['seconds']:>7.1f}")  # fmt: skip
        if entry.get("esr") is not None and entry.get("old"):
            ratio = entry["esr"] / entry["old"]["esr"]
            print(f"{'':<12} new/old {ratio:.3f} (<= {NEW_OVER_OLD_BAR:g}) "
                  f"{_bar(ratio <= NEW_OVER_OLD_BAR)}")  # fmt: skip
    median = summary["static_median_esr"]
    if median is not None:
        print(f"static median ESR (new) {median:.5f} (<= {STATIC_MEDIAN_BAR:g}) "
              f"{_bar(median <= STATIC_MEDIAN_BAR)}")  # fmt: skip
    worst = summary["auto_vs_old_worst_ratio"]
    if worst is not None:
        print(f"worst new/old ESR ratio {worst:.3f} (<= {NEW_OVER_OLD_BAR:g}) "
              f"{_bar(worst <= NEW_OVER_OLD_BAR)}")  # fmt: skip
    print(f"budget {summary['budget']:g} s per case per configuration")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"of: {','.join(CASES)}")
    parser.add_argument("--configs", default="new,old", help="new and/or old")
    parser.add_argument("--budget", type=float, default=120.0,
                        help="training seconds per case per configuration")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [n for n in names if n not in CASES] + [c for c in configs if c not in ("new", "old")]
    if unknown or not names or not configs:
        print(f"error: unknown case or config {unknown[0] if unknown else '(none)'!r}; cases: "
              f"{', '.join(CASES)}; configs: new, old", file=sys.stderr)  # fmt: skip
        return 2
    if not args.budget > 0:
        print(f"error: --budget must be positive, got {args.budget}", file=sys.stderr)
        return 2
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, flush=True))
    cases: dict[str, dict] = {}
    warm_up()
    for name in names:
        data = make_case(name, args.seed)
        peak = float(max(np.max(np.abs(data[1])), np.max(np.abs(data[3]))))
        entry: dict = {"esr": None, "pre_emphasis_esr": None, "chain": None, "key": None,
                       "seconds": None, "wet_peak": round(peak, 3)}  # fmt: skip
        for config in ("new", "old"):
            if config not in configs:
                continue
            r = run_one(name, config, data, args.budget, args.seed)
            if config == "new":
                entry.update(r)
            else:
                entry["old"] = r
            log(f"{name:<12} {config:<4} ESR {r['esr']:.5f} pre-emph {r['pre_emphasis_esr']:.5f}"
                f" {r['chain']} key={r['key']} x{r['n_ranges']} {r['seconds']:.1f} s"
                f" ({r['steps']} steps)")  # fmt: skip
        cases[name] = entry
    summary = summarise(cases, args.budget)
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        print()
        print_table(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
