"""Malformed input to every command: exit 2, one line naming the file or option and the
problem, no traceback, and nothing written (no partial output, no clobbered good output).

Each case builds its own malformed file or argument in ``tmp_path``. The CLI runs in process
(``cli.main``, as in test_cli.py). ``train`` cases fail while validating, before any step.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lactose_audio import cli
from lactose_audio.chains import Chain, Stage, make_key
from lactose_audio.presets import Effect, dumps
from lactose_audio.ranges import RangeEdges
from lactose_audio.schema import MAX_FILE_BYTES, MAX_HOP_SIZE, MAX_JSON_DEPTH, MAX_RANGES

SR = 44100
PRECIOUS = b"a good output from an earlier run"


def _tone(n: int = SR // 2, sr: int = SR, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(n)).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _good_document_text() -> str:
    """gain>tanh keyed on amplitude (2 ranges), then a nested lowpass chain."""
    key = make_key("amplitude")
    inner = Chain([Stage("lowpass")], mix=0.5)
    chain = Chain(
        [
            Stage("gain", key=key, edges=RangeEdges((-20.0,), "dBFS")),
            Stage("tanh", key=key, edges=RangeEdges((-20.0,), "dBFS")),
            inner,
        ]
    )
    effect = Effect(
        chain=chain,
        name="good",
        description="a good preset",
        coverage=[
            {"counts": [5, 5], "flagged": [False, False]},
            {"counts": [5, 5], "flagged": [False, False]},
            {"counts": [10], "flagged": [False]},
        ],
        training={"latency_samples": 0},
    )
    return dumps(effect.to_document())


def good_document() -> dict:
    return json.loads(_good_document_text())


class Files:
    """Makes good and malformed inputs in one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        return self.root / name

    def wav(self, name: str, data=None, sr: int = SR, subtype: str = "FLOAT") -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, _tone() if data is None else data, sr, subtype=subtype)
        return path

    def bytes(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.write_bytes(data)
        return path

    def preset(self, mutate: Callable[[dict], object] | None = None, name="p.json") -> Path:
        document = good_document()
        if mutate is not None:
            mutate(document)
        path = self.root / name
        path.write_text(json.dumps(document, indent=1))
        return path

    def good_preset(self) -> Path:
        return self.bytes("good.json", _good_document_text().encode())

    def precious(self, name: str) -> Path:
        """An existing good output that a failed command must leave as it is."""
        return self.bytes(name, PRECIOUS)


# ---- the cases --------------------------------------------------------------------------------
# Each maker takes Files and returns (argv, name expected in the message, problem expected).

CASES: dict[str, Callable[[Files], tuple[list, str, str]]] = {}


def case(name: str):
    def register(maker):
        assert name not in CASES
        CASES[name] = maker
        return maker

    return register


def _stage(d: dict, i: int) -> dict:
    return d["chain"]["stages"][i]


# Corrupted presets: (mutation, problem). Every one is run through `inspect`; a selection
# through `render` and `eval` too.
PRESET_MUTATIONS: dict[str, tuple[Callable[[dict], object], str]] = {
    "hop-string": (lambda d: d["chain"].update(hop_size="1024"), "hop_size"),
    "hop-huge": (lambda d: d["chain"].update(hop_size=10**12), "hop_size"),
    "hop-above-limit": (lambda d: d["chain"].update(hop_size=MAX_HOP_SIZE + 1), "hop_size"),
    "hop-zero": (lambda d: d["chain"].update(hop_size=0), "hop_size"),
    "hop-float": (lambda d: d["chain"].update(hop_size=1024.0), "hop_size"),
    "hop-bool": (lambda d: d["chain"].update(hop_size=True), "hop_size"),
    "param-string": (
        lambda d: _stage(d, 0)["ranges"][0].update(gain_db="12"),
        "gain_db must be a finite number, got the string '12'",
    ),
    "param-bool": (lambda d: _stage(d, 0)["ranges"][0].update(gain_db=True), "a boolean"),
    "param-null": (lambda d: _stage(d, 1)["ranges"][1].update(drive_db=None), "drive_db"),
    "param-list": (lambda d: _stage(d, 1)["ranges"][0].update(bias=[0.0]), "bias"),
    "param-out-of-range": (
        lambda d: _stage(d, 1)["ranges"][0].update(drive_db=1e6),
        "drive_db must be between",
    ),
    "param-missing": (lambda d: _stage(d, 1)["ranges"][0].pop("bias"), "differ from units"),
    "param-unknown": (lambda d: _stage(d, 0)["ranges"][0].update(volume=1.0), "volume"),
    "unknown-top-field": (lambda d: d.update(extra=1), "unknown field(s) extra"),
    "unknown-chain-field": (lambda d: d["chain"].update(latency=3), "unknown field(s) latency"),
    "unknown-stage-field": (lambda d: _stage(d, 0).update(colour="red"), "colour"),
    "unknown-key-field": (lambda d: _stage(d, 0)["key"].update(knee_db=3), "knee_db"),
    "unknown-edges-field": (lambda d: _stage(d, 0)["edges"].update(soft=1), "unknown field"),
    "unknown-nested-wrapper-field": (lambda d: _stage(d, 2).update(name="x"), "unknown field"),
    "unknown-nested-stage-field": (
        lambda d: _stage(d, 2)["chain"]["stages"][0].update(bypass=False),
        "chain.stages[2].chain.stages[0]: unknown field(s) bypass",
    ),
    "unknown-none-key-field": (
        lambda d: _stage(d, 2)["chain"]["stages"][0]["key"].update(rate="frame"),
        "unknown field(s) rate",
    ),
    "unknown-coverage-field": (lambda d: d["coverage"][0].update(total=10), "coverage[0]"),
    "missing-chain": (lambda d: d.pop("chain"), "missing field 'chain'"),
    "missing-training": (lambda d: d.pop("training"), "missing field 'training'"),
    "missing-hop": (lambda d: d["chain"].pop("hop_size"), "missing field 'hop_size'"),
    "missing-soft-width": (lambda d: _stage(d, 0).pop("soft_width"), "'soft_width'"),
    "missing-key-rate": (lambda d: _stage(d, 0)["key"].pop("rate"), "missing field 'rate'"),
    "missing-edges-unit": (lambda d: _stage(d, 0)["edges"].pop("unit"), "'unit'"),
    "missing-block": (lambda d: _stage(d, 1).pop("block"), "missing field 'block'"),
    "deep-chain-nesting": (
        lambda d: d["chain"].update(
            stages=[
                functools.reduce(
                    lambda s, _: {"chain": {**d["chain"], "stages": [s]}}, range(12), _stage(d, 0)
                )
            ]
        ),
        "nested more than",
    ),  # fmt: skip
    "too-many-ranges": (
        lambda d: _stage(d, 0)["edges"].update(edges=[float(e) for e in range(MAX_RANGES)]),
        f"at most {MAX_RANGES}",
    ),
    "bad-version": (lambda d: d.update(version=4), "unknown preset version 4"),
    "version-string": (lambda d: d.update(version="1"), "unknown preset version '1'"),
    "version-bool": (lambda d: d.update(version=True), "unknown preset version True"),
    "bad-format": (lambda d: d.update(format="nam"), "not a lactose-audio preset"),
    "unknown-block": (lambda d: _stage(d, 1).update(block="os.system"), "os.system"),
    "block-number": (lambda d: _stage(d, 1).update(block=7), "block must be a string"),
    "edges-decreasing": (
        lambda d: [_stage(d, i)["edges"].update(edges=[-10.0, -30.0]) for i in (0,)],
        "strictly increasing",
    ),
    "edges-string": (lambda d: _stage(d, 0)["edges"].update(edges="-20"), "must be a list"),
    "edge-string": (lambda d: _stage(d, 0)["edges"].update(edges=["-20"]), "edges[0]"),
    "soft-width-negative": (lambda d: _stage(d, 0).update(soft_width=-1.0), "soft_width"),
    "mix-out-of-range": (lambda d: d["chain"].update(mix=2.0), "mix must be between 0 and 1"),
    "nested-mix-string": (lambda d: _stage(d, 2)["chain"].update(mix="0.5"), "mix"),
    "key-kind-unknown": (lambda d: _stage(d, 0)["key"].update(kind="loudness"), "loudness"),
    "key-setting-string": (lambda d: _stage(d, 0)["key"].update(attack_ms="5"), "attack_ms"),
    "key-setting-out-of-range": (
        lambda d: _stage(d, 0)["key"].update(release_ms=1e9),
        "release_ms",
    ),
    "sample-rate-low": (lambda d: d.update(sample_rate=10), "sample_rate"),
    "sample-rate-float": (lambda d: d.update(sample_rate=44100.0), "sample_rate"),
    "rows-vs-ranges": (lambda d: _stage(d, 0)["ranges"].pop(), "rows"),
    "coverage-short": (lambda d: d["coverage"].pop(), "coverage"),
    "coverage-negative": (lambda d: d["coverage"][0].update(counts=[-1, 5]), "counts"),
    "description-number": (lambda d: d.update(description=3), "description"),
    "training-list": (lambda d: d.update(training=[]), "training must be an object"),
    "units-number": (lambda d: _stage(d, 0).update(units={"gain_db": 1}), "units.gain_db"),
    "stage-list": (lambda d: d["chain"]["stages"].__setitem__(0, [1, 2]), "stages[0]"),
    "stages-object": (lambda d: d["chain"].update(stages={}), "stages must be a list"),
    "keyed-invert": (
        lambda d: _stage(d, 0).update(
            block="invert", units={}, ranges=[{} for _ in _stage(d, 0)["ranges"]]
        ),
        "stage invert: has no parameters, so it cannot be keyed",
    ),
}

RENDER_MUTATIONS = ("hop-huge", "param-string", "unknown-edges-field", "deep-chain-nesting",
                    "bad-version", "param-out-of-range", "too-many-ranges")  # fmt: skip
EVAL_MUTATIONS = ("hop-string", "unknown-stage-field", "param-bool")


def _preset_case(command: str, key: str):
    mutate, problem = PRESET_MUTATIONS[key]

    def make(f: Files):
        preset = f.preset(mutate)
        tail = {
            "inspect": [],
            "render": [f.wav("in.wav"), f.precious("out.wav")],
            "eval": [f.wav("dry.wav"), f.wav("wet.wav", np.tanh(3 * _tone()))],
        }[command]
        return [command, preset, *tail], "p.json", problem

    return make


for _key in PRESET_MUTATIONS:
    case(f"inspect-preset-{_key}")(_preset_case("inspect", _key))
for _key in RENDER_MUTATIONS:
    case(f"render-preset-{_key}")(_preset_case("render", _key))
for _key in EVAL_MUTATIONS:
    case(f"eval-preset-{_key}")(_preset_case("eval", _key))


# ---- preset files that are not JSON documents ---------------------------------------------------

RAW_PRESETS: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty": (lambda: b"", "not valid JSON"),
    "truncated": (lambda: _good_document_text().encode()[:200], "not valid JSON"),
    "not-utf8": (
        lambda: _good_document_text().replace("a good preset", "caf\xe9").encode("latin-1"),
        "not UTF-8",
    ),
    "nan-literal": (
        lambda: _good_document_text().replace('"soft_width": 0.0', '"soft_width": NaN').encode(),
        "non-finite number NaN",
    ),
    "json-list": (lambda: b"[]", "expected a JSON object"),
    "deep-json": (
        lambda: b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        f"a preset may nest at most {MAX_JSON_DEPTH}",
    ),
    "too-big": (
        lambda: _good_document_text().replace("a good preset", "x" * (MAX_FILE_BYTES + 1)).encode(),
        "larger than",
    ),
}


