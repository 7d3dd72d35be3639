"""Figure plumbing shared by the plots: a headless figure and an atomic PNG write.

Figures are drawn with matplotlib's Agg canvas attached to the figure itself, so the plots
work headless and never change the backend of the caller's ``pyplot`` session. Importing this
module does not import matplotlib.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

DPI = 100
"""Resolution of every PNG (pixels per inch): a figure of ``w x h`` inches is ``100 w x 100 h``."""


def new_figure(size_in: tuple[float, float]) -> Figure:
    """A pyplot-free figure on an Agg canvas (headless; the caller's backend is untouched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size_in, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Render ``fig`` to PNG bytes in memory, then write them atomically to ``path``."""
    from lactose_audio.atomic import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


__all__ = ["DPI", "new_figure", "save_png"]
