"""Knob captures: one preset from recordings of an effect at several settings of its knobs.

``lactose train DRY --capture WET1 gain=0 --capture WET2 gain=5 ... --out p.json`` (or a
folder ``DIR/dry.wav`` + ``DIR/captures.csv`` with columns ``file,<control>,...``): every
capture is a dry/wet pair (its own latency found by :mod:`lactose_audio.data`) carrying its
control values. One joint fit (:func:`lactose_audio.training.train`): the stages that follow a
control have one row per captured setting; the unconditioned phase fits shared parameters
over every capture, then the per-range phase refines each setting's rows with only that
capture's error (each capture's selection picks its own row: hard, ``frac = 0``). A capture
can be held out (``--holdout gain=5``): it is not trained on, and its ESR is measured with the
parameters interpolated at its setting (:mod:`lactose_audio.knobs`).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lactose_audio.chain_spec import CONTROL_NAME
from lactose_audio.errors import DataError, ParameterError
from lactose_audio.losses import esr
from lactose_audio.sampling import pick, validation_blocks

CAPTURES_CSV = "captures.csv"
DRY_NAME = "dry.wav"


def parse_controls(text: str) -> dict[str, float]:
    """``"gain=5,tone=3"`` -> ``{"gain": 5.0, "tone": 3.0}``.

    Raises:
        ParameterError: On a malformed item, a bad name, a non-finite value or a repeat.
    """
    out: dict[str, float] = {}
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise ParameterError(f"expected control values like gain=5,tone=3, got {text!r}")
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not CONTROL_NAME.match(name):
            raise ParameterError(f"expected NAME=VALUE (e.g. gain=5), got {item!r}")
        try:
            number = float(value)
        except ValueError:
            raise ParameterError(f"control {name}: {value.strip()!r} is not a number") from None
        if not math.isfinite(number):
            raise ParameterError(f"control {name} must be finite, got {value.strip()}")
        if name in out:
            raise ParameterError(f"control {name} is given twice in {text!r}")
        out[name] = number
    return out


def read_captures_csv(folder: str | os.PathLike) -> tuple[Path, list[tuple[Path, dict]]]:
    """``(dry path, [(wet path, controls)])`` of a captures folder (see the module docstring).

    Raises:
        DataError: If ``dry.wav`` or ``captures.csv`` is missing or the table is malformed.
    """
    folder = Path(folder)
    dry, table = folder / DRY_NAME, folder / CAPTURES_CSV
    for path in (dry, table):
        if not path.is_file():
            raise DataError(
                f"{path}: missing (a captures folder holds {DRY_NAME} and "
                f"{CAPTURES_CSV} with columns file,<control>,...)"
            )
    with open(table, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows = [[c.strip() for c in r] for r in rows if any(c.strip() for c in r)]
    if not rows or rows[0][:1] != ["file"] or len(rows[0]) < 2:
        raise DataError(f"{table}: the first row must be file,<control>,... (e.g. file,gain)")
    names = rows[0][1:]
    captures = []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            raise DataError(f"{table}: line {n} has {len(row)} columns, expected {len(rows[0])}")
        try:
            controls = parse_controls(
                ",".join(f"{k}={v}" for k, v in zip(names, row[1:], strict=True))
            )
        except ParameterError as exc:
            raise DataError(f"{table}: line {n}: {exc}") from None
        captures.append((folder / row[0], controls))
    if not captures:
        raise DataError(f"{table}: no captures listed")
    return dry, captures


def check_captures(captures: Sequence[tuple[Any, dict]]) -> dict[str, list[float]]:
    """The settings of every control, sorted: ``{name: [settings]}``.

    Raises:
        ParameterError: If captures name different controls or two have the same settings.
    """
    if not captures:
        raise ParameterError("no captures given")
    names = set(captures[0][1])
    seen = set()
    for wet, controls in captures:
        if set(controls) != names:
            raise ParameterError(
                f"{wet}: controls {sorted(controls)} differ from the first capture's "
                f"{sorted(names)}; every capture sets the same controls"
            )
        point = tuple(sorted(controls.items()))
        if point in seen:
            raise ParameterError(f"{wet}: a second capture at {dict(point)}")
        seen.add(point)
    return {n: sorted({c[n] for _, c in captures}) for n in sorted(names)}


def load_captures(
    dry: str | os.PathLike, captures: Sequence[tuple[Any, dict]], **options: Any
) -> list[Any]:
    """Load each capture as a :class:`~lactose_audio.data.Pair` (own latency) with controls."""
    from lactose_audio.data import load_pair

    pairs = []
    for wet, controls in captures:
        pair = load_pair(dry, wet, **options)
        label = ",".join(f"{k}={v:g}" for k, v in controls.items())
        pairs.append(dataclasses.replace(pair, controls=dict(controls), name=label))
    return pairs


def capture_report(effect: Any, pairs: Sequence[Any], validation_fraction: float) -> list[dict]:
    """Per capture: wet name, controls, latency and the validation ESR (its held-out blocks),
    rendered with the saved preset at the capture's settings."""
    out = []
    for pair in pairs:
        held = validation_blocks(
            pair.n_samples, validation_fraction, effect.chain.hop_size, pair.sample_rate
        )
        prediction = effect(pair.dry, pair.sample_rate, **pair.controls)
        out.append(
            {
                "wet": pair.wet_name,
                "controls": dict(pair.controls),
                "latency_samples": int(pair.latency_samples),
                "validation_esr": esr(pick(pair.wet, held), pick(prediction, held)),
            }
        )
    return out


