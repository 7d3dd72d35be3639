"""lactose_audio: learn interpretable, range-conditioned audio effects from dry/wet pairs.

Public names are resolved lazily so that ``import lactose_audio`` stays fast and never
imports TensorFlow until a name that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from lactose_audio.errors import (
    DataError,
    DependencyError,
    LactoseError,
    ParameterError,
    PresetError,
)

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY = {
    "load_preset": "lactose_audio.presets",
    "save_preset": "lactose_audio.presets",
    "Chain": "lactose_audio.chains",
    "render": "lactose_audio.render",
    "render_files": "lactose_audio.batch",
    "train": "lactose_audio.training",
    "RangeEdges": "lactose_audio.ranges",
    "range_index": "lactose_audio.ranges",
    "RangeBank": "lactose_audio.ranges",
    "Lactose": "lactose_audio.layers",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lactose_audio' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


__all__ = [
    "__version__",
    "LactoseError",
    "ParameterError",
    "DataError",
    "PresetError",
    "DependencyError",
    *_LAZY,
]
