"""Running and building exported Faust programs: DawDreamer in-process, Faust's toolchain.

- :func:`render_faust`: compile a Faust program in-process with DawDreamer (PyPI; it embeds the
  Faust compiler and LLVM) and render mono audio through it, in blocks of any size, like a
  plugin host. Used by the equivalence tests and ``scripts/bench_export.py``.
- :func:`build_plugin`: ``lactose export --format lv2|vst3|clap|jack`` -- runs Faust's
  ``faust2lv2`` / ``faust2vst`` / ``faust2clap`` / ``faust2jack`` scripts (Debian/Ubuntu:
  ``make plugin-deps``) on the exported program; says exactly what to install when missing.

No TensorFlow.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lactose_audio.errors import ExportError

#: ``--format`` -> (Faust script, what to install for it). Debian 12's ``faust`` (2.54) ships
#: ``faust2lv2`` and ``faust2jackconsole``; ``faust2vst3`` and ``faust2clap`` come with newer
#: Faust releases (https://github.com/grame-cncm/faust/releases).
FORMATS: dict[str, tuple[str, str]] = {
    "lv2": ("faust2lv2", "sudo apt-get install -y faust libboost-dev lv2-dev"),
    "vst3": ("faust2vst3", "install a Faust release with faust2vst3 and the VST3 SDK"),
    "clap": ("faust2clap", "install a Faust release with faust2clap and the CLAP headers"),
    "jack": ("faust2jackconsole", "sudo apt-get install -y faust libjack-jackd2-dev"),
}
PLUGIN_DEPS = "sudo apt-get install -y faust libboost-dev lv2-dev lv2file  (or: make plugin-deps)"
#: The sample rate for Faust's C++ backend. Faust 2.54 (Debian 12) fills init-time tables
#: (``rdtable``) in helper classes whose ``fSampleRate`` is never set, so ``ma.SR`` there reads
#: 0: the biquad coefficient tables would be computed at 1 Hz. Every C++ init function of those
#: versions and later takes the rate as its argument ``sample_rate``; reading it directly is
#: right in both the helper classes and the DSP class.
CPP_SAMPLE_RATE = "SR = min(192000.0, max(1.0, fconstant(int sample_rate, <math.h>)));"


def faust_parameters(processor: Any) -> dict[str, str]:
    """``{label: address}`` of a DawDreamer Faust processor's sliders."""
    return {p["label"]: p["name"] for p in processor.get_parameters_description()}


class FaustHost:
    """A Faust program compiled in-process by DawDreamer, hosted like a plugin (mono).

    Args:
        code: A Faust program (``process`` with one input and one output).
        sample_rate: Hz (the host rate: ``ma.SR`` in the program).
        block_size: Host buffer size in samples.
        controls: Slider values by label (``{"mix": 50.0, "output": -6.0}``).

    Raises:
        ExportError: If DawDreamer is not installed or the program does not compile.
    """

    def __init__(
        self,
        code: str,
        sample_rate: int,
        block_size: int = 512,
        controls: dict[str, float] | None = None,
    ) -> None:
        try:
            import dawdreamer
        except ImportError:
            raise ExportError(
                "rendering a Faust program in-process needs DawDreamer: pip install dawdreamer"
            ) from None
        self.sample_rate = int(sample_rate)
        self.block_size = int(block_size)
        self.engine = dawdreamer.RenderEngine(self.sample_rate, self.block_size)
        self.faust = self.engine.make_faust_processor("lactose")
        if not self.faust.set_dsp_string(code):
            raise ExportError("DawDreamer refused the Faust program")
        try:
            self.faust.compile()
        except RuntimeError as exc:
            line = str(exc).splitlines()[0]
            raise ExportError(f"Faust did not compile the program: {line}") from None
        names = faust_parameters(self.faust)
        for label, value in (controls or {}).items():
            self.faust.set_parameter(names[label], float(value))
        self.n_samples = 0

    def load(self, audio: np.ndarray, n_samples: int | None = None) -> None:
        """The input of the next :meth:`run` (silence beyond ``audio``), ``n_samples`` long."""
        n = len(audio) if n_samples is None else int(n_samples)
        padded = np.zeros((1, n + self.block_size), np.float32)
        padded[0, : min(n, len(audio))] = audio[:n]
        playback = self.engine.make_playback_processor("dry", padded)
        self.engine.load_graph([(playback, []), (self.faust, ["dry"])])
        self.n_samples = n

    def run(self) -> np.ndarray:
        """Render the loaded input; float32 ``[n_samples]``."""
        self.engine.render(self.n_samples / float(self.sample_rate))
        out = np.asarray(self.engine.get_audio(), np.float32)[0]
        if out.size < self.n_samples:
            raise ExportError(f"DawDreamer rendered {out.size} samples, not {self.n_samples}")
        return out[: self.n_samples]


