"""A chain's stage: a block, its LACTOSE bank of per-range parameters, and what selects the
range (the key, its edges, a knob). The chain (:mod:`lactose_audio.chains`) puts stages in
series; the semantics they share are described there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lactose_audio import blocks as _blocks
from lactose_audio.blocks.base import Block
from lactose_audio.chain_spec import (
    ControlKey,
    key_dict,
    key_from_dict,
    key_signature,
    settings_edges,
)
from lactose_audio.errors import ParameterError
from lactose_audio.params import format_value, physical_to_raw_np, raw_to_physical_np
from lactose_audio.ranges import (
    RangeBank,
    RangeEdges,
)


class Stage:
    """A block, the bank that feeds it, and the key and edges that select the bank's rows.

    Args:
        block: A :class:`~lactose_audio.blocks.Block` or a registered block name.
        bank: ``RangeBank`` ``[edges.n_ranges, block.n_params]``; default: every row at the
            declared defaults.
        key: ``KeySpec`` of the conditioning signal, or ``None`` (unconditioned, 1 range).
        edges: ``RangeEdges`` in the key's unit; default: no edges (1 range).
        soft_width: Soft-edge band width in the key's unit (0: the hard "if").
        knob: A :class:`~lactose_audio.chain_spec.ControlKey` the stage follows *as well as*
            a signal ``key``: a 2-D bank, one block of ``edges.n_ranges`` rows per captured
            setting (row ``s * edges.n_ranges + r``: setting ``s``, range ``r``). A control
            alone is given as ``key``.

    Raises:
        ParameterError: On mismatched bank/edges sizes, several ranges without a key, or a
            ``knob`` that is not a control or comes with a control ``key``.
    """

    def __init__(
        self,
        block: Block | str,
        bank: RangeBank | None = None,
        key: Any = None,
        edges: RangeEdges | None = None,
        soft_width: float = 0.0,
        knob: ControlKey | None = None,
    ) -> None:
        self.block = _blocks.get_block(block) if isinstance(block, str) else block
        if not self.block.params and bank is None:  # nothing to select: never keyed
            key = edges = knob = None
        if knob is not None:
            if not isinstance(knob, ControlKey):
                raise ParameterError(f"stage {self.block.name}: knob must be a control key")
            if isinstance(key, ControlKey):
                raise ParameterError(f"stage {self.block.name}: a stage follows one control")
            if key is None:
                key, knob = knob, None  # a control alone
        self.key = key
        self.knob = knob
        if isinstance(key, ControlKey):
            expected = settings_edges(key.settings)
            if edges is not None and tuple(edges.edges) != expected.edges:
                raise ParameterError(
                    f"stage {self.block.name}: a control key's edges are the midpoints of its "
                    f"settings {list(key.settings)}, got {list(edges.edges)}"
                )
            edges = expected
        self.edges = edges if edges is not None else RangeEdges((), getattr(key, "unit", ""))
        self.soft_width = float(soft_width)
        n_ranges = self.edges.n_ranges * (len(knob.settings) if knob is not None else 1)
        if key is None and n_ranges > 1:
            raise ParameterError(f"stage {self.block.name}: {n_ranges} ranges need a key")
        if bank is None:
            rows = np.array([p.default_raw for p in self.block.params], np.float32)
            bank = RangeBank(n_ranges, max(self.block.n_params, 1), rows if rows.size else 0.0)
        if bank.n_ranges != n_ranges or bank.n_params != max(self.block.n_params, 1):
            raise ParameterError(
                f"stage {self.block.name}: bank is [{bank.n_ranges}, {bank.n_params}], expected "
                f"[{n_ranges}, {self.block.n_params}] (n_ranges from edges, n_params from block)"
            )
        self.bank = bank

    @property
    def n_ranges(self) -> int:
        """Number of bank rows (a 2-D bank: settings x the key's ranges)."""
        return self.edges.n_ranges * (len(self.knob.settings) if self.knob is not None else 1)

    @property
    def signal_keyed(self) -> bool:
        """True when a signal key (amplitude, pitch, sample) splits the rows into ranges."""
        return (
            self.key is not None
            and not isinstance(self.key, ControlKey)
            and self.edges.n_ranges > 1
        )

    @property
    def control_key(self) -> ControlKey | None:
        """The control this stage follows (alone or with a signal key), or ``None``."""
        if self.knob is not None:
            return self.knob
        return self.key if isinstance(self.key, ControlKey) else None

    @property
    def keyed(self) -> bool:
        """True when rows are selected by a key (more than one range)."""
        return self.key is not None and self.n_ranges > 1

    @property
    def control_rate(self) -> str:
        """``"sample"`` if block and key are sample-rate, else ``"frame"`` (a renderer's ramp
        of a 2-D bank: a sample-rate knob makes a pointwise stage sample-rate)."""
        sample = self.block.rate == "sample" and not self.block.is_linear
        rates = (getattr(self.key, "rate", ""), getattr(self.knob, "rate", ""))
        return "sample" if sample and "sample" in rates else "frame"

    @property
    def control(self) -> str | None:
        """The name of the control (knob) this stage follows, or ``None``."""
        control = self.control_key
        return None if control is None else control.name

    def selection_signature(self) -> tuple:
        """Stages with equal signatures share one selection."""
        knob = None if self.knob is None else key_signature(self.knob)
        return (key_signature(self.key), self.edges.edges, self.soft_width, self.control_rate, knob)

    def physical(self) -> np.ndarray:
        """Per-range physical parameters, float64 ``[n_ranges, n_params]``."""
        raw = self.bank.numpy()[:, : self.block.n_params]
        return raw_to_physical_np(self.block.params, raw)

    @property
    def params(self) -> dict[str, list[float]]:
        """Per-range physical parameters by name: ``{"drive_db": [range 0, range 1, ...]}``."""
        rows = self.physical()
        return {n: [float(v) for v in rows[:, i]] for i, n in enumerate(self.block.param_names)}

    def set_physical(self, values: Any) -> None:
        """Set every row from physical values ``[n_ranges, n_params]`` or ``[n_params]``.

        Raises:
            ParameterError: If a value is out of its declared range (names value and unit).
        """
        raw = physical_to_raw_np(self.block.params, np.asarray(values, np.float64))
        if self.block.n_params:
            self.bank.assign(np.broadcast_to(raw, (self.n_ranges, self.block.n_params)))

    def to_config(self) -> dict[str, Any]:
        """``{"block", "key", "edges", "soft_width", "units", "ranges": [{name: value}]}``,
        and ``"control"`` (the knob) for a 2-D bank, whose ``ranges`` run setting by setting."""
        names = self.block.param_names
        rows = self.physical()
        config = {
            "block": self.block.name,
            "key": key_dict(self.key),
            "edges": self.edges.to_dict(),
            "soft_width": self.soft_width,
            "units": {p.name: p.unit for p in self.block.params},
            "ranges": [{n: float(v) for n, v in zip(names, row, strict=True)} for row in rows],
        }
        if self.knob is not None:
            config["control"] = key_dict(self.knob)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Stage:
        """Inverse of :meth:`to_config` (values validated against the declared ranges)."""
        block = _blocks.get_block(config["block"])
        edges = RangeEdges.from_dict(config["edges"])
        knob = key_from_dict(config["control"]) if "control" in config else None
        if knob is not None and not isinstance(knob, ControlKey):
            raise ParameterError(f"stage {block.name}: control must be a control key")
        key = key_from_dict(config["key"])
        if knob is not None and (key is None or isinstance(key, ControlKey)):
            raise ParameterError(
                f"stage {block.name}: a stage with a control field needs a signal key"
            )
        if not block.params and (key is not None or knob is not None or edges.n_ranges > 1):
            raise ParameterError(f"stage {block.name}: has no parameters, so it cannot be keyed")
        stage = cls(block, None, key, edges, config["soft_width"], knob)
        ranges = config["ranges"]
        if len(ranges) != stage.n_ranges:
            raise ParameterError(
                f"stage {block.name}: {len(ranges)} parameter rows for {stage.n_ranges} ranges"
            )
        names = block.param_names
        for row in ranges:
            if set(row) != set(names):
                raise ParameterError(
                    f"stage {block.name}: parameters must be {list(names)}, got {sorted(row)}"
                )
        stage.set_physical([[row[n] for n in names] for row in ranges] or np.zeros((1, 0)))
        return stage

    def __repr__(self) -> str:
        key = "" if self.key is None else f"@{self.control or self.key.kind}"
        if self.knob is not None:
            key = f"@{self.knob.name}+{self.key.kind}"
        rows = self.physical()
        parts = []
        for i, spec in enumerate(self.block.params[:6]):
            column = rows[:, i].copy()
            column[np.abs(column) < 1e-6 * (spec.maximum - spec.minimum)] = 0.0  # float32 raw
            lo, hi = float(column.min()), float(column.max())
            text = format_value(spec, lo)
            if hi != lo:
                text += " .. " + format_value(spec, hi).split("=", 1)[1]
            parts.append(text)
        more = ", ..." if self.block.n_params > 6 else ""
        return f"{self.block.name}{key}[{self.n_ranges}]({', '.join(parts)}{more})"


__all__ = ["Stage"]
