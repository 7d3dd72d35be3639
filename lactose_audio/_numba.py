"""The one place that compiles our numba kernels.

``cache=True`` writes compiled code next to the source or in the user's cache directory; where
neither is writable numba refuses at decoration time, so we fall back to compiling in memory.
``contract=True`` lets LLVM fuse ``a * b + c`` into one FMA (one rounding instead of two): it
halves the latency of recursive kernels, and a kernel still gives the same bits for any
chunking (the same instructions run for every sample).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numba import njit


def jit(func: Callable[..., Any] | None = None, *, contract: bool = False):
    """``njit(cache=True, nogil=True)``, with a fallback when the cache is not writable.

    Usable as ``@jit`` or ``@jit(contract=True)``.
    """

    def decorate(f: Callable[..., Any]):
        options: dict[str, Any] = {"nogil": True}
        if contract:
            options["fastmath"] = {"contract"}
        try:
            return njit(cache=True, **options)(f)
        except Exception:  # pragma: no cover - depends on the file system
            return njit(**options)(f)

    return decorate(func) if func is not None else decorate
