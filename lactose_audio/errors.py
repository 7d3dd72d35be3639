"""The exception hierarchy of lactose_audio.

Every error a user can cause (a bad file, a bad flag, a bad preset) is a
:class:`LactoseError`; the CLI turns it into one line on stderr and exit code 2.
Anything else is a bug and exits with code 1. This module imports nothing of ours.
"""

from __future__ import annotations


class LactoseError(Exception):
    """Base class of every error lactose_audio raises on purpose."""


class ParameterError(LactoseError, ValueError):
    """A parameter, option or argument is out of its allowed range or malformed.

    The message names the value, the allowed range and the unit, e.g.
    ``cutoff_hz must be between 20 Hz and 20000 Hz, got 5 Hz``.
    """


class DataError(LactoseError):
    """Audio input is missing, unreadable, mismatched, silent or non-finite.

    The message names the file and the problem.
    """


class PresetError(LactoseError):
    """A preset file is malformed, of an unknown version, or holds invalid values."""


class DependencyError(LactoseError):
    """An optional dependency (e.g. CREPE) is needed for a feature that is unavailable."""


class ExportError(LactoseError):
    """A preset cannot be exported as a plugin (a block without a Faust kernel, a pitch key,
    a missing Faust toolchain); the message says why and what to do."""


class TrainingInterrupted(LactoseError):
    """Ctrl-C during training, after the best preset so far was saved (exit code 130)."""


__all__ = [
    "LactoseError",
    "ParameterError",
    "DataError",
    "PresetError",
    "DependencyError",
    "ExportError",
    "TrainingInterrupted",
]
