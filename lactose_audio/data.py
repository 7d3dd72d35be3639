"""Dry/wet pairs: loading, validation, latency, and the train/validation split.

A *pair* is a dry recording and the same audio recorded through an effect (the wet). Before
anything is learned from it, :func:`load_pair` refuses what cannot be learned from, loudly and
in one line naming the file (:class:`~lactose_audio.errors.DataError`), and reports what is
suspicious as a one-line :class:`DataWarning`.

Definitions (the numbers are module constants):

- **Silent**: peak ``max|x|`` below ``SILENCE_DBFS`` (-90 dBFS, i.e. 3.16e-5; a 16-bit file
  whose samples never exceed ±1 LSB is silent). All-zero audio is silent.
- **DC only** (dry or wet): the standard deviation (the part that varies) is below the silence
  threshold, or below ``DC_RATIO`` (1e-3, i.e. -60 dB) times ``|mean|``. Such a signal carries
  nothing to learn from.
- **Clipped wet**: at least ``CLIP_MIN_SAMPLES`` (8) samples with ``|x| >= CLIP_LEVEL``
  (0.999). A warning, not an error: the pair still loads, with ``Pair.clipped_wet`` set.
- **Latency**: ``latency_samples > 0`` means the wet lags the dry, i.e.
  ``wet[t] ~ f(dry[t - latency_samples])``. Estimated as the lag, within ±``max_latency``
  samples, of the largest *absolute* cross-correlation of wet and dry (FFT-based). Absolute,
  so an effect that inverts polarity is still aligned correctly; a negative peak (normalised
  correlation at most ``-MIN_CORRELATION``) sets ``Pair.polarity_inverted`` and warns. With a
  given latency the flag comes from the correlation at that lag, without a warning. The wet
  is never flipped: training ends the chain with an ``invert`` stage
  (:func:`lactose_audio.training.polarity_spec`). A peak on the edge of the window is refused:
  the true latency probably lies outside it.

Alignment drops the first ``latency_samples`` samples of the wet (or the first
``-latency_samples`` of the dry) and trims both to the shorter length. This module imports only
numpy, scipy and soundfile (no TensorFlow).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lactose_audio.audio_io import FORMATS, check_finite, read_audio
from lactose_audio.audio_io import resample as resample_audio
from lactose_audio.errors import DataError, ParameterError

SILENCE_DBFS = -90.0
DC_RATIO = 1e-3
CLIP_LEVEL = 0.999
CLIP_MIN_SAMPLES = 8
#: Below this normalised correlation at the best lag, dry and wet look unrelated (warning).
MIN_CORRELATION = 0.05
DEFAULT_MAX_LATENCY = 1000
DEFAULT_VALIDATION_FRACTION = 0.15


class DataWarning(UserWarning):
    """A dry/wet pair loaded but something about it is suspicious (clipping, polarity)."""


@dataclass(frozen=True, eq=False)
class Pair:
    """An aligned dry/wet pair, ready to train on.

    Attributes:
        dry: float32 ``[n_samples]``, the effect's input.
        wet: float32 ``[n_samples]``, the effect's output, aligned to ``dry``.
        sample_rate: in Hz (the dry's; the wet was resampled to it if asked).
        latency_samples: removed latency; positive means the wet lagged the dry.
        latency_was_given: True if the latency came from the caller, False if estimated.
        clipped_wet: True if the wet file looked clipped (see module docstring).
        polarity_inverted: True if the estimated alignment correlates negatively.
        dry_name: the dry file (or label) as named in messages.
        wet_name: the wet file (or label).
        name: a short name for the pair (file stem, or the folder for NAM's layout).
        validation_fraction: the share of the end of the pair :meth:`split` holds out.
        wet_resampled_from: the wet file's original rate in Hz if it was resampled, else None.
        controls: knob captures: ``{control name: setting}`` this wet was recorded at
            (``None`` for a plain pair); selects the rows of control-keyed stages.
    """

    dry: np.ndarray
    wet: np.ndarray
    sample_rate: int
    latency_samples: int = 0
    latency_was_given: bool = False
    clipped_wet: bool = False
    polarity_inverted: bool = False
    dry_name: str = "dry"
    wet_name: str = "wet"
    name: str = "pair"
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION
    wet_resampled_from: int | None = None
    controls: dict[str, float] | None = None

    @property
    def n_samples(self) -> int:
        """Length of the aligned pair in samples."""
        return int(self.dry.shape[0])

    @property
    def seconds(self) -> float:
        """Length of the aligned pair in seconds."""
        return self.n_samples / self.sample_rate

    def split(self, validation_fraction: float | None = None) -> tuple[Pair, Pair]:
        """Split by time: see :func:`split_pair`."""
        return split_pair(self, validation_fraction)


def _check_fraction(validation_fraction: float) -> float:
    fraction = float(validation_fraction)
    if not 0.0 <= fraction < 1.0:
        raise ParameterError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
    return fraction


def split_pair(pair: Pair, validation_fraction: float | None = None) -> tuple[Pair, Pair]:
    """Split a pair by time into (train, validation); validation is the end of the pair.

    The split point is ``n_samples - round(n_samples * validation_fraction)``. Splitting by
    time (not by random segments) keeps validation audio unseen in training, including the
    tails of notes that began in the training part.

    Args:
        pair: the aligned pair.
        validation_fraction: share held out, in [0, 1); default ``pair.validation_fraction``.
            0 gives an empty validation pair.

    Returns:
        ``(train, validation)``: Pairs with the same metadata and ``[n_train]`` /
        ``[n_validation]`` audio (views of the pair's arrays).

    Raises:
        ParameterError: the fraction is outside [0, 1), or leaves no training samples.
    """
    fraction = _check_fraction(
        pair.validation_fraction if validation_fraction is None else validation_fraction
    )
    n_val = int(round(pair.n_samples * fraction))
    n_train = pair.n_samples - n_val
    if n_train < 1:
        raise ParameterError(
            f"validation_fraction {fraction} leaves no training samples of {pair.n_samples}"
        )
    train = dataclasses.replace(pair, dry=pair.dry[:n_train], wet=pair.wet[:n_train])
    validation = dataclasses.replace(pair, dry=pair.dry[n_train:], wet=pair.wet[n_train:])
    return train, validation


def _peak_dbfs(audio: np.ndarray) -> float:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def check_signal(audio: np.ndarray, name: str, role: str) -> None:
    """Refuse a silent or DC-only signal (definitions in the module docstring).

    Args:
        audio: float samples ``[n_samples]``.
        name: the file named in the message.
        role: ``"dry"`` or ``"wet"``, for the message.

    Raises:
        DataError: the signal is silent or DC only.
    """
    peak_db = _peak_dbfs(audio)
    if peak_db < SILENCE_DBFS:
        shown = "-inf" if np.isinf(peak_db) else f"{peak_db:.1f}"
        raise DataError(
            f"{name}: {role} is silent (peak {shown} dBFS, below {SILENCE_DBFS:.0f} dBFS)"
        )
    x = audio.astype(np.float64)
    mean = float(np.mean(x))
    std = float(np.std(x))
    if std < 10.0 ** (SILENCE_DBFS / 20.0) or std < DC_RATIO * abs(mean):
        raise DataError(
            f"{name}: {role} is (nearly) constant: mean {mean:.4g}, standard deviation"
            f" {std:.3g} (DC only); there is no signal to learn from"
        )


def count_clipped(audio: np.ndarray) -> int:
    """Number of samples with ``|x| >= CLIP_LEVEL``."""
    return int(np.count_nonzero(np.abs(audio) >= CLIP_LEVEL))


def estimate_latency(
    dry: np.ndarray, wet: np.ndarray, max_latency: int = DEFAULT_MAX_LATENCY
) -> tuple[int, float]:
    """Estimate how many samples the wet lags the dry, by FFT cross-correlation.

    Computes ``c[k] = sum_t wet[t + k] * dry[t]`` for ``|k| <= max_latency`` (blockwise FFTs,
    :func:`_cross_correlation`: bounded memory for any length) and returns the ``k`` of the
    largest ``|c[k]|``. Ties go to the smallest ``|k|``.

    Args:
        dry: float ``[n_dry]``.
        wet: float ``[n_wet]``.
        max_latency: search window in samples (>= 0).

    Returns:
        ``(latency_samples, correlation)``: the lag (positive = wet lags dry) and the
        normalised correlation at that lag, ``c[k] / (||dry|| * ||wet||)`` in [-1, 1]
        (negative if the wet is inverted).
    """
    n = max(dry.shape[0], wet.shape[0])
    window = int(min(max_latency, n - 1))
    lags = np.arange(-window, window + 1)
    values = _cross_correlation(dry, wet, window)
    magnitude = np.abs(values)
    # Prefer the smallest |lag| among (numerically) equal maxima.
    best = magnitude.max()
    candidates = np.flatnonzero(magnitude >= best * (1.0 - 1e-9))
    index = candidates[np.argmin(np.abs(lags[candidates]))]
    norm = float(np.linalg.norm(dry.astype(np.float64)) * np.linalg.norm(wet.astype(np.float64)))
    correlation = float(values[index] / norm) if norm > 0 else 0.0
    return int(lags[index]), correlation


#: Dry samples per block of the cross-correlation: memory stays ~100 MB for any length.
XCORR_BLOCK = 1 << 20


def _cross_correlation(dry: np.ndarray, wet: np.ndarray, window: int) -> np.ndarray:
    """``c[k] = sum_t wet[t + k] * dry[t]`` for ``k`` in ``[-window, window]``, float64.

    Block by block over the dry signal (overlap-save: each block of :data:`XCORR_BLOCK` dry
    samples against the wet samples it can meet, one real FFT each), so a long pair needs
    memory for one block, not for the whole file. Out-of-range samples count as zero.
    """
    from scipy import fft

    out = np.zeros(2 * window + 1, np.float64)
    n_wet = wet.shape[0]
    for start in range(0, dry.shape[0], XCORR_BLOCK):
        d = dry[start : start + XCORR_BLOCK].astype(np.float64)
        lo, hi = start - window, start + d.size + window  # wet[t + k] for t in the block
        w = np.zeros(hi - lo, np.float64)
        a, b = max(lo, 0), min(hi, n_wet)
        if b > a:
            w[a - lo : b - lo] = wet[a:b]
        n_fft = fft.next_fast_len(w.size + d.size, real=True)
        corr = fft.irfft(fft.rfft(w, n_fft) * np.conj(fft.rfft(d, n_fft)), n_fft)
        out += corr[: 2 * window + 1]  # corr[j] = sum_t w[t + j] d[t], lag k = j - window
    return out


def _check_int(name: str, value: object, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ParameterError(f"{name} must be an integer number of samples, got {value!r}")
    if minimum is not None and value < minimum:
        raise ParameterError(f"{name} must be {minimum} samples or more, got {value}")
    return int(value)


def pair_from_arrays(
    dry: np.ndarray,
    wet: np.ndarray,
    sample_rate: int,
    *,
    latency: int | None = None,
    max_latency: int = DEFAULT_MAX_LATENCY,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    dry_name: str = "dry",
    wet_name: str = "wet",
    name: str = "pair",
    wet_resampled_from: int | None = None,
) -> Pair:
    """Validate and align in-memory dry/wet audio of one sample rate (see :func:`load_pair`).

    Args:
        dry: float ``[n_dry]``.
        wet: float ``[n_wet]``, at ``sample_rate``.
        sample_rate: Hz.
        latency: known latency in samples (positive = wet lags dry); None to estimate it.
        max_latency: latency search window and length tolerance, in samples.
        validation_fraction: stored on the pair for :meth:`Pair.split`, in [0, 1).
        dry_name: name of the dry in messages.
        wet_name: name of the wet in messages.
        name: short name of the pair.
        wet_resampled_from: recorded on the pair (the wet's original rate, Hz).

    Returns:
        The aligned :class:`Pair`.

    Raises:
        DataError: non-finite, silent or DC-only audio; lengths differing by more than the
            window; latency on the edge of the window; nothing left after alignment.
        ParameterError: malformed options or arrays.
    """
    max_latency = _check_int("max_latency", max_latency, minimum=0)
    if latency is not None:
        latency = _check_int("latency", latency)
    fraction = _check_fraction(validation_fraction)
    arrays = []
    for role, label, audio in (("dry", dry_name, dry), ("wet", wet_name, wet)):
        audio = np.asarray(audio)
        if audio.ndim != 1:
            raise ParameterError(f"{label}: {role} must have shape [n_samples], got {audio.shape}")
        if audio.shape[0] == 0:
            raise DataError(f"{label}: is empty (0 samples)")
        audio = audio.astype(np.float32, copy=False)
        check_finite(audio, label, sample_rate)
        check_signal(audio, label, role)
        arrays.append(audio)
    dry, wet = arrays

    tolerance = max(max_latency, abs(latency) if latency is not None else 0)
    difference = wet.shape[0] - dry.shape[0]
    if abs(difference) > tolerance:
        raise DataError(
            f"{wet_name}: {wet.shape[0]} samples ({wet.shape[0] / sample_rate:.3f} s) but"
            f" {dry_name} has {dry.shape[0]} ({dry.shape[0] / sample_rate:.3f} s); lengths"
            f" differ by {abs(difference)} samples, more than the latency window of"
            f" {tolerance} samples (trim the files or raise --max-latency)"
        )

    n_clipped = count_clipped(wet)
    clipped = n_clipped >= CLIP_MIN_SAMPLES
    if clipped:
        warnings.warn(
            f"{wet_name}: wet looks clipped ({n_clipped} samples at |x| >= {CLIP_LEVEL});"
            " record it with more headroom if you can",
            DataWarning,
            stacklevel=3,
        )

    inverted = False
    if latency is None:
        latency, correlation = estimate_latency(dry, wet, max_latency)
        if max_latency > 0 and abs(latency) == max_latency:
            raise DataError(
                f"{wet_name}: best alignment is at the edge of the latency window"
                f" ({latency} samples of ±{max_latency}); the latency may be larger: raise"
                " --max-latency or pass --latency"
            )
        inverted = correlation <= -MIN_CORRELATION
        if abs(correlation) < MIN_CORRELATION:
            warnings.warn(
                f"{wet_name}: correlates only {abs(correlation):.3f} with {dry_name} at the"
                " best alignment; are they recordings of the same audio?",
                DataWarning,
                stacklevel=3,
            )
        elif inverted:
            warnings.warn(
                f"{wet_name}: the effect inverts polarity (correlation {correlation:.3f} at"
                f" {latency} samples); training ends the chain with an invert stage",
                DataWarning,
                stacklevel=3,
            )
        given = False
    else:
        given = True

    if latency >= 0:
        dry_aligned, wet_aligned = dry, wet[latency:]
    else:
        dry_aligned, wet_aligned = dry[-latency:], wet
    n = min(dry_aligned.shape[0], wet_aligned.shape[0])
    if n < 1:
        raise DataError(f"{wet_name}: nothing left after removing a latency of {latency} samples")
    if given:  # the polarity at the given latency (no warning: the user aligned the pair)
        d = dry_aligned[:n].astype(np.float64)
        w = wet_aligned[:n].astype(np.float64)
        norm = float(np.sqrt(np.dot(d, d) * np.dot(w, w)))
        inverted = norm > 0 and float(np.dot(d, w)) <= -MIN_CORRELATION * norm
    return Pair(
        dry=np.ascontiguousarray(dry_aligned[:n]),
        wet=np.ascontiguousarray(wet_aligned[:n]),
        sample_rate=int(sample_rate),
        latency_samples=int(latency),
        latency_was_given=given,
        clipped_wet=clipped,
        polarity_inverted=inverted,
        dry_name=dry_name,
        wet_name=wet_name,
        name=name,
        validation_fraction=fraction,
        wet_resampled_from=wet_resampled_from,
    )


def load_pair(
    dry_path: str | os.PathLike[str],
    wet_path: str | os.PathLike[str],
    *,
    channel: int | None = None,
    resample: bool = False,
    latency: int | None = None,
    max_latency: int = DEFAULT_MAX_LATENCY,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    name: str | None = None,
) -> Pair:
    """Load, validate and align a dry/wet pair of audio files.

    Refuses (DataError, one line naming the file): a missing or unreadable file; a
    multi-channel file without ``channel``; 0 samples; NaN/inf samples; a sample-rate mismatch
    unless ``resample``; lengths differing by more than ``max_latency`` samples (or ``|latency|``
    if larger); a silent or DC-only dry or wet; an estimated latency on the window's edge.
    Warns (:class:`DataWarning`) on a clipped wet, an inverted polarity, or a very low
    correlation. Definitions are in the module docstring.

    Args:
        dry_path: the effect's input recording.
        wet_path: the same audio recorded through the effect.
        channel: 0-based channel used for any multi-channel file (mono files are read as is).
        resample: if True, a wet at another rate is converted to the dry's rate (never
            silently: without it a mismatch is an error).
        latency: known latency in samples (positive = wet lags dry) to use instead of
            estimating it.
        max_latency: latency search window (±samples) and length tolerance.
        validation_fraction: share of the end held out by :meth:`Pair.split`, in [0, 1).
        name: short name of the pair (default: the dry file's stem without ``_dry``).

    Returns:
        The aligned :class:`Pair` (float32 dry and wet of equal length).

    Raises:
        DataError: see above.
        ParameterError: malformed options (negative window, bad channel, bad fraction).
    """
    dry_name, wet_name = os.fspath(dry_path), os.fspath(wet_path)
    dry, dry_sr = read_audio(dry_path, channel, label=dry_name)
    wet, wet_sr = read_audio(wet_path, channel, label=wet_name)
    resampled_from = None
    if wet_sr != dry_sr:
        if not resample:
            raise DataError(
                f"{wet_name}: sample rate {wet_sr} Hz does not match {dry_name} ({dry_sr} Hz);"
                f" pass --resample to convert the wet to {dry_sr} Hz"
            )
        wet = resample_audio(wet, wet_sr, dry_sr)
        resampled_from = wet_sr
    if name is None:
        stem = Path(dry_name).stem
        name = stem[: -len("_dry")] if stem.endswith("_dry") else stem
    return pair_from_arrays(
        dry,
        wet,
        dry_sr,
        latency=latency,
        max_latency=max_latency,
        validation_fraction=validation_fraction,
        dry_name=dry_name,
        wet_name=wet_name,
        name=name,
        wet_resampled_from=resampled_from,
    )


def find_pairs(folder: str | os.PathLike[str]) -> list[tuple[str, Path, Path]]:
    """Find the dry/wet pairs in a folder (not recursive).

    Two layouts are accepted: ``<name>_dry.<ext>`` with ``<name>_wet.<ext>`` (matched by
    name; extensions may differ), and NAM's ``input.<ext>`` with ``output.<ext>`` (named after
    the folder). ``<ext>`` is any of .wav, .flac, .aif, .aiff (any case). Files with other
    extensions and hidden files are ignored; an audio file that fits neither layout, or lacks
    its partner, is refused.

    Args:
        folder: the directory to scan.

    Returns:
        ``[(name, dry_path, wet_path)]`` sorted by name.

    Raises:
        DataError: the folder is missing, holds no pairs, holds an unmatched audio file, or
            holds two files for the same role.
    """
    root = Path(folder)
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: is not a folder")
    roles: dict[tuple[str, str], Path] = {}
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in FORMATS or path.is_dir():
            continue
        stem = path.stem
        if stem in ("input", "output"):
            key = (root.resolve().name or "pair", "dry" if stem == "input" else "wet")
        elif stem.endswith(("_dry", "_wet")) and len(stem) > 4:
            key = (stem[:-4], stem[-3:])
        else:
            raise DataError(
                f"{path}: does not fit a pair layout (<name>_dry/<name>_wet or"
                " input/output); move it out of the folder"
            )
        if key in roles:
            raise DataError(f"{path}: a second {key[1]} file for {key[0]!r} ({roles[key].name})")
        roles[key] = path
    names = sorted({name for name, _ in roles})
    pairs = []
    for name in names:
        dry, wet = roles.get((name, "dry")), roles.get((name, "wet"))
        if dry is None or wet is None:
            present = dry or wet
            missing = "wet" if wet is None else "dry"
            raise DataError(f"{present}: has no matching {missing} file in {root}")
        pairs.append((name, dry, wet))
    if not pairs:
        raise DataError(
            f"{root}: no dry/wet pairs found (expected <name>_dry.wav with <name>_wet.wav,"
            " or input.wav with output.wav)"
        )
    return pairs


def load_pairs(folder: str | os.PathLike[str], **options: object) -> list[Pair]:
    """Load every dry/wet pair of a folder (layouts as in :func:`find_pairs`).

    Args:
        folder: the directory to scan.
        **options: passed to :func:`load_pair` (``channel``, ``resample``, ``latency``,
            ``max_latency``, ``validation_fraction``).

    Returns:
        One :class:`Pair` per pair found, sorted by name.

    Raises:
        DataError: as :func:`find_pairs` and :func:`load_pair`.
    """
    return [
        load_pair(dry, wet, name=name, **options)  # type: ignore[arg-type]
        for name, dry, wet in find_pairs(folder)
    ]


__all__ = [
    "CLIP_LEVEL",
    "CLIP_MIN_SAMPLES",
    "DC_RATIO",
    "SILENCE_DBFS",
    "DataWarning",
    "Pair",
    "check_signal",
    "count_clipped",
    "estimate_latency",
    "find_pairs",
    "load_pair",
    "load_pairs",
    "pair_from_arrays",
    "split_pair",
]
