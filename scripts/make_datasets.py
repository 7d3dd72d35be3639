"""Build the reproducible dry/wet datasets of lactose_audio.

Each pair is a synthesized dry take (Karplus-Strong plucked notes, E2..E5, peaks -40..0 dBFS,
phrases separated by silence) and the same take through an effect made with pedalboard (plus
numpy where pedalboard has no equivalent). Everything is seeded, so the same arguments give the
same arrays and the same file bytes (float WAVs are written without libsndfile's timestamped
PEAK chunk; see ``lactose_audio.audio_io.write_audio``).

    python scripts/make_datasets.py [--out datasets/audio] [--only NAME ...] [--seconds S]

writes ``<out>/<name>_dry.wav`` and ``<out>/<name>_wet.wav`` (mono, 32-bit float, 44.1 kHz)
and records them in ``datasets/manifest.json`` (``--manifest``). In Python::

    from make_datasets import make_pair          # with scripts/ on sys.path
    dry, wet, sample_rate = make_pair("tanh_drive", seconds=10.0, seed=1)

Pairs (see ``datasets/README.md``): tanh_drive, drive_tone, fuzz, level_drive, pitch_drive.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import lfilter

SAMPLE_RATE = 44100
DEFAULT_SECONDS = 32.0
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "datasets" / "audio"
DEFAULT_MANIFEST = REPO / "datasets" / "manifest.json"

# The dry source: pitch range (MIDI), level range (dBFS peak per note), timing (seconds).
LOWEST_MIDI, HIGHEST_MIDI = 40, 76  # E2 .. E5
LEVEL_RANGE_DBFS = (-40.0, 0.0)
NOTE_SECONDS = (0.15, 1.2)  # how long a note is held before it is damped
MONO_NOTE_SECONDS = (0.15, 0.8)  # shorter in monophonic takes, so there are more notes
RELEASE_SECONDS = 0.06  # damping (raised-cosine fade) after a note's hold
PHRASE_SECONDS = (2.0, 5.0)
SILENCE_SECONDS = (0.4, 1.2)  # between phrases, after the last note's release
LEAD_IN_SECONDS = 0.25
MAX_PEAK = 0.98  # the dry take is scaled down if overlapping notes ever exceed this


@dataclass(frozen=True)
class Note:
    """One plucked note of the score: onset and hold in samples, MIDI pitch, peak in dBFS."""

    onset: int
    hold: int
    midi: int
    peak_dbfs: float


def make_score(
    rng: np.random.Generator, seconds: float, sample_rate: int, polyphonic: bool
) -> list[Note]:
    """Write a score: phrases of notes separated by silences.

    Phrases have a base level (uniform over the level range) with ±6 dB per note, so every
    level from -40 to 0 dBFS occurs. Polyphonic scores have chords (15 % of events: a power
    chord or a major triad with octave) and notes that ring into the next one; monophonic
    scores leave a gap after each note's release, so exactly one note sounds at a time.

    Args:
        rng: the seeded generator.
        seconds: length of the take.
        sample_rate: Hz.
        polyphonic: allow chords and overlapping notes.

    Returns:
        The notes, in onset order; every note (with its release) ends before ``seconds``.
    """
    release = RELEASE_SECONDS
    end_time = seconds - 0.1
    notes: list[Note] = []
    t = LEAD_IN_SECONDS
    while True:
        phrase_end = t + rng.uniform(*PHRASE_SECONDS)
        base_db = rng.uniform(LEVEL_RANGE_DBFS[0] + 4.0, LEVEL_RANGE_DBFS[1] - 3.0)
        last_end = t
        while t < phrase_end:
            hold = rng.uniform(*(NOTE_SECONDS if polyphonic else MONO_NOTE_SECONDS))
            if t + hold + release > end_time:
                break
            level = float(np.clip(base_db + rng.uniform(-6.0, 6.0), *LEVEL_RANGE_DBFS))
            if polyphonic and rng.uniform() < 0.15:
                root = int(rng.integers(LOWEST_MIDI, HIGHEST_MIDI - 12 + 1))
                shape = (0, 7, 12) if rng.uniform() < 0.5 else (0, 4, 7, 12)
                pitches = [root + step for step in shape]
                level -= float(20.0 * np.log10(len(pitches)))  # so the chord peaks near `level`
            else:
                pitches = [int(rng.integers(LOWEST_MIDI, HIGHEST_MIDI + 1))]
            for midi in pitches:
                notes.append(
                    Note(round(t * sample_rate), round(hold * sample_rate), midi, round(level, 3))
                )
            last_end = t + hold + release
            if polyphonic:
                t += hold * rng.uniform(0.5, 1.0)  # often the next note starts before this ends
            else:
                t = last_end + rng.uniform(0.02, 0.15)
        t = max(t, last_end) + rng.uniform(*SILENCE_SECONDS)
        if t + NOTE_SECONDS[0] + release > end_time:
            return notes


def pluck(
    f0_hz: float, n_samples: int, sample_rate: int, rng: np.random.Generator, brightness: float
) -> np.ndarray:
    """One Karplus-Strong plucked string (Karplus & Strong 1983), vectorised by periods.

    A noise burst of one period, low-passed (darker for smaller ``brightness``), circulates
    in a delay line of ``N`` samples with a two-point average and a loss chosen for a decay
    time that is longer for low notes. Each block of ``N`` output samples depends only on
    earlier blocks, so the recursion runs one numpy step per period.

    Args:
        f0_hz: fundamental in Hz (the period is rounded to whole samples, within ~3 cents
            for these pitches).
        n_samples: output length.
        sample_rate: Hz.
        rng: the seeded generator (for the burst).
        brightness: 0..1, the pluck's brightness.

    Returns:
        float64 ``[n_samples]``, unnormalised.
    """
    period = max(2, int(round(sample_rate / f0_hz - 0.5)))  # the average adds half a sample
    t60_seconds = float(np.clip(3.0 * np.sqrt(82.4 / f0_hz), 0.6, 3.0))
    loss = 10.0 ** (-3.0 / (t60_seconds * f0_hz))
    smoothing = 0.85 - 0.8 * float(np.clip(brightness, 0.0, 1.0))
    burst = lfilter([1.0 - smoothing], [1.0, -smoothing], rng.uniform(-1.0, 1.0, period))
    burst -= burst.mean()
    line = np.zeros(n_samples + 1)  # line[0] is the zero before the burst
    line[1 : min(period, n_samples) + 1] = burst[:n_samples]
    start = period + 1
    while start < n_samples + 1:
        stop = min(start + period, n_samples + 1)
        line[start:stop] = (
            loss
            * 0.5
            * (line[start - period : stop - period] + line[start - period - 1 : stop - period - 1])
        )
        start = stop
    return line[1:]


def render_score(
    notes: list[Note], n_samples: int, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Render the score to a dry take: each note plucked, held, damped, scaled to its peak.

    Louder notes are plucked brighter (as a harder pick attack is). If overlapping notes ever
    exceed ``MAX_PEAK``, the whole take is scaled down (never clipped).

    Returns:
        float32 ``[n_samples]``.
    """
    dry = np.zeros(n_samples)
    release = round(RELEASE_SECONDS * sample_rate)
    fade = 0.5 * (1.0 + np.cos(np.linspace(0.0, np.pi, release)))
    for note in notes:
        length = note.hold + release
        f0_hz = 440.0 * 2.0 ** ((note.midi - 69) / 12.0)
        level = (note.peak_dbfs - LEVEL_RANGE_DBFS[0]) / (LEVEL_RANGE_DBFS[1] - LEVEL_RANGE_DBFS[0])
        tone = pluck(f0_hz, length, sample_rate, rng, brightness=0.3 + 0.6 * level)
        tone[note.hold :] *= fade
        tone *= 10.0 ** (note.peak_dbfs / 20.0) / np.max(np.abs(tone))
        stop = min(note.onset + length, n_samples)
        dry[note.onset : stop] += tone[: stop - note.onset]
    peak = np.max(np.abs(dry))
    if peak > MAX_PEAK:
        dry *= MAX_PEAK / peak
    return dry.astype(np.float32)


