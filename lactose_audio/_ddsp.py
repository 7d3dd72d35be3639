"""The one place that imports ddsp 3.7.0.

ddsp imports ``crepe`` at module level (for its CREPE pitch tracker and loss), but
crepe's build downloads model weights from the internet and its pins are stale, so
lactose_audio does not install it: pitch is tracked with librosa's pyin. When
``crepe`` cannot be imported we register a placeholder module whose every attribute
raises :class:`~lactose_audio.errors.DependencyError`, then import ddsp. A real crepe,
when installed, is used and never shadowed.

Use: ``from lactose_audio._ddsp import ddsp``.
"""

from __future__ import annotations

import importlib.util
import sys
import types

from lactose_audio._tf import _import_tensorflow
from lactose_audio.errors import DependencyError

_import_tensorflow()  # the quiet TF import must come before ddsp imports it

_CREPE_MESSAGE = (
    "CREPE is not installed: lactose_audio tracks pitch with librosa's pyin "
    "(--key pitch); CREPE-based ddsp functions are unavailable"
)


class _CrepePlaceholder(types.ModuleType):
    """Stands in for ``crepe``; any use raises a clear DependencyError."""

    __lactose_placeholder__ = True

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise DependencyError(f"{_CREPE_MESSAGE} (ddsp asked for crepe.{name})")


def _ensure_crepe() -> bool:
    """Register the placeholder if no real crepe is importable. Returns True if real."""
    existing = sys.modules.get("crepe")
    if existing is not None:
        return not getattr(existing, "__lactose_placeholder__", False)
    try:
        if importlib.util.find_spec("crepe") is not None:
            import crepe  # noqa: F401

            return True
    except Exception:  # a broken crepe install is as good as none
        pass
    sys.modules["crepe"] = _CrepePlaceholder("crepe")
    return False


HAS_REAL_CREPE = _ensure_crepe()

import ddsp  # noqa: E402
import ddsp.core  # noqa: E402,F401
import ddsp.losses  # noqa: E402,F401
import ddsp.spectral_ops  # noqa: E402,F401

__all__ = ["ddsp", "HAS_REAL_CREPE"]