def _raw_case(command: str, key: str):
    data, problem = RAW_PRESETS[key]

    def make(f: Files):
        preset = f.bytes("p.json", data())
        tail = {"inspect": [], "render": [f.wav("in.wav"), f.path("out.wav")]}[command]
        return [command, preset, *tail], "p.json", problem

    return make


for _key in RAW_PRESETS:
    case(f"inspect-raw-{_key}")(_raw_case("inspect", _key))
for _key in ("truncated", "not-utf8", "deep-json"):
    case(f"render-raw-{_key}")(_raw_case("render", _key))


@case("inspect-preset-is-directory")
def _(f):
    (f.root / "dir.json").mkdir()
    return ["inspect", f.root / "dir.json"], "dir.json", "not a file"


@case("inspect-preset-missing")
def _(f):
    return ["inspect", f.root / "nope.json"], "nope.json", "no such preset"


@case("inspect-plot-bad-extension")
def _(f):
    return ["inspect", f.good_preset(), "--plot", f.root / "plot.jpg"], "plot.jpg", "extension"


@case("inspect-plot-missing-folder")
def _(f):
    plot = f.root / "missing" / "plot.png"
    return ["inspect", f.good_preset(), "--plot", plot], "plot.png", "does not exist"


@case("inspect-unknown-option")
def _(f):
    return ["inspect", f.good_preset(), "--colour"], "--colour", "No such option"


