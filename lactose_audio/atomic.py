"""The one atomic-write mechanism of the package: temporary file, fsync, ``os.replace``.

Every file lactose_audio writes (audio, presets, JSON, plots, checkpoints, plugin sources)
goes through :func:`atomic_write`: the data is written to a temporary file in the destination
directory, flushed and fsync'ed, then moved over the destination with ``os.replace``, and the
directory is fsync'ed. A failed or interrupted write (including ``KeyboardInterrupt``) removes
the temporary file and leaves any existing destination untouched.

Inside :func:`deferred_directory_sync` (batch rendering) the directory fsync -- which only
makes the rename itself durable; the data is fsync'ed before the rename either way, so
whichever name survives a crash holds a complete file -- happens once per directory when the
block ends instead of once per file.

Standard library only.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import IO

from lactose_audio.errors import DataError


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write bytes to ``path`` atomically (temporary file in the same directory, then rename).

    Args:
        path: destination file.
        data: the complete contents.

    Raises:
        DataError: the file cannot be written; an existing ``path`` is left untouched.
    """
    payload = bytes(data)
    atomic_write(path, lambda handle: handle.write(payload))


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write text to ``path`` atomically; newlines are written as given (no translation).

    Args:
        path: destination file.
        text: the complete contents.
        encoding: text encoding, UTF-8 by default.

    Raises:
        DataError: the file cannot be written; an existing ``path`` is left untouched.
    """
    atomic_write_bytes(path, text.encode(encoding))


def _new_file_mode(path: str) -> int:
    """Permissions for the destination: an existing file's, else 0o666 minus the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> None:
    """The one atomic-write mechanism: temp file in the same directory, fsync, os.replace.

    Args:
        path: destination file.
        write: called with the temporary file opened for binary writing; writes the contents.

    Raises:
        DataError: on an OSError (missing directory, permissions, full disk). Any other
            exception raised by ``write`` (and KeyboardInterrupt) propagates unchanged. In every
            failure case the temporary file is removed and ``path`` is untouched.
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise DataError(f"{target}: cannot write, directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=directory
        )
    except OSError as exc:
        raise DataError(f"{target}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "w+b") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
    except BaseException as exc:
        _unlink_quietly(tmp)
        if isinstance(exc, OSError):
            raise DataError(f"{target}: cannot write ({exc.strerror or exc})") from None
        raise
    pending = _DEFERRED.get()
    if pending is None:
        _fsync_directory(directory)
    else:
        pending.add(directory)


#: Directories whose fsync :func:`deferred_directory_sync` postpones (None: not deferred).
_DEFERRED: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "lactose_deferred_directory_sync", default=None
)


@contextlib.contextmanager
def deferred_directory_sync() -> Iterator[None]:
    """Within the block, :func:`atomic_write` fsyncs each destination directory once, at the
    end (also when the block raises), instead of after every file.

    Every file is still written to a temporary file, fsync'ed and renamed: only the
    durability of the renames waits for the end of the block. A batch render's chunk of up
    to 4 files into one folder makes 5 fsyncs instead of 8 (measured: ``--jobs 2`` over
    ``--jobs 1`` 1.59x before, 1.62x after, within the run-to-run spread). Per thread and task
    (a context variable); nested blocks sync at the outermost one's end.
    """
    if _DEFERRED.get() is not None:
        yield
        return
    pending: set[str] = set()
    token = _DEFERRED.set(pending)
    try:
        yield
    finally:
        _DEFERRED.reset(token)
        for directory in sorted(pending):
            _fsync_directory(directory)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; not possible on every platform, so best effort.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platform dependent
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - platform dependent
        pass
    finally:
        os.close(fd)


__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "deferred_directory_sync"]
