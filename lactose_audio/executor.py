"""The one walk over a chain, and the backends it drives.

A chain (stages and nested chains, each level with its fixed ``mix``) is compiled once into a
:class:`Plan`: a tree of steps --

- :class:`PointwiseRun`: consecutive sample-rate stages of one level (a backend may fuse
  them): memoryless, or with memory (``Block.stateful``, the ``compressor``: the backend runs
  it over the frames as one signal and keeps its state by stage index);
- :class:`FilterGroup`: consecutive linear filter stages of one level (applied as one filter:
  one frame-wise FFT pass in training, one recursive cascade in rendering); groups are
  numbered in walk order, which is the order of their streaming states;
- a nested :class:`Plan` (a sub-chain, with its own dry input and ``mix``).

:func:`execute` walks a plan with a *backend* that decides what each step becomes::

    class Backend(Protocol):
        def pointwise(self, x, run: PointwiseRun, dry): ...   # dry: this level's input
        def filter_group(self, x, group: FilterGroup): ...
        def mix(self, x, dry, mix: float): ...  # ops.dry_wet: mix * x + (1 - mix) * dry

Backends: :class:`lactose_audio.graph.GraphBackend` (TensorFlow, frames ``[batch, n_frames,
hop]``: training and ``engine="graph"``) and :class:`lactose_audio.iir.NumpyBackend` (numpy and
numba, ``[n_samples]``: rendering, no TensorFlow). Each step carries the indices of its stages
in :attr:`Plan.stages` (depth-first order, the order of selections), so a backend looks up a
stage's selection by index. A code-generation backend (Faust export) returns expressions
instead of arrays from the same three methods; a knob (``control`` key) is one more key kind
whose selection comes from a control value instead of the audio -- neither changes the walk.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from lactose_audio.ranges.edges import UNKEYED


@dataclass(frozen=True)
class PointwiseRun:
    """Consecutive memoryless stages; ``indices`` into :attr:`Plan.stages`."""

    stages: tuple[Any, ...]
    indices: tuple[int, ...]


@dataclass(frozen=True)
class FilterGroup:
    """Consecutive linear filter stages; ``number``: position among the plan's groups."""

    stages: tuple[Any, ...]
    indices: tuple[int, ...]
    number: int


@dataclass(frozen=True)
class Plan:
    """One chain level: ``steps`` in order, then ``mix`` with the level's input."""

    steps: tuple[PointwiseRun | FilterGroup | Plan, ...]
    mix: float
    stages: tuple[Any, ...]
    """Every stage of this level and below, depth-first (the order of selections)."""
    groups: tuple[FilterGroup, ...]
    """Every filter group of this level and below, in walk order."""


class Backend(Protocol):
    """What a step becomes (see the module docstring)."""

    def pointwise(self, x: Any, run: PointwiseRun, dry: Any) -> Any: ...

    def filter_group(self, x: Any, group: FilterGroup) -> Any: ...

    def mix(self, x: Any, dry: Any, mix: float) -> Any: ...


def plan(chain: Any) -> Plan:
    """Compile ``chain`` (items: stages with ``block.is_linear``, or nested chains).

    Args:
        chain: A :class:`lactose_audio.chains.Chain` (anything iterable whose items are stages
            or iterables of the same kind, with a ``mix`` attribute).

    Returns:
        The chain's :class:`Plan`.
    """
    stages: list[Any] = []
    groups: list[FilterGroup] = []
    return _plan(chain, stages, groups)


def _plan(chain: Any, stages: list[Any], groups: list[FilterGroup]) -> Plan:
    first_stage, first_group = len(stages), len(groups)
    steps: list[Any] = []
    run: list[Any] = []
    linear: list[Any] = []

    def close(kind: str) -> None:
        items = run if kind == "pointwise" else linear
        if not items:
            return
        indices = tuple(range(len(stages), len(stages) + len(items)))
        stages.extend(items)
        if kind == "pointwise":
            steps.append(PointwiseRun(tuple(items), indices))
        else:
            group = FilterGroup(tuple(items), indices, len(groups))
            groups.append(group)
            steps.append(group)
        items.clear()

    for item in chain:
        if hasattr(item, "block"):  # a stage
            if item.block.is_linear:
                close("pointwise")
                linear.append(item)
            else:
                close("linear")
                run.append(item)
            continue
        close("pointwise")
        close("linear")
        steps.append(_plan(item, stages, groups))
    close("pointwise")
    close("linear")
    return Plan(
        tuple(steps), float(chain.mix), tuple(stages[first_stage:]), tuple(groups[first_group:])
    )


def execute(plan: Plan, x: Any, backend: Backend) -> Any:
    """Run ``plan`` on ``x`` with ``backend``; ``x``'s type and layout are the backend's."""
    dry = x
    for step in plan.steps:
        if isinstance(step, Plan):
            x = execute(step, x, backend)
        elif isinstance(step, FilterGroup):
            x = backend.filter_group(x, step)
        else:
            x = backend.pointwise(x, step, dry)
    if plan.mix != 1.0:
        x = backend.mix(x, dry, plan.mix)
    return x


def is_hard(selection: Any) -> bool:
    """True for :data:`~lactose_audio.ranges.UNKEYED` or a selection whose numpy ``frac`` is
    all zero."""
    if selection is UNKEYED:
        return True
    frac = selection[2]
    return isinstance(frac, np.ndarray) and not frac.any()


def shares_selection(stages: Any, keyed: Any) -> bool:
    """True if the keyed ones of ``stages`` (``keyed[i]``) all use one selection signature."""
    sigs = {s.selection_signature() if k else None for s, k in zip(stages, keyed, strict=True)}
    return len(sigs) == 1


__all__ = [
    "Backend",
    "FilterGroup",
    "Plan",
    "PointwiseRun",
    "execute",
    "is_hard",
    "plan",
    "shares_selection",
]