# ---- render: input audio -----------------------------------------------------------------------


def _render(f: Files, source: Path, *options, out: str = "out.wav", precious: bool = True):
    output = f.precious(out) if precious else f.path(out)
    return ["render", f.good_preset(), source, output, *options]


@case("render-truncated-wav")
def _(f):
    good = f.wav("full.wav").read_bytes()
    bad = f.bytes("cut.wav", good[:30])
    return _render(f, bad), "cut.wav", "cannot read as audio"


@case("render-text-named-wav")
def _(f):
    return _render(f, f.bytes("notes.wav", b"these are my notes\n")), "notes.wav", "audio"


@case("render-empty-file")
def _(f):
    return _render(f, f.bytes("empty.wav", b"")), "empty.wav", "cannot read as audio"


@case("render-zero-samples")
def _(f):
    return _render(f, f.wav("none.wav", np.zeros(0, np.float32))), "none.wav", "empty"


@case("render-nan-samples")
def _(f):
    x = _tone()
    x[1000] = np.nan
    return _render(f, f.wav("nan.wav", x)), "nan.wav", "non-finite"


@case("render-inf-samples")
def _(f):
    x = _tone()
    x[-1] = np.inf
    return _render(f, f.wav("inf.wav", x)), "inf.wav", "non-finite"


