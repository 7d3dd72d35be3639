"""Audio file I/O: reading to float32 mono, atomic writing, and the resampling policy.

Conventions (see ``docs/internals.md``):

- Audio at this boundary is ``np.float32`` with shape ``[n_samples]``, full scale ±1.0.
- Channels are never guessed: a multi-channel file is refused unless the caller names the
  channel to use (``channel``, 0-based; ``--channel`` on the command line).
- Every file this package writes goes through one atomic mechanism,
  :func:`lactose_audio.atomic.atomic_write` (temporary file, fsync, ``os.replace``): a failed
  or interrupted write leaves any existing destination untouched.
- Resampling policy: lactose_audio never resamples silently. A sample-rate mismatch between a
  dry and a wet file is an error unless the user asks for ``--resample``, which converts the wet
  to the dry's rate with :func:`resample` (polyphase, ``scipy.signal.resample_poly``).

This module imports only numpy, scipy and soundfile (no TensorFlow).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import numpy as np
import soundfile as sf

from lactose_audio.atomic import atomic_write
from lactose_audio.errors import DataError, ParameterError

#: File extension (lower case) -> soundfile container format.
FORMATS: dict[str, str] = {".wav": "WAV", ".flac": "FLAC", ".aif": "AIFF", ".aiff": "AIFF"}

#: Integer subtypes write_audio accepts (opt-in; they clip beyond ±1.0).
INTEGER_SUBTYPES: tuple[str, ...] = ("PCM_16", "PCM_24", "PCM_32")

#: Float subtypes write_audio accepts (no clipping; an effect's output may exceed 0 dBFS).
FLOAT_SUBTYPES: tuple[str, ...] = ("FLOAT", "DOUBLE")

# libsndfile command that turns off the PEAK chunk of float WAV/AIFF files. That chunk holds a
# wall-clock timestamp, so without this the same audio would give different bytes every run.
_SFC_SET_ADD_PEAK_CHUNK = 0x1050


class ClippingWarning(UserWarning):
    """Samples beyond ±1.0 were clipped when writing an integer subtype."""


def _label(path: str | os.PathLike[str], label: str | None) -> str:
    return label if label is not None else os.fspath(path)


def read_audio(
    path: str | os.PathLike[str], channel: int | None = None, *, label: str | None = None
) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 mono.

    Reads anything soundfile reads (WAV, FLAC, AIFF; 8/16/24/32-bit integer and 32/64-bit
    float). Integer samples are scaled to ±1.0 full scale; float samples are kept as they are
    (they may exceed ±1.0).

    Args:
        path: the file to read.
        channel: 0-based channel to take from a multi-channel file. Required when the file has
            more than one channel (never guessed, never mixed down). A mono file has a single
            signal and is returned as is, whatever ``channel`` says.
        label: name of the file in error messages (default: ``path`` as given).

    Returns:
        ``(audio, sample_rate)``: ``audio`` is float32 ``[n_samples]``, ``sample_rate`` in Hz.

    Raises:
        DataError: the file is missing, not a file, unreadable or not audio, has 0 samples,
            holds NaN/inf samples, or has several channels and ``channel`` is None.
        ParameterError: ``channel`` is negative or beyond the file's channels.
    """
    name = _label(path, label)
    with _open(path, channel, name) as handle:
        sample_rate = int(handle.samplerate)
        try:
            data = handle.read(dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError) as exc:
            raise DataError(f"{name}: cannot read as audio ({_reason(exc)})") from None
    index = 0 if data.shape[1] == 1 else int(channel)  # type: ignore[arg-type]
    audio = np.ascontiguousarray(data[:, index])
    if audio.size == 0:
        raise DataError(f"{name}: is empty (0 samples)")
    check_finite(audio, name, int(sample_rate))
    return audio, int(sample_rate)


def _reason(exc: BaseException) -> str:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return reason


def _open(path: str | os.PathLike[str], channel: int | None, name: str) -> sf.SoundFile:
    """Open ``path`` for reading after the checks every reader shares (one-line errors).

    Raises:
        DataError: missing, a directory, unreadable or not audio; several channels and
            ``channel`` is None.
        ParameterError: ``channel`` is not a valid index for the file.
    """
    if channel is not None and (
        isinstance(channel, bool) or not isinstance(channel, int | np.integer)
    ):
        raise ParameterError(f"channel must be an integer channel index, got {channel!r}")
    if channel is not None and channel < 0:
        raise ParameterError(f"channel must be 0 or more (0-based index), got {channel}")
    if not os.path.exists(path):
        raise DataError(f"{name}: no such file")
    if os.path.isdir(path):
        raise DataError(f"{name}: is a directory, not an audio file")
    try:
        handle = sf.SoundFile(os.fspath(path))
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError) as exc:
        reason = _reason(exc).replace(f"Error opening {os.fspath(path)!r}: ", "")
        raise DataError(f"{name}: cannot read as audio ({reason})") from None
    except OSError as exc:
        raise DataError(f"{name}: cannot read ({exc.strerror or exc})") from None
    n_channels = handle.channels
    if n_channels > 1:
        handle.close()
        if channel is None:
            raise DataError(
                f"{name}: has {n_channels} channels; choose one with --channel 0..{n_channels - 1}"
                " (channels are never guessed or mixed)"
            )
        if channel >= n_channels:
            raise ParameterError(
                f"{name}: channel {channel} does not exist; the file has {n_channels} channels"
                f" (0..{n_channels - 1})"
            )
        handle = sf.SoundFile(os.fspath(path))
    return handle


