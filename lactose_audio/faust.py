"""The code-generation backend of the chain executor: a preset as a Faust program.

:func:`export_faust` walks a chain's :class:`~lactose_audio.executor.Plan` with
:class:`FaustBackend` (the same walk as training and rendering) and returns a self-contained
Faust program that does what ``lactose render`` does, causally, sample by sample:

- **Keys**: the amplitude key with the same ballistics (:mod:`lactose_audio.conditioning`):
  per sample, or per frame with the envelope stepped per ``ENVELOPE_BLOCK`` (16) samples cut
  from each frame's start; a sample-rate key feeding a frame-rate stage is averaged per frame.
- **Frame clock**: a sample counter modulo the hop. A frame's key needs all of the frame, so
  a chain with a frame-rate key runs one frame late (latency = ``hop_size`` samples, declared
  as ``latency_samples``): while frame ``f`` arrives, the plugin outputs frame ``f - 1``,
  processed with the key of frame ``f - 1`` (held from its end). Output sample ``n + hop``
  equals the render's sample ``n``. A chain with only per-sample keys (or none) has no latency.
- **Ranges**: THE boundary rule (``key >= edge`` counted, edges rounded up to float32 like
  :func:`lactose_audio.ranges.range_index`) and the same soft bands as
  :func:`lactose_audio.ranges.select`.
- **Pointwise stages**: each block's :meth:`~lactose_audio.blocks.Block.faust` kernel on
  physical controls read from per-range tables; soft edges interpolate the raw values (the
  parameter's own scaling, generated from :class:`~lactose_audio.units.Scaling`) like
  ``RangeBank.gather``.
- **Filter groups** of RBJ biquads and DC blockers: the blocks' own ``coefficients`` formulas
  (evaluated on Faust expressions by :data:`FAUST`, at the host's sample rate, once at
  initialisation into per-range tables), converted by :func:`lactose_audio.svf.svf_formula`
  and :func:`lactose_audio.svf.lane_coefficients` into the renderer's SVF lanes, whose 9
  coefficients move along the same raised-cosine crossfade over the first
  ``crossfade_length(hop)`` samples of a frame (none in the first frame); soft edges run two
  lanes and crossfade their outputs, as :mod:`lactose_audio.svf` does.
- Nested chains and ``mix`` through the executor; the user's dry/wet ``mix`` (%) and an
  ``output`` gain (dB) are plugin sliders.
- **Knobs** (``control`` keys, :mod:`lactose_audio.knobs`): one slider per control, labelled
  with its name (``"<name> knob"`` for a control called ``mix`` or ``output``), ranging over
  the captured settings, defaulting to the middle captured setting (the lower middle one of an
  even count: the first of two). Each parameter of a stage following it is interpolated
  between the two captured settings around the value exactly as
  :func:`lactose_audio.knobs.stage_row` does, in its declared scaling
  (:meth:`lactose_audio.units.Scaling.interpolate_with`: dB and other linear parameters
  linearly, Hz and ``q`` on a log axis); these depend on sliders only, so Faust computes them
  once per host block. A slider is read at each frame start; after a change, pointwise stages
  ramp their raw values over that frame and filters crossfade their coefficients like a range
  change: what ``RenderStream.set`` does at a chunk boundary on the frame grid. A stage
  following a knob *and* the amplitude key (a 2-D bank) interpolates each range of the key
  between the two settings (:func:`lactose_audio.knobs.stage_rows`), ramps every range's
  values and picks the key's range per frame (or sample); its filters fade from the previous
  frame's range at the previous frame's sliders.

Frequency-sampled filters (``fir_eq``, plugin ``LinearFilter`` s) and the biquads of their group
become one direct-form FIR with the renderer's taps, for each sample rate of ``sample_rates``
(:mod:`lactose_audio.faust_fir`).

Refused with :class:`~lactose_audio.errors.ExportError` (one line): pitch keys (pYIN over the
whole file is not causal), blocks without a Faust kernel (plugins' blocks), frequency-sampled
filter groups with a keyed stage or a knob (a FIR changing every frame: see
:mod:`lactose_audio.faust_fir`).

Not exact: Faust plugins (and DawDreamer) compute in float32, the renderer in float64 (about
1e-9 ESR on guitar-like material, tests bound it at 1e-5); the render's last *partial* frame
is keyed on its own samples, a plugin's on that frame padded with what follows.

No TensorFlow.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lactose_audio import __version__
from lactose_audio.blocks.base import Block
from lactose_audio.conditioning import FLOOR_DB
from lactose_audio.errors import ExportError
from lactose_audio.executor import FilterGroup, PointwiseRun, execute, plan
from lactose_audio.faust_fir import (
    DEFAULT_SAMPLE_RATES,
    check_fir_group,
    fir_group,
    sample_rates_of,
)
from lactose_audio.faust_library import SR_DEFINITION, library  # noqa: F401 (re-exported)
from lactose_audio.faust_ops import FAUST, FaustOps, Sym, num  # noqa: F401 (re-exported)
from lactose_audio.iir import frame_filtered
from lactose_audio.ranges import cast_up
from lactose_audio.svf import N_COEFS

SAMPLE_RATE = Sym("SR")


# ---- the backend -------------------------------------------------------------------------------


def check_exportable(chain: Any) -> None:
    """Raise :class:`ExportError` (one line) if ``chain`` cannot become a Faust program."""
    for i, stage in enumerate(chain.stages):
        block = stage.block
        where = f"stage {i} ({block.name})"
        if stage.keyed and stage.key.kind == "pitch":
            raise ExportError(
                f"{where} is keyed on pitch: the pitch key is tracked by pYIN over the whole "
                "file (not causal), so a real-time plugin cannot reproduce it; pitch-keyed "
                "presets are not exported"
            )
        if stage.keyed and stage.key.kind not in ("amplitude", "sample", "control"):
            raise ExportError(f"{where}: a {stage.key.kind!r} key has no Faust detector")
        if not block.is_linear and type(block).faust is Block.faust:
            block.faust("x", {})  # raises the block's own message
    for group in plan(chain).groups:
        if frame_filtered(group.stages):
            names = ">".join(st.block.name for st in group.stages)
            check_fir_group(group.stages, f"filter group {group.number} ({names})")


class FaustBackend:
    """Walks a plan (:func:`lactose_audio.executor.execute`) emitting Faust definitions.

    Signals are names of definitions inside ``process``; :meth:`program` assembles the text.

    Args:
        chain: The chain (:func:`check_exportable`).
        sample_rates: Rates the frequency-sampled filter groups carry taps for, Hz
            (:mod:`lactose_audio.faust_fir`).
    """

    def __init__(self, chain: Any, sample_rates: tuple[int, ...] = DEFAULT_SAMPLE_RATES) -> None:
        check_exportable(chain)
        self.chain = chain
        self.sample_rates = sample_rates_of(sample_rates)
        self.fir_groups = 0
        self.hop = int(chain.hop_size)
        self.plan = plan(chain)
        self.tables: list[str] = []  # top-level: per-range parameters and coefficient tables
        self.body: list[str] = []  # inside process: keys, selections, the chain
        self._keys: dict[tuple, str] = {}
        self._sels: dict[tuple, tuple[str, str, str, bool]] = {}
        self._edges_of: dict[str, str] = {}  # selection (its lo name) -> its edges' name
        self._knobs: dict[str, tuple[float, ...]] = {}  # control name -> captured settings
        self._n = 0
        self.latency = 0

    # ---- keys and selections
    def _key(self, stage: Any) -> tuple[str, str | None]:
        """Names of a stage's key (in its unit) and, for an amplitude key read per frame or
        per sample, of its linear power (what hard edges compare, as powers)."""
        key, per_sample = stage.key, stage.control_rate == "sample"
        sig = (key.kind, key.rate, key.attack_ms, key.release_ms, per_sample)
        if sig in self._keys:
            return self._keys[sig]
        name = f"key{len(self._keys)}"
        power = None
        rate = "per sample" if per_sample else "per frame, held over the frame"
        if key.kind == "amplitude":
            times = f"{num(key.attack_ms)}, {num(key.release_ms)}"
            if per_sample or key.rate == "frame":
                power = f"{name}p"
                detector = "amp_sample_power" if per_sample else "amp_frame_power"
                expr = f"{detector}({times}, {'xd' if per_sample else 'x'})"
                expr = expr if per_sample else f"atframe({expr})"
                self.body.append(f"  {power} = {expr};  // envelope power (linear), {rate}")
                expr = f"todb({power})"
            else:
                expr = f"frame_mean(todb(amp_sample_power({times}, x)))"
        else:  # the signed sample
            expr = "xd" if per_sample else "frame_mean(x)"
        if not per_sample:
            self.latency = self.hop
        self.body.append(f"  {name} = {expr};  // {key.kind} key ({key.unit}), {rate}")
        self._keys[sig] = (name, power)
        return self._keys[sig]

    def _selection(self, stage: Any) -> tuple[str, str, str, bool]:
        key, power = self._key(stage)
        sig = (key, stage.edges.edges, stage.soft_width)
        if sig in self._sels:
            return self._sels[sig]
        i = len(self._sels)
        lo, up, fr, edges = f"lo{i}", f"up{i}", f"fr{i}", f"edges{i}"
        self._edges_of[lo] = edges
        e32 = cast_up(np.asarray(stage.edges.edges, np.float64), np.dtype(np.float32))
        n, width = len(e32), stage.soft_width
        self.tables.append(
            f"{edges} = ({', '.join(num(e) for e in e32)});  // {stage.edges.unit or 'linear'}: "
            f"inner edges of the ranges (float32, rounded up)"
        )
        edge = f"ba.take(k + 1, {edges})"
        if power is not None and not width > 0.0:
            # key >= e  <=>  power >= 10^(e/10) (up to float32 rounding); an edge at or below
            # the key's floor is always passed
            test = f"(({power} >= pow(10.0, 0.1 * e)) | (e <= {num(FLOOR_DB)}))"
        else:
            test = f"({key} >= e)"
        count = f"sum(k, {n}, {test} with {{ e = {edge}; }})"
        soft = width > 0.0
        if not soft:
            self.body.append(f"  {lo} = {count};  // the range: how many edges are <= the key")
        else:
            band = f"inband({key}, {edge}, {num(width)})"
            self.body.append(f"  // soft edges: {width:g} {stage.edges.unit} bands around them")
            self.body.append(f"  {lo} = {count} - sum(k, {n}, {band} * ({key} >= {edge}));")
            self.body.append(f"  {up} = {lo} + sum(k, {n}, {band});")
            self.body.append(
                f"  {fr} = sum(k, {n}, {band} * inband_frac({key}, {edge}, {num(width)}));"
                f"  // weight of range {up}"
            )
        self._sels[sig] = (lo, up, fr, soft)
        return self._sels[sig]

    # ---- per-range tables
    def _values(self, index: int, stage: Any) -> dict[str, str]:
        """Top-level per-range values of a stage's parameters; ``{param: definition name}``.

        A keyed stage's are lists (one value per range), an unkeyed stage's single values.
        """
        block, rows = stage.block, stage.physical()
        names = {}
        if stage.knob is not None:
            knob = self._knob(stage)
            split = ""
            if stage.signal_keyed:
                split = f", split at {self._edges_of[self._selection(stage)[0]]}"
            self.tables.append(
                f"// stage {index}: {block.name}, for each captured setting of {knob} "
                f"({', '.join(num(s) for s in stage.knob.settings)}) one row per range of the "
                f"{stage.key.kind} key ({stage.edges.n_ranges}{split})"
            )
        elif stage.keyed and stage.control is not None:
            knob = self._knob(stage)
            self.tables.append(
                f"// stage {index}: {block.name}, one row per captured setting of {knob} "
                f"({', '.join(num(s) for s in stage.key.settings)})"
            )
        elif stage.keyed:
            lo = self._selection(stage)[0]  # defines the edges first
            self.tables.append(
                f"// stage {index}: {block.name}, {stage.n_ranges} ranges of the "
                f"{stage.key.kind} key split at {self._edges_of[lo]}"
            )
        else:
            self.tables.append(f"// stage {index}: {block.name} (one range)")
        for i, spec in enumerate(block.params):
            name = f"s{index}_{block.name}_{spec.name}"
            values = ", ".join(num(v) for v in rows[:, i])
            values = f"({values})" if stage.keyed else values
            unit = f"  // {spec.unit}" if spec.unit else ""
            self.tables.append(f"{name} = {values};{unit}")
            names[spec.name] = name
        return names

    # ---- knobs (control keys): plugin sliders
    def _knob(self, stage: Any) -> str:
        """The slider of a stage's control (defined once per control); returns its name.

        Also defines ``<name>_k`` (the captured interval ``[s_k, s_k+1]`` holding the value) and
        ``<name>_t`` (``(v - s_k) / (s_k+1 - s_k)``), as :func:`lactose_audio.knobs.stage_row`.
        """
        control, settings = stage.control, stage.control_key.settings
        name = f"knob_{control}"
        if control in self._knobs:
            return name
        self._knobs[control] = settings
        n, lo, hi = len(settings), settings[0], settings[-1]
        label = f"{control} knob" if control in ("mix", "output") else control
        step = 10.0 ** math.floor(math.log10((hi - lo) / 1000.0))
        default = settings[(n - 1) // 2]  # the middle captured setting (the first of two)
        values = ", ".join(num(v) for v in settings)
        count = f"sum(j, {n - 2}, {name} >= ba.take(j + 2, {name}_settings))" if n > 2 else "0"
        self.tables += [
            f"// ---- knob {control}: captured at {values}; in between, every parameter is",
            "// interpolated in its declared scaling (dB linearly, Hz on a log axis) ----",
            f'{name} = hslider("[{1 + len(self._knobs)}]{label}", {num(default)}, {num(lo)}, '
            f"{num(hi)}, {num(step)}) : max({num(lo)}) : min({num(hi)});",
            f"{name}_settings = ({values});",
            f"{name}_k = {count};  // the value lies in [setting k, setting k+1]",
            f"{name}_t = ({name} - sk) / (sk1 - sk) with {{ "
            f"sk = {name}_settings : ba.selectn({n}, {name}_k); "
            f"sk1 = {name}_settings : ba.selectn({n}, {name}_k + 1); }};",
        ]
        return name

    def _knob_values(self, index: int, stage: Any) -> dict[str, list[str]]:
        """Top-level definitions of a control stage's parameters at the sliders' values
        (computed per host block: they depend on sliders only); ``{param: [name per range]}``
        (one name for a knob alone; a 2-D bank's range ``r`` interpolates range ``r`` of the
        two settings around the value, as :func:`lactose_audio.knobs.stage_rows`)."""
        knob, lists = self._knob(stage), self._values(index, stage)
        n, names = stage.n_ranges, {}
        per_setting = stage.edges.n_ranges if stage.knob is not None else 1
        for spec in stage.block.params:
            expr = spec.interpolate_with(FAUST, Sym("pk"), Sym("pk1"), Sym(f"{knob}_t"))
            names[spec.name] = []
            for r in range(per_setting):
                at = f"{lists[spec.name]}_at" + (str(r) if stage.knob is not None else "")
                row = f"{knob}_k" if stage.knob is None else f"{knob}_k * {per_setting} + {r}"
                pick = f"{lists[spec.name]} : ba.selectn({n}, {row}"
                self.tables.append(
                    f"{at} = {Sym.of(expr)} with {{ pk = {pick}); pk1 = {pick} + "
                    f"{per_setting}); }};"
                )
                names[spec.name].append(at)
        return names

    def _knob_selection(self, stage: Any) -> tuple[str, str, str, bool]:
        """A 2-D bank's selection of its key's ranges (range 0 without edges)."""
        if stage.signal_keyed:
            return self._selection(stage)
        return "0", "0", "0", False

    def _controls(self, index: int, stage: Any) -> list[str]:
        """``name = expression;`` of every control and derived quantity of a pointwise stage.

        Unkeyed: constants (Faust folds the derived ones at initialisation). Hard edges: the
        derived quantities of every range in tables computed once. Soft edges: per sample.
        """
        block = stage.block
        derived = block.faust_derived({p: p for p in block.param_names})
        if stage.knob is not None:
            # per range of the key: raw values at the sliders, ramped per sample after a change
            # (RenderStream's ramp), then the key's range (and soft band) picked
            at, out = self._knob_values(index, stage), []
            lo, up, fr, soft = self._knob_selection(stage)
            n = stage.edges.n_ranges
            for spec in block.params:
                raws = []
                for name in at[spec.name]:
                    self.tables.append(
                        f"{name}_raw = {Sym.of(spec.to_raw_with(FAUST, Sym(name)))};"
                    )
                    raws.append(f"knob({name}_raw)")
                bus = ", ".join(raws)

                def pick(i: str, bus: str = bus) -> str:
                    return f"(({bus}) : ba.selectn({n}, int({i})))" if n > 1 else bus

                pos = f"rl + {fr} * (ru - rl)" if soft else "rl"
                rows = f"rl = {pick(lo)};" + (f" ru = {pick(up)};" if soft else "")
                phys = Sym.of(spec.to_physical_with(FAUST, Sym("r")))
                out.append(f"{spec.name} = ({phys} with {{ {rows} r = {pos}; }});")
            return out + [f"{d} = {expr};" for d, expr in derived.items()]
        if stage.keyed and stage.control is not None:
            # raw values at the sliders (per host block), ramped per sample after a change
            # like RenderStream's ramp (RangeBank.gather: raw rows interpolated)
            at, out = self._knob_values(index, stage), []
            for spec in block.params:
                raw = f"{at[spec.name][0]}_raw"
                self.tables.append(
                    f"{raw} = {Sym.of(spec.to_raw_with(FAUST, Sym(at[spec.name][0])))};"
                )
                phys = Sym.of(spec.to_physical_with(FAUST, Sym("r")))
                out.append(f"{spec.name} = ({phys} with {{ r = knob({raw}); }});")
            return out + [f"{d} = {expr};" for d, expr in derived.items()]
        lists = self._values(index, stage)
        if not stage.keyed:
            out = [f"{p} = {lists[p]};" for p in block.param_names]
            return out + [f"{d} = {expr};" for d, expr in derived.items()]
        lo, up, fr, soft = self._selection(stage)
        n = stage.n_ranges
        out = []
        if not soft:
            rows = " ".join(f"{p} = {lists[p]} : ba.selectn({n}, ba.time);" for p in lists)
            out = [f"{p} = table({n}, {lists[p]}, {lo});" for p in block.param_names]
            for d, expr in derived.items():
                out.append(f"{d} = rdtable({n}, ({expr} with {{ {rows} }}), int({lo}));")
            return out
        for spec in block.params:
            values = lists[spec.name]
            exact = f"table({n}, {values}, {lo})"
            raw = spec.to_raw_with(FAUST, Sym("v"))
            phys = spec.to_physical_with(FAUST, Sym("r"))
            rows = f"{values} : ba.selectn({n}, ba.time) : \\(v).({raw})"
            out.append(
                f"{spec.name} = select2({fr} > 0, {exact}, ({phys} with {{ "
                f"rl = rdtable({n}, {rows}, int({lo})); ru = rdtable({n}, {rows}, int({up})); "
                f"r = rl + {fr} * (ru - rl); }}));"
            )
        return out + [f"{d} = {expr};" for d, expr in derived.items()]

    def _lane_table(self, index: int, stage: Any) -> str:
        """Top-level definition of a filter stage's 9 lane coefficients; returns its name."""
        block = stage.block
        name = f"s{index}_{block.name}_lane"
        controls = {p: Sym(p) for p in block.param_names}
        b, a = block.coefficients(controls, SAMPLE_RATE, FAUST)
        coefs = ", ".join(Sym.of(v) for v in (*b, *a))
        formula = f"(svf_params({coefs}) : lane_coefs)"
        if stage.knob is not None:
            # per range of the key: the coefficients at the sliders, held over each frame;
            # _prev: the previous frame's (what the renderer fades from)
            at, n = self._knob_values(index, stage), stage.edges.n_ranges
            held = f"par(j, {N_COEFS}, ba.sAndH(newframe))"
            for r in range(n):
                rows = " ".join(f"{p} = {at[p][r]};" for p in block.param_names)
                self.tables.append(f"{name}_r{r} = ({formula} with {{ {rows} }}) : {held};")
            ranges = ", ".join(f"{name}_r{r}" for r in range(n))
            prev = ", ".join(f"({name}_r{r} : par(j, {N_COEFS}, atframe))" for r in range(n))
            for suffix, bus in (("", ranges), ("_prev", prev)):
                self.tables.append(
                    f"{name}{suffix}(i) = ({bus}) : ro.interleave({N_COEFS}, {n}) : "
                    f"par(j, {N_COEFS}, ba.selectn({n}, int(i)));"
                )
            return name
        if stage.keyed and stage.control is not None:
            at = self._knob_values(index, stage)
            rows = " ".join(f"{p} = {at[p][0]};" for p in block.param_names)
            self.tables.append(f"{name} = {formula} with {{ {rows} }};  // at the sliders")
            return name
        lists = self._values(index, stage)
        if not stage.keyed:
            rows = " ".join(f"{p} = {lists[p]};" for p in block.param_names)
            self.tables.append(f"{name} = {formula} with {{ {rows} }};  // at init")
            return name
        n = stage.n_ranges
        rows = " ".join(f"{p} = {lists[p]} : ba.selectn({n}, r);" for p in block.param_names)
        self.tables.append(f"{name}_row(r) = {formula} with {{ {rows} }};")
        self.tables.append(
            f"{name}(i) = par(j, {N_COEFS}, rdtable({n}, {name}_row(ba.time) : "
            f"ba.selector(j, {N_COEFS}), int(i)));  // every range's coefficients, at init"
        )
        return name

    def _new(self, expr: str, comment: str = "") -> str:
        self._n += 1
        name = f"y{self._n}"
        self.body.append(f"  {name} = {expr};" + (f"  // {comment}" if comment else ""))
        return name

    # ---- executor backend interface
    def pointwise(self, x: str, run: PointwiseRun, dry: str) -> str:
        for stage, index in zip(run.stages, run.indices, strict=True):
            controls = self._controls(index, stage)
            names = {p: p for p in stage.block.param_names}
            names.update({d: d for d in stage.block.faust_derived(names)})
            kernel = stage.block.faust(x, names, dry=dry)
            where = f" with {{ {' '.join(controls)} }}" if controls else ""
            x = self._new(f"({kernel}){where}", f"stage {index}: {stage.block.name}")
        return x

    def filter_group(self, x: str, group: FilterGroup) -> str:
        if frame_filtered(group.stages):
            return self._fir_group(x, group)
        for stage, index in zip(group.stages, group.indices, strict=True):
            lane = self._lane_table(index, stage)
            if not stage.keyed:
                x = self._new(f"({lane}, {x}) : svf_lane", f"stage {index}: {stage.block.name}")
                continue
            if stage.knob is not None:
                lo, up, fr, soft = self._knob_selection(stage)
                lower = f"(knobfadelane({lane}, {lane}_prev, {lo}), {x} : svf_lane)"
                upper = f"(knobfadelane({lane}, {lane}_prev, {up}), {x} : svf_lane)"
                both = (
                    f"yl + w * (yu - yl) with {{ yl = {lower}; yu = {upper}; w = fadeto({fr}); }}"
                )
                x = self._new(
                    both if soft else lower,
                    f"stage {index}: {stage.block.name}, following {stage.control} and the "
                    f"{stage.key.kind} key",
                )
                continue
            if stage.control is not None:
                x = self._new(
                    f"(knoblane({lane}), {x} : svf_lane)",
                    f"stage {index}: {stage.block.name}, following {stage.control}",
                )
                continue
            lo, up, fr, soft = self._selection(stage)
            lower = f"(fadelane({lane}, {lo}), {x} : svf_lane)"
            if not soft:
                x = self._new(lower, f"stage {index}: {stage.block.name}")
                continue
            upper = f"(fadelane({lane}, {up}), {x} : svf_lane)"
            x = self._new(
                f"yl + w * (yu - yl) with {{ yl = {lower}; yu = {upper}; w = fadeto({fr}); }}",
                f"stage {index}: {stage.block.name}, soft edges: two lanes crossfaded",
            )
        return x

    def _fir_group(self, x: str, group: FilterGroup) -> str:
        """An unkeyed frequency-sampled group as a direct-form FIR (:mod:`.faust_fir`)."""
        for stage, index in zip(group.stages, group.indices, strict=True):
            self._values(index, stage)  # the readable values the taps are designed from
        name = f"g{group.number}_fir"
        self.tables.extend(fir_group(name, group.stages, self.hop, self.sample_rates))
        self.fir_groups += 1
        where = ", ".join(str(i) for i in group.indices)
        names = ">".join(st.block.name for st in group.stages)
        return self._new(f"{name}({x})", f"stages {where}: {names}, frequency-sampled FIR")

    def mix(self, x: str, dry: str, mix: float) -> str:
        # ops.dry_wet's formula, written in Faust (mix is a constant of the program)
        return self._new(f"{num(mix)} * {x} + {num(1.0 - mix)} * {dry}", "the chain's mix")

    # ---- the program
    def program(self, meta: dict[str, str]) -> str:
        """The whole Faust program (``meta``: ``declare`` lines, name -> value)."""
        wet = execute(self.plan, "xd", self)
        first = 2 if self.latency else 1
        declares = {**meta, "latency_samples": str(self.latency)}
        if self.fir_groups:
            declares["lactose_fir_sample_rates"] = " ".join(str(r) for r in self.sample_rates)
        lines = [f'declare {k} "{_quote(v)}";' for k, v in declares.items()]
        delay = f"x @ {self.latency}" if self.latency else "x"
        why = "one frame late: a frame's key needs the whole frame" if self.latency else "no delay"
        return "\n".join(
            [
                f"// Generated by lactose_audio {__version__} (lactose export): a LACTOSE effect.",
                "// Per-range parameters are in physical units (edit them below); the range",
                "// of every frame (or sample) is picked from the key of the dry input.",
                *lines,
                "",
                'import("stdfaust.lib");',
                library(self.hop, first),
                "// ---- per-range parameters (one value per range, range 0 first) ----",
                *self.tables,
                "",
                "// ---- plugin controls ----",
                'user_mix = hslider("[0]mix [unit:%]", 100, 0, 100, 0.1) / 100;',
                'output_db = hslider("[1]output [unit:dB]", 0, -24, 24, 0.1);',
                "",
                "// ---- the chain ----",
                "process(x) = out with {",
                f"  xd = {delay};  // {why}",
                *self.body,
                f"  out = (user_mix * {wet} + (1.0 - user_mix) * xd) * dbgain(output_db);",
                "};",
                "",
            ]
        )