@case("render-missing-input")
def _(f):
    return _render(f, f.path("ghost.wav")), "ghost.wav", "no such file"


@case("render-stereo-without-channel")
def _(f):
    return _render(f, f.wav("st.wav", np.stack([_tone(), _tone()], 1))), "st.wav", "--channel"


@case("render-channel-beyond-file")
def _(f):
    source = f.wav("st.wav", np.stack([_tone(), _tone()], 1))
    return _render(f, source, "--channel", "5"), "st.wav", "channel 5 does not exist"


@case("render-channel-negative")
def _(f):
    return _render(f, f.wav("in.wav"), "--channel", "-1"), "--channel", "-1 is not in the range"


@case("render-channel-not-integer")
def _(f):
    return _render(f, f.wav("in.wav"), "--channel", "left"), "--channel", "'left' is not a valid"


@case("render-mix-above-one")
def _(f):
    return _render(f, f.wav("in.wav"), "--mix", "1.5"), "--mix", "not in the range"


@case("render-mix-negative")
def _(f):
    return _render(f, f.wav("in.wav"), "--mix", "-0.1"), "--mix", "not in the range"


@case("render-mix-not-a-number")
def _(f):
    return _render(f, f.wav("in.wav"), "--mix", "half"), "--mix", "not a valid float"


