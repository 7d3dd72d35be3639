"""Ahead-of-time compiled kernels: ``lactose render`` without importing numba.

A fresh ``lactose render`` spends most of its start-up in numba (importing it: ~0.16 s; its
first call, even from the on-disk cache: ~0.3 s), not in rendering (~10 ms for 5 s of audio).
``python -m lactose_audio.aot`` (run by ``make setup``) compiles every kernel signature the
render path uses into one extension module next to the package (numba's ``pycc``, with the
same options as the JIT: ``fastmath={"contract"}`` where the kernel asks for it, the host CPU),
plus a manifest. :mod:`lactose_audio._numba` then calls these compiled functions and never
imports numba; any other signature (or a missing or stale build) is compiled by numba as
before, so the package works without it.

How the signatures are found: the build renders the shipped presets and a set of chains
covering every built-in block, unkeyed and keyed (amplitude per frame and per sample, hard
and soft edges; pitch), whole-file and streamed, with the JIT, and exports what the kernels
were called with.

Staleness: the manifest records a digest of the kernel modules' source files, of the Python,
numpy and numba versions and of the CPU; a mismatch (an edited kernel, an upgraded numpy) disables
the build until it is made again (``lactose_audio.aot.available()`` says which).
``LACTOSE_NO_AOT=1`` disables it too (the tests compare both paths).

No TensorFlow.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: Modules whose kernels are compiled ahead of time (every module using ``_numba.jit``).
KERNEL_MODULES = (
    "lactose_audio.conditioning",
    "lactose_audio.svf",
    "lactose_audio.ranges.edges",
    "lactose_audio.blocks.waveshapers",
    "lactose_audio.blocks.dynamics",
    "lactose_audio.pitch",
    "lactose_audio.pitch_viterbi",
)
EXTENSION = "_kernels_aot"
"""Name of the compiled module (``lactose_audio/_kernels_aot.*.so``, not versioned)."""
MANIFEST = Path(__file__).with_name(f"{EXTENSION}.json")

_table: dict[str, dict[tuple, Any]] | None = None


def _module_file(name: str) -> Path:
    """Source file of a kernel module, found without importing it."""
    parts = name.split(".")
    return Path(__file__).parent.joinpath(*parts[1:]).with_suffix(".py")


def digest() -> str:
    """sha256 of the kernel modules' sources (and ``_numba``'s: the options), Python's and
    numpy's versions, the CPU (:func:`_cpu`) and numba's ``_version.py`` (found without
    importing numba)."""
    import importlib.util

    h = hashlib.sha256()
    for name in (*KERNEL_MODULES, "lactose_audio._numba"):  # _numba: the JIT's options
        h.update(name.encode())
        h.update(_module_file(name).read_bytes())
    h.update(f"python={sys.version}; numpy={np.__version__}; cpu={_cpu()}".encode())
    spec = importlib.util.find_spec("numba")
    if spec is None or spec.origin is None:
        return "no numba"
    h.update(Path(spec.origin).with_name("_version.py").read_bytes())
    return h.hexdigest()


def _cpu() -> str:
    """The host CPU's model and instruction sets (the build targets them: a copy of the build
    on another CPU must not run code it may not have the instructions for)."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags", "Features"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


def arg_key(value: Any) -> tuple | str | None:
    """What numba's ``typeof`` would see in an argument, as a hashable key (no numba).

    Arrays: ``(dtype.char, ndim, layout, readonly)``; scalars: numba's type name (Python's
    ``float`` and ``int``: ``float64``, ``int64``).
    """
    if isinstance(value, np.ndarray):
        flags = value.flags
        layout = "C" if flags.c_contiguous else ("F" if flags.f_contiguous else "A")
        return (value.dtype.char, value.ndim, layout, not flags.writeable)
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, np.generic):
        return value.dtype.name
    return None