#: Samples per block of :class:`AudioReader` (1.5 s at 44.1 kHz; 256 KiB per channel).
DEFAULT_BLOCK_SIZE = 65536


class AudioReader:
    """One channel of an audio file, read block by block as float32 (bounded memory).

    Same checks and messages as :func:`read_audio` (missing, not audio, channels, empty,
    NaN/inf: the latter per block, naming the sample's position in the file). A file must be
    seekable to be streamed (the reader starts blocks at any position: ``lactose eval`` aligns
    the pair by skipping the latency); soundfile opens pipes and some streamed formats as not
    seekable, and those are refused.

    Use as a context manager: ``with AudioReader(path) as reader: for block in reader.blocks():``.

    Args:
        path: the file to read.
        channel: 0-based channel of a multi-channel file (required there; never guessed).
        label: name of the file in error messages (default: ``path`` as given).

    Attributes:
        sample_rate: Hz.
        n_samples: length of the file, samples (from its header).

    Raises:
        DataError: as :func:`read_audio`; or the file cannot be streamed (not seekable).
        ParameterError: a bad ``channel``.
    """

    def __init__(
        self, path: str | os.PathLike[str], channel: int | None = None, *, label: str | None = None
    ) -> None:
        self.name = _label(path, label)
        self._handle = _open(path, channel, self.name)
        if not self._handle.seekable():
            self._handle.close()
            raise DataError(
                f"{self.name}: cannot be streamed: soundfile cannot seek in it (a pipe or a "
                "streamed format); save it as a regular WAV/FLAC/AIFF file first"
            )
        self._index = 0 if self._handle.channels == 1 else int(channel)  # type: ignore[arg-type]
        self.sample_rate = int(self._handle.samplerate)
        self.n_samples = int(self._handle.frames)
        if self.n_samples == 0:
            self._handle.close()
            raise DataError(f"{self.name}: is empty (0 samples)")

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._handle.close()

    def read(self, start: int, n_samples: int) -> np.ndarray:
        """float32 ``[k]`` samples ``start .. start + n_samples`` (``k`` < ``n_samples`` only at
        the end of the file).

        Raises:
            DataError: unreadable data, or NaN/inf samples (named by position in the file).
        """
        start = int(start)
        try:
            self._handle.seek(start)
            data = self._handle.read(int(n_samples), dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError) as exc:
            raise DataError(f"{self.name}: cannot read as audio ({_reason(exc)})") from None
        block = np.ascontiguousarray(data[:, self._index])
        check_finite(block, self.name, self.sample_rate, offset=start)
        return block

    def blocks(
        self, block_size: int = DEFAULT_BLOCK_SIZE, start: int = 0, stop: int | None = None
    ) -> Iterator[np.ndarray]:
        """Consecutive float32 blocks of ``block_size`` samples (the last may be shorter)
        covering samples ``start .. stop`` (default: to the end of the file)."""
        stop = self.n_samples if stop is None else min(int(stop), self.n_samples)
        position = int(start)
        while position < stop:
            block = self.read(position, min(int(block_size), stop - position))
            if block.size == 0:  # the header promised more than the file holds
                return
            yield block
            position += block.size


def check_finite(
    audio: np.ndarray, name: str, sample_rate: int | None = None, *, offset: int = 0
) -> None:
    """Refuse audio holding NaN or infinite samples.

    Args:
        audio: samples, any shape.
        name: the file (or signal) named in the message.
        sample_rate: if given (Hz), the first bad sample's time is named too.
        offset: index of ``audio``'s first sample in the file (block-wise reads), samples.

    Raises:
        DataError: naming how many samples are non-finite and where the first one is.
    """
    bad = ~np.isfinite(audio)
    if bad.any():
        flat = np.flatnonzero(bad.reshape(-1))
        first = int(flat[0]) + int(offset)
        where = f"sample {first}"
        if sample_rate:
            where += f" ({first / sample_rate:.3f} s)"
        raise DataError(f"{name}: {flat.size} non-finite samples (NaN or inf), first at {where}")


