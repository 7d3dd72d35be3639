"""The preset schema: which fields each level of a preset holds, their JSON types and limits.

:func:`check_document` walks a parsed preset before anything is built from it and refuses,
with a :class:`~lactose_audio.errors.PresetError` naming the field (``chain.stages[1].key``),
unknown or missing fields at every level, values of the wrong JSON type (a parameter written
as the string ``"12"``, ``true`` where a number is expected: bool is not a number), and
values beyond the limits below, which keep a hostile or corrupted preset from exhausting
memory or the stack. :func:`check_text` guards the raw text (size, bracket depth) before
``json.loads`` parses it. Value ranges of block parameters and key settings are checked when
the chain is built (:mod:`lactose_audio.params`, :class:`~lactose_audio.conditioning.KeySpec`).

This module imports nothing heavy (the CLI reads its limits at start-up).
"""

from __future__ import annotations

import math
import re
from typing import Any

from lactose_audio.errors import PresetError

#: Most ranges a stage may have (also the bound of ``lactose train --ranges``).
MAX_RANGES = 256
#: Largest frame hop, in samples (1.5 s at 44.1 kHz); the FFT and frame buffers scale with it.
MAX_HOP_SIZE = 65536
#: Most chains nested inside the top-level chain.
MAX_CHAIN_DEPTH = 8
#: Most stages in a preset (depth-first, nested chains included).
MAX_STAGES = 256
#: Largest preset file, in bytes.
MAX_FILE_BYTES = 16 * 1024 * 1024
#: Deepest JSON nesting of objects and lists (a real preset needs about 6 + 3 per nested chain).
MAX_JSON_DEPTH = 64