def _type_key(numba_type: Any) -> tuple | str:
    """:func:`arg_key` of a numba type (at build time)."""
    from numba import types

    if isinstance(numba_type, types.Array):
        char = np.dtype(str(numba_type.dtype)).char
        return (char, numba_type.ndim, numba_type.layout, not numba_type.mutable)
    if isinstance(numba_type, types.Boolean):
        return "bool"
    return str(numba_type)


def _load() -> tuple[dict[str, Any] | None, Any, str]:
    """``(manifest, compiled module, why)``; manifest and module ``None`` when not usable."""
    if os.environ.get("LACTOSE_NO_AOT"):
        return None, None, "disabled by LACTOSE_NO_AOT"
    if not MANIFEST.exists():
        return None, None, "not built (python -m lactose_audio.aot)"
    try:
        manifest = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return None, None, f"{MANIFEST.name} is unreadable"
    if manifest.get("digest") != digest():
        return None, None, "stale (a kernel module, a version or the CPU changed): build it again"
    try:
        module = importlib.import_module(f"lactose_audio.{EXTENSION}")
    except ImportError as exc:
        return None, None, f"cannot import the compiled module: {exc}"
    count = sum(len(v) for v in manifest.get("kernels", {}).values())
    return manifest, module, f"{count} compiled signatures"


def available() -> tuple[bool, str]:
    """``(usable, why)``: whether the compiled kernels will be used in this process."""
    manifest, _, why = _load()
    return manifest is not None, why


def table() -> dict[str, dict[tuple, Any]]:
    """``{"module:function": {arg keys: compiled function}}``; empty when not usable."""
    global _table
    if _table is None:
        manifest, module, _ = _load()
        _table = {
            qualified: {
                tuple(tuple(k) if isinstance(k, list) else k for k in keys): getattr(module, name)
                for name, keys in exports
            }
            for qualified, exports in (manifest or {}).get("kernels", {}).items()
        }
    return _table


def entries(func: Any) -> dict[tuple, Any]:
    """``{arg keys: compiled function}`` of a kernel (its Python function); maybe empty."""
    return table().get(f"{func.__module__}:{func.__qualname__}", {})


# ---- the build -------------------------------------------------------------------------------


def _exercise() -> None:
    """Run the render path with the JIT over what users render (see the module docstring)."""
    from lactose_audio.blocks import registered_blocks
    from lactose_audio.chains import Chain, Stage, make_key
    from lactose_audio.conditioning import KeySpec, compute_key
    from lactose_audio.params import raw_to_physical_np
    from lactose_audio.presets import SHIPPED_DIR, load_preset
    from lactose_audio.ranges import RangeEdges
    from lactose_audio.render import render

    rng = np.random.default_rng(0)
    sr = 44100
    t = np.arange(3 * sr) / sr
    audio = (0.3 * np.sin(2 * np.pi * 196.0 * t) * np.exp(-(t % 0.5) * 4)).astype(np.float32)
    audio += (1e-3 * rng.standard_normal(audio.size)).astype(np.float32)
    for path in sorted(SHIPPED_DIR.glob("*.json")):
        effect = load_preset(path)
        render(effect.chain, audio, sr)
        render(effect.chain, audio, sr, block_size=4000)
    names = [n for n, c in registered_blocks().items() if c.__module__.startswith("lactose")]
    keys = [
        KeySpec("amplitude", rate="frame"),
        KeySpec("amplitude", rate="sample", attack_ms=2.0, release_ms=80.0),
    ]
    edges = RangeEdges((-36.0, -26.0, -16.0), "dBFS")
    for name in names:
        for key in keys:
            for soft in (0.0, 3.0):
                chain = Chain([Stage(name, key=key, edges=edges, soft_width=soft), Stage(name)])
                for stage in chain.stages:
                    raw = rng.uniform(-1.0, 1.0, (stage.n_ranges, stage.block.n_params))
                    stage.set_physical(raw_to_physical_np(stage.block.params, raw))
                render(chain, audio, sr)
                render(chain, audio, sr, block_size=3000)
    pitched = Chain.from_spec("gain>tanh>lowpass", key=make_key("pitch"), n_ranges=4)
    pitched.fit_edges(audio, sr)
    render(pitched, audio, sr)
    render(pitched, audio, sr, block_size=4096)
    for key in (*keys, KeySpec("pitch")):
        compute_key(key, audio, sr, 512)