def _format_for(path: str | os.PathLike[str]) -> str:
    ext = Path(path).suffix.lower()
    fmt = FORMATS.get(ext)
    if fmt is None:
        allowed = ", ".join(FORMATS)
        raise ParameterError(
            f"{os.fspath(path)}: unknown audio extension {ext or '(none)'!r}; use one of {allowed}"
        )
    return fmt


def check_output_path(
    path: str | os.PathLike[str], suffixes: tuple[str, ...] | None = None
) -> Path:
    """Refuse an output path before any work is done (one-line ParameterError).

    Args:
        path: where a command will write.
        suffixes: allowed extensions (lower case, with the dot); default: the audio formats.

    Returns:
        The path.

    Raises:
        ParameterError: unknown extension, an existing directory, a missing or unwritable
            parent directory.
    """
    out = Path(path)
    allowed = tuple(FORMATS) if suffixes is None else suffixes
    if out.suffix.lower() not in allowed:
        raise ParameterError(
            f"{os.fspath(path)}: unknown extension {out.suffix or '(none)'!r}; use one of "
            f"{', '.join(allowed)}"
        )
    if out.is_dir():
        raise ParameterError(f"{os.fspath(path)}: is a directory")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise ParameterError(f"{os.fspath(path)}: folder {os.fspath(parent)} does not exist")
    if not os.access(parent, os.W_OK):
        raise ParameterError(f"{os.fspath(path)}: folder {os.fspath(parent)} is not writable")
    return out


