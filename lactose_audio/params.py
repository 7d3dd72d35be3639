"""Parameter specs: each block parameter declared once, as data.

Everything else is derived from a :class:`ParamSpec`: the raw <-> physical map (numpy and TF),
its inverse, the split of a bank row into named values, validation messages and the preset
schema (name, unit, bounds). Imports no TensorFlow at module level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lactose_audio.errors import ParameterError
from lactose_audio.units import Scaling


def _fmt(value: float, unit: str) -> str:
    return f"{value:g} {unit}".strip()


@dataclass(frozen=True)
class ParamSpec:
    """One block parameter.

    Attributes:
        name: Name with its unit suffix (``drive_db``, ``cutoff_hz``, ``q``).
        unit: Display unit (``dB``, ``Hz``, ``""`` for dimensionless).
        minimum: Smallest physical value.
        maximum: Largest physical value.
        scaling: ``"linear"`` or ``"log"`` (use ``log`` for Hz; see :mod:`lactose_audio.units`).
        default: Physical default, inside ``[minimum, maximum]``.
    """

    name: str
    unit: str
    minimum: float
    maximum: float
    scaling: str = "linear"
    default: float = 0.0
    _scaling: Scaling = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ParameterError(f"parameter name must be an identifier, got {self.name!r}")
        try:
            scaling = Scaling(self.scaling, float(self.minimum), float(self.maximum))
        except ValueError as exc:
            raise ParameterError(f"parameter {self.name}: {exc}") from None
        object.__setattr__(self, "_scaling", scaling)
        self.validate(self.default)

    def to_physical_np(self, raw: Any) -> np.ndarray:
        """Raw -> physical, numpy float64, any shape."""
        return self._scaling.forward_np(raw)

    def to_physical_tf(self, raw: Any) -> Any:
        """Raw -> physical, TF float32, any shape, differentiable."""
        return self._scaling.forward_tf(raw)

    def interpolate_np(self, start: Any, stop: Any, t: Any) -> np.ndarray:
        """Interpolate physical values in the declared scaling (see ``Scaling.interpolate_np``)."""
        return self._scaling.interpolate_np(start, stop, t)

    def interpolate_with(self, ops: Any, start: Any, stop: Any, t: Any) -> Any:
        """:meth:`interpolate_np` in the namespace ``ops`` (Faust expressions for export)."""
        return self._scaling.interpolate_with(ops, start, stop, t)

    def to_raw_np(self, physical: Any) -> np.ndarray:
        """Physical -> raw, numpy float64 (the inverse of :meth:`to_physical_np`)."""
        return self._scaling.inverse_np(physical)

    def to_physical_with(self, ops: Any, raw: Any) -> Any:
        """Raw -> physical in the namespace ``ops`` (Faust expressions for export)."""
        return self._scaling.forward_with(ops, raw)

    def to_raw_with(self, ops: Any, physical: Any) -> Any:
        """Physical -> raw in the namespace ``ops`` (Faust expressions for export)."""
        return self._scaling.inverse_with(ops, physical)

    @property
    def default_raw(self) -> float:
        """The raw value whose physical value is :attr:`default`."""
        return float(self.to_raw_np(self.default))

    def range_text(self) -> str:
        """``"between 20 Hz and 20000 Hz"``."""
        return f"between {_fmt(self.minimum, self.unit)} and {_fmt(self.maximum, self.unit)}"

    def validate(self, value: Any) -> None:
        """Check physical value(s) are finite and inside the bounds.

        Raises:
            ParameterError: ``cutoff_hz must be between 20 Hz and 20000 Hz, got 5 Hz``.
        """
        array = np.asarray(value, dtype=np.float64)
        bad = ~np.isfinite(array) | (array < self.minimum) | (array > self.maximum)
        if np.any(bad):
            got = array[bad].reshape(-1)[0]
            raise ParameterError(
                f"{self.name} must be {self.range_text()}, got {_fmt(float(got), self.unit)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The schema entry of this parameter (what presets and docs show)."""
        return {
            "name": self.name,
            "unit": self.unit,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "scaling": self.scaling,
            "default": self.default,
        }


def param_names(params: Sequence[ParamSpec]) -> tuple[str, ...]:
    """Names of ``params`` in declaration (bank column) order."""
    return tuple(p.name for p in params)


def default_raw_row(params: Sequence[ParamSpec]) -> np.ndarray:
    """Raw bank row ``[n_params]`` float32 of the declared defaults."""
    return np.array([p.default_raw for p in params], dtype=np.float32)


