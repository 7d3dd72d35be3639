"""Separated Adam: Adam with a step count and moments per bank row (the LACTOSE optimiser).

Rows that received no samples in a step stay bit-identical (values, moments, step count).
TensorFlow is imported on first use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from lactose_audio.errors import ParameterError
from lactose_audio.ranges.bank import RangeBank

if TYPE_CHECKING:  # pragma: no cover
    pass


class SeparatedAdam:
    """Adam with its own step count and moments per bank row (Kingma & Ba 2015, per row).

    For every variable ``[n_ranges, ...]`` a row is *active* in a step when its count is > 0
    (``counts`` given, e.g. :func:`coverage` of the batch) or, without counts, when any of its
    gradient entries is non-zero. Active rows do one Adam step with their own step count
    ``t_k``::

        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  t_k += 1
        row -= lr * sqrt(1 - b2^t_k) / (1 - b1^t_k) * m / (sqrt(v) + eps)

    Inactive rows (values, moments and step count) are bit-identical afterwards. Works on
    several banks at once and inside ``tf.function`` (slots are created on the first call or
    by :meth:`build`).

    Args:
        learning_rate: Step size (float; stored in a ``tf.Variable`` you can assign).
        beta_1: First-moment decay in ``[0, 1)``.
        beta_2: Second-moment decay in ``[0, 1)``.
        epsilon: Denominator offset, > 0.

    Raises:
        ParameterError: On hyper-parameters out of range.
    """

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
    ) -> None:
        if not (math.isfinite(learning_rate) and learning_rate > 0):
            raise ParameterError(f"learning_rate must be > 0, got {learning_rate}")
        for label, beta in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= beta < 1.0:
                raise ParameterError(f"{label} must be between 0 and 1 (exclusive), got {beta}")
        if not epsilon > 0:
            raise ParameterError(f"epsilon must be > 0, got {epsilon}")
        from lactose_audio._tf import tf

        self.learning_rate = tf.Variable(float(learning_rate), trainable=False, name="lr")
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self._slots: dict[Any, tuple[Any, Any, Any]] = {}

    @staticmethod
    def _variable(var: Any) -> Any:
        return var.variable if isinstance(var, RangeBank) else var

    def build(self, variables: Iterable[Any]) -> None:
        """Create the slots (m, v, step counts) of ``variables`` (RangeBanks or tf.Variables)."""
        from lactose_audio._tf import tf

        for var in variables:
            var = self._variable(var)
            if var.ref() in self._slots:
                continue
            n_rows = int(var.shape[0])
            base = var.name.split(":")[0]
            self._slots[var.ref()] = (
                tf.Variable(tf.zeros_like(var), trainable=False, name=f"{base}/m"),
                tf.Variable(tf.zeros_like(var), trainable=False, name=f"{base}/v"),
                tf.Variable(tf.zeros([n_rows], tf.int64), trainable=False, name=f"{base}/t"),
            )

    def slots(self, var: Any) -> tuple[Any, Any, Any]:
        """``(m, v, steps)`` variables of ``var``: moments like ``var``, steps ``[n_rows]``."""
        return self._slots[self._variable(var).ref()]

    @property
    def variables(self) -> list[Any]:
        """Every state variable (learning rate and slots), for checkpoints."""
        out = [self.learning_rate]
        for slots in self._slots.values():
            out.extend(slots)
        return out

    def apply_gradients(
        self, grads_and_vars: Iterable[tuple[Any, Any]], counts: Any = None
    ) -> None:
        """One separated Adam step.

        Args:
            grads_and_vars: ``(gradient, variable)`` pairs; variables are RangeBanks or
                ``tf.Variable [n_rows, ...]``; gradients may be dense, ``IndexedSlices`` (from
                ``tf.gather``) or ``None`` (no row active).
            counts: ``None`` (active = non-zero gradient), one ``[n_rows]`` count array for all
                variables, or a list of them parallel to ``grads_and_vars``.
        """
        from lactose_audio._tf import tf

        pairs = [(g, self._variable(v)) for g, v in grads_and_vars]
        self.build(v for _, v in pairs)
        if counts is None or not isinstance(counts, list | tuple):
            per_var = [counts] * len(pairs)
        else:
            per_var = list(counts)
            if len(per_var) != len(pairs):
                raise ParameterError(
                    f"counts must have one entry per variable ({len(pairs)}), got {len(per_var)}"
                )
        b1, b2, eps = self.beta_1, self.beta_2, self.epsilon
        for (grad, var), count in zip(pairs, per_var, strict=True):
            if grad is None:
                continue
            m, v, steps = self._slots[var.ref()]
            g = tf.convert_to_tensor(grad, dtype=var.dtype)
            axes = list(range(1, len(var.shape)))
            if count is None:
                active = tf.reduce_any(tf.not_equal(g, 0.0), axis=axes)
            else:
                active = tf.reshape(tf.convert_to_tensor(count), [-1]) > 0
            new_steps = steps + tf.cast(active, tf.int64)
            t = tf.cast(tf.maximum(new_steps, 1), var.dtype)
            new_m = b1 * m + (1.0 - b1) * g
            new_v = b2 * v + (1.0 - b2) * tf.square(g)
            lr_t = self.learning_rate * tf.sqrt(1.0 - tf.pow(b2, t)) / (1.0 - tf.pow(b1, t))
            lr_t = tf.reshape(lr_t, [-1] + [1] * len(axes))
            new_var = var - lr_t * new_m / (tf.sqrt(new_v) + eps)
            mask = tf.reshape(active, [-1] + [1] * len(axes))
            mask = tf.broadcast_to(mask, tf.shape(var))
            var.assign(tf.where(mask, new_var, var))
            m.assign(tf.where(mask, new_m, m))
            v.assign(tf.where(mask, new_v, v))
            steps.assign(new_steps)


__all__ = ["SeparatedAdam"]
