"""The one place that imports TensorFlow, quietly.

Importing TensorFlow prints CUDA/cuDNN/absl registration lines from C++ straight to
file descriptor 2, which ``TF_CPP_MIN_LOG_LEVEL`` does not silence in TF 2.18. We
silence fd 2 for the duration of the import only, and select the Keras 2 API
(``tf_keras``) that ddsp is written against, so ``tf.keras`` is the same Keras for
ddsp and for us. Import ``tf`` from here (``from lactose_audio._tf import tf``), never
``import tensorflow`` directly.

``tf`` is a lazy handle: importing this module does not import TensorFlow; the first attribute
access (``tf.constant``) does. So a module may import ``tf`` at its top and still be usable
without TensorFlow (blocks, chains) as long as the code path taken never touches ``tf``:
rendering, ``lactose render|eval|inspect|presets`` and ``load_preset`` never do
(``tests/test_no_tensorflow.py``).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def _import_tensorflow():
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf_module
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover - absl ships with TensorFlow
        pass
    tf_module.get_logger().setLevel("ERROR")
    return tf_module


class _LazyTensorFlow:
    """Stands for the ``tensorflow`` module; imports it (quietly) on first attribute access."""

    __slots__ = ()

    def __getattr__(self, name: str):
        return getattr(_import_tensorflow(), name)

    def __repr__(self) -> str:
        loaded = "loaded" if "tensorflow" in sys.modules else "not loaded yet"
        return f"<lazy tensorflow ({loaded})>"


tf = _LazyTensorFlow()

_XLA_READY = False


def _silence_xla_banner() -> None:
    """Compile one tiny XLA function with fd 2 muted, once per process.

    The first XLA compilation prints "XLA service ... initialized" and "Compiled cluster using
    XLA!" lines from C++ (absl) straight to fd 2, whatever the log level; later compilations
    print nothing.
    """
    global _XLA_READY
    if _XLA_READY:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        tf.function(lambda x: x * 2.0, jit_compile=True)(tf.zeros([2]))
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    _XLA_READY = True


def xla_function(fn):
    """``tf.function(fn, jit_compile=True, reduce_retracing=True)``, quietly.

    XLA fuses a chain of elementwise ops into one pass over memory (a waveshaper's five or six
    ops, with per-frame controls broadcast for free): about 2x faster than the op-by-op graph
    on this CPU. It compiles once per input shape (tens of ms), so use it where shapes repeat
    (rendering), not in training.
    """
    _silence_xla_banner()
    return tf.function(fn, jit_compile=True, reduce_retracing=True)


__all__ = ["tf", "xla_function"]
