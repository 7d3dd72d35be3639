"""Quality benchmark: validation ESR of trained models on the shipped datasets.

    python scripts/bench_quality.py [--budget-seconds 60] [--json]

Measured side by side in one run, each model trained from scratch with the same budget on the
training part (first 85 %) of a dataset pair and evaluated on its validation part (last 15 %):

- ``tanh_drive`` with the default chain (bar: ESR ≤ 0.01 within 60 s);
- ``level_drive`` keyed on amplitude vs the same chain unconditioned (bar: ratio ≤ 0.5);
- ``pitch_drive`` keyed on pitch vs the same chain unconditioned (bar: ratio ≤ 0.5).

``--json`` prints one JSON object with ``drive_esr``, ``level_keyed_over_none`` and
``pitch_keyed_over_none`` (keyed ESR / unconditioned ESR) and every measured ESR.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from make_datasets import load_dataset  # noqa: E402

RUNS = [  # (label, dataset, key, ranges)
    ("drive_default", "tanh_drive", "amplitude", 8),
    ("level_keyed", "level_drive", "amplitude", 8),
    ("level_none", "level_drive", "none", None),
    ("pitch_keyed", "pitch_drive", "pitch", 8),
    ("pitch_none", "pitch_drive", "none", None),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    from lactose_audio.training import TrainConfig, train

    log = (lambda *a: None) if args.json else print
    esr, seconds, steps = {}, {}, {}
    for label, dataset, key, n_ranges in RUNS:
        pair = load_dataset(dataset, log=log)
        start = time.perf_counter()
        result = train(
            pair,
            TrainConfig(
                chain_spec="default",  # the key's effect, on the hand-made default chain
                key=key,
                n_ranges=n_ranges,
                budget_seconds=args.budget_seconds,
                seed=args.seed,
            ),
        )
        esr[label] = result.validation_esr
        seconds[label] = time.perf_counter() - start
        steps[label] = result.steps
        log(
            f"{label:<14} {dataset:<12} key={key:<9} ESR {result.validation_esr:.5f} "
            f"({result.steps} steps, {result.seconds:.0f} s training)"
        )
    summary = {
        "drive_esr": esr["drive_default"],
        "level_keyed_over_none": esr["level_keyed"] / esr["level_none"],
        "pitch_keyed_over_none": esr["pitch_keyed"] / esr["pitch_none"],
        "esr": esr,
        "steps": steps,
        "budget_seconds": args.budget_seconds,
    }
    if args.json:
        print(json.dumps(summary, sort_keys=True))
        return 0
    print()
    print(f"{'measure':<28}{'value':>10}  bar")
    print(f"{'tanh drive ESR':<28}{summary['drive_esr']:>10.5f}  <= 0.01")
    print(f"{'level: keyed / none':<28}{summary['level_keyed_over_none']:>10.3f}  <= 0.5")
    print(f"{'pitch: keyed / none':<28}{summary['pitch_keyed_over_none']:>10.3f}  <= 0.5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
