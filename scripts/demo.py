"""`make demo`: the main job end to end on the embedded default dataset.

1. builds the ``level_drive`` dry/wet pair (a drive that is clean when played softly and
   hard and dark when played loud) with ``scripts/make_datasets.py``;
2. ``lactose train`` learns it with the default options (``--chain auto --key auto``: the
   structure and the key are searched within the budget), with a
   report of plots;
3. ``lactose render`` processes a new take (different notes) through the learned preset;
4. ``lactose eval`` and ``lactose inspect`` print the ESR and the per-range parameters.

    python scripts/demo.py [--out demo_out] [--budget-seconds 90]

Every step is the real command line, run in-process and echoed so you can re-run it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from make_datasets import dataset_files, make_pair  # noqa: E402

DATASET = "level_drive"


def _run(argv: list[str]) -> None:
    from lactose_audio import cli

    print(f"\n$ lactose {shlex.join(argv)}", flush=True)
    code = cli.main(argv)
    if code != 0:
        raise SystemExit(code)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "demo_out")
    parser.add_argument("--budget-seconds", type=float, default=90.0)
    args = parser.parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    print(f"== 1. dataset: {DATASET} (scripts/make_datasets.py)")
    dry, wet = dataset_files(DATASET)
    print(f"dry: {dry}\nwet: {wet}")

    from lactose_audio.audio_io import write_audio

    preset = out / f"{DATASET}.json"
    report = out / "report"
    print("\n== 2. train (--chain auto --key auto: the structure and the key are searched)")
    _run(
        [
            "train",
            str(dry),
            str(wet),
            "--out",
            str(preset),
            "--latency",
            "0",
            "--budget-seconds",
            f"{args.budget_seconds:g}",
            "--report",
            str(report),
        ]
    )

    print("\n== 3. render a new take through the learned effect")
    new_dry, new_wet, sample_rate = make_pair(DATASET, seconds=12.0, seed=2026)
    take = out / "new_take_dry.wav"
    write_audio(take, new_dry, sample_rate)
    write_audio(out / "new_take_reference.wav", new_wet, sample_rate)
    rendered = out / "new_take_rendered.wav"
    _run(["render", str(preset), str(take), str(rendered)])

    print("\n== 4. evaluate on the new take and inspect the ranges")
    _run(["eval", str(preset), str(take), str(out / "new_take_reference.wav"), "--latency", "0"])
    _run(["inspect", str(preset), "--plot", str(out / "effect.png")])

    print(f"\nDone in {time.perf_counter() - start:.0f} s. Listen and look:")
    print(f"  preset:     {preset}")
    print(f"  rendered:   {rendered}  (model)  vs  {out / 'new_take_reference.wav'}  (target)")
    print(
        f"  plots:      {report}/ (training, effect, spectrogram, waveform), {out / 'effect.png'}"
    )
    print(
        f"  in Python:  fx = lactose_audio.load_preset({str(preset)!r}); "
        "y = fx(x, sample_rate=44100)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
