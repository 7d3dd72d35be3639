"""Long-file benchmark (issue 13): peak memory and wall time of `lactose render`/`eval`.

Generates, block by block (seeded), a 10-minute and a 60-minute mono 44.1 kHz dry file
(plucked harmonic notes at varied levels and pitches with gaps under a second, 16-bit WAV) in a
temporary folder, and the 60-minute wet by a simple numpy effect (``tanh(3 x) / 1.2``, sample
by sample). Then runs, each as a fresh process (``python -m lactose_audio``):

- ``lactose render level_drive`` (amplitude key) and ``lactose render pitch_drive`` (pitch key)
  on both lengths;
- ``lactose eval level_drive`` on the 60-minute pair;
- optionally (``--train``) ``lactose train`` on a 20-minute pair (default chain, amplitude
  key, 120 s budget).

Measured per run: wall time (including the process start and imports), and peak RSS of the
command (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` in a small wrapper process whose
only child is the command). Bars: render peak RSS <= 400 MB; 60-minute time <= 1.2 x six
10-minute times; eval peak RSS <= 400 MB; train <= 2 GB.

Usage: python scripts/bench_long.py [--json] [--train] [--minutes-short 10] [--minutes-long 60]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf

SR = 44100
BLOCK = 1 << 18


def _notes(rng: np.random.Generator, n: int) -> np.ndarray:
    """About ``n`` samples of notes and gaps (float32; whole notes, so possibly more)."""
    parts, total = [], 0
    while total < n:
        length = int(rng.uniform(0.3, 1.5) * SR)
        f0 = 82.41 * 2 ** (rng.integers(0, 30) / 12)
        level = 10 ** (rng.uniform(-30, -3) / 20)
        t = np.arange(length, dtype=np.float32) / SR
        note = sum(np.sin(2 * np.pi * f0 * k * t) / k**1.5 for k in range(1, 6))
        note = level * np.exp(-t * rng.uniform(1, 5)) * note
        gap = np.zeros(int(rng.uniform(0.0, 0.8) * SR), np.float32)
        parts += [note.astype(np.float32), gap]
        total += length + gap.size
    return np.concatenate(parts)


def wet_effect(x: np.ndarray) -> np.ndarray:
    """The 'recorded' effect: a memoryless soft clipper, ``tanh(3 x) / 1.2``."""
    return (np.tanh(3.0 * x) / 1.2).astype(np.float32)


def make_files(folder: str, minutes: float, seed: int, wet: bool) -> tuple[str, str | None]:
    """Write ``dry_{minutes}.wav`` (and its wet) block by block; returns the paths."""
    rng = np.random.default_rng(seed)
    n_total = int(minutes * 60 * SR)
    dry_path = os.path.join(folder, f"dry_{minutes:g}.wav")
    wet_path = os.path.join(folder, f"wet_{minutes:g}.wav") if wet else None
    dry_file = sf.SoundFile(dry_path, "w", SR, 1, subtype="PCM_16")
    wet_file = sf.SoundFile(wet_path, "w", SR, 1, subtype="PCM_16") if wet_path else None
    written = 0
    pending = np.zeros(0, np.float32)
    while written < n_total:
        while pending.size < BLOCK:
            pending = np.concatenate([pending, _notes(rng, BLOCK)])
        block, pending = pending[: min(BLOCK, n_total - written)], pending[BLOCK:]
        dry_file.write(block)
        if wet_file is not None:
            wet_file.write(wet_effect(block))
        written += block.size
    dry_file.close()
    if wet_file is not None:
        wet_file.close()
    return dry_path, wet_path


# Runs one command and prints its peak RSS: a wrapper process per run, so RUSAGE_CHILDREN
# (a running maximum over a process's children) sees that command alone.
_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=sys.stdout, stderr=sys.stderr).returncode\n"
    "sys.stderr.write(f'\\nMAXRSS_KB={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}')\n"
    "sys.exit(code)\n"
)


def run(args: list[str], module: bool = True) -> dict[str, object]:
    """Run ``python -m lactose_audio ARGS`` (``module=False``: ``python ARGS``) as a fresh
    process: wall seconds, peak RSS (MB), stdout."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _WRAPPER,
            sys.executable,
            *(["-m", "lactose_audio"] if module else []),
            *args,
        ],  # fmt: skip
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"lactose {' '.join(args)} failed:\n{done.stderr}")
    peak_kb = int(done.stderr.rsplit("MAXRSS_KB=", 1)[1])
    return {"seconds": seconds, "rss_mb": peak_kb / 1024.0, "stdout": done.stdout.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--train", action="store_true", help="also measure lactose train")
    parser.add_argument("--minutes-short", type=float, default=10.0)
    parser.add_argument("--minutes-long", type=float, default=60.0)
    opts = parser.parse_args()
    result: dict[str, object] = {}
    # what importing the render path costs before any audio (TensorFlow while it is imported)
    baseline = run(["-c", "import lactose_audio.presets, lactose_audio.render"], module=False)
    result["import_render_rss_mb"] = round(baseline["rss_mb"], 1)
    with tempfile.TemporaryDirectory(prefix="bench_long_") as folder:
        short, _ = make_files(folder, opts.minutes_short, 1, wet=False)
        long_dry, long_wet = make_files(folder, opts.minutes_long, 2, wet=True)
        out = os.path.join(folder, "out.wav")
        for label, preset in (("amp", "level_drive"), ("pitch", "pitch_drive")):
            for tag, path in (("short", short), ("long", long_dry)):
                measured = run(["render", preset, path, out])
                os.unlink(out)
                if tag == "long":
                    result[f"render_{label}_rss_mb"] = round(measured["rss_mb"], 1)
                    result[f"render_{label}_seconds"] = round(measured["seconds"], 2)
                else:
                    result[f"render_{label}_short_rss_mb"] = round(measured["rss_mb"], 1)
                    result[f"render_{label}_short_seconds"] = round(measured["seconds"], 2)
            scale = opts.minutes_long / opts.minutes_short
            result[f"render_{label}_time_ratio"] = round(
                result[f"render_{label}_seconds"]
                / (scale * result[f"render_{label}_short_seconds"]),
                3,
            )
        measured = run(["eval", "level_drive", long_dry, long_wet, "--json"])
        result["eval_rss_mb"] = round(measured["rss_mb"], 1)
        result["eval_seconds"] = round(measured["seconds"], 2)
        result["eval_metrics"] = json.loads(measured["stdout"])
        if opts.train:
            dry20, wet20 = make_files(folder, 20, 3, wet=True)
            measured = run(
                [
                    "train",
                    dry20,
                    wet20,
                    "--out",
                    os.path.join(folder, "p.json"),
                    "--chain",
                    "default",
                    "--key",
                    "amplitude",
                    "--budget-seconds",
                    "120",
                ]  # fmt: skip
            )
            result["train_rss_mb"] = round(measured["rss_mb"], 1)
            result["train_seconds"] = round(measured["seconds"], 2)
    result["minutes_short"] = opts.minutes_short
    result["minutes_long"] = opts.minutes_long
    result["bars"] = {
        "render_rss_mb_max": 400,
        "time_ratio_max": 1.2,
        "eval_rss_mb_max": 400,
        "train_rss_mb_max": 2048,
    }
    if opts.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