@case("render-mix-nan")
def _(f):
    return _render(f, f.wav("in.wav"), "--mix", "nan"), "--mix", "nan is not a number"


@case("render-bad-subtype")
def _(f):
    return _render(f, f.wav("in.wav"), "--subtype", "PCM_8"), "--subtype", "PCM_8"


@case("render-subtype-not-for-flac")
def _(f):
    source = f.wav("in.wav")
    argv = _render(f, source, "--subtype", "FLOAT", out="out.flac")
    return argv, "out.flac", "not supported for FLAC"


@case("render-bad-engine")
def _(f):
    return _render(f, f.wav("in.wav"), "--engine", "gpu"), "--engine", "gpu"


@case("render-output-in-missing-folder")
def _(f):
    argv = ["render", f.good_preset(), f.wav("in.wav"), f.root / "nowhere" / "out.wav"]
    return argv, "out.wav", "does not exist"


@case("render-output-is-input")
def _(f):
    source = f.wav("in.wav")
    return ["render", f.good_preset(), source, source], "in.wav", "overwrite the input"


@case("render-output-is-input-other-spelling")
def _(f):
    source = f.wav("in.wav")
    other = f.root / "." / "in.wav"
    return ["render", f.good_preset(), source, str(other)], "in.wav", "overwrite the input"


@case("render-output-is-directory")
def _(f):
    (f.root / "out.wav").mkdir()
    argv = ["render", f.good_preset(), f.wav("in.wav"), f.root / "out.wav"]
    return argv, "out.wav", "is a directory"


@case("render-output-unknown-extension")
def _(f):
    return _render(f, f.wav("in.wav"), out="out.mp3"), "out.mp3", "unknown extension"


@case("render-output-no-extension")
def _(f):
    return _render(f, f.wav("in.wav"), out="out"), "out", "unknown extension"


@case("render-missing-preset")
def _(f):
    argv = ["render", f.root / "nope.json", f.wav("in.wav"), f.precious("out.wav")]
    return argv, "nope.json", "no such preset"


@case("render-preset-is-audio")
def _(f):
    argv = ["render", f.wav("in.wav"), f.wav("x.wav"), f.precious("out.wav")]
    return argv, "in.wav", "not UTF-8"


@case("render-missing-output-argument")
def _(f):
    return ["render", f.good_preset(), f.wav("in.wav")], "OUTPUT", "Missing argument"


@case("render-jobs-for-a-file")
def _(f):
    return _render(f, f.wav("in.wav"), "--jobs", "2"), "--jobs", "only for folder rendering"


@case("render-overwrite-for-a-file")
def _(f):
    return _render(f, f.wav("in.wav"), "--overwrite"), "--overwrite", "only for folder"


@case("render-folder-jobs-zero")
def _(f):
    f.wav("takes/a.wav")
    argv = ["render", f.good_preset(), f.root / "takes", f.root / "out", "--jobs", "0"]
    return argv, "--jobs", "not in the range"


@case("render-folder-into-itself")
def _(f):
    f.wav("takes/a.wav")
    argv = ["render", f.good_preset(), f.root / "takes", f.root / "takes"]
    return argv, "takes", "the output folder is the input folder"


@case("render-folder-into-a-file")
def _(f):
    f.wav("takes/a.wav")
    argv = ["render", f.good_preset(), f.root / "takes", f.precious("out.wav")]
    return argv, "out.wav", "is a file"


@case("render-folder-output-parent-missing")
def _(f):
    f.wav("takes/a.wav")
    argv = ["render", f.good_preset(), f.root / "takes", f.root / "no" / "out"]
    return argv, "out", "does not exist"


