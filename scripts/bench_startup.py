"""Fresh-process wall time of ``lactose render`` / ``inspect`` vs pedalboard, and render speed.

Every command runs as a new Python process (what a user or a batch script pays), on a 15 s mono
44.1 kHz file, after one warm-up run (numba's on-disk cache and ``__pycache__`` filled, OS file
cache warm); the figure is the median of ``--runs`` runs. Printed:

- ``render_cli_seconds``: ``lactose render <preset> in.wav out.wav`` (numpy engine);
- ``render_cli_graph_seconds``: the same with ``--engine graph`` (the TensorFlow training
  graph), and ``graph_over_render`` their ratio;
- ``render_cli_jit_seconds``: the render with ``LACTOSE_NO_AOT=1`` (numba's JIT and its
  on-disk cache instead of the kernels compiled by ``python -m lactose_audio.aot``);
  ``aot_kernels`` says whether that build was in use;
- ``inspect_cli_seconds``: ``lactose inspect <preset>``;
- ``peak_rss_mb``: peak resident memory of the render process (``getrusage`` of children);
- ``pedalboard_cli_seconds``: a 10-line pedalboard script (gain -> distortion -> lowpass ->
  highpass) on the same file, as a fresh process, timed alternately with ours;
- ``pitch_render_rtf``: in-process render speed of the ``pitch_drive`` preset (key included),
  times real time, best of 3 after one warm-up.

Batch rendering (``--batch-files`` seeded mono files of ``--batch-seconds`` s, generated in the
temporary folder): ``lactose render <preset> DIR OUT --jobs 1 --overwrite`` and the same with
``--jobs 2``, each a fresh process, one warm-up each, then ``--batch-runs`` rounds alternating
the two (median):

- ``batch_jobs1_files_per_second``, ``batch_jobs2_files_per_second`` and their ratio
  ``jobs2_over_jobs1`` (bar >= 1.7 on 2 CPUs);
- ``worker_peak_rss_mb``: peak RSS of the largest process of a ``--jobs 2`` run (the command
  renders too, beside its spawned worker): ``ru_maxrss`` of ``RUSAGE_CHILDREN`` in a wrapper
  process, which covers the command and its workers (bar <= 400 MB).

Usage: ``python scripts/bench_startup.py [--json] [--runs 5] [--preset drive_tone]
[--batch-files 200] [--batch-seconds 5] [--batch-runs 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SR = 44100
SECONDS = 15.0
ROOT = Path(__file__).resolve().parents[1]

PEDALBOARD_SCRIPT = """\
import sys
import soundfile as sf
from pedalboard import Distortion, Gain, HighpassFilter, LowpassFilter, Pedalboard

audio, sr = sf.read(sys.argv[1], dtype="float32")
board = Pedalboard([Gain(gain_db=6.0), Distortion(drive_db=12.0),
                    LowpassFilter(cutoff_frequency_hz=6000.0),
                    HighpassFilter(cutoff_frequency_hz=80.0)])
sf.write(sys.argv[2], board(audio, sr), sr, subtype="FLOAT")
"""


def _env() -> dict[str, str]:
    """The children's environment: this checkout first on the path, bytecode cached.

    ``PYTHONDONTWRITEBYTECODE`` (set in some sandboxes) is dropped so that the warm-up writes
    ``__pycache__`` like an installed package has it (``pip`` compiles at install time);
    otherwise every run would recompile our ~40 modules from source.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)
    return env


