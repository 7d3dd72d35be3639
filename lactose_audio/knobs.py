"""Knobs: a chain whose stages follow controls (``gain``, ``tone``), set to given values.

A stage keyed on a :class:`~lactose_audio.chain_spec.ControlKey` holds one bank row per
captured setting. A control value is constant over a render (or changes at a
``RenderStream.set``), so rendering does not select rows per frame: :func:`resolve` replaces
every control-keyed stage by a one-row stage whose row is

- the captured setting's own row, bit for bit, at a captured setting;
- between settings ``s_k < v < s_k+1``, with ``t = (v - s_k) / (s_k+1 - s_k)``, every
  parameter interpolated in its *declared scaling* between the two rows' physical values
  (:func:`lactose_audio.params.interpolate_physical_np`: dB and other linear parameters
  linearly, Hz on a log axis) -- not the raw (sigmoid-domain) values.

The resolved chain renders through the unchanged executor. Streaming
(:class:`lactose_audio.render.RenderStream`) keeps a *ramp* chain instead
(:func:`ramp_chain`): each control-keyed stage gets two rows (the previous value's and the
current one's) and a sample-rate selection that moves from the first to the second over one
frame after a change, so automation does not click.

numpy only; builds stages and chains through the given chain's own types (no import of
:mod:`lactose_audio.chains`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lactose_audio.chain_spec import ControlKey
from lactose_audio.errors import ParameterError
from lactose_audio.params import interpolate_physical_np, physical_to_raw_np, raw_to_physical_np
from lactose_audio.ranges import RangeBank, Selection

RAMP_KEY_SETTINGS = (0.0, 1.0)
"""Rows of a ramp stage: 0 = the previous value's parameters, 1 = the current value's."""


def describe(settings: tuple[float, ...]) -> str:
    """``"0 .. 10 (captured: 0, 5, 10)"``."""
    listed = ", ".join(f"{s:g}" for s in settings)
    return f"{settings[0]:g} .. {settings[-1]:g} (captured: {listed})"


def middle_capture(pairs: list[Any], settings: Mapping[str, Any]) -> Any:
    """The capture nearest the middle of the captured settings: the one whose settings, each
    control's range scaled to [0, 1], are closest to 0.5 (Euclidean; ties: the first given).

    ``--chain auto`` with captures searches the structure on it (the knob's middle position
    exercises the effect's structure; its extremes may hide a stage, e.g. a drive at 0).

    Args:
        pairs: the captures (each with ``controls``: ``{name: setting}``).
        settings: ``{name: captured settings}``.
    """

    def distance(pair: Any) -> float:
        total = 0.0
        for name, values in settings.items():
            lo, hi = float(min(values)), float(max(values))
            t = (float(pair.controls[name]) - lo) / (hi - lo) if hi > lo else 0.5
            total += (t - 0.5) ** 2
        return total

    return min(pairs, key=distance)


def check_controls(chain: Any, values: Mapping[str, Any] | None) -> dict[str, float]:
    """Validate control values for ``chain``: every control given, known, within its settings.

    Args:
        chain: The chain (its :attr:`~lactose_audio.chains.Chain.controls`).
        values: ``{name: value}``.

    Returns:
        ``{name: float value}`` for every control of the chain.

    Raises:
        ParameterError: On an unknown control, a missing one, a value that is not a finite
            number or lies outside the captured settings (one line, naming the range).
    """
    declared = chain.controls
    values = dict(values or {})
    unknown = sorted(set(values) - set(declared))
    if unknown:
        known = ", ".join(declared) if declared else "none"
        raise ParameterError(f"unknown control {unknown[0]!r}; this effect's controls: {known}")
    out = {}
    for name, settings in declared.items():
        if name not in values:
            raise ParameterError(f"missing control {name}: give a value in {describe(settings)}")
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ParameterError(f"control {name} must be a number, got {value!r}")
        value = float(value)
        if not (math.isfinite(value) and settings[0] <= value <= settings[-1]):
            raise ParameterError(
                f"control {name} must be between {settings[0]:g} and {settings[-1]:g} (the "
                f"captured settings: {', '.join(f'{s:g}' for s in settings)}), got {value:g}"
            )
        out[name] = value
    return out


def stage_row(stage: Any, value: float) -> np.ndarray:
    """The raw bank row (float32 ``[bank width]``) of a control-keyed stage at ``value``.

    A captured setting gives its own row exactly; a value between two settings interpolates
    their physical parameters in each parameter's declared scaling (see the module docstring).
    """
    settings = stage.key.settings
    raw = stage.bank.numpy()
    if value in settings:
        return raw[settings.index(value)].copy()
    k = int(np.searchsorted(np.asarray(settings), value)) - 1
    t = (value - settings[k]) / (settings[k + 1] - settings[k])
    params, n = stage.block.params, stage.block.n_params
    phys = raw_to_physical_np(params, raw[k : k + 2, :n])
    row = raw[k].copy()
    row[:n] = physical_to_raw_np(params, interpolate_physical_np(params, phys[0], phys[1], t))
    return row


def _rebuild(chain: Any, make_stage) -> Any:
    items = []
    for item in chain:
        if hasattr(item, "block"):
            items.append(make_stage(item) if item.control is not None else item)
        else:
            items.append(_rebuild(item, make_stage))
    return type(chain)(items, hop_size=chain.hop_size, mix=chain.mix)


def resolve(chain: Any, values: Mapping[str, Any] | None) -> Any:
    """``chain`` with every control-keyed stage set to ``values`` (one unkeyed row each).

    Other stages are shared, not copied. A chain without controls is returned as is (and
    ``values`` must then be empty).

    Raises:
        ParameterError: See :func:`check_controls`.
    """
    values = check_controls(chain, values)
    if not values:
        return chain

    def make_stage(stage: Any) -> Any:
        row = stage_row(stage, values[stage.control])
        bank = RangeBank(1, stage.bank.n_params, row)
        return type(stage)(stage.block, bank)

    return _rebuild(chain, make_stage)


def ramp_chain(chain: Any, values: Mapping[str, float]) -> tuple[Any, list[tuple[Any, Any]]]:
    """The streaming form of ``chain`` at ``values`` (checked): see the module docstring.

    Returns:
        ``(ramp, pairs)``: the chain, and per control-keyed stage ``(original, ramp stage)``.
    """
    pairs: list[tuple[Any, Any]] = []

    def make_stage(stage: Any) -> Any:
        row = stage_row(stage, values[stage.control])
        bank = RangeBank(2, stage.bank.n_params, np.stack([row, row]))
        key = ControlKey(stage.control, RAMP_KEY_SETTINGS, rate="sample")
        ramp = type(stage)(stage.block, bank, key)
        pairs.append((stage, ramp))
        return ramp

    return _rebuild(chain, make_stage), pairs


def ramp_selection(stage: Any, n_samples: int, hop_size: int, ramping: bool) -> Selection:
    """A ramp stage's selection for a call of ``n_samples`` (a chunk starting on the grid).

    Steady: row 1 everywhere. After a change (``ramping``): a sample-rate stage moves from row
    0 to row 1 over the first frame (``frac = (j + 1) / hop``); a frame-rate stage (a filter)
    takes row 1 from the first frame, its coefficients faded by the filter's own crossfade.
    """
    sample = stage.control_rate == "sample"
    n = n_samples if sample else -(-n_samples // hop_size)
    upper = np.ones(n, np.int32)
    lower = upper.copy()
    frac = np.zeros(n, np.float32)
    if ramping and sample:
        m = min(hop_size, n)
        lower[:m] = 0
        frac[:m] = (np.arange(m) + 1.0) / hop_size
    return Selection(lower, upper, frac)


def set_ramp_rows(pairs: list[tuple[Any, Any]], values: Mapping[str, float], keep: bool) -> None:
    """Move each ramp stage to ``values``: row 1 := the new row, and row 0 := the old row 1
    unless ``keep`` (a change before the previous one was rendered ramps from where the audio
    is, the current row 0)."""
    for stage, ramp in pairs:
        rows = ramp.bank.numpy()
        start = rows[0] if keep else rows[1]
        ramp.bank.assign(np.stack([start, stage_row(stage, values[stage.control])]))


__all__ = [
    "RAMP_KEY_SETTINGS",
    "check_controls",
    "describe",
    "middle_capture",
    "ramp_chain",
    "ramp_selection",
    "resolve",
    "set_ramp_rows",
]
