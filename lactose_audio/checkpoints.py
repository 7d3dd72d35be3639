"""Training checkpoints: the trainer's state in one ``.npz`` (arrays + a JSON entry, no pickle).

``lactose train --out p.json`` keeps ``p.json.checkpoint.npz`` next to the preset; ``--resume``
continues from it. A refinement in progress restarts from its best point (the L-BFGS memory is
not stored); everything else — step, clock, history, optimiser moments, sampler state —
continues exactly.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from lactose_audio.errors import PresetError

CHECKPOINT_SUFFIX = ".checkpoint.npz"


def checkpoint_path(out: Path) -> Path:
    """The checkpoint that belongs to preset ``out``."""
    return Path(str(out) + CHECKPOINT_SUFFIX)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(type(value).__name__)


def save_checkpoint(trainer: Any, path: Path, extra: dict[str, Any] | None = None) -> None:
    """Write ``trainer.state()`` (and ``extra`` metadata) atomically."""
    from lactose_audio.atomic import atomic_write_bytes

    meta, arrays = trainer.state()
    if extra:
        meta = {**meta, **extra}
    buffer = io.BytesIO()
    text = json.dumps(meta, default=_json_default)  # inf is written as Infinity, read back
    np.savez(buffer, meta=np.frombuffer(text.encode(), dtype=np.uint8), **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (OSError, ValueError, KeyError) as exc:
        raise PresetError(f"{path}: not a readable lactose checkpoint ({exc})") from None
    return meta, arrays