_STAGE_FIELDS = ("block", "key", "edges", "soft_width", "units", "ranges")
_CHAIN_FIELDS = ("hop_size", "mix", "stages")
_EDGES_FIELDS = ("edges", "unit")
_KEY_NUMBERS = ("attack_ms", "release_ms", "fmin_hz", "fmax_hz")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def is_number(value: Any) -> bool:
    """True for a finite JSON number (int or float); bool is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def is_integer(value: Any) -> bool:
    """True for a JSON integer (``1024``, not ``1024.0`` nor ``true``)."""
    return isinstance(value, int) and not isinstance(value, bool)


def json_depth(text: str) -> int:
    """Deepest nesting of ``{``/``[`` in JSON ``text`` (brackets inside strings ignored)."""
    depth = deepest = 0
    for match in re.finditer(r"[\[\]{}]", _STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def check_size(n_bytes: int, source: str) -> None:
    """Refuse a preset file larger than :data:`MAX_FILE_BYTES`."""
    if n_bytes > MAX_FILE_BYTES:
        raise PresetError(
            f"{source}: file is {n_bytes} bytes, larger than the {MAX_FILE_BYTES} bytes a "
            "preset may have"
        )


def check_text(text: str, source: str) -> None:
    """Refuse preset text that is too large or nested too deeply to parse safely."""
    check_size(len(text.encode("utf-8", "surrogatepass")), source)
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise PresetError(
            f"{source}: JSON nested {depth} levels deep; a preset may nest at most {MAX_JSON_DEPTH}"
        )


def _fields(value: Any, where: str, required: tuple[str, ...], optional=()) -> dict:
    if not isinstance(value, dict):
        raise PresetError(f"{where} must be an object, got {_json_type(value)}")
    prefix = f"{where}: " if where else ""
    unknown = sorted(set(value) - set(required) - set(optional))
    if unknown:
        raise PresetError(f"{prefix}unknown field(s) {', '.join(map(str, unknown))}")
    for name in required:
        if name not in value:
            raise PresetError(f"{prefix}missing field {name!r}")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _number(value: Any, where: str, lo: float | None = None, hi: float | None = None) -> None:
    if not is_number(value):
        raise PresetError(f"{where} must be a finite number, got {_json_type(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        span = f"between {lo:g} and {hi:g}" if hi is not None else f">= {lo:g}"
        raise PresetError(f"{where} must be {span}, got {value!r}")


def _string(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise PresetError(f"{where} must be a string, got {_json_type(value)}")


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise PresetError(f"{where} must be a list, got {_json_type(value)}")
    return value


def check_document(document: Any, source: str) -> None:
    """Check the structure, JSON types and limits of a parsed preset (not its values).

    Args:
        document: the parsed JSON.
        source: the file name, for messages.

    Raises:
        PresetError: naming ``source``, the field and the problem.
    """
    top = ("format", "version", "name", "description", "sample_rate", "chain", "coverage")
    try:
        _fields(document, "", (*top, "training"))
        _string(document["format"], "format")
        if not is_integer(document["version"]):
            raise PresetError(f"version must be an integer, got {_json_type(document['version'])}")
        _string(document["name"], "name")
        _string(document["description"], "description")
        if not isinstance(document["training"], dict):
            raise PresetError(f"training must be an object, got {_json_type(document['training'])}")
        _list(document["coverage"], "coverage")
        n_stages = _check_chain(document["chain"], "chain", 0)
        if n_stages > MAX_STAGES:
            raise PresetError(
                f"chain has {n_stages} stages; a preset may have at most {MAX_STAGES}"
            )
    except PresetError as exc:
        raise PresetError(f"{source}: {exc}") from None


def _check_chain(chain: Any, where: str, depth: int) -> int:
    """Check a chain object; returns its number of stages (nested ones included)."""
    if depth > MAX_CHAIN_DEPTH:
        raise PresetError(f"{where}: chains nested more than {MAX_CHAIN_DEPTH} deep")
    _fields(chain, where, _CHAIN_FIELDS)
    hop = chain["hop_size"]
    if not is_integer(hop) or not 1 <= hop <= MAX_HOP_SIZE:
        raise PresetError(
            f"{where}.hop_size must be an integer between 1 and {MAX_HOP_SIZE} samples, "
            f"got {hop if is_integer(hop) else _json_type(hop)}"
        )
    _number(chain["mix"], f"{where}.mix", 0.0, 1.0)
    n_stages = 0
    for i, item in enumerate(_list(chain["stages"], f"{where}.stages")):
        here = f"{where}.stages[{i}]"
        if isinstance(item, dict) and "chain" in item:
            _fields(item, here, ("chain",))
            n_stages += _check_chain(item["chain"], f"{here}.chain", depth + 1)
        else:
            _check_stage(item, here)
            n_stages += 1
        if n_stages > MAX_STAGES:
            raise PresetError(f"{where}: more than {MAX_STAGES} stages")
    return n_stages


def _check_stage(stage: Any, where: str) -> None:
    _fields(stage, where, _STAGE_FIELDS, ("control",))
    _string(stage["block"], f"{where}.block")
    _check_key(stage["key"], f"{where}.key")
    if "control" in stage:  # a 2-D bank's knob (format version 3)
        _check_key(stage["control"], f"{where}.control")
        if stage["control"].get("kind") != "control":
            raise PresetError(f"{where}.control must be a control key (kind control)")
    edges = _fields(stage["edges"], f"{where}.edges", _EDGES_FIELDS)
    _string(edges["unit"], f"{where}.edges.unit")
    inner = _list(edges["edges"], f"{where}.edges.edges")
    if len(inner) + 1 > MAX_RANGES:
        raise PresetError(
            f"{where}.edges: {len(inner) + 1} ranges; a stage may have at most {MAX_RANGES}"
        )
    for j, edge in enumerate(inner):
        _number(edge, f"{where}.edges.edges[{j}]")
    _number(stage["soft_width"], f"{where}.soft_width", 0.0)
    units = stage["units"]
    if not isinstance(units, dict):
        raise PresetError(f"{where}.units must be an object, got {_json_type(units)}")
    for name, unit in units.items():
        _string(unit, f"{where}.units.{name}")
    ranges = _list(stage["ranges"], f"{where}.ranges")
    if len(ranges) > MAX_RANGES:
        raise PresetError(f"{where}.ranges: {len(ranges)} ranges; at most {MAX_RANGES}")
    for j, row in enumerate(ranges):
        if not isinstance(row, dict):
            raise PresetError(f"{where}.ranges[{j}] must be an object, got {_json_type(row)}")
        if set(units) != set(row):
            raise PresetError(
                f"{where}.ranges[{j}]: parameters {sorted(row)} differ from units {sorted(units)}"
            )
        for name, value in row.items():
            _number(value, f"{where}.ranges[{j}].{name}")


def _check_key(key: Any, where: str) -> None:
    if not isinstance(key, dict):
        raise PresetError(f"{where} must be an object, got {_json_type(key)}")
    kind = key.get("kind")
    _string(kind, f"{where}.kind")
    if kind == "none":
        _fields(key, where, ("kind",))
        return
    if kind == "control":  # a knob (format version 2)
        _fields(key, where, ("kind", "name", "settings"))
        _string(key["name"], f"{where}.name")
        settings = _list(key["settings"], f"{where}.settings")
        if not 1 <= len(settings) <= MAX_RANGES:
            raise PresetError(f"{where}.settings: 1 to {MAX_RANGES} settings, got {len(settings)}")
        for j, value in enumerate(settings):
            _number(value, f"{where}.settings[{j}]")
        return
    _fields(key, where, ("kind", "rate", *_KEY_NUMBERS), optional=("pitch_rule",))
    _string(key["rate"], f"{where}.rate")
    for name in _KEY_NUMBERS:
        _number(key[name], f"{where}.{name}")
    if "pitch_rule" in key:  # absent: "pyin" (presets before the field)
        _string(key["pitch_rule"], f"{where}.pitch_rule")


__all__ = [
    "MAX_CHAIN_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_HOP_SIZE",
    "MAX_JSON_DEPTH",
    "MAX_RANGES",
    "MAX_STAGES",
    "check_document",
    "check_size",
    "check_text",
    "is_integer",
    "is_number",
    "json_depth",
]