@case("render-folder-nothing-matches")
def _(f):
    f.wav("takes/a.wav")
    argv = ["render", f.good_preset(), f.root / "takes", f.root / "out", "--pattern", "*.flac"]
    return argv, "takes", "no files match '*.flac'"


@case("render-folder-bad-preset")
def _(f):
    f.wav("takes/a.wav")
    preset = f.preset(PRESET_MUTATIONS["hop-huge"][0])
    return ["render", preset, f.root / "takes", f.root / "out"], "p.json", "hop_size"


# ---- eval ---------------------------------------------------------------------------------------


def _eval(f: Files, dry=None, wet=None, *options):
    dry = f.wav("dry.wav") if dry is None else dry
    wet = f.wav("wet.wav", np.tanh(3 * _tone())) if wet is None else wet
    return ["eval", f.good_preset(), dry, wet, *options]


@case("eval-missing-dry")
def _(f):
    return _eval(f, dry=f.path("ghost.wav")), "ghost.wav", "no such file"


@case("eval-wet-is-text")
def _(f):
    return _eval(f, wet=f.bytes("wet.wav", b"RIFF nonsense")), "wet.wav", "audio"


@case("eval-wet-nan")
def _(f):
    x = np.tanh(3 * _tone())
    x[5] = np.nan
    return _eval(f, wet=f.wav("wetnan.wav", x)), "wetnan.wav", "non-finite"


@case("eval-sample-rates-differ")
def _(f):
    wet = f.wav("wet48.wav", _tone(24000, 48000), sr=48000)
    return _eval(f, wet=wet), "wet48.wav", "sample rate"


@case("eval-lengths-differ")
def _(f):
    return _eval(f, wet=f.wav("short.wav", _tone()[:5000])), "short.wav", "length"


