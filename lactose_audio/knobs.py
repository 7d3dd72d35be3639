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


def stage_rows(stage: Any, value: float) -> np.ndarray:
    """The raw bank rows (float32 ``[n, bank width]``) of a control-following stage at
    ``value``: ``n = 1`` for a control alone, the key's ranges for a 2-D bank (range ``r`` of
    the value from range ``r`` of the two settings around it).

    A captured setting gives its own rows exactly; a value between two settings interpolates
    their physical parameters in each parameter's declared scaling (see the module docstring).
    """
    settings = stage.control_key.settings
    per_setting = stage.edges.n_ranges if stage.knob is not None else 1
    raw = stage.bank.numpy().reshape(len(settings), per_setting, -1)
    if value in settings:
        return raw[settings.index(value)].copy()
    k = int(np.searchsorted(np.asarray(settings), value)) - 1
    t = (value - settings[k]) / (settings[k + 1] - settings[k])
    params, n = stage.block.params, stage.block.n_params
    low = raw_to_physical_np(params, raw[k, :, :n])
    high = raw_to_physical_np(params, raw[k + 1, :, :n])
    rows = raw[k].copy()
    for r in range(per_setting):
        rows[r, :n] = physical_to_raw_np(
            params, interpolate_physical_np(params, low[r], high[r], t)
        )
    return rows


def stage_row(stage: Any, value: float) -> np.ndarray:
    """The raw row (float32 ``[bank width]``) of a stage following a control alone at
    ``value`` (:func:`stage_rows`' one row)."""
    return stage_rows(stage, value)[0]


def _resolved_stage(stage: Any, rows: np.ndarray, knob: ControlKey | None = None) -> Any:
    """A stage with ``rows`` as its bank: unkeyed (a control alone), else keyed on the 2-D
    stage's signal key with its edges; ``knob``: a ramp's two settings."""
    bank = RangeBank(rows.shape[0], stage.bank.n_params, rows)
    if stage.knob is None:
        return type(stage)(stage.block, bank, knob)
    return type(stage)(stage.block, bank, stage.key, stage.edges, stage.soft_width, knob)


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
        return _resolved_stage(stage, stage_rows(stage, values[stage.control]))

    return _rebuild(chain, make_stage)


def ramp_chain(chain: Any, values: Mapping[str, float]) -> tuple[Any, list[tuple[Any, Any]]]:
    """The streaming form of ``chain`` at ``values`` (checked): see the module docstring.

    Returns:
        ``(ramp, pairs)``: the chain, and per control-keyed stage ``(original, ramp stage)``.
    """
    pairs: list[tuple[Any, Any]] = []

    def make_stage(stage: Any) -> Any:
        rows = stage_rows(stage, values[stage.control])
        key = ControlKey(stage.control, RAMP_KEY_SETTINGS, rate="sample")
        ramp = _resolved_stage(stage, np.concatenate([rows, rows]), key)
        pairs.append((stage, ramp))
        return ramp

    return _rebuild(chain, make_stage), pairs


def ramp_selection(
    stage: Any, n_samples: int, hop_size: int, ramping: bool, level: Any = None
) -> Selection:
    """A ramp stage's selection for a call of ``n_samples`` (a chunk starting on the grid).

    Steady: the current value's rows everywhere (a 2-D bank: the signal key's selection
    ``level`` within them). After a change (``ramping``): a sample-rate stage moves from the
    previous rows to the current ones over the first frame (``frac = (j + 1) / hop``; a 2-D
    bank ramps within the range nearer the key there, soft edges rounded for that frame); a
    frame-rate stage (a filter) takes the current rows from the first frame, its coefficients
    faded by the filter's own crossfade.
    """
    sample = stage.control_rate == "sample"
    n = n_samples if sample else -(-n_samples // hop_size)
    per_setting = stage.edges.n_ranges if stage.knob is not None else 1
    if stage.knob is None or level is None or not hasattr(level, "lower"):
        lower = np.zeros(n, np.int32)
        upper = lower.copy()
        frac = np.zeros(n, np.float32)
    else:
        lower, upper, frac = (np.asarray(a) for a in level)
        if sample and lower.shape[0] != n:  # a frame-rate key held over each frame's samples
            lower, upper, frac = (np.repeat(a, hop_size)[:n] for a in (lower, upper, frac))
    near = np.where(frac >= 0.5, upper, lower).astype(np.int32)
    lower = (lower + per_setting).astype(np.int32)
    upper = (upper + per_setting).astype(np.int32)
    frac = frac.astype(np.float32)
    if ramping and sample:
        m = min(hop_size, n)
        lower[:m] = near[:m]
        upper[:m] = near[:m] + per_setting
        frac[:m] = (np.arange(m) + 1.0) / hop_size
    return Selection(lower, upper, frac)


def set_ramp_rows(pairs: list[tuple[Any, Any]], values: Mapping[str, float], keep: bool) -> None:
    """Move each ramp stage to ``values``: row 1 := the new row, and row 0 := the old row 1
    unless ``keep`` (a change before the previous one was rendered ramps from where the audio
    is, the current row 0)."""
    for stage, ramp in pairs:
        rows = ramp.bank.numpy()
        half = rows.shape[0] // 2
        start = rows[:half] if keep else rows[half:]
        ramp.bank.assign(np.concatenate([start, stage_rows(stage, values[stage.control])]))


__all__ = [
    "RAMP_KEY_SETTINGS",
    "check_controls",
    "describe",
    "middle_capture",
    "ramp_chain",
    "ramp_selection",
    "resolve",
    "set_ramp_rows",
    "stage_row",
    "stage_rows",
]
