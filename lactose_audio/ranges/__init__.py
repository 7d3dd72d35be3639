"""The LACTOSE bank: range edges, the one boundary rule, parameter banks, separated Adam.

LACTOSE ("Linear Array of Conditions, TOpologies with Separated Error-backpropagation",
Clarke 2025, arXiv 2502.15829) keeps one parameter set per range of a conditioning key and
trains each set only on the error of the samples whose key fell into its range. Here that is:

- :class:`RangeEdges`: sorted inner edges in a unit; ``n_ranges = len(edges) + 1``.
- :func:`range_index`: THE boundary rule. Range ``k`` is ``[e_{k-1}, e_k)`` (half-open), range
  0 is ``(-inf, e_0)`` and range ``n_ranges - 1`` is ``[e_last, +inf)``. Nothing else in the
  package decides which range a value falls in.
- :func:`select`: the rule plus optional soft edges (interpolation between neighbouring rows);
  :data:`UNKEYED` (:class:`Unkeyed`) is the selection of an unkeyed stage: row 0 everywhere.
- :class:`RangeBank`: a ``tf.Variable [n_ranges, n_params]``; ``gather`` is ``tf.gather``, whose
  gradient reaches only the selected rows, i.e. separated error backpropagation, batched.
- :class:`SeparatedAdam`: Adam with a step count and moments per row; rows that received no
  samples in a step stay bit-identical.

Modules: :mod:`~lactose_audio.ranges.edges` (``RangeEdges``, ``range_index``, ``select``,
``coverage``; numpy + numba only), :mod:`~lactose_audio.ranges.bank` (``RangeBank``) and
:mod:`~lactose_audio.ranges.optimiser` (``SeparatedAdam``), which import TensorFlow lazily.
Every name is importable from ``lactose_audio.ranges``.
"""

from lactose_audio.ranges.bank import RangeBank
from lactose_audio.ranges.edges import (
    UNKEYED,
    RangeEdges,
    Selection,
    Unkeyed,
    cast_up,
    coverage,
    range_index,
    select,
)
from lactose_audio.ranges.optimiser import SeparatedAdam

__all__ = [
    "RangeEdges",
    "Selection",
    "UNKEYED",
    "Unkeyed",
    "cast_up",
    "range_index",
    "select",
    "coverage",
    "RangeBank",
    "SeparatedAdam",
]