def train_captures(
    dry: str | os.PathLike,
    captures: Sequence[tuple[Any, dict]] | None,
    out: str | os.PathLike,
    config: Any = None,
    *,
    holdout: Sequence[dict[str, float]] = (),
    channel: int | None = None,
    resample: bool = False,
    latency: int | None = None,
    report_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
) -> Any:
    """``lactose train DRY --capture WET gain=5 ...``: load, fit jointly, save, report.

    Args:
        dry: the dry file, or a captures folder (then ``captures`` is ``None``).
        captures: ``[(wet path, {control: setting})]``.
        out: preset path.
        config: :class:`~lactose_audio.train_config.TrainConfig` (``controls`` is filled in).
        holdout: control settings of captures to leave out of training; each one's ESR with
            the interpolated parameters is reported (``training.holdout``).

    Returns:
        The :class:`~lactose_audio.train_config.TrainResult`; its ``effect.training`` holds
        ``captures`` (per capture: controls, latency, validation ESR) and ``holdout``.

    Raises:
        ParameterError, DataError: on bad captures, options or audio.
    """
    from lactose_audio.presets import save_preset
    from lactose_audio.training import TrainConfig, train

    if captures is None:
        dry, captures = read_captures_csv(dry)
    elif Path(dry).is_dir():
        raise ParameterError(f"{dry} is a folder: give a dry file with --capture, or no --capture")
    captures = list(captures)
    check_captures(captures)
    held = []
    for point in holdout:
        match = [c for c in captures if c[1] == point]
        if not match:
            raise ParameterError(f"--holdout {point}: no capture at these settings")
        held.extend(match)
    kept = [c for c in captures if c not in held]
    if not kept:
        raise ParameterError("--holdout leaves no capture to train on")
    settings = check_captures(kept)
    for _, point in held:
        _clip(point, settings)
    cfg = dataclasses.replace(config or TrainConfig(), controls=settings).resolved()
    options = dict(
        channel=channel,
        resample=resample,
        latency=latency,
        validation_fraction=cfg.validation_fraction,
    )
    pairs = load_captures(dry, kept, **options)
    held_pairs = load_captures(dry, held, **options)
    result = train(pairs, cfg, out=out, report_dir=report_dir, resume=resume, progress=progress)
    effect = result.effect
    effect.training["captures"] = capture_report(effect, pairs, cfg.validation_fraction)
    effect.training["holdout"] = [
        {
            "wet": p.wet_name,
            "controls": dict(p.controls),
            "latency_samples": int(p.latency_samples),
            "esr": esr(p.wet, effect(p.dry, p.sample_rate, **p.controls)),
        }
        for p in held_pairs
    ]
    if result.out_path is not None:
        save_preset(effect, result.out_path)
    return result


def _clip(controls: dict[str, float], settings: dict[str, list[float]]) -> dict[str, float]:
    """A held-out setting outside the trained ones is refused by the renderer: say so."""
    for name, value in controls.items():
        lo, hi = settings[name][0], settings[name][-1]
        if not lo <= value <= hi:
            raise ParameterError(
                f"--holdout {name}={value:g} lies outside the trained settings {lo:g} .. {hi:g}: "
                "only settings between captured ones can be interpolated"
            )
    return controls


__all__ = [
    "CAPTURES_CSV",
    "DRY_NAME",
    "capture_report",
    "check_captures",
    "load_captures",
    "parse_controls",
    "read_captures_csv",
    "train_captures",
]