def _quote(text: str) -> str:
    return str(text).replace("\\", "/").replace('"', "'").replace("\n", " ")


def export_faust(effect: Any, sample_rates: tuple[int, ...] | None = None) -> str:
    """A Faust program (text) doing what ``lactose render`` does with ``effect``, causally.

    Args:
        effect: A loaded preset (:class:`lactose_audio.presets.Effect`) or a
            :class:`lactose_audio.chains.Chain`.
        sample_rates: Host rates a frequency-sampled filter (``fir_eq``) carries taps for,
            Hz; at another rate the plugin mutes that filter. Default:
            :data:`~lactose_audio.faust_fir.DEFAULT_SAMPLE_RATES` and the preset's own rate.
            Programs without such a filter run at any rate.

    Returns:
        The program: ``declare`` metadata (name, description, package version, the preset's
        training validation ESR, ``latency_samples``), per-range tables in physical units,
        ``mix`` and ``output`` sliders, ``process`` (mono in, mono out).

    Raises:
        ExportError: If a stage cannot be exported (see :func:`check_exportable`).
    """
    chain = getattr(effect, "chain", effect)
    training = getattr(effect, "training", {}) or {}
    meta = {
        "name": getattr(effect, "name", "") or "lactose",
        "description": getattr(effect, "description", "") or "a LACTOSE chain",
        "version": __version__,
        "lactose_package_version": __version__,
    }
    if "validation_esr" in training:
        meta["lactose_validation_esr"] = f"{float(training['validation_esr']):.6g}"
    trained = (int(effect.sample_rate),) if getattr(effect, "sample_rate", None) else ()
    if trained:
        meta["lactose_trained_sample_rate"] = str(trained[0])
    if sample_rates is None:
        sample_rates = DEFAULT_SAMPLE_RATES + trained
    return FaustBackend(chain, tuple(sample_rates)).program(meta)


__all__ = ["FAUST", "FaustBackend", "FaustOps", "Sym", "check_exportable", "export_faust", "num"]
