"""Presets: the versioned JSON file a trained effect lives in (spec: docs/preset-format.md).

A preset holds physical parameters per range (dB, Hz, ...), the key that selects the
range, the data coverage of every range and the training metadata. Loading parses plain
JSON (no pickle, nothing executable), validates every field and refuses unknown
formats, versions and blocks, and non-finite or out-of-range values with a
:class:`~lactose_audio.errors.PresetError` naming the file and the field.

Save → load → save is byte-identical: the file is written with a fixed layout (2-space
indent, keys in a fixed order, floats in their shortest round-trip form).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lactose_audio.errors import LactoseError, PresetError
from lactose_audio.schema import check_document, check_size, check_text, is_integer

FORMAT = "lactose-audio-preset"
VERSION = 3
#: Versions this package reads. Version 2 added knob (``control``) keys, version 3 a stage's
#: ``control`` field (a 2-D bank: a knob and a signal key). A preset is written in the oldest
#: version that holds it (1 without knobs, 2 without 2-D banks), which older readers load.
READ_VERSIONS = (1, 2, 3)
SUFFIX = ".json"
#: Where shipped presets are looked up by name: $LACTOSE_PRESETS_PATH (os.pathsep-separated
#: folders), then the ``presets/`` folder of the source tree.
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "presets"


@dataclass
class Effect:
    """A loaded preset: a callable chain plus what the preset says about it.

    ``fx(x, sample_rate=44100)`` renders ``x`` (``[n_samples]`` float32) through the chain.
    ``fx[i]`` is the i-th stage; ``fx[i].params`` its per-range physical parameters;
    ``fx.ranges`` the edges of every stage's key, in the key's unit.

    Attributes:
        chain: the :class:`~lactose_audio.chains.Chain`.
        name: short name.
        description: one line.
        sample_rate: the rate it was trained at, in Hz (it renders at any rate).
        coverage: per stage, ``{"counts": [...], "flagged": [...]}`` per range.
        training: training metadata (latency_samples, validation_esr, steps, seconds, ...).
    """

    chain: Any
    name: str = ""
    description: str = ""
    sample_rate: int = 44100
    coverage: list[dict[str, Any]] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)
    knob_values: dict[str, float] = field(default_factory=dict)
    """Control values set by :meth:`set` (not saved in the preset)."""

    def __call__(
        self,
        audio,
        sample_rate: int,
        *,
        mix: float = 1.0,
        engine: str | None = None,
        **controls: float,
    ):
        """Render ``audio`` (float32 ``[n_samples]``) at ``sample_rate`` Hz.

        ``engine``: ``None`` for the default (``"iir"``), or ``"graph"`` for exactly the
        training graph (see :func:`lactose_audio.render.render`). ``controls``: values of the
        preset's knobs (``fx(x, sr, gain=3.7)``), over those given to :meth:`set`.

        Raises:
            ParameterError: On an unknown, missing or out-of-range control.
        """
        from lactose_audio.render import DEFAULT_ENGINE, render

        values = {**self.knob_values, **controls}
        return render(
            self.chain,
            audio,
            sample_rate,
            mix=mix,
            engine=engine or DEFAULT_ENGINE,
            controls=values or None,
        )

    @property
    def controls(self) -> dict[str, tuple[float, ...]]:
        """The knobs: ``{name: captured settings}`` (empty for a preset without knobs)."""
        return self.chain.controls

    def set(self, **controls: float) -> None:
        """Set knob values used by later calls (``fx.set(gain=3.7); fx(x, sr)``).

        Raises:
            ParameterError: On an unknown or out-of-range control.
        """
        from lactose_audio.knobs import check_controls

        values = {**self.knob_values, **controls}
        defaults = {n: s[0] for n, s in self.controls.items() if n not in values}
        check_controls(self.chain, {**defaults, **values})  # validates the given ones
        self.knob_values = values

    def __getitem__(self, index: int):
        return self.chain[index]

    def __len__(self) -> int:
        return len(self.chain)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.chain)

    @property
    def ranges(self) -> list[dict[str, Any]]:
        """Per stage (depth-first through nested chains, the order of ``coverage``): block
        name, key kind (``"none"`` for an unkeyed stage), unit and inner edges (``[]`` for one
        range)."""
        out = []
        for stage in self.chain.stages:
            edges = stage.edges
            out.append(
                {
                    "block": stage.block.name,
                    "key": key_kind(stage),
                    "unit": edges.unit,
                    "edges": [float(e) for e in edges.edges],
                    "n_ranges": edges.n_ranges,
                }
            )
            if stage.knob is not None:  # a 2-D bank: these ranges at each captured setting
                out[-1].update(control=stage.knob.name, settings=list(stage.knob.settings))
        return out

    def __repr__(self) -> str:
        return f"Effect({self.name!r}, {self.chain!r})"

    def to_document(self) -> dict[str, Any]:
        """The preset as a JSON-able dict (version 1 without knobs, 2 without 2-D banks,
        else 3)."""
        two_d = any(stage.knob is not None for stage in self.chain.stages)
        return {
            "format": FORMAT,
            "version": VERSION if two_d else 2 if self.chain.controls else 1,
            "name": self.name,
            "description": self.description,
            "sample_rate": int(self.sample_rate),
            "chain": self.chain.to_config(),
            "coverage": self.coverage,
            "training": self.training,
        }


def key_kind(stage: Any) -> str:
    """The kind of a stage's key: ``"none"`` for an unkeyed stage (its key is ``None``)."""
    return "none" if stage.key is None else str(stage.key.kind)


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name} is not allowed")