# ----------------------------------------------------------------------------------------
# Effects. Each takes (dry float32 [n], notes, sample_rate, params) and returns float32 [n].


def _board(*plugins: object) -> Callable[[np.ndarray, int], np.ndarray]:
    from pedalboard import Pedalboard

    board = Pedalboard(list(plugins))
    return lambda audio, sample_rate: board(audio, sample_rate, reset=True).astype(np.float32)


def tanh_drive(dry: np.ndarray, notes: list[Note], sample_rate: int, p: dict) -> np.ndarray:
    """Static drive: Gain -> Distortion (tanh) -> Gain.

    ``wet = 10**(output_gain_db/20) * tanh(dry * 10**((input_gain_db + drive_db)/20))``.
    """
    from pedalboard import Distortion, Gain

    return _board(
        Gain(gain_db=p["input_gain_db"]),
        Distortion(drive_db=p["drive_db"]),
        Gain(gain_db=p["output_gain_db"]),
    )(dry, sample_rate)


def drive_tone(dry: np.ndarray, notes: list[Note], sample_rate: int, p: dict) -> np.ndarray:
    """Drive with tone shaping: HighpassFilter -> Distortion -> LowpassFilter -> Gain."""
    from pedalboard import Distortion, Gain, HighpassFilter, LowpassFilter

    return _board(
        HighpassFilter(cutoff_frequency_hz=p["highpass_hz"]),
        Distortion(drive_db=p["drive_db"]),
        LowpassFilter(cutoff_frequency_hz=p["lowpass_hz"]),
        Gain(gain_db=p["output_gain_db"]),
    )(dry, sample_rate)