def render_faust(
    code: str,
    audio: np.ndarray,
    sample_rate: int,
    *,
    block_size: int = 512,
    n_samples: int | None = None,
    controls: dict[str, float] | None = None,
) -> np.ndarray:
    """Compile ``code`` with DawDreamer and run ``audio`` through it (:class:`FaustHost`).

    Args:
        code: A Faust program (mono in, mono out).
        audio: float32 ``[n]``.
        sample_rate: Hz.
        block_size: Host buffer size in samples.
        n_samples: Samples to render (default ``len(audio)``; input beyond it is silence).
        controls: Slider values by label.

    Returns:
        float32 ``[n_samples]``.
    """
    host = FaustHost(code, sample_rate, block_size, controls)
    host.load(audio, n_samples)
    return host.run()


def build_plugin(code: str, name: str, fmt: str, out_dir: str | os.PathLike) -> Path:
    """Build a plugin from Faust ``code`` with Faust's ``faust2<format>`` script.

    Args:
        code: The exported program.
        name: Plugin (and file) name, an identifier.
        fmt: ``lv2``, ``vst3``, ``clap`` or ``jack``.
        out_dir: Folder receiving the build (created).

    Returns:
        The folder.

    Raises:
        ExportError: On an unknown format, a missing toolchain (the message says what to
            install) or a failed build (the tool's last line).
    """
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    script, install = FORMATS[fmt]
    missing = [t for t in (script, "faust") if shutil.which(t) is None]
    if missing:
        hint = "  (or: make plugin-deps)" if fmt == "lv2" else ""
        raise ExportError(
            f"--format {fmt} needs Faust's {script} ({', '.join(missing)} not found): "
            f"{install}{hint}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from lactose_audio.faust_library import SR_DEFINITION

    code = code.replace(SR_DEFINITION, CPP_SAMPLE_RATE, 1)
    with tempfile.TemporaryDirectory(prefix="lactose-export-") as tmp:
        dsp = Path(tmp) / f"{name}.dsp"
        dsp.write_text(code)
        done = subprocess.run(
            [script, "-double", str(dsp)], cwd=tmp, capture_output=True, text=True
        )
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines() or ["(no output)"]
            raise ExportError(f"{script} failed: {last[-1]}")
        for item in Path(tmp).iterdir():
            if item.name != dsp.name and not item.name.endswith(".cpp"):
                target = out / item.name
                if target.exists():
                    shutil.rmtree(target) if target.is_dir() else target.unlink()
                shutil.move(str(item), target)
    return out


def export_preset(
    preset: str | os.PathLike,
    out: str | os.PathLike,
    fmt: str = "dsp",
    sample_rates: tuple[int, ...] | None = None,
) -> str:
    """``lactose export``: a preset as a Faust program (``fmt="dsp"``) or a built plugin.

    Args:
        preset: A preset file or a shipped preset's name.
        out: The ``.dsp`` file to write (atomically), or the folder of the plugin build.
        fmt: ``dsp``, or one of :data:`FORMATS`.
        sample_rates: Rates a ``fir_eq``'s taps are designed for
            (:func:`~lactose_audio.faust.export_faust`; default there).

    Returns:
        A one-line summary.

    Raises:
        ExportError: If the preset cannot be exported, or the toolchain is missing.
    """
    from lactose_audio.atomic import atomic_write_text
    from lactose_audio.faust import export_faust
    from lactose_audio.presets import load_preset

    if fmt != "dsp" and fmt not in FORMATS:
        raise ExportError(f"--format must be dsp or one of {', '.join(FORMATS)}, got {fmt!r}")
    effect = load_preset(preset)
    code = export_faust(effect, sample_rates)
    latency = code.split('latency_samples "', 1)[1].split('"', 1)[0]
    if fmt == "dsp":
        atomic_write_text(out, code)
        return f"wrote {out} (Faust, {len(code.splitlines())} lines, latency {latency} samples)"
    name = "".join(c if c.isalnum() else "_" for c in (effect.name or "lactose")) or "lactose"
    folder = build_plugin(code, name, fmt, out)
    return f"built {fmt} plugin {name} in {folder} (latency {latency} samples)"


__all__ = [
    "FORMATS",
    "FaustHost",
    "PLUGIN_DEPS",
    "build_plugin",
    "export_preset",
    "faust_parameters",
    "render_faust",
]