@case("eval-silent-wet")
def _(f):
    return _eval(f, wet=f.wav("quiet.wav", np.zeros(SR // 2, np.float32))), "quiet.wav", "silent"


@case("eval-dry-is-directory")
def _(f):
    (f.root / "d.wav").mkdir()
    return _eval(f, dry=f.root / "d.wav"), "d.wav", "directory"


@case("eval-latency-not-integer")
def _(f):
    return _eval(f, None, None, "--latency", "1.5"), "--latency", "not a valid integer"


# ---- train: refused while validating, before any training step --------------------------------


def _train(f: Files, dry=None, wet=None, *options, out: str = "new.json", precious=False):
    dry = f.wav("dry.wav") if dry is None else dry
    wet = f.wav("wet.wav", np.tanh(3 * _tone())) if wet is None else wet
    output = f.precious(out) if precious else f.path(out)
    return ["train", dry, wet, "--out", output, "--steps", "1", *options]


@case("train-truncated-dry")
def _(f):
    dry = f.bytes("dry.wav", f.wav("full.wav").read_bytes()[:40])
    return _train(f, dry=dry, precious=True), "dry.wav", "cannot read as audio"


@case("train-empty-wet")
def _(f):
    return _train(f, wet=f.bytes("wet.wav", b"")), "wet.wav", "cannot read as audio"


@case("train-silent-dry")
def _(f):
    dry = f.wav("dry.wav", np.zeros(SR // 2, np.float32))
    return _train(f, dry=dry, precious=True), "dry.wav", "silent"


@case("train-inf-wet")
def _(f):
    wet = np.tanh(3 * _tone())
    wet[7] = -np.inf
    return _train(f, wet=f.wav("wet.wav", wet)), "wet.wav", "non-finite"


@case("train-sample-rates-differ")
def _(f):
    return _train(f, wet=f.wav("w48.wav", _tone(24000, 48000), sr=48000)), "w48.wav", "sample rate"


@case("train-lengths-differ")
def _(f):
    return _train(f, wet=f.wav("short.wav", _tone()[:4000])), "short.wav", "length"


@case("train-missing-wet-file")
def _(f):
    return _train(f, wet=f.path("ghost.wav")), "ghost.wav", "no such file"


@case("train-out-missing-folder")
def _(f):
    return _train(f, out="no/new.json"), "new.json", "does not exist"


@case("train-out-not-json")
def _(f):
    return _train(f, out="new.txt"), "new.txt", "extension"


@case("train-out-is-directory")
def _(f):
    (f.root / "new.json").mkdir()
    return _train(f), "new.json", "is a directory"


@case("train-edges-not-numbers")
def _(f):
    return _train(f, None, None, "--edges", "-20,loud"), "--edges", "comma-separated numbers"


@case("train-edges-decreasing")
def _(f):
    argv = ("--key", "amplitude", "--edges", "-10,-30")
    return _train(f, None, None, *argv, precious=True), "edges", "increasing"


@case("train-ranges-zero")
def _(f):
    return _train(f, None, None, "--ranges", "0"), "--ranges", "not in the range"


@case("train-ranges-too-many")
def _(f):
    return _train(f, None, None, "--ranges", str(MAX_RANGES + 1)), "--ranges", "not in the range"


@case("train-unknown-block")
def _(f):
    return _train(f, None, None, "--chain", "gain>fuzzbox"), "fuzzbox", "unknown block"


@case("train-unknown-key")
def _(f):
    return _train(f, None, None, "--key", "loudness"), "--key", "loudness"


@case("train-steps-zero")
def _(f):
    return _train(f, None, None, "--steps", "0"), "--steps", "not in the range"


@case("train-budget-negative")
def _(f):
    return _train(f, None, None, "--budget-seconds", "-5"), "--budget-seconds", "not in the range"


@case("train-budget-nan")
def _(f):
    return _train(f, None, None, "--budget-seconds", "nan"), "--budget-seconds", "not a number"


@case("train-resume-without-checkpoint")
def _(f):
    return _train(f, None, None, "--resume", precious=True), "checkpoint", "no checkpoint"


@case("train-folder-and-wet")
def _(f):
    f.wav("pairs/a_dry.wav")
    argv = ["train", f.root / "pairs", f.wav("wet.wav"), "--out", f.path("new.json")]
    return argv, "pairs", "give no WET"


@case("train-empty-folder")
def _(f):
    (f.root / "pairs").mkdir()
    return ["train", f.root / "pairs", "--out", f.path("new.json")], "pairs", "pairs"


@case("train-missing-wet-argument")
def _(f):
    return ["train", f.wav("dry.wav"), "--out", f.path("new.json")], "WET", "missing WET"


@case("train-stereo-without-channel")
def _(f):
    dry = f.wav("dry.wav", np.stack([_tone(), _tone()], 1))
    return _train(f, dry=dry), "dry.wav", "--channel"


# ---- presets ------------------------------------------------------------------------------------


@case("presets-extra-argument")
def _(f):
    return ["presets", "fuzz"], "fuzz", "unexpected extra argument"


@case("presets-unknown-option")
def _(f):
    return ["presets", "--all"], "--all", "No such option"


@case("unknown-command")
def _(f):
    return ["presets-list"], "presets-list", "No such command"


# ---- the checks ---------------------------------------------------------------------------------


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` with a hash of its bytes."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_the_suite_is_large_enough():
    assert len(CASES) >= 80


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_input_is_refused(name, tmp_path, capsys):
    argv, expected_name, problem = CASES[name](Files(tmp_path))
    before = _snapshot(tmp_path)
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, (code, err)
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("lactose: error: "), err
    assert "Traceback" not in err
    assert expected_name in err, err
    assert problem in err, err
    assert _snapshot(tmp_path) == before  # nothing written, nothing clobbered, no temp files


@case("train-edges-with-key-auto")
def _(f):
    return _train(f, None, None, "--edges", "-30,-10", precious=True), "--edges", "--key auto"
