"""Conditioning keys: the signals (computed from the dry audio) that select a LACTOSE range.

This module computes keys; it never decides ranges (that is ``ranges.range_index``). Keys are
numpy float32, never differentiated, and this module does not import TensorFlow.

Kinds (:class:`KeySpec`):

- ``none``: zeros (use with one range).
- ``sample``: the signed input sample, linear (per sample only), as in Clarke 2025
  (arXiv 2502.15829).
- ``amplitude``: an RMS envelope in dBFS with attack/release ballistics (see
  :func:`amplitude_envelope`), per sample or per frame.
- ``pitch``: f0 from ``librosa.pyin`` as a MIDI note, per frame.

Frame grid (shared by the whole package): frame ``f`` covers samples
``[f * hop_size, (f + 1) * hop_size)``; ``n_frames = ceil(n_samples / hop_size)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from lactose_audio._numba import jit as _jit
from lactose_audio.errors import ParameterError

__all__ = [
    "KeySpec",
    "KeyStream",
    "compute_key",
    "amplitude_envelope",
    "FLOOR_DB",
    "UNVOICED_MIDI",
    "PITCH_SAMPLE_RATE",
]

KINDS = ("none", "sample", "amplitude", "pitch")
#: Pitch rules (:attr:`KeySpec.pitch_rule`): ``pyin`` keeps the decoded pitch; ``lowest`` keys
#: a frame whose decoded pitch does not sound by its lowest sounding spectral peak
#: (:func:`lactose_audio.pitch.lowest_partial`).
PITCH_RULES = ("pyin", "lowest")
RATES = ("sample", "frame")
UNITS = {"none": "", "sample": "linear", "amplitude": "dBFS", "pitch": "MIDI"}

#: Level of digital silence in the amplitude key (power floor 1e-12), dBFS.
FLOOR_DB = -120.0
_FLOOR_POWER = 10.0 ** (FLOOR_DB / 10.0)
#: Pitch key of a signal with no voiced frame at all (MIDI 60 = C4, 261.63 Hz).
UNVOICED_MIDI = 60.0
#: Rate the audio is resampled to before pitch tracking, Hz (see lactose_audio.pitch).
PITCH_SAMPLE_RATE = 16000

_NOT_FINITE = "audio must be finite (got NaN or inf samples)"
_ATTACK_LIMITS_MS = (0.0, 10_000.0)
_FMIN_LIMITS_HZ = (20.0, 1000.0)
_FMAX_LIMIT_HZ = 4000.0


@_jit(contract=True)
def _envelope_kernel(x, a_attack, a_release, state, out):  # pragma: no cover - compiled
    fast = state[0]
    slow = state[1]
    for i in range(x.shape[0]):
        power = np.float64(x[i]) * np.float64(x[i])
        fast = a_attack * fast + (1.0 - a_attack) * power
        slow = a_release * slow + (1.0 - a_release) * power
        out[i] = fast if fast > slow else slow
    state[0] = fast
    state[1] = slow
    return out


#: Samples per envelope step of the frame-rate amplitude key (0.36 ms at 44.1 kHz).
ENVELOPE_BLOCK = 16


@_jit(contract=True)
def _block_mean_square(x, j):  # pragma: no cover - compiled
    # Mean square of x[j : j + 16] in one fixed order (pairs, then a tree), so a block gives the
    # same bits wherever it sits.
    t0 = np.float64(x[j]) ** 2 + np.float64(x[j + 8]) ** 2
    t1 = np.float64(x[j + 1]) ** 2 + np.float64(x[j + 9]) ** 2
    t2 = np.float64(x[j + 2]) ** 2 + np.float64(x[j + 10]) ** 2
    t3 = np.float64(x[j + 3]) ** 2 + np.float64(x[j + 11]) ** 2
    t4 = np.float64(x[j + 4]) ** 2 + np.float64(x[j + 12]) ** 2
    t5 = np.float64(x[j + 5]) ** 2 + np.float64(x[j + 13]) ** 2
    t6 = np.float64(x[j + 6]) ** 2 + np.float64(x[j + 14]) ** 2
    t7 = np.float64(x[j + 7]) ** 2 + np.float64(x[j + 15]) ** 2
    return (((t0 + t4) + (t1 + t5)) + ((t2 + t6) + (t3 + t7))) * 0.0625


@_jit(contract=True)
def _block_powers(x, hop, q):  # pragma: no cover - compiled
    # Mean square of every full ENVELOPE_BLOCK (16-sample) block of every frame, blocks cut
    # from each frame's start: q[f * (hop // 16) + b]. (One block per call of
    # _block_mean_square, each loop writing q in order: LLVM vectorises this form; a helper
    # looping over a frame's blocks, inlined here, ran 2.3x slower on a 60 s file.)
    n = x.shape[0]
    nb = hop // 16
    if hop % 16 == 0:  # the blocks of all frames are contiguous: one long loop
        # in runs of 256 blocks, two passes: the pair sums x[j + k]^2 + x[j + 8 + k]^2 of
        # every block (one vectorised loop), then each block's tree of them in
        # _block_mean_square's order (the same bits): 1.2 ms instead of 1.8 on a 60 s file
        pairs = np.empty(256 * 8)
        total = n // 16
        for c in range(0, total, 256):
            e = min(total, c + 256)
            for b in range(c, e):
                j = 16 * b
                o = 8 * (b - c)
                for k in range(8):
                    pairs[o + k] = np.float64(x[j + k]) ** 2 + np.float64(x[j + 8 + k]) ** 2
            for b in range(c, e):
                o = 8 * (b - c)
                q[b] = (
                    ((pairs[o] + pairs[o + 4]) + (pairs[o + 1] + pairs[o + 5]))
                    + ((pairs[o + 2] + pairs[o + 6]) + (pairs[o + 3] + pairs[o + 7]))
                ) * 0.0625
        return q
    for f in range((n + hop - 1) // hop):
        for b in range(min(nb, (n - f * hop) // 16)):
            q[f * nb + b] = _block_mean_square(x, f * hop + 16 * b)
    return q


@_jit(contract=True)
def _frame_power_kernel(x, hop, a_attack, a_release, state, out):  # pragma: no cover - compiled
    # Frame f covers x[f*hop : min((f+1)*hop, n)], cut into blocks of ENVELOPE_BLOCK (16)
    # samples from its start (the last one shorter). Per block of m samples with mean square q:
    # fast <- a_A^m fast + (1 - a_A^m) q, slow likewise, and the frame sums m * max(fast, slow).
    # A frame's result depends only on the state at its start and its own samples, and every
    # sum runs in a fixed order, so frames computed in any grouping give the same bits.
    n = x.shape[0]
    nb = hop // 16
    q = _block_powers(x, hop, np.empty(out.shape[0] * nb, dtype=np.float64))
    fast = state[0]
    slow = state[1]
    ka = a_attack**16
    kr = a_release**16
    for f in range(out.shape[0]):
        begin = f * hop
        stop = min(begin + hop, n)
        n_full = (stop - begin) // 16
        acc = 0.0
        for b in range(f * nb, f * nb + n_full):
            fast = ka * fast + (1.0 - ka) * q[b]
            slow = kr * slow + (1.0 - kr) * q[b]
            acc += fast if fast > slow else slow
        acc *= 16.0
        m = stop - begin - 16 * n_full
        if m > 0:
            tail = 0.0
            for j in range(stop - m, stop):
                tail += np.float64(x[j]) ** 2
            tail /= m
            fa = a_attack**m
            fr = a_release**m
            fast = fa * fast + (1.0 - fa) * tail
            slow = fr * slow + (1.0 - fr) * tail
            acc += m * (fast if fast > slow else slow)
        out[f] = acc / (stop - begin)
    state[0] = fast
    state[1] = slow
    return out


def _frame_power(x, spec, sample_rate: float, hop_size: int, state: np.ndarray) -> np.ndarray:
    """Mean envelope power of each frame of ``x`` (the last may be partial), float64.

    ``x`` starts on the frame grid; ``state`` (float64 ``[2]``: fast, slow) is the envelope at
    its start and is updated in place, so frames computed in any grouping give the same bits.
    """
    x = np.ascontiguousarray(x)
    out = np.empty(-(-x.shape[0] // hop_size), dtype=np.float64)
    return _frame_power_kernel(
        x,
        hop_size,
        _coefficient(spec.attack_ms, sample_rate),
        _coefficient(spec.release_ms, sample_rate),
        state,
        out,
    )


def _coefficient(time_ms: float, sample_rate: float) -> float:
    """One-pole coefficient ``exp(-1 / (tau * sample_rate))``; 0 for ``tau = 0``."""
    if time_ms == 0:
        return 0.0
    return math.exp(-1000.0 / (time_ms * sample_rate))


def _to_db(power: np.ndarray) -> np.ndarray:
    return (10.0 * np.log10(np.maximum(power, _FLOOR_POWER))).astype(np.float32)


def amplitude_envelope(
    audio: np.ndarray,
    sample_rate: float,
    attack_ms: float = 5.0,
    release_ms: float = 50.0,
    state: np.ndarray | None = None,
) -> np.ndarray:
    """Mean-square envelope with attack/release ballistics (linear power, float64).

    Two symmetric one-pole averages of ``x^2`` run side by side, a fast one with time
    constant ``attack_ms`` and a slow one with ``release_ms``; the envelope is their maximum::

        fast[n] = a_A fast[n-1] + (1 - a_A) x[n]^2,   a = exp(-1 / (tau * sample_rate))
        slow[n] = a_R slow[n-1] + (1 - a_R) x[n]^2
        p[n]    = max(fast[n], slow[n])

    After a step up in level the fast average leads, so ``p`` rises exactly as
    ``1 - exp(-t / attack)`` (in power); after a step down the slow one leads and ``p`` decays
    exactly as ``exp(-t / release)``. Both averages are unbiased, so a steady signal's ``p``
    averages to its mean square (a sine of amplitude A: ``A^2 / 2``, i.e. RMS level
    ``20 log10(A / sqrt(2))`` dBFS); the ripple of a sine of frequency f is about
    ``+-1 / (4 pi f attack)`` relative (+-0.07 dB at 1 kHz with a 5 ms attack).

    Args:
        audio: ``[n_samples]`` signal, full scale 1.0.
        sample_rate: Hz.
        attack_ms: Attack time constant, ms (release_ms >= attack_ms for the exact step
            responses above).
        release_ms: Release time constant, ms.
        state: Optional float64 ``[2]`` (fast, slow) carried across calls; updated in place.
            Zeros (silence) when omitted.

    Returns:
        float64 ``[n_samples]`` power envelope (linear, full-scale sine = 0.5).
    """
    x = np.ascontiguousarray(audio)
    if state is None:
        state = np.zeros(2, dtype=np.float64)
    out = np.empty(x.shape[0], dtype=np.float64)
    _envelope_kernel(
        x, _coefficient(attack_ms, sample_rate), _coefficient(release_ms, sample_rate), state, out
    )
    return out


@dataclass(frozen=True)
class KeySpec:
    """What selects the range, and how it is computed.

    Args:
        kind: ``none``, ``sample``, ``amplitude`` or ``pitch``.
        rate: ``sample`` or ``frame``; ``None`` picks ``frame`` for pitch and ``sample``
            otherwise. ``pitch`` is frame only, ``sample`` is sample only.
        attack_ms: Amplitude attack time constant, 0..10000 ms.
        release_ms: Amplitude release time constant, attack_ms..10000 ms.
        fmin_hz: Lowest pitch tracked, 20..1000 Hz (snapped down to a whole MIDI note so pyin's
            0.25-semitone grid contains every equal-tempered note).
        fmax_hz: Highest pitch tracked, fmin_hz..4000 Hz.
        pitch_rule: ``pyin`` (the decoded pitch: on a chord often the notes' common period,
            an octave or two below all of them) or ``lowest`` (a frame whose decoded pitch
            does not sound is keyed by its lowest sounding spectral peak: a chord's lowest
            note, :func:`lactose_audio.pitch.lowest_partial`). Keys made by name (``--key pitch``,
            ``gain@pitch``) use ``lowest``; a preset without the field is ``pyin`` (how
            presets before it were trained).

    Raises:
        ParameterError: On an unknown kind or rate, or a setting out of its range.
    """

    kind: str = "none"
    rate: str | None = None
    attack_ms: float = 5.0
    release_ms: float = 50.0
    fmin_hz: float = 65.40639132514966  # C2, MIDI 36
    fmax_hz: float = 2093.004522404789  # C7, MIDI 96
    pitch_rule: str = "pyin"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParameterError(f"key kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        rate = self.rate
        if rate is None:
            rate = "frame" if self.kind == "pitch" else "sample"
            object.__setattr__(self, "rate", rate)
        if rate not in RATES:
            raise ParameterError(f"key rate must be 'sample' or 'frame', got {rate!r}")
        if self.kind == "pitch" and rate != "frame":
            raise ParameterError("the pitch key is per frame only (rate='frame'), got 'sample'")
        if self.kind == "sample" and rate != "sample":
            raise ParameterError("the sample key is per sample only (rate='sample'), got 'frame'")
        for name in ("attack_ms", "release_ms", "fmin_hz", "fmax_hz"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
                raise ParameterError(f"{name} must be a number, got {value!r}")
            object.__setattr__(self, name, float(value))
        lo, hi = _ATTACK_LIMITS_MS
        if not lo <= self.attack_ms <= hi:
            raise ParameterError(
                f"attack_ms must be between {lo:g} ms and {hi:g} ms, got {self.attack_ms:g} ms"
            )
        if not self.attack_ms <= self.release_ms <= hi:
            raise ParameterError(
                f"release_ms must be between attack_ms={self.attack_ms:g} ms and {hi:g} ms, "
                f"got {self.release_ms:g} ms"
            )
        if self.pitch_rule not in PITCH_RULES or (
            self.pitch_rule != "pyin" and self.kind != "pitch"
        ):
            raise ParameterError(
                f"pitch_rule must be one of {', '.join(PITCH_RULES)} (a pitch key's), "
                f"got {self.pitch_rule!r}"
            )
        lo, hi = _FMIN_LIMITS_HZ
        if not lo <= self.fmin_hz <= hi:
            raise ParameterError(
                f"fmin_hz must be between {lo:g} Hz and {hi:g} Hz, got {self.fmin_hz:g} Hz"
            )
        if not self.fmin_hz < self.fmax_hz <= _FMAX_LIMIT_HZ:
            raise ParameterError(
                f"fmax_hz must be between fmin_hz={self.fmin_hz:g} Hz and {_FMAX_LIMIT_HZ:g} Hz, "
                f"got {self.fmax_hz:g} Hz"
            )

    @property
    def unit(self) -> str:
        """Unit of the key values: ``""``, ``"linear"``, ``"dBFS"`` or ``"MIDI"``."""
        return UNITS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (round-trips through :meth:`from_dict`);
        ``pitch_rule`` only when it is not ``pyin`` (presets written before it was a field
        read the same)."""
        out = asdict(self)
        if out["pitch_rule"] == "pyin":
            del out["pitch_rule"]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeySpec:
        """Inverse of :meth:`to_dict`; validates.

        Raises:
            ParameterError: On unknown fields or invalid values.
        """
        if not isinstance(data, dict):
            raise ParameterError(f"a key spec must be a dict, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(f"unknown key settings {unknown}; allowed: {sorted(known)}")
        return cls(**data)

    def stream(
        self, sample_rate: float, hop_size: int = 512, lookahead_seconds: float | None = None
    ) -> Any:
        """A stateful key computer for chunked rendering.

        ``none``, ``sample``, ``amplitude``: a :class:`KeyStream` (keys of the frames each chunk
        completes, no look-ahead). ``pitch``: a
        :class:`~lactose_audio.pitch_key.PitchKeyStream`: keys come out as they become final
        (~0.1-0.2 s after their audio; in a gap up to ``lookahead_seconds``, default
        :data:`~lactose_audio.pitch_key.DEFAULT_LOOKAHEAD_SECONDS` = 2 s) and equal the
        whole-take key bit for bit when no gap is longer than the look-ahead.

        Raises:
            ParameterError: On a bad sample rate, hop or look-ahead.
        """
        if self.kind != "pitch":
            return KeyStream(self, sample_rate, hop_size)
        from lactose_audio import pitch_key

        _check_audio(np.zeros(0, np.float32), sample_rate, hop_size)
        if lookahead_seconds is None:
            lookahead_seconds = pitch_key.DEFAULT_LOOKAHEAD_SECONDS
        if isinstance(lookahead_seconds, bool) or not (
            isinstance(lookahead_seconds, int | float) and 0.05 <= lookahead_seconds <= 3600
        ):
            raise ParameterError(
                f"lookahead_seconds must be between 0.05 s and 3600 s, got {lookahead_seconds!r}"
            )
        return pitch_key.PitchKeyStream(
            sample_rate,
            hop_size,
            self.fmin_hz,
            self.fmax_hz,
            UNVOICED_MIDI,
            lookahead_seconds,
            self.pitch_rule,
        )


def _check_audio(audio: Any, sample_rate: Any, hop_size: Any, finite: bool = True) -> np.ndarray:
    """Mono float32 ``audio``; ``finite=False`` leaves the NaN/inf scan to the caller."""
    x = np.asarray(audio)
    if x.ndim != 1:
        raise ParameterError(f"audio must be mono [n_samples], got shape {x.shape}")
    if x.dtype.kind not in "fiu":
        raise ParameterError(f"audio must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if finite and x.size and not np.all(np.isfinite(x)):
        raise ParameterError(_NOT_FINITE)
    if isinstance(sample_rate, bool) or not (
        isinstance(sample_rate, int | float | np.number) and 0 < sample_rate < 10_000_000
    ):
        raise ParameterError(f"sample_rate must be between 0 Hz and 10 MHz, got {sample_rate!r}")
    if isinstance(hop_size, bool) or not isinstance(hop_size, int | np.integer) or hop_size < 1:
        raise ParameterError(f"hop_size must be an integer >= 1 samples, got {hop_size!r}")
    return x


def compute_key(
    spec: KeySpec, audio: np.ndarray, sample_rate: float, hop_size: int = 512
) -> np.ndarray:
    """The key signal of ``audio``.

    - ``none``: zeros.
    - ``sample``: the samples themselves (linear).
    - ``amplitude``: per sample, ``10 log10(p[n])`` dBFS of :func:`amplitude_envelope`
      (RMS level; floor :data:`FLOOR_DB`); per frame, ``10 log10`` of the frame's mean
      envelope power, with the envelope stepped per block of :data:`ENVELOPE_BLOCK` samples
      (blocks cut from each frame's start, the last shorter): a block of ``m`` samples with
      mean square ``q`` updates ``fast <- a_A^m fast + (1 - a_A^m) q`` (``slow`` likewise) and
      weighs ``max(fast, slow)`` by ``m``. This is the per-sample envelope's ballistics at
      block resolution (exact for block-wise constant power; within 0.1 dB of the frame mean
      of ``p`` on music) at under a third of its cost; a partial last frame averages what it has.
    - ``pitch``: per frame, MIDI note of the f0 track (see :func:`pitch_track`).

    Args:
        spec: The key.
        audio: ``[n_samples]`` mono float signal (converted to float32), full scale 1.0.
        sample_rate: Hz.
        hop_size: Frame hop in samples (frame-rate keys).

    Returns:
        float32 ``[n_samples]`` (rate ``sample``) or ``[n_frames]`` (rate ``frame``),
        ``n_frames = ceil(n_samples / hop_size)``, in ``spec.unit``.

    Raises:
        ParameterError: On non-mono or non-finite audio, bad sample rate or hop size.
    """
    frame_amplitude = spec.kind == "amplitude" and spec.rate == "frame"
    # the frame envelope is finite exactly when every sample is: check its few values instead
    x = _check_audio(audio, sample_rate, hop_size, finite=not frame_amplitude)
    n_frames = -(-x.size // hop_size)
    if spec.kind == "none":
        return np.zeros(x.size if spec.rate == "sample" else n_frames, dtype=np.float32)
    if spec.kind == "sample":
        return x.copy()
    if spec.kind == "amplitude":
        if spec.rate == "sample":
            return _to_db(amplitude_envelope(x, sample_rate, spec.attack_ms, spec.release_ms))
        power = _frame_power(x, spec, sample_rate, hop_size, np.zeros(2, np.float64))
        if not np.all(np.isfinite(power)):
            raise ParameterError(_NOT_FINITE)
        return _to_db(power)
    return pitch_track(x, sample_rate, hop_size, spec.fmin_hz, spec.fmax_hz, rule=spec.pitch_rule)


def pitch_track(
    audio: np.ndarray,
    sample_rate: float,
    hop_size: int = 512,
    fmin_hz: float = 65.40639132514966,
    fmax_hz: float = 2093.004522404789,
    tracker: str = "fast",
    rule: str = "pyin",
) -> np.ndarray:
    """Pitch key: MIDI note per frame of the package's frame grid.

    The audio is resampled to :data:`PITCH_SAMPLE_RATE` (16 kHz, soxr HQ) and tracked with
    pYIN (Mauch & Dixon 2014) as ``librosa.pyin`` computes it: frame 1024 samples = 64 ms
    (2048 when ``fmin_hz`` needs it), hop 256 = 16 ms, max transition rate 100 octaves/s,
    0.25-semitone bins starting at ``fmin_hz`` snapped down to a whole MIDI note (in-tune notes
    fall on a bin). ``tracker="fast"`` (default) is :mod:`lactose_audio.pitch`'s
    re-implementation (same maths, ~0.17 s per minute of audio); ``tracker="pyin"`` calls
    ``librosa.pyin`` itself (the reference, ~10x slower). Clean notes come out within 0.25
    semitone (in-tune ones usually exact); note changes are seen with up to ~60 ms lag.

    Unvoiced policy: voiced frames within half a pyin frame (32 ms) of an unvoiced one count
    as unvoiced (they straddle silence and are biased); then every unvoiced frame takes the
    pitch of the next voiced frame (so a note's attack is keyed by that note), frames after the
    last voiced one hold the last voiced pitch, and with nothing voiced the key is
    :data:`UNVOICED_MIDI` everywhere. The track is then linearly interpolated (in MIDI) to the
    centres of the frames ``[f * hop_size, (f + 1) * hop_size)``, i.e.
    ``(f + 0.5) * hop_size / sample_rate`` s (:func:`lactose_audio.pitch_key.key_from_track`).

    Args:
        audio: ``[n_samples]`` float32 mono signal.
        sample_rate: Hz.
        hop_size: Frame hop of the output grid, samples.
        fmin_hz: Lowest f0 tracked, Hz.
        fmax_hz: Highest f0 tracked, Hz (<= 4000 Hz).
        tracker: ``"fast"`` or ``"pyin"``.
        rule: ``"pyin"`` or ``"lowest"`` (:attr:`KeySpec.pitch_rule`; ``fast`` tracker only).

    Returns:
        float32 ``[n_frames]`` MIDI notes.

    Raises:
        ParameterError: On an unknown ``tracker``.
    """
    from lactose_audio import pitch, pitch_key

    if tracker not in ("fast", "pyin"):
        raise ParameterError(f"tracker must be 'fast' or 'pyin', got {tracker!r}")
    if rule not in PITCH_RULES or (rule != "pyin" and tracker != "fast"):
        raise ParameterError(f"rule must be 'pyin' or 'lowest' (fast tracker), got {rule!r}")
    x = np.asarray(audio, dtype=np.float32)
    n_frames = -(-x.size // hop_size)
    if n_frames == 0:
        return np.zeros(0, dtype=np.float32)
    y16 = pitch._resample(x, sample_rate)
    if tracker == "fast":
        f0, voiced = pitch.track(y16, fmin_hz, fmax_hz, rule)
    else:
        f0, voiced = pitch.pyin_track(y16, fmin_hz, fmax_hz)
    frame_length = pitch.frame_length_for(pitch.snap_fmin(fmin_hz))
    return pitch_key.key_from_track(
        f0, voiced, frame_length, n_frames, hop_size, sample_rate, UNVOICED_MIDI
    )


class KeyStream:
    """Chunk-by-chunk key computation with state (see :meth:`KeySpec.stream`).

    ``process(chunk)`` returns the keys that are complete after ``chunk``:

    - sample-rate keys: one key per input sample, immediately;
    - frame-rate keys: one key per frame completed by this chunk (an incomplete frame is
      buffered); call :meth:`flush` at the end for the partial last frame.

    Concatenating every ``process`` output (and ``flush`` for frame-rate keys) gives exactly
    (bit for bit) :func:`compute_key` on the whole signal, for any chunking.

    Args:
        spec: The key (not ``pitch``).
        sample_rate: Hz.
        hop_size: Frame hop, samples.
    """

    def __init__(self, spec: KeySpec, sample_rate: float, hop_size: int = 512) -> None:
        if spec.kind == "pitch":
            raise ParameterError("the pitch key streams through KeySpec.stream (PitchKeyStream)")
        _check_audio(np.zeros(0, np.float32), sample_rate, hop_size)
        self.spec = spec
        self.sample_rate = sample_rate
        self.hop_size = int(hop_size)
        self._state = np.zeros(2, dtype=np.float64)  # envelope (fast, slow)
        self._pending = np.zeros(0, dtype=np.float32)  # samples of the open frame (frame rate)

    def reset(self) -> None:
        """Back to silence and no buffered samples."""
        self._state[:] = 0.0
        self._pending = np.zeros(0, dtype=np.float32)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Keys completed by ``chunk`` (``[n]`` samples): float32, in ``spec.unit``."""
        x = _check_audio(chunk, self.sample_rate, self.hop_size)
        spec = self.spec
        if spec.rate == "sample":
            if spec.kind == "none":
                return np.zeros(x.size, dtype=np.float32)
            if spec.kind == "sample":
                return x.copy()
            power = amplitude_envelope(
                x, self.sample_rate, spec.attack_ms, spec.release_ms, self._state
            )
            return _to_db(power)
        pending = np.concatenate([self._pending, x]) if self._pending.size else x
        n_done = (pending.size // self.hop_size) * self.hop_size
        self._pending = pending[n_done:].copy()
        return self._frames(pending[:n_done])

    def flush(self) -> np.ndarray:
        """Key of the buffered partial frame (``[0]`` or ``[1]``); frame-rate keys only."""
        if self.spec.rate == "sample" or self._pending.size == 0:
            return np.zeros(0, dtype=np.float32)
        out = self._frames(self._pending)
        self._pending = np.zeros(0, dtype=np.float32)
        return out

    def _frames(self, x: np.ndarray) -> np.ndarray:
        """Keys of the frames of ``x`` (whole frames, but for a final partial one)."""
        if self.spec.kind == "none":
            return np.zeros(-(-x.size // self.hop_size), dtype=np.float32)
        return _to_db(_frame_power(x, self.spec, self.sample_rate, self.hop_size, self._state))