def fuzz(dry: np.ndarray, notes: list[Note], sample_rate: int, p: dict) -> np.ndarray:
    """Asymmetric fuzz: a bias added before a tanh drive, the static offset removed, tone.

    ``y = tanh(g * (dry + bias)) - tanh(g * bias)`` with ``g = 10**(drive_db/20)`` (numpy adds
    the bias and removes the offset, pedalboard's Distortion does the tanh), then
    HighpassFilter -> LowpassFilter -> Gain.
    """
    from pedalboard import Distortion, Gain, HighpassFilter, LowpassFilter

    drive = _board(Distortion(drive_db=p["drive_db"]))
    biased = (dry + np.float32(p["bias"])).astype(np.float32)
    offset = drive(np.full(16, p["bias"], dtype=np.float32), sample_rate)[-1]
    shaped = drive(biased, sample_rate) - offset
    return _board(
        HighpassFilter(cutoff_frequency_hz=p["highpass_hz"]),
        LowpassFilter(cutoff_frequency_hz=p["lowpass_hz"]),
        Gain(gain_db=p["output_gain_db"]),
    )(shaped.astype(np.float32), sample_rate)


def envelope_dbfs(
    audio: np.ndarray, sample_rate: int, hold_ms: float, release_ms: float
) -> np.ndarray:
    """Causal level of ``audio`` in dBFS: instant attack, smoothed release.

    The peak of ``|audio|`` over the last ``hold_ms`` (so a low note's cycles do not ripple),
    and where that falls, a one-pole decay with time constant ``release_ms``:
    ``max(held, onepole(held))``.

    Returns:
        float64 ``[n_samples]``, dBFS (-200 for digital silence).
    """
    width = max(1, round(hold_ms * 1e-3 * sample_rate))
    held = maximum_filter1d(np.abs(audio).astype(np.float64), size=width, origin=(width - 1) // 2)
    pole = np.exp(-1.0 / (release_ms * 1e-3 * sample_rate))
    level = np.maximum(held, lfilter([1.0 - pole], [1.0, -pole], held))
    return 20.0 * np.log10(np.maximum(level, 1e-10))


def level_drive(dry: np.ndarray, notes: list[Note], sample_rate: int, p: dict) -> np.ndarray:
    """Level-dependent: quiet passages clean and bright, loud passages driven hard and dark.

    Two chains run on the whole take and are crossfaded by the dry's level (see
    :func:`envelope_dbfs`): weight 0 (clean) below ``blend_low_dbfs``, 1 (driven) above
    ``blend_high_dbfs``, a smoothstep in between.

    - clean: Distortion(clean_drive_db) -> HighpassFilter(clean_highpass_hz) -> Gain
    - driven: Distortion(hot_drive_db) -> LowpassFilter(hot_lowpass_hz) -> Gain
    """
    from pedalboard import Distortion, Gain, HighpassFilter, LowpassFilter

    clean = _board(
        Distortion(drive_db=p["clean_drive_db"]),
        HighpassFilter(cutoff_frequency_hz=p["clean_highpass_hz"]),
        Gain(gain_db=p["clean_gain_db"]),
    )(dry, sample_rate)
    hot = _board(
        Distortion(drive_db=p["hot_drive_db"]),
        LowpassFilter(cutoff_frequency_hz=p["hot_lowpass_hz"]),
        Gain(gain_db=p["hot_gain_db"]),
    )(dry, sample_rate)
    level = envelope_dbfs(dry, sample_rate, p["envelope_hold_ms"], p["envelope_release_ms"])
    x = np.clip(
        (level - p["blend_low_dbfs"]) / (p["blend_high_dbfs"] - p["blend_low_dbfs"]), 0.0, 1.0
    )
    weight = x * x * (3.0 - 2.0 * x)
    return ((1.0 - weight) * clean + weight * hot).astype(np.float32)


def pitch_bucket(midi: int, edges: list[float]) -> int:
    """Which pitch bucket a note falls in: the number of edges at or below it."""
    return int(np.searchsorted(np.asarray(edges), midi, side="right"))


def pitch_drive(dry: np.ndarray, notes: list[Note], sample_rate: int, p: dict) -> np.ndarray:
    """Pitch-dependent: each note (monophonic score) through the chain of its pitch bucket.

    The take is cut at note onsets; each piece (a note, its release and the silence after it)
    goes through a freshly reset Distortion -> filter -> Gain chosen by the note's MIDI pitch
    (buckets split at ``edges_midi``): low notes driven hard and dark, middle notes moderate,
    high notes almost clean and thinned by a high-pass.
    """
    from pedalboard import Distortion, Gain, HighpassFilter, LowpassFilter

    filters = {"lowpass": LowpassFilter, "highpass": HighpassFilter}
    chains = [
        _board(
            Distortion(drive_db=b["drive_db"]),
            filters[b["filter"]](cutoff_frequency_hz=b["cutoff_hz"]),
            Gain(gain_db=b["gain_db"]),
        )
        for b in p["buckets"]
    ]
    wet = np.zeros_like(dry)
    onsets = [note.onset for note in notes] + [dry.shape[0]]
    for note, start, stop in zip(notes, onsets[:-1], onsets[1:], strict=True):
        chain = chains[pitch_bucket(note.midi, p["edges_midi"])]
        wet[start:stop] = chain(dry[start:stop], sample_rate)
    return wet


@dataclass(frozen=True)
class PairSpec:
    """How a pair is made: description, default seed, score kind, effect and its parameters."""

    description: str
    seed: int
    polyphonic: bool
    effect: Callable[[np.ndarray, list[Note], int, dict], np.ndarray]
    params: dict


PAIRS: dict[str, PairSpec] = {
    "tanh_drive": PairSpec(
        "Static tanh drive (pedalboard Gain -> Distortion -> Gain): memoryless, one setting.",
        seed=101,
        polyphonic=True,
        effect=tanh_drive,
        params={"input_gain_db": 6.0, "drive_db": 18.0, "output_gain_db": -6.0},
    ),
    "drive_tone": PairSpec(
        "Drive with tone filters (HighpassFilter -> Distortion -> LowpassFilter -> Gain).",
        seed=202,
        polyphonic=True,
        effect=drive_tone,
        params={"highpass_hz": 150.0, "drive_db": 24.0, "lowpass_hz": 2500.0,
                "output_gain_db": -6.0},
    ),
    "fuzz": PairSpec(
        "Asymmetric fuzz: tanh(g*(x + bias)) - tanh(g*bias), then high-pass, low-pass, gain.",
        seed=303,
        polyphonic=True,
        effect=fuzz,
        params={"bias": 0.05, "drive_db": 30.0, "highpass_hz": 40.0, "lowpass_hz": 2000.0,
                "output_gain_db": -12.0},
    ),
    "level_drive": PairSpec(
        "Level-dependent: quiet playing clean and bright, loud playing driven hard and dark"
        " (two chains crossfaded by the dry's level).",
        seed=404,
        polyphonic=True,
        effect=level_drive,
        params={"clean_drive_db": 6.0, "clean_highpass_hz": 400.0, "clean_gain_db": 6.0,
                "hot_drive_db": 32.0, "hot_lowpass_hz": 1200.0, "hot_gain_db": -10.0,
                "blend_low_dbfs": -30.0, "blend_high_dbfs": -12.0,
                "envelope_hold_ms": 25.0, "envelope_release_ms": 30.0},
    ),
    "pitch_drive": PairSpec(
        "Pitch-dependent (monophonic): low notes driven hard and dark, middle notes moderate,"
        " high notes nearly clean and thin; one chain per pitch bucket, note by note.",
        seed=505,
        polyphonic=False,
        effect=pitch_drive,
        params={
            "edges_midi": [51.5, 63.5],
            "buckets": [
                {"midi": "40-51 (E2-D#3)", "drive_db": 26.0, "filter": "lowpass",
                 "cutoff_hz": 700.0, "gain_db": -8.0},
                {"midi": "52-63 (E3-D#4)", "drive_db": 14.0, "filter": "lowpass",
                 "cutoff_hz": 2500.0, "gain_db": -4.0},
                {"midi": "64-76 (E4-E5)", "drive_db": 4.0, "filter": "highpass",
                 "cutoff_hz": 600.0, "gain_db": -2.0},
            ],
        },
    ),
}  # fmt: skip


def make_pair(
    name: str, seconds: float = DEFAULT_SECONDS, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Make one pair in memory.

    Args:
        name: one of ``PAIRS``.
        seconds: length of the take (> 0).
        seed: seed of the numpy Generator; None for the pair's default seed.

    Returns:
        ``(dry, wet, sample_rate)``: float32 ``[round(seconds * 44100)]`` each, 44100 Hz.

    Raises:
        KeyError: unknown name. ValueError: ``seconds`` not positive.
    """
    dry, wet, _ = _make(name, seconds, seed)
    return dry, wet, SAMPLE_RATE


def _make(name: str, seconds: float, seed: int | None) -> tuple[np.ndarray, np.ndarray, list]:
    if name not in PAIRS:
        raise KeyError(f"unknown pair {name!r}; known: {', '.join(PAIRS)}")
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    spec = PAIRS[name]
    rng = np.random.default_rng(spec.seed if seed is None else seed)
    n_samples = round(seconds * SAMPLE_RATE)
    notes = make_score(rng, seconds, SAMPLE_RATE, spec.polyphonic)
    dry = render_score(notes, n_samples, SAMPLE_RATE, rng)
    wet = spec.effect(dry, notes, SAMPLE_RATE, spec.params)
    return dry, wet, notes


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _versions() -> dict[str, str]:
    import pedalboard
    import scipy
    import soundfile

    return {"numpy": np.__version__, "scipy": scipy.__version__,
            "pedalboard": pedalboard.__version__, "soundfile": soundfile.__version__,
            "libsndfile": soundfile.__libsndfile_version__}  # fmt: skip


def build(out: Path, names: list[str], seconds: float, manifest: Path | None, log=print) -> dict:
    """Write the pairs to ``out`` and (if ``manifest``) merge their entries into it.

    Returns:
        The manifest dictionary (entries of pairs not rebuilt are kept as they were).
    """
    from lactose_audio.atomic import atomic_write_text
    from lactose_audio.audio_io import write_audio

    out.mkdir(parents=True, exist_ok=True)
    entries = {}
    if manifest is not None and manifest.exists():
        entries = {e["name"]: e for e in json.loads(manifest.read_text())["pairs"]}
    base = manifest.parent if manifest is not None else out
    for name in names:
        spec = PAIRS[name]
        dry, wet, notes = _make(name, seconds, None)
        files = {}
        for role, audio in (("dry", dry), ("wet", wet)):
            path = out / f"{name}_{role}.wav"
            write_audio(path, audio, SAMPLE_RATE)
            files[role] = {
                "path": os.path.relpath(path, base),
                "sha256": _sha256(path),
                "peak_dbfs": round(float(20 * np.log10(np.max(np.abs(audio)))), 2),
            }
            log(
                f"wrote {path} ({dry.shape[0] / SAMPLE_RATE:.1f} s, {SAMPLE_RATE} Hz, "
                f"peak {files[role]['peak_dbfs']} dBFS, sha256 {files[role]['sha256'][:12]})"
            )
        entries[name] = {
            "name": name, "description": spec.description, "seconds": seconds,
            "n_samples": int(dry.shape[0]), "sample_rate": SAMPLE_RATE, "seed": spec.seed,
            "latency_samples": 0,
            "source": {"kind": "karplus-strong plucks", "polyphonic": spec.polyphonic,
                       "midi_range": [LOWEST_MIDI, HIGHEST_MIDI],
                       "level_range_dbfs": list(LEVEL_RANGE_DBFS), "n_notes": len(notes)},
            "effect": {"function": spec.effect.__name__, "params": spec.params},
            "files": files,
        }  # fmt: skip
    document = {
        "format": "lactose-audio-datasets",
        "version": 1,
        "generator": "scripts/make_datasets.py",
        "subtype": "FLOAT",
        "versions": _versions(),
        "pairs": [entries[n] for n in PAIRS if n in entries],
    }
    if manifest is not None:
        atomic_write_text(manifest, json.dumps(document, indent=2) + "\n")
        log(f"wrote {manifest}")
    return document


def dataset_files(name: str, folder: Path = DEFAULT_OUT, log=print) -> tuple[Path, Path]:
    """``(dry, wet)`` paths of a pair in ``folder``, building them first if missing.

    Used by the demo, the shipped-preset trainer and the quality benchmark. Missing pairs are
    built at the default length without touching the manifest (its hashes are the reference).
    """
    dry, wet = folder / f"{name}_dry.wav", folder / f"{name}_wet.wav"
    if not (dry.is_file() and wet.is_file()):
        build(folder, [name], DEFAULT_SECONDS, None, log=log)
    return dry, wet


def load_dataset(name: str, folder: Path = DEFAULT_OUT, log=print):
    """The pair ``name`` as an aligned :class:`lactose_audio.data.Pair` (latency 0: the
    datasets' effects add none; cross-correlation would read a filter's group delay)."""
    from lactose_audio.data import load_pair

    dry, wet = dataset_files(name, folder, log=log)
    return load_pair(dry, wet, latency=0)


def main(argv: list[str] | None = None) -> int:
    """Command line: build the datasets; exit 2 with one line on bad arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="audio folder")
    parser.add_argument("--only", nargs="+", metavar="NAME", help=f"of: {', '.join(PAIRS)}")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="per pair")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST,
                        help="manifest to update (default datasets/manifest.json)")  # fmt: skip
    args = parser.parse_args(argv)
    names = args.only or list(PAIRS)
    unknown = [n for n in names if n not in PAIRS]
    if unknown:
        print(f"error: unknown pair {unknown[0]!r}; known: {', '.join(PAIRS)}", file=sys.stderr)
        return 2
    if not 1.0 <= args.seconds <= 600.0:
        print(f"error: --seconds must be between 1 and 600, got {args.seconds}", file=sys.stderr)
        return 2
    from lactose_audio.errors import LactoseError

    try:
        build(args.out, names, args.seconds, args.manifest)
    except LactoseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