def _check_finite(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise PresetError(f"{where}: non-finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_finite(item, f"{where}[{i}]")


def dumps(document: dict[str, Any]) -> str:
    """Serialise a preset document in the canonical layout (byte-stable)."""
    _check_finite(document, "preset")
    return json.dumps(document, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def validate_document(document: Any, source: str = "preset") -> Effect:
    """Check a parsed preset document and build its :class:`Effect`.

    Args:
        document: the parsed JSON.
        source: the file name, for messages.

    Returns:
        The effect.

    Raises:
        PresetError: on any problem, naming ``source`` and the field.
    """
    if not isinstance(document, dict):
        raise PresetError(f"{source}: not a preset (expected a JSON object)")
    if document.get("format") != FORMAT:
        raise PresetError(
            f"{source}: not a lactose-audio preset (format is "
            f"{document.get('format')!r}, expected {FORMAT!r})"
        )
    version = document.get("version")
    if not is_integer(version) or version not in READ_VERSIONS:
        raise PresetError(
            f"{source}: unknown preset version {version!r}; this lactose_audio "
            f"reads versions {', '.join(map(str, READ_VERSIONS))}"
        )
    _check_finite(document, source)
    check_document(document, source)
    sample_rate = document["sample_rate"]
    if not is_integer(sample_rate) or not (1000 <= sample_rate <= 768000):
        raise PresetError(
            f"{source}: sample_rate must be an integer between 1000 Hz and "
            f"768000 Hz, got {sample_rate!r}"
        )

    from lactose_audio.chains import Chain

    try:
        chain = Chain.from_config(document["chain"])
    except PresetError as exc:
        raise PresetError(f"{source}: {exc}") from None
    except LactoseError as exc:
        raise PresetError(f"{source}: chain: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise PresetError(f"{source}: chain: malformed ({type(exc).__name__}: {exc})") from None

    if version < 2 and chain.controls:
        raise PresetError(f"{source}: control keys (knobs) need preset version 2, got {version}")
    if version < 3 and any(stage.knob is not None for stage in chain.stages):
        raise PresetError(
            f"{source}: a stage's control field (a 2-D bank) needs preset version 3, got {version}"
        )
    coverage = document["coverage"]
    stages = chain.stages  # depth-first through nested chains
    if not isinstance(coverage, list) or len(coverage) != len(stages):
        raise PresetError(
            f"{source}: coverage must list one entry per stage, nested ones included "
            f"({len(stages)}), got {len(coverage) if isinstance(coverage, list) else 'no list'}"
        )
    for i, (entry, stage) in enumerate(zip(coverage, stages, strict=True)):
        n_ranges = stage.n_ranges  # bank rows (a 2-D bank: settings x ranges)
        if not isinstance(entry, dict) or set(entry) != {"counts", "flagged"}:
            raise PresetError(f"{source}: coverage[{i}] must be {{counts, flagged}}")
        counts, flagged = entry["counts"], entry["flagged"]
        if (
            not isinstance(counts, list)
            or len(counts) != n_ranges
            or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)
        ):
            raise PresetError(f"{source}: coverage[{i}].counts must be {n_ranges} counts ≥ 0")
        if (
            not isinstance(flagged, list)
            or len(flagged) != n_ranges
            or not all(isinstance(f, bool) for f in flagged)
        ):
            raise PresetError(f"{source}: coverage[{i}].flagged must be {n_ranges} booleans")
    return Effect(
        chain=chain,
        name=document["name"],
        description=document["description"],
        sample_rate=sample_rate,
        coverage=coverage,
        training=document["training"],
    )


def _search_path() -> list[Path]:
    folders = [Path(p) for p in os.environ.get("LACTOSE_PRESETS_PATH", "").split(os.pathsep) if p]
    return [*folders, SHIPPED_DIR]


def resolve(path_or_name: str | os.PathLike) -> Path:
    """Find a preset by path, or by the name of a shipped preset (``tanh_drive``).

    Raises:
        PresetError: if neither a file nor a shipped preset has that name.
    """
    path = Path(path_or_name)
    if path.is_file():
        return path
    text = str(path_or_name)
    if os.sep not in text and not text.endswith(SUFFIX):
        for folder in _search_path():
            candidate = folder / f"{text}{SUFFIX}"
            if candidate.is_file():
                return candidate
    if path.exists():
        raise PresetError(f"{text}: not a file")
    names = ", ".join(name for name, _ in list_presets()) or "none"
    raise PresetError(f"{text}: no such preset file or shipped preset (shipped: {names})")


def load_preset(path_or_name: str | os.PathLike) -> Effect:
    """Load and validate a preset file, or a shipped preset by name.

    Args:
        path_or_name: a path to a ``.json`` preset, or a shipped preset's name
            (``lactose presets`` lists them).

    Returns:
        The :class:`Effect`: ``y = fx(x, sample_rate=44100)``.

    Raises:
        PresetError: unreadable, malformed, unknown version or block, invalid values.
    """
    path = resolve(path_or_name)
    try:
        check_size(path.stat().st_size, str(path))
        data = path.read_bytes()
    except OSError as exc:
        raise PresetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PresetError(
            f"{path}: not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}); "
            "a preset is a UTF-8 JSON file"
        ) from None
    check_text(text, str(path))
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise PresetError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise PresetError(f"{path}: JSON nested too deeply") from None
    return validate_document(document, str(path))


def save_preset(effect: Effect, path: str | os.PathLike) -> Path:
    """Write ``effect`` to ``path`` atomically in the canonical layout.

    Returns:
        The path written.
    """
    from lactose_audio.atomic import atomic_write_text

    text = dumps(effect.to_document())
    path = Path(path)
    atomic_write_text(path, text)
    return path


def list_presets() -> list[tuple[str, str]]:
    """Shipped presets as ``(name, description)``, sorted by name; unreadable ones skipped."""
    seen: dict[str, str] = {}
    for folder in _search_path():
        if not folder.is_dir():
            continue
        for file in sorted(folder.glob(f"*{SUFFIX}")):
            if file.stem in seen:
                continue
            try:
                document = json.loads(file.read_text(encoding="utf-8"))
                if document.get("format") != FORMAT:
                    continue
                seen[file.stem] = str(document.get("description", ""))
            except (OSError, ValueError, AttributeError):
                continue
    return sorted(seen.items())