def raw_to_physical_np(params: Sequence[ParamSpec], raw: Any) -> np.ndarray:
    """Raw ``[..., n_params]`` -> physical ``[..., n_params]`` (numpy float64)."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.shape[-1:] != (len(params),):
        raise ParameterError(f"expected [..., {len(params)}] raw values, got shape {raw.shape}")
    if not params:
        return raw.copy()
    return np.stack([p.to_physical_np(raw[..., i]) for i, p in enumerate(params)], axis=-1)


def physical_to_raw_np(params: Sequence[ParamSpec], physical: Any) -> np.ndarray:
    """Physical ``[..., n_params]`` -> raw ``[..., n_params]`` (numpy float64), validated.

    Raises:
        ParameterError: If a value is non-finite or out of range (message names it).
    """
    physical = np.asarray(physical, dtype=np.float64)
    if physical.shape[-1:] != (len(params),):
        raise ParameterError(
            f"expected [..., {len(params)}] physical values, got shape {physical.shape}"
        )
    if not params:
        return physical.copy()
    for i, p in enumerate(params):
        p.validate(physical[..., i])
    return np.stack([p.to_raw_np(physical[..., i]) for i, p in enumerate(params)], axis=-1)


#: Bound on the raw (sigmoid-domain) value of any fit's start: a start at a bound is placed
#: ``START_MARGIN`` (0.67 %) of the sigmoid's range inside it, where its slope is >= 0.0066.
START_RAW_LIMIT = 5.0
START_MARGIN = 1.0 / (1.0 + math.exp(START_RAW_LIMIT))


def start_raw_np(params: Sequence[ParamSpec], physical: Any) -> np.ndarray:
    """:func:`physical_to_raw_np` for a fit's start: a value at (or beyond) a bound is placed
    :data:`START_MARGIN` of the way inside it. At the bound itself the sigmoid's slope is
    ``~1e-7`` (:data:`lactose_audio.units.UNIT_EPS`): a gradient-based fit could never move a
    parameter started there (a high-pass started "out of the way" at its 5 Hz floor stayed
    there). 0.67 % in: 5.3 Hz for a 5 Hz..20 kHz corner, 21 kHz for a 22 kHz ceiling; the
    slope is 6e4 times larger. The one rule for starts: the data-driven start
    (:mod:`lactose_audio.initialise`) and the per-range phase's start (every range from the
    unconditioned fit, :class:`lactose_audio.trainer.Trainer`) both use it.

    Raises:
        ParameterError: As :func:`physical_to_raw_np`.
    """
    return clip_start_raw(physical_to_raw_np(params, physical))


def clip_start_raw(raw: Any) -> np.ndarray:
    """Raw values ``[...]`` pulled in to ``+-START_RAW_LIMIT`` (see :func:`start_raw_np`)."""
    return np.clip(np.asarray(raw, np.float64), -START_RAW_LIMIT, START_RAW_LIMIT)


def interpolate_physical_np(
    params: Sequence[ParamSpec], start: Any, stop: Any, t: float
) -> np.ndarray:
    """Physical rows ``[n_params]``: ``t`` of the way from ``start`` to ``stop``, each
    parameter in its declared scaling (dB linearly, Hz on a log axis). float64."""
    start = np.asarray(start, dtype=np.float64)
    stop = np.asarray(stop, dtype=np.float64)
    if not params:
        return start.copy()
    return np.array([float(p.interpolate_np(start[i], stop[i], t)) for i, p in enumerate(params)])


def split_row(params: Sequence[ParamSpec], row: Any) -> dict[str, Any]:
    """Split ``[..., n_params]`` values (numpy or TF) into ``{name: [...]}`` by column."""
    return {p.name: row[..., i] for i, p in enumerate(params)}


def physical_controls_tf(params: Sequence[ParamSpec], raw: Any) -> dict[str, Any]:
    """Raw TF tensor ``[..., n_params]`` -> ``{name: physical float32 [...]}`` (differentiable)."""
    return {p.name: p.to_physical_tf(raw[..., i]) for i, p in enumerate(params)}


def validate_values(params: Sequence[ParamSpec], values: Mapping[str, Any]) -> None:
    """Validate a ``{name: physical value(s)}`` mapping: names and ranges.

    Raises:
        ParameterError: On a missing or unknown name, or a value out of range.
    """
    declared = param_names(params)
    unknown = sorted(set(values) - set(declared))
    missing = [n for n in declared if n not in values]
    if unknown or missing:
        raise ParameterError(
            f"parameters must be exactly {list(declared)}; unknown {unknown}, missing {missing}"
        )
    for p in params:
        p.validate(values[p.name])


def format_value(spec: ParamSpec, value: float) -> str:
    """``"cutoff_hz=1000 Hz"`` for reprs (4 significant digits)."""
    if not math.isfinite(value):
        return f"{spec.name}={value}"
    return f"{spec.name}={_fmt(float(f'{value:.4g}'), spec.unit)}"


__all__ = [
    "ParamSpec",
    "default_raw_row",
    "format_value",
    "interpolate_physical_np",
    "param_names",
    "physical_controls_tf",
    "physical_to_raw_np",
    "start_raw_np",
    "clip_start_raw",
    "START_MARGIN",
    "START_RAW_LIMIT",
    "raw_to_physical_np",
    "split_row",
    "validate_values",
]