def build() -> Path:
    """Compile the kernels' signatures next to the package (see the module docstring); returns
    the manifest's path."""
    import warnings

    from numba.core import codegen, cpu
    from numba.pycc import CC
    from numba.pycc import compiler as pycc_compiler

    from lactose_audio._numba import compiled_kernels
    from lactose_audio.atomic import atomic_write_text

    global _table
    previous = os.environ.get("LACTOSE_NO_AOT")
    os.environ["LACTOSE_NO_AOT"] = "1"  # exercise the JIT, not an earlier build
    _table = None
    try:
        _exercise()
    finally:
        if previous is None:
            del os.environ["LACTOSE_NO_AOT"]
        else:
            os.environ["LACTOSE_NO_AOT"] = previous
        _table = None
    cc = CC(EXTENSION)
    cc.output_dir = str(MANIFEST.parent)
    cc.target_cpu = "host"
    contract: set[Any] = set()
    kernels: dict[str, list] = {}
    for module_name in KERNEL_MODULES:
        module = importlib.import_module(module_name)
        for dispatcher in compiled_kernels(module):
            func = dispatcher.py_func
            if "contract" in (dispatcher.targetoptions.get("fastmath") or ()):
                contract.add(func)
            qualified = f"{func.__module__}:{func.__qualname__}"
            for i, sig in enumerate(dispatcher.signatures):
                name = f"{module_name.replace('.', '_')}__{func.__name__}__{i}"
                ret = dispatcher.overloads[sig].signature.return_type
                cc.export(name, ret(*sig))(func)
                kernels.setdefault(qualified, []).append([name, [_type_key(a) for a in sig]])
    original = pycc_compiler.compile_extra

    def compile_extra(typingctx, targetctx, func, args, return_type, flags, locals, **kw):
        if func in contract:  # the JIT's fastmath={"contract"}: the same instructions
            flags = flags.copy()
            flags.fastmath = cpu.FastMathOptions({"contract"})
        return original(typingctx, targetctx, func, args, return_type, flags, locals, **kw)

    pycc_compiler.compile_extra = compile_extra
    # the JIT's machine: the host CPU model *and* its features (pycc's default: the model only)
    features = codegen.AOTCPUCodegen._customize_tm_features
    codegen.AOTCPUCodegen._customize_tm_features = codegen.CPUCodegen._get_host_cpu_features
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pycc's pending-deprecation notice
            cc.compile()
    finally:
        pycc_compiler.compile_extra = original
        codegen.AOTCPUCodegen._customize_tm_features = features
    import numba

    versions = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "numba": numba.__version__,
    }
    manifest = {"digest": digest(), "versions": versions, "kernels": kernels}
    atomic_write_text(MANIFEST, json.dumps(manifest, indent=1))
    return MANIFEST


def main() -> int:
    """``python -m lactose_audio.aot [--check]``: build (or report on) the compiled kernels."""
    if "--check" in sys.argv[1:]:
        usable, why = available()
        print(f"compiled kernels: {'in use' if usable else 'not used'} ({why})")
        return 0
    try:
        path = build()
    except Exception as exc:  # noqa: BLE001 - optional: the JIT still works
        print(f"lactose: warning: kernels not compiled ahead of time ({exc}); numba will "
              "compile them on first use", file=sys.stderr)  # fmt: skip
        return 0
    usable, why = available()
    print(f"compiled kernels in {path.parent} ({why})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