def timed(argv: list[str]) -> float:
    """Wall seconds of ``argv`` as a fresh process."""
    start = time.perf_counter()
    done = subprocess.run(argv, env=_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return seconds


def median_runs(commands: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """One warm-up each, then ``runs`` rounds, the commands alternating within a round."""
    for argv in commands.values():
        timed(argv)
    out: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            out[name].append(timed(argv))
    return out


def render_peak_rss(argv: list[str]) -> float:
    """Peak RSS (MB) of one run of ``argv``, measured in a clean child (own RUSAGE_CHILDREN)."""
    code = (
        "import resource, subprocess, sys;"
        f"subprocess.run({argv!r}, check=True, capture_output=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def take(seconds: float, seed: int) -> np.ndarray:
    """A seeded take: decaying plucks of random pitch and level, plus a little noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    period = rng.uniform(0.3, 1.0)
    f0 = 82.41 * 2 ** (rng.integers(0, 24) / 12)
    level = 10 ** (rng.uniform(-30, -3) / 20)
    audio = level * np.sin(2 * np.pi * f0 * t) * np.exp(-(t % period) * 4.0)
    return (audio + 1e-3 * rng.standard_normal(n)).astype(np.float32)


def batch(folder: Path, preset: str, n_files: int, seconds: float, runs: int) -> dict:
    """Files/s of ``lactose render PRESET DIR OUT --jobs 1|2`` and the peak RSS of ``--jobs 2``."""
    import soundfile as sf

    takes, out = folder / "takes", folder / "rendered"
    for i in range(n_files):
        path = takes / f"{i // 50:02d}" / f"take{i:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, take(seconds, 1000 + i), SR, subtype="FLOAT")
    lactose = [sys.executable, "-m", "lactose_audio", "render", preset, str(takes), str(out)]
    commands = {
        f"jobs{j}": [*lactose, "--jobs", str(j), "--overwrite"] for j in (1, 2)
    }  # fmt: skip
    times = median_runs(commands, runs)
    med = {name: statistics.median(values) for name, values in times.items()}
    rss = render_peak_rss(commands["jobs2"])
    return {
        "batch_files": n_files,
        "batch_file_seconds": seconds,
        "batch_jobs1_seconds": round(med["jobs1"], 3),
        "batch_jobs2_seconds": round(med["jobs2"], 3),
        "batch_jobs1_files_per_second": round(n_files / med["jobs1"], 1),
        "batch_jobs2_files_per_second": round(n_files / med["jobs2"], 1),
        "jobs2_over_jobs1": round(med["jobs1"] / med["jobs2"], 2),
        "worker_peak_rss_mb": round(rss, 1),
    }


def pitch_rtf(path: Path) -> float:
    """In-process render speed of the ``pitch_drive`` preset, times real time."""
    import soundfile as sf

    from lactose_audio import load_preset

    audio, rate = sf.read(path, dtype="float32")
    effect = load_preset("pitch_drive")
    effect(audio[: rate // 2], rate)  # warm-up (numba cache, pitch tracker imports)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        effect(audio, rate)
        best = min(best, time.perf_counter() - start)
    return (audio.size / rate) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--preset", default="drive_tone")
    parser.add_argument("--batch-files", type=int, default=200)
    parser.add_argument("--batch-seconds", type=float, default=5.0)
    parser.add_argument("--batch-runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        src, out = folder / "in.wav", folder / "out.wav"
        rng = np.random.default_rng(0)
        t = np.arange(int(SECONDS * SR)) / SR
        audio = 0.3 * np.sin(2 * np.pi * 110.0 * t) * np.exp(-(t % 1.0) * 3.0)
        audio = (audio + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
        import soundfile as sf

        sf.write(src, audio, SR, subtype="FLOAT")
        script = folder / "pedalboard_chain.py"
        script.write_text(PEDALBOARD_SCRIPT)
        lactose = [sys.executable, "-m", "lactose_audio"]
        commands = {
            "render": [*lactose, "render", args.preset, str(src), str(out)],
            "render_graph": [
                *lactose,
                "render",
                args.preset,
                str(src),
                str(out),
                "--engine",
                "graph",
            ],  # fmt: skip
            # numba's JIT (its on-disk cache) instead of the AOT build, side by side
            "render_jit": [
                "env",
                "LACTOSE_NO_AOT=1",
                *lactose,
                "render",
                args.preset,
                str(src),
                str(out),
            ],  # fmt: skip
            "inspect": [*lactose, "inspect", args.preset],
            "pedalboard": [sys.executable, str(script), str(src), str(out)],
        }
        times = median_runs(commands, args.runs)
        rss = render_peak_rss(commands["render"])
        rtf = pitch_rtf(src)
        batched = batch(folder, args.preset, args.batch_files, args.batch_seconds, args.batch_runs)

    from lactose_audio.aot import available

    aot_status = available()[1] if available()[0] else f"not used: {available()[1]}"
    med = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "render_cli_seconds": round(med["render"], 3),
        "render_cli_graph_seconds": round(med["render_graph"], 3),
        "render_cli_jit_seconds": round(med["render_jit"], 3),
        "aot_kernels": aot_status,
        "graph_over_render": round(med["render_graph"] / med["render"], 2),
        "inspect_cli_seconds": round(med["inspect"], 3),
        "peak_rss_mb": round(rss, 1),
        "pitch_render_rtf": round(rtf, 1),
        "pedalboard_cli_seconds": round(med["pedalboard"], 3),
        "render_over_pedalboard": round(med["render"] / med["pedalboard"], 2),
        **batched,
        "runs": args.runs,
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps(result))
        return
    rows = [
        ("lactose render (numpy engine)", f"{result['render_cli_seconds']:.3f} s", "<= 0.75 s"),
        (
            "lactose render --engine graph",
            f"{result['render_cli_graph_seconds']:.3f} s",
            f">= 5x render ({result['graph_over_render']:.1f}x)",
        ),  # fmt: skip
        (
            "lactose render, numba JIT (no AOT)",
            f"{result['render_cli_jit_seconds']:.3f} s",
            f"AOT kernels: {aot_status}",
        ),
        ("lactose inspect", f"{result['inspect_cli_seconds']:.3f} s", "<= 0.5 s"),
        ("render peak RSS", f"{result['peak_rss_mb']:.0f} MB", "<= 300 MB"),
        ("pedalboard script (same chain)", f"{result['pedalboard_cli_seconds']:.3f} s", ""),
        ("pitch_drive in-process", f"{result['pitch_render_rtf']:.0f}x real time", ""),
        (
            f"batch --jobs 1 ({args.batch_files} x {args.batch_seconds:g} s)",
            f"{result['batch_jobs1_files_per_second']:.1f} files/s",
            "",
        ),
        (
            "batch --jobs 2",
            f"{result['batch_jobs2_files_per_second']:.1f} files/s",
            f">= 1.7x --jobs 1 ({result['jobs2_over_jobs1']:.2f}x)",
        ),
        ("batch --jobs 2 peak RSS", f"{result['worker_peak_rss_mb']:.0f} MB", "<= 400 MB"),
    ]
    load = f"load average {result['load_average_1min']} on {result['cpu_count']} CPUs"
    print(f"fresh process, 15 s mono 44.1 kHz, median of {args.runs} after a warm-up ({load})")
    for name, value, target in rows:
        print(f"  {name:<32} {value:>16}   {target}")


if __name__ == "__main__":
    main()
