"""Kernels compiled ahead of time (lactose_audio.aot): the same bits as numba's JIT, chosen by
the same argument types, and a render process that never imports numba.

The comparisons need the build (``make setup`` runs ``python -m lactose_audio.aot``); without
it they skip, and the JIT serves every call (what the rest of the suite then checks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lactose_audio import aot

ROOT = Path(__file__).resolve().parents[1]
BUILT = aot.available()[0]
needs_build = pytest.mark.skipif(not BUILT, reason=f"AOT kernels: {aot.available()[1]}")


def test_argument_keys_match_numbas_typeof():
    """The key computed without numba equals the one of numba's own type, for the layouts,
    dtypes, read-only flags and scalars kernels are called with."""
    pytest.importorskip("numba")
    from numba import typeof

    a = np.arange(24, dtype=np.float64).reshape(4, 6)
    readonly = np.ones(5, np.float32)
    readonly.flags.writeable = False
    values = [
        np.zeros(7, np.float32),  # C
        a,  # 2-D C
        np.asfortranarray(a),  # F
        a[:, ::2],  # A
        a[::2, 0],  # strided 1-D: A
        readonly,
        np.zeros(3, np.uint8),
        np.zeros(3, np.int64),
        np.zeros((1, 5), np.float32),  # C and F contiguous: numba says C
        3,
        2.5,
        True,
        np.float32(1.5),
        np.int64(4),
    ]
    for value in values:
        assert aot.arg_key(value) == aot._type_key(typeof(value)), value


def _render(preset: str, tmp: Path, env: dict[str, str]) -> tuple[np.ndarray, str]:
    """Render a shipped preset in a fresh process; (output, whether numba was imported)."""
    code = f"""
import sys, numpy as np
from lactose_audio.presets import load_preset
from lactose_audio.render import render
rng = np.random.default_rng(3)
t = np.arange(3 * 44100) / 44100
x = (0.4 * np.sin(2 * np.pi * 220 * t) * np.exp(-(t % 0.7) * 3)
     + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
effect = load_preset({preset!r})
whole = render(effect.chain, x, 44100)
streamed = render(effect.chain, x, 44100, block_size=3001)
np.save({str(tmp / "out.npy")!r}, np.stack([whole, streamed]))
print("numba" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return np.load(tmp / "out.npy"), done.stdout.strip().splitlines()[-1]


@needs_build
@pytest.mark.parametrize("preset", ["drive_tone", "level_drive", "pitch_drive"])
def test_compiled_kernels_give_the_jits_bits_without_numba(preset, tmp_path):
    """Whole-file and streamed renders (amplitude and pitch keys, soft edges, every kernel of
    the render path) are bit-identical with and without the build; with it, the process never
    imports numba."""
    jit, jit_numba = _render(preset, tmp_path, {"LACTOSE_NO_AOT": "1"})
    compiled, compiled_numba = _render(preset, tmp_path, {})
    assert jit_numba == "True"
    assert compiled_numba == "False"
    assert np.array_equal(jit, compiled)


@needs_build
def test_a_stale_or_disabled_build_is_not_used(tmp_path, monkeypatch):
    """A manifest whose digest does not match the kernel sources (an edited kernel, another
    numpy) is ignored, and so is the build under LACTOSE_NO_AOT."""
    manifest = json.loads(aot.MANIFEST.read_text())
    assert manifest["digest"] == aot.digest()
    stale = tmp_path / aot.MANIFEST.name
    stale.write_text(json.dumps({**manifest, "digest": "0" * 64}))
    monkeypatch.setattr(aot, "MANIFEST", stale)
    usable, why = aot.available()
    assert not usable and "stale" in why
    monkeypatch.setattr(aot, "MANIFEST", tmp_path / "missing.json")
    assert aot.available() == (False, "not built (python -m lactose_audio.aot)")
    monkeypatch.undo()
    monkeypatch.setenv("LACTOSE_NO_AOT", "1")
    assert aot.available() == (False, "disabled by LACTOSE_NO_AOT")


@needs_build
def test_an_argument_type_not_compiled_falls_back_to_the_jit():
    """A signature the build did not see (float64 audio into the envelope kernel) is compiled
    by numba and gives what the float32 path gives for the same values (to float32)."""
    from lactose_audio.conditioning import KeySpec, compute_key

    x = (0.3 * np.sin(np.arange(20000) * 0.05)).astype(np.float32)
    spec = KeySpec("amplitude", rate="sample", attack_ms=2.0, release_ms=80.0)
    k32 = compute_key(spec, x, 44100, 512)
    k64 = compute_key(spec, x.astype(np.float64), 44100, 512)
    np.testing.assert_allclose(k64, k32, rtol=0, atol=1e-5)


def test_every_kernel_module_is_compiled_and_rebuilt_by_make():
    """KERNEL_MODULES lists every module using ``_numba.jit`` (else its kernels would never be
    compiled ahead of time nor make a build stale), and the Makefile rebuilds when any of
    them, ``aot.py`` or ``_numba.py`` changes."""
    package = ROOT / "lactose_audio"
    using = {
        ".".join(("lactose_audio", *path.relative_to(package).with_suffix("").parts))
        for path in package.rglob("*.py")
        if "from lactose_audio._numba import jit" in path.read_text()
    }
    assert using == set(aot.KERNEL_MODULES)
    makefile = (ROOT / "Makefile").read_text()
    listed = makefile.split("KERNEL_SOURCES := $(addprefix lactose_audio/,", 1)[1].split(")", 1)[0]
    sources = set(listed.replace("\\", " ").split())
    expected = {str(Path(*name.split(".")[1:]).with_suffix(".py")) for name in aot.KERNEL_MODULES}
    assert sources == expected | {"aot.py", "_numba.py"}
