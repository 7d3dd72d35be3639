"""The one place that compiles our numba kernels, on first call.

``cache=True`` writes compiled code next to the source or in the user's cache directory; where
neither is writable numba refuses at decoration time, so we fall back to compiling in memory.
``contract=True`` lets LLVM fuse ``a * b + c`` into one FMA (one rounding instead of two): it
halves the latency of recursive kernels, and a kernel still gives the same bits for any
chunking (the same instructions run for every sample).

Deferred: ``@jit`` does not import numba (about 0.4 s, and its first dispatch about as much
again); the first *call* of a kernel does, and turns every deferred kernel of the same module
into a numba dispatcher at once (a kernel calling another must find a dispatcher in its module
globals when numba compiles it). So ``lactose inspect`` or ``lactose presets``, which never run
a kernel, never import numba. Kernels compiled ahead of time (:mod:`lactose_audio.aot`) are
called directly for the argument types they were compiled for, without numba.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


class _Deferred:
    """A kernel compiled with ``njit`` on first call (see the module docstring)."""

    def __init__(self, func: Callable[..., Any], options: dict[str, Any]) -> None:
        self.py_func = func
        self._options = options
        self._dispatcher: Any = None
        self._aot: dict[tuple, Any] | None = None
        functools.update_wrapper(self, func)

    def compile(self) -> Any:
        """The numba dispatcher (decorated now if not yet)."""
        if self._dispatcher is None:
            from numba import njit

            try:
                self._dispatcher = njit(cache=True, **self._options)(self.py_func)
            except Exception:  # pragma: no cover - depends on the file system
                self._dispatcher = njit(**self._options)(self.py_func)
        return self._dispatcher

    def __call__(self, *args: Any) -> Any:
        if self._dispatcher is None:
            if self._aot is None:
                from lactose_audio import aot

                self._aot = aot.entries(self.py_func)
            if self._aot:
                compiled = self._aot.get(tuple(map(_arg_key(), args)))
                if compiled is not None:
                    try:
                        return compiled(*args)
                    except TypeError:  # pycc's argument conversion refused: let numba type it
                        pass
            module = self.py_func.__globals__
            for name, value in list(module.items()):
                if isinstance(value, _Deferred):
                    module[name] = value.compile()
        return self.compile()(*args)


@functools.cache
def _arg_key() -> Callable[[Any], Any]:
    from lactose_audio.aot import arg_key

    return arg_key


def compiled_kernels(module: Any) -> list[Any]:
    """The numba dispatchers of ``module``'s kernels that have been compiled (called)."""
    found = []
    for value in vars(module).values():
        if isinstance(value, _Deferred):
            value = value._dispatcher
        func = getattr(value, "py_func", None)
        if func is not None and func.__module__ == module.__name__ and value.signatures:
            found.append(value)
    return found


def jit(func: Callable[..., Any] | None = None, *, contract: bool = False):
    """``njit(cache=True, nogil=True)``, deferred to the first call; no cache when not writable.

    Usable as ``@jit`` or ``@jit(contract=True)``.
    """

    def decorate(f: Callable[..., Any]) -> _Deferred:
        options: dict[str, Any] = {"nogil": True}
        if contract:
            options["fastmath"] = {"contract"}
        return _Deferred(f, options)

    return decorate(func) if func is not None else decorate
