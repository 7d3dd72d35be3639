"""Keys and the chain spec language: ``"gain>tanh>lowpass@pitch"`` -> stage descriptions.

Parsing only: :meth:`lactose_audio.chains.Chain.from_spec` turns the result into stages. Also
the one home of a key's plain-JSON form (``key_dict`` / ``key_from_dict``), which presets,
selections and streams use as the key's identity. No TensorFlow.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from lactose_audio.errors import ParameterError
from lactose_audio.ranges import RangeEdges

DEFAULT_KEY_RANGES = {"amplitude": (-60.0, 0.0), "pitch": (40.0, 88.0), "sample": (-1.0, 1.0)}
"""Span over which ``from_spec(n_ranges=N)`` spaces edges evenly before ``fit_edges``."""

KEY_KINDS = ("none", "sample", "amplitude", "pitch")

CONTROL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
"""A control's name: a letter, then letters, digits or ``_`` (at most 32 characters)."""


@dataclass(frozen=True)
class ControlKey:
    """A knob: a named value the user sets (``gain``, ``tone``), constant over one capture.

    A stage keyed on a control has one bank row per captured setting (``settings``, strictly
    increasing). Its edges are the midpoints between neighbouring settings (:func:`
    settings_edges`), so the one boundary rule (``range_index``) picks a setting's own row at
    that setting: training uses hard selections. Rendering between two settings interpolates
    their parameters in each parameter's declared scaling (:mod:`lactose_audio.knobs`).

    Args:
        name: The control's name (:data:`CONTROL_NAME`).
        settings: The captured settings, strictly increasing, finite (the control's own unit).
        rate: ``"frame"`` (presets); ``"sample"`` only for the renderer's internal ramps.

    Raises:
        ParameterError: On a bad name or settings.
    """

    name: str
    settings: tuple[float, ...] = ()
    rate: str = "frame"

    kind = "control"
    unit = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not CONTROL_NAME.match(self.name):
            raise ParameterError(
                f"a control's name must be a letter then letters, digits or '_' (at most 32), "
                f"got {self.name!r}"
            )
        values = []
        for value in self.settings:
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise ParameterError(f"control {self.name}: settings must be numbers")
            if not math.isfinite(float(value)):
                raise ParameterError(f"control {self.name}: settings must be finite")
            values.append(float(value))
        if any(b <= a for a, b in zip(values, values[1:], strict=False)):
            raise ParameterError(
                f"control {self.name}: settings must be strictly increasing, got {values}"
            )
        object.__setattr__(self, "settings", tuple(values))
        if self.rate not in ("frame", "sample"):
            raise ParameterError(f"key rate must be 'sample' or 'frame', got {self.rate!r}")

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": "control", "name": ..., "settings": [...]}``."""
        return {"kind": "control", "name": self.name, "settings": list(self.settings)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ControlKey:
        """Inverse of :meth:`to_dict`; validates."""
        unknown = sorted(set(data) - {"kind", "name", "settings"})
        if unknown:
            raise ParameterError(f"unknown control key fields {unknown}")
        return cls(data.get("name", ""), tuple(data.get("settings", ())))


def settings_edges(settings: tuple[float, ...]) -> RangeEdges:
    """The inner edges of a control key: midpoints between neighbouring settings."""
    return RangeEdges(
        tuple(0.5 * (a + b) for a, b in zip(settings, settings[1:], strict=False)), ""
    )


def _conditioning():
    from lactose_audio import conditioning  # imported when keys are used

    return conditioning


def make_key(kind: str, rate: str | None = None, **settings: Any) -> Any:
    """A ``KeySpec`` (``None`` for ``kind == "none"``); pitch is always frame-rate, and a
    pitch key made by name follows a chord's lowest note (``pitch_rule="lowest"``) unless
    ``settings`` say otherwise."""
    if kind == "none":
        return None
    if kind == "control":
        return ControlKey(**settings)
    if rate is None:
        rate = "frame" if kind in ("pitch", "amplitude") else "sample"
    if kind == "pitch":
        settings.setdefault("pitch_rule", "lowest")
    return _conditioning().KeySpec(kind, rate, **settings)


def key_dict(key: Any) -> dict[str, Any]:
    """A key's plain-JSON form (``{"kind": "none"}`` for no key)."""
    return {"kind": "none"} if key is None else dict(key.to_dict())


def key_signature(key: Any) -> str:
    """A hashable identity of a key: stages with equal signatures share one key signal.

    Keys are frozen dataclasses: the signature of an equal key is remembered (the render asks
    for it per stage and chunk; ``asdict`` costs ~30 us).
    """
    try:
        return _signature(key)
    except TypeError:  # an unhashable key-like object
        return repr(key_dict(key))


@functools.lru_cache(maxsize=256)
def _signature(key: Any) -> str:
    return repr(key_dict(key))


def key_from_dict(data: dict[str, Any]) -> Any:
    """Inverse of :func:`key_dict`."""
    if data.get("kind", "none") == "none":
        return None
    if data.get("kind") == "control":
        return ControlKey.from_dict(data)
    return _conditioning().KeySpec.from_dict(data)


def even_edges(key: Any, n_ranges: int) -> RangeEdges:
    """``n_ranges`` ranges spaced evenly over the key's :data:`DEFAULT_KEY_RANGES` span."""
    lo, hi = DEFAULT_KEY_RANGES.get(key.kind, (0.0, 1.0))
    inner = np.linspace(lo, hi, n_ranges + 1)[1:-1] if n_ranges > 1 else []
    return RangeEdges(tuple(float(e) for e in inner), key.unit)


class StageSpec(NamedTuple):
    """One parsed spec item: block name, its key (``None``: unkeyed), edges, and the control
    it also follows (``knob``: a 2-D bank, settings x ranges of ``key``; else ``None``)."""

    block: str
    key: Any
    edges: RangeEdges | None
    knob: ControlKey | None = None


def _item_keys(item: str, key_name: str, keys: dict[str, Any] | None) -> tuple[Any, Any]:
    """``(key, knob)`` of ``name@a`` or ``name@a+b``: at most one control, one signal key."""
    key, knob = None, None
    for part in (p.strip() for p in key_name.split("+")):
        if keys and part in keys:
            value = keys[part]
        elif part in KEY_KINDS:
            value = make_key(part)
        else:
            raise ParameterError(f"unknown key {part!r} in chain spec item {item!r}")
        if isinstance(value, ControlKey):
            if knob is not None:
                raise ParameterError(f"chain spec item {item!r} follows two controls; one at most")
            knob = value
        elif value is not None:
            if key is not None:
                raise ParameterError(
                    f"chain spec item {item!r} has two signal keys; one at most (with a control: "
                    "name@control+amplitude)"
                )
            key = value
    return (knob, None) if key is None else (key, knob)


def parse_spec(
    spec: str,
    key: Any = None,
    n_ranges: int | None = None,
    edges: RangeEdges | None = None,
    keys: dict[str, Any] | None = None,
    knob: ControlKey | None = None,
) -> list[StageSpec]:
    """Parse ``"gain>tanh>lowpass@pitch"`` (see :meth:`lactose_audio.chains.Chain.from_spec`).

    An item's ``@`` part names a key, a control, or both joined by ``+``
    (``tanh@gain+amplitude``: a 2-D bank). Unmarked items take ``key`` and ``knob``.

    Raises:
        ParameterError: On an unknown key, two controls or two signal keys on one item, or an
            empty spec.
    """
    items = [s.strip() for s in spec.split(">") if s.strip()]
    if not items:
        raise ParameterError(f"chain spec must name at least one block, got {spec!r}")
    out = []
    for item in items:
        name, _, key_name = item.partition("@")
        stage_key, stage_knob = (key, knob) if key is not None else (knob, None)
        if key_name:
            stage_key, stage_knob = _item_keys(item, key_name, keys)
        stage_edges = None
        if isinstance(stage_key, ControlKey):
            stage_edges = settings_edges(stage_key.settings)
        elif stage_key is not None:
            stage_edges = edges or even_edges(stage_key, n_ranges or 1)
        out.append(StageSpec(name.strip(), stage_key, stage_edges, stage_knob))
    return out


__all__ = [
    "CONTROL_NAME",
    "ControlKey",
    "DEFAULT_KEY_RANGES",
    "StageSpec",
    "even_edges",
    "key_dict",
    "key_from_dict",
    "key_signature",
    "make_key",
    "parse_spec",
    "settings_edges",
]