def write_audio(
    path: str | os.PathLike[str],
    audio: np.ndarray,
    sample_rate: int,
    subtype: str | None = None,
) -> None:
    """Write mono audio atomically.

    The container comes from the extension (``.wav``, ``.flac``, ``.aif``, ``.aiff``). The
    default subtype is 32-bit float (``"FLOAT"``) for WAV and AIFF, because an effect's output
    may exceed 0 dBFS and float keeps it; FLAC stores integers only, so its default is
    ``"PCM_24"``. Integer subtypes (``"PCM_16"``, ``"PCM_24"``, ``"PCM_32"``) are opt-in: samples
    beyond ±1.0 are clipped and a :class:`ClippingWarning` is emitted (one line, naming the file
    and the number of samples clipped); the function itself returns nothing.

    The file is written to a temporary file in the same directory, fsync'ed and moved over
    ``path``; on any failure or interrupt the temporary file is removed and an existing ``path``
    is left untouched. Float WAV files are written without libsndfile's PEAK chunk (which holds
    a timestamp), so the same audio always gives the same bytes; AIFF float files keep it
    (libsndfile writes a wrong frame count without it), so their bytes vary with the time.

    Args:
        path: destination file.
        audio: float samples ``[n_samples]`` (mono), full scale ±1.0.
        sample_rate: in Hz, a positive integer.
        subtype: soundfile subtype, ``"FLOAT"``, ``"DOUBLE"``, ``"PCM_16"``, ``"PCM_24"`` or
            ``"PCM_32"``; None for the format's default (see above).

    Raises:
        ParameterError: unknown extension, unsupported subtype for the format, bad sample rate,
            or audio that is not one-dimensional. Checked before anything is written.
        DataError: the audio holds NaN/inf, or the file cannot be written (missing directory,
            permissions, full disk).
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ParameterError(
            f"{os.fspath(path)}: audio must be mono with shape [n_samples], got shape {audio.shape}"
        )
    _write_blocks(path, [audio], sample_rate, subtype, stacklevel=3)


def write_audio_blocks(
    path: str | os.PathLike[str],
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    subtype: str | None = None,
) -> int:
    """Write mono audio given block by block, atomically (:func:`write_audio` for streams).

    Same formats, subtypes, clipping rule and atomicity as :func:`write_audio`: the blocks go
    to a temporary file in the destination's folder, which replaces ``path`` only once the
    last block is written. If ``blocks`` raises (a failed render, an interrupt) or a block is
    bad, the temporary file is removed and an existing ``path`` is left untouched. The
    :class:`ClippingWarning` of an integer subtype counts the clipped samples of all blocks
    (one warning, after the file is complete).

    Args:
        path: destination file.
        blocks: float ``[n_i]`` mono blocks, in order (consumed once).
        sample_rate: in Hz, a positive integer.
        subtype: as :func:`write_audio`.

    Returns:
        The number of samples written.

    Raises:
        ParameterError: unknown extension, unsupported subtype, bad sample rate (before
            anything is written), or a block that is not one-dimensional.
        DataError: a block holds NaN/inf, or the file cannot be written.
    """
    return _write_blocks(path, blocks, sample_rate, subtype, stacklevel=3)


def _write_blocks(path, blocks, sample_rate, subtype, *, stacklevel: int) -> int:
    """The one writer behind :func:`write_audio` and :func:`write_audio_blocks`."""
    fmt = _format_for(path)
    name = os.fspath(path)
    if subtype is None:
        subtype = "PCM_24" if fmt == "FLAC" else "FLOAT"
    subtype = str(subtype).upper()
    if subtype not in FLOAT_SUBTYPES + INTEGER_SUBTYPES or not sf.check_format(fmt, subtype):
        ok = [s for s in FLOAT_SUBTYPES + INTEGER_SUBTYPES if sf.check_format(fmt, s)]
        raise ParameterError(
            f"{name}: subtype {subtype!r} is not supported for {fmt}; use one of {', '.join(ok)}"
        )
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise ParameterError(f"sample_rate must be an integer in Hz, got {sample_rate!r}")
    if sample_rate <= 0:
        raise ParameterError(f"sample_rate must be positive, got {sample_rate} Hz")
    dtype = np.float64 if subtype == "DOUBLE" else np.float32
    if isinstance(blocks, list) and len(blocks) == 1:  # a whole file: refuse NaN before writing
        check_finite(np.asarray(blocks[0]), name, int(sample_rate))
    totals = {"clipped": 0, "written": 0}

    def write(handle: IO[bytes]) -> None:
        with sf.SoundFile(
            handle, "w", samplerate=int(sample_rate), channels=1, subtype=subtype, format=fmt
        ) as out:
            if fmt == "WAV":  # in AIFF float files libsndfile then miscounts the frames
                _disable_peak_chunk(out)
            for block in blocks:
                block = np.asarray(block)
                if block.ndim != 1:
                    raise ParameterError(
                        f"{name}: audio must be mono with shape [n_samples], got shape "
                        f"{block.shape}"
                    )
                block = block.astype(dtype, copy=False)
                check_finite(block, name, int(sample_rate), offset=totals["written"])
                if subtype in INTEGER_SUBTYPES:
                    n_clipped = int(np.count_nonzero(np.abs(block) > 1.0))
                    if n_clipped:
                        # libsndfile's float->int conversion does not clip by default; clip
                        # here so a peak above full scale saturates instead of wrapping around.
                        block = np.clip(block, -1.0, 1.0)
                        totals["clipped"] += n_clipped
                out.write(block)
                totals["written"] += block.size

    atomic_write(path, write)
    if totals["clipped"]:
        warnings.warn(
            f"{name}: {totals['clipped']} samples beyond ±1.0 clipped when writing {subtype}; "
            "write a float file to keep them",
            ClippingWarning,
            stacklevel=stacklevel,
        )
    return totals["written"]


def _disable_peak_chunk(out: sf.SoundFile) -> None:
    # soundfile exposes no public call for this libsndfile command; if its internals change,
    # the only loss is byte-for-byte reproducibility of float files.
    try:
        sf._snd.sf_command(out._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)
    except AttributeError:  # pragma: no cover - depends on the soundfile version
        pass


def resample(audio: np.ndarray, from_sr: int, to_sr: int) -> np.ndarray:
    """Convert audio from one sample rate to another (polyphase FIR, anti-aliased).

    Uses ``scipy.signal.resample_poly`` with the exact rational ratio ``to_sr / from_sr``
    (e.g. 48000 -> 44100 Hz is up 147, down 160). Output length is
    ``ceil(n_samples * to_sr / from_sr)``. Only called when the user asks for it
    (``--resample``); lactose_audio never resamples silently.

    Args:
        audio: float samples ``[n_samples]``.
        from_sr: the audio's sample rate in Hz.
        to_sr: the wanted sample rate in Hz.

    Returns:
        float32 ``[ceil(n_samples * to_sr / from_sr)]``; a float32 copy if the rates are equal.

    Raises:
        ParameterError: a rate is not a positive integer, or audio is not one-dimensional.
    """
    from scipy.signal import resample_poly

    for label, rate in (("from_sr", from_sr), ("to_sr", to_sr)):
        if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate <= 0:
            raise ParameterError(f"{label} must be a positive integer in Hz, got {rate!r}")
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ParameterError(f"audio must have shape [n_samples], got shape {audio.shape}")
    if from_sr == to_sr:
        return audio.astype(np.float32, copy=True)
    divisor = math.gcd(int(from_sr), int(to_sr))
    up, down = int(to_sr) // divisor, int(from_sr) // divisor
    out = resample_poly(audio.astype(np.float64), up, down)
    return out.astype(np.float32)


__all__ = [
    "FORMATS",
    "ClippingWarning",
    "check_finite",
    "read_audio",
    "resample",
    "write_audio",
    "write_audio_blocks",
    "AudioReader",
    "DEFAULT_BLOCK_SIZE",
]
