"""The one place that imports TensorFlow, quietly.

Importing TensorFlow prints CUDA/cuDNN/absl registration lines from C++ straight to
file descriptor 2, which ``TF_CPP_MIN_LOG_LEVEL`` does not silence in TF 2.18. We
silence fd 2 for the duration of the import only, and select the Keras 2 API
(``tf_keras``) that ddsp is written against, so ``tf.keras`` is the same Keras for
ddsp and for us. Import ``tf`` from here (``from lactose_audio._tf import tf``), never
``import tensorflow`` directly, and only inside code paths that need it, so that
``import lactose_audio`` and ``lactose --help`` stay fast.
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


tf = _import_tensorflow()

__all__ = ["tf"]
