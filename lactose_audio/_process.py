"""Ending the ``lactose`` process without the interpreter's teardown.

After a command has finished (outputs written atomically and closed), Python's finalisation
still tears down every module and object: with numba's registries and llvmlite loaded that is
about 0.25 s of a ~0.9 s ``lactose render`` (measured by ``scripts/bench_startup.py``), spent
after the last byte was written. :func:`exit_process` runs the ``atexit`` handlers, flushes
stdout/stderr and ends the process with ``os._exit``. Only the process entry points use it
(``cli.main()`` called without arguments); ``main(argv)`` from Python returns normally.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def exit_process(code: int) -> NoReturn:
    """End the process with ``code`` now (``atexit`` handlers run, streams flushed).

    Falls back to a normal ``sys.exit`` while another non-daemon thread runs (a thread pool
    still finishing), so nothing is cut short. Daemon threads (tqdm's monitor) do not hold
    the process back: the interpreter's own exit does not wait for them either.
    """
    main = threading.main_thread()
    if any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate()):
        sys.exit(code)
    try:
        atexit._run_exitfuncs()  # what finalisation would run first (logging, temp files)
    except Exception:  # pragma: no cover - a failing handler must not change the exit code
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # pragma: no cover - closed or broken pipe
            pass
    os._exit(code)


def _exit_now() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # pragma: no cover - closed or broken pipe
            pass
    os._exit(0)


def skip_teardown_at_exit() -> None:
    """Make this (worker) process end without the interpreter's teardown when it exits.

    The initializer of ``lactose render --jobs N``'s worker processes: a pool worker exits
    (``sys.exit`` after its last task, once every result has been sent) only when the pool
    shuts down, and the command waits for it; tearing down numba's objects would add ~0.25 s
    per worker to every batch. Registered first, the handler runs last among the ``atexit``
    handlers (the ones of modules imported later run before it), then ends the process with
    status 0 (a pool does not read its workers' exit status).
    """
    atexit.register(_exit_now)


__all__ = ["exit_process", "skip_teardown_at_exit"]
