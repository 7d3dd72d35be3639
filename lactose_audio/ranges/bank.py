"""The LACTOSE parameter bank: one row of raw parameters per range, gathered by selection.

:class:`RangeBank` holds a ``tf.Variable [n_ranges, n_params]``; ``gather`` is ``tf.gather``,
whose gradient reaches only the selected rows, i.e. separated error backpropagation, batched.
TensorFlow is imported on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lactose_audio.errors import ParameterError

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow

from lactose_audio.ranges.edges import Selection


class RangeBank:
    """One row of raw (unconstrained) parameters per range.

    Args:
        n_ranges: Number of ranges (rows), >= 1.
        n_params: Number of raw parameters per row, >= 1.
        initial_raw: Initial raw values: scalar, ``[n_params]`` (broadcast to every row) or
            ``[n_ranges, n_params]``.
        name: Name of the variable.

    Attributes:
        variable: ``tf.Variable`` float32 ``[n_ranges, n_params]``, created on first access;
            until then the values live in numpy (:meth:`numpy`, :meth:`assign` work either way).

    Raises:
        ParameterError: On bad sizes or a non-finite / mis-shaped ``initial_raw``.
    """

    def __init__(
        self,
        n_ranges: int,
        n_params: int,
        initial_raw: float | np.ndarray | Sequence[float] = 0.0,
        name: str = "bank",
    ) -> None:
        for label, value in (("n_ranges", n_ranges), ("n_params", n_params)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ParameterError(f"{label} must be an integer >= 1, got {value!r}")
        self.name = name
        self._values = self._broadcast(initial_raw, int(n_ranges), int(n_params))
        self._variable: Any = None

    @property
    def variable(self) -> tensorflow.Variable:
        """The ``tf.Variable`` (created on first use: rendering never needs TensorFlow)."""
        if self._variable is None:
            from lactose_audio._tf import tf

            self._variable = tf.Variable(
                self._values, name=self.name, trainable=True, dtype=tf.float32
            )
            self._values = None
        return self._variable

    def _current(self) -> Any:
        return self._values if self._variable is None else self._variable

    @staticmethod
    def _broadcast(values: Any, n_ranges: int, n_params: int) -> np.ndarray:
        array = np.asarray(values, dtype=np.float32)
        if array.ndim == 0 or array.shape == (n_params,) or array.shape == (n_ranges, n_params):
            out = np.broadcast_to(array, (n_ranges, n_params)).astype(np.float32)
        else:
            raise ParameterError(
                f"initial raw values must be a scalar, [n_params]=[{n_params}] or "
                f"[n_ranges, n_params]=[{n_ranges}, {n_params}], got shape {array.shape}"
            )
        if not np.all(np.isfinite(out)):
            raise ParameterError("initial raw values must be finite")
        return out

    @property
    def n_ranges(self) -> int:
        """Number of rows."""
        return int(self._current().shape[0])

    @property
    def n_params(self) -> int:
        """Number of raw parameters per row."""
        return int(self._current().shape[1])

    @property
    def trainable_variables(self) -> list[tensorflow.Variable]:
        """``[variable]``, for optimisers and checkpoints."""
        return [self.variable]

    def __repr__(self) -> str:
        return f"RangeBank(name={self.name!r}, n_ranges={self.n_ranges}, n_params={self.n_params})"

    def gather(self, selection: Selection | Any, hard: bool | None = None) -> tensorflow.Tensor:
        """Parameter row of every sample or frame.

        Args:
            selection: A :class:`Selection` (numpy arrays or tensors, any shape ``[...]``) or a
                plain integer row index ``[...]`` (hard selection).
            hard: Force the hard path (``bank[lower]``) or the interpolating path. ``None``:
                hard for a plain index or a Selection whose numpy ``frac`` is all zero,
                interpolating otherwise (tensors are not inspected).

        Returns:
            float32 tensor ``[..., n_params]``: ``(1 - frac) * bank[lower] + frac *
            bank[upper]``. Its gradient reaches only the selected rows.
        """
        from lactose_audio._tf import tf

        if not isinstance(selection, Selection):
            return tf.gather(self.variable, selection)
        lower, upper, frac = selection
        if hard is None:
            hard = isinstance(frac, np.ndarray) and not frac.any()
        rows = tf.gather(self.variable, lower)
        if hard:
            return rows
        rows_upper = tf.gather(self.variable, upper)
        frac = tf.cast(frac, tf.float32)[..., None]
        return rows + frac * (rows_upper - rows)

    def numpy(self) -> np.ndarray:
        """Raw values as a numpy array ``[n_ranges, n_params]`` (a copy)."""
        if self._variable is None:
            return self._values.copy()
        return np.array(self._variable.numpy())

    def assign(self, values: float | np.ndarray) -> None:
        """Set every row (broadcast like ``initial_raw``)."""
        new = self._broadcast(values, self.n_ranges, self.n_params)
        if self._variable is None:
            self._values = new
        else:
            self._variable.assign(new)

    def set_rows(self, rows: int | Sequence[int] | np.ndarray, values: np.ndarray) -> None:
        """Set some rows, e.g. initialise empty ranges from the unconditioned fit.

        Args:
            rows: Row index or indices in ``[0, n_ranges)``.
            values: ``[n_params]`` (same for every row) or ``[len(rows), n_params]``.

        Raises:
            ParameterError: On a row out of range or mis-shaped values.
        """
        idx = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_ranges):
            raise ParameterError(
                f"rows must be between 0 and {self.n_ranges - 1}, got {idx.tolist()}"
            )
        new = self.numpy()
        vals = np.asarray(values, dtype=np.float32)
        try:
            new[idx] = np.broadcast_to(vals, (idx.size, self.n_params))
        except ValueError as exc:
            raise ParameterError(
                f"values must have shape [{self.n_params}] or [{idx.size}, {self.n_params}], "
                f"got {vals.shape}"
            ) from exc
        if not np.all(np.isfinite(new)):
            raise ParameterError("bank values must be finite")
        self.assign(new)


__all__ = ["RangeBank"]
