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
  change: what ``RenderStream.set`` does at a chunk boundary on the frame grid.

Refused with :class:`~lactose_audio.errors.ExportError` (one line): pitch keys (pYIN over the
whole file is not causal), blocks without a Faust kernel (plugins' blocks), filters that are
not biquads or DC blockers (``fir_eq``, frequency-sampled plugin filters).

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
from lactose_audio.blocks.base import Block, crossfade_length
from lactose_audio.conditioning import ENVELOPE_BLOCK, FLOOR_DB
from lactose_audio.errors import ExportError
from lactose_audio.executor import FilterGroup, PointwiseRun, execute, plan
from lactose_audio.faust_ops import FAUST, FaustOps, Sym, num  # noqa: F401 (re-exported)
from lactose_audio.iir import iir_supported
from lactose_audio.ranges import cast_up
from lactose_audio.svf import N_COEFS, lane_coefficients, svf_formula

SAMPLE_RATE = Sym("SR")
SR_DEFINITION = "SR = ma.SR;  // the host's sample rate, Hz"
"""The program's sample-rate line (:func:`lactose_audio.plugin.build_plugin` replaces it)."""


# ---- the fixed part of every program -----------------------------------------------------------

_SVF_ARGS = ("b0", "b1", "b2", "a0", "a1", "a2")
_LANE_ARGS = ("g", "k", "m0", "m1", "m2")


def _library(hop: int, first_frame: int) -> str:
    """Frame clock, key detectors and the SVF lane, as Faust definitions."""
    svf = svf_formula(
        tuple(Sym(n) for n in _SVF_ARGS[:3]), tuple(Sym(n) for n in _SVF_ARGS[3:]), FAUST
    )
    lane = lane_coefficients(*(Sym(n) for n in _LANE_ARGS))
    block_len = str(ENVELOPE_BLOCK) if hop % ENVELOPE_BLOCK == 0 else "(bpos + 1)"
    return f"""
{SR_DEFINITION}

// ---- frame clock (the renderer's frame grid: frame f = samples [f * HOP, (f + 1) * HOP)) ----
HOP = {hop};  // samples per frame: keys and filter parameters change once per frame
FADE = {crossfade_length(hop)};  // filters crossfade coefficients over a frame's first FADE samples
BLOCK = {ENVELOPE_BLOCK};  // envelope step of the frame-rate amplitude key, samples
FLOOR = {num(10.0 ** (FLOOR_DB / 10.0))};  // power floor of the amplitude key ({FLOOR_DB:g} dBFS)
phase = ((+(1) : %(HOP)) ~ _) + (HOP - 1) : %(HOP);  // 0 at every frame start
newframe = phase == 0;
frames = newframe : ((+ : min(3)) ~ _);  // frames started so far (saturates at 3)
ramp = rdtable(FADE, 0.5 - 0.5 * cos(ma.PI * (float(ba.time) + 0.5) / FADE), min(phase, FADE - 1));
// the crossfade weight of the new coefficients (none in the first frame)
fade = select2(frames <= {first_frame}, select2(phase < FADE, 1.0, ramp), 1.0);
atframe(s) = ba.sAndH(newframe, s');  // s at the end of the previous frame, held for this one
fadeto(s) = atframe(s) + fade * (s - atframe(s));  // from the previous frame's value to s
fadepair(new, old) = old + fade * (new - old);
// a filter stage's 9 SVF coefficients for range i, faded from the previous frame's range's
fadelane(lane, i) = (lane(i), lane(atframe(i))) : ro.interleave({N_COEFS}, 2)
                    : par(j, {N_COEFS}, fadepair);
// knobs: a value computed from the sliders, taken at each frame start; after a change it
// ramps over that frame from the previous frame's value (pointwise stages), or a filter's
// 9 coefficients crossfade like fadelane (filter stages)
knobramp = select2(frames <= 1, (phase + 1) / HOP, 1.0);
knob(s) = atframe(h) + knobramp * (h - atframe(h)) with {{ h = ba.sAndH(newframe, s); }};
knoblane(lane) = lane : par(j, {N_COEFS}, ba.sAndH(newframe)) <: (si.bus({N_COEFS}),
                 par(j, {N_COEFS}, atframe)) : ro.interleave({N_COEFS}, 2)
                 : par(j, {N_COEFS}, fadepair);

// ---- helpers ----
tanh(v) = 1.0 - 2.0 / (exp(2.0 * v) + 1.0);  // one exp (libm's tanhf is slower)
dbgain(d) = exp(d * {num(math.log(10.0) / 20.0)});  // 10^(d / 20)
softplus(v) = max(v, 0.0) + log(1.0 + exp(0.0 - abs(v)));
table(n, values, i) = rdtable(n, values : ba.selectn(n, ba.time), int(i));  // values[i]
acc_step(prev, v, keep) = v + keep * prev;  // a running sum that restarts where keep == 0
inband(v, e, w) = (v >= e - 0.5 * w) & (v < e + 0.5 * w);  // the soft band of edge e
inband_frac(v, e, w) = max(0.0, min(1.0, (v - (e - 0.5 * w)) / w));
pole_step(k, prev, p) = k * prev + (1.0 - k) * p;
env_step(k, prev, q, e) = select2(e, prev, k * prev + (1.0 - k) * q);
// 1 - exp(-u) (a one-pole's step), accurate in float32 for small u (long time constants)
onepolestep(u) = select2(u < 1e-3, 1.0 - exp(0.0 - u), u * (1.0 - u * (0.5 - u / 6.0)));

// ---- amplitude keys (lactose_audio.conditioning), dBFS ----
// RMS envelope: max of a fast (attack) and a slow (release) one-pole average of x^2.
samplecoef(ms) = select2(ms > 0, 0.0, exp(-1000.0 / (max(ms, 1e-9) * SR)));
amp_sample_power(attack_ms, release_ms, x) = max(fast, slow) with {{
  fast = x * x : (pole_step(samplecoef(attack_ms)) ~ _);
  slow = x * x : (pole_step(samplecoef(release_ms)) ~ _);
}};
// Per frame: the envelope stepped once per block of BLOCK samples (cut from the frame start)
// with the block's mean square; the key is the frame's mean envelope power, in dB.
blockcoef(ms, m) = select2(ms > 0, 0.0, exp(-1000.0 * m / (max(ms, 1e-9) * SR)));
amp_frame_power(attack_ms, release_ms, x) = acc / HOP with {{
  bpos = phase % BLOCK;
  bend = (bpos == BLOCK - 1) | (phase == HOP - 1);
  m = {block_len};
  q = (x * x, bpos != 0) : (acc_step ~ _) : /(m);
  fast = (q, bend) : (env_step(blockcoef(attack_ms, m)) ~ _);
  slow = (q, bend) : (env_step(blockcoef(release_ms, m)) ~ _);
  acc = (max(fast, slow) * m * bend, phase != 0) : (acc_step ~ _);
}};
todb(p) = 10.0 * log10(max(p, FLOOR));  // dBFS (hard edges compare powers: no log needed)
frame_mean(k) = atframe((k, phase != 0) : (acc_step ~ _) : /(HOP));

// ---- filters: biquad -> trapezoidal SVF lane (lactose_audio.svf) ----
svf_params({", ".join(_SVF_ARGS)}) = {", ".join(str(v) for v in svf)};
lane_coefs({", ".join(_LANE_ARGS)}) = {", ".join(str(v) for v in lane)};
// y = c1 s1 + c2 s2 + d v;  s <- P s + q v  (coefficients may move every sample)
svf_lane(p11, p12, p21, p22, q1, q2, c1, c2, d, v) = (step ~ (_, _)) : (!, !, _) with {{
  step(s1, s2) = p11 * s1 + p12 * s2 + q1 * v, p21 * s1 + p22 * s2 + q2 * v,
                 c1 * s1 + c2 * s2 + d * v;
}};
"""


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
        if stage.knob is not None:
            raise ExportError(
                f"{where} follows the control {stage.control} and the {stage.key.kind} key (a "
                "2-D bank); the export handles a knob alone or a key alone, not both on a stage"
            )
        if stage.keyed and stage.key.kind not in ("amplitude", "sample", "control"):
            raise ExportError(f"{where}: a {stage.key.kind!r} key has no Faust detector")
        if block.is_linear:
            if not iir_supported(block):
                raise ExportError(
                    f"{where}: block {block.name!r} is a frequency-sampled filter with no Faust "
                    "kernel (only biquads and dc_blocker export); presets using it can be "
                    "rendered but not exported"
                )
        elif type(block).faust is Block.faust:
            block.faust("x", {})  # raises the block's own message


class FaustBackend:
    """Walks a plan (:func:`lactose_audio.executor.execute`) emitting Faust definitions.

    Signals are names of definitions inside ``process``; :meth:`program` assembles the text.

    Args:
        chain: The chain (:func:`check_exportable`).
    """

    def __init__(self, chain: Any) -> None:
        check_exportable(chain)
        self.chain = chain
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
        if stage.keyed and stage.control is not None:
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
        control, settings = stage.control, stage.key.settings
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

    def _knob_values(self, index: int, stage: Any) -> dict[str, str]:
        """Top-level definitions of a control stage's parameters at the sliders' values
        (computed per host block: they depend on sliders only); ``{param: name}``."""
        knob, lists = self._knob(stage), self._values(index, stage)
        n, names = stage.n_ranges, {}
        for spec in stage.block.params:
            at = f"{lists[spec.name]}_at"
            pick = f"{lists[spec.name]} : ba.selectn({n}, {knob}_k"
            expr = spec.interpolate_with(FAUST, Sym("pk"), Sym("pk1"), Sym(f"{knob}_t"))
            self.tables.append(
                f"{at} = {Sym.of(expr)} with {{ pk = {pick}); pk1 = {pick} + 1); }};"
            )
            names[spec.name] = at
        return names

    def _controls(self, index: int, stage: Any) -> list[str]:
        """``name = expression;`` of every control and derived quantity of a pointwise stage.

        Unkeyed: constants (Faust folds the derived ones at initialisation). Hard edges: the
        derived quantities of every range in tables computed once. Soft edges: per sample.
        """
        block = stage.block
        derived = block.faust_derived({p: p for p in block.param_names})
        if stage.keyed and stage.control is not None:
            # raw values at the sliders (per host block), ramped per sample after a change
            # like RenderStream's ramp (RangeBank.gather: raw rows interpolated)
            at, out = self._knob_values(index, stage), []
            for spec in block.params:
                raw = f"{at[spec.name]}_raw"
                self.tables.append(
                    f"{raw} = {Sym.of(spec.to_raw_with(FAUST, Sym(at[spec.name])))};"
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
        if stage.keyed and stage.control is not None:
            at = self._knob_values(index, stage)
            rows = " ".join(f"{p} = {at[p]};" for p in block.param_names)
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
        for stage, index in zip(group.stages, group.indices, strict=True):
            lane = self._lane_table(index, stage)
            if not stage.keyed:
                x = self._new(f"({lane}, {x}) : svf_lane", f"stage {index}: {stage.block.name}")
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

    def mix(self, x: str, dry: str, mix: float) -> str:
        # ops.dry_wet's formula, written in Faust (mix is a constant of the program)
        return self._new(f"{num(mix)} * {x} + {num(1.0 - mix)} * {dry}", "the chain's mix")

    # ---- the program
    def program(self, meta: dict[str, str]) -> str:
        """The whole Faust program (``meta``: ``declare`` lines, name -> value)."""
        wet = execute(self.plan, "xd", self)
        first = 2 if self.latency else 1
        declares = {**meta, "latency_samples": str(self.latency)}
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
                _library(self.hop, first),
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


def export_faust(effect: Any) -> str:
    """A Faust program (text) doing what ``lactose render`` does with ``effect``, causally.

    Args:
        effect: A loaded preset (:class:`lactose_audio.presets.Effect`) or a
            :class:`lactose_audio.chains.Chain`.

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
    if getattr(effect, "sample_rate", None):
        meta["lactose_trained_sample_rate"] = str(int(effect.sample_rate))
    return FaustBackend(chain).program(meta)


__all__ = ["FAUST", "FaustBackend", "FaustOps", "Sym", "check_exportable", "export_faust", "num"]
