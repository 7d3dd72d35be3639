"""Train the shipped presets (presets/*.json) from the reproducible datasets.

    python scripts/train_presets.py [--budget-seconds 90] [--only NAME ...] [--out presets]

Each preset is trained on its dataset pair (``scripts/make_datasets.py``, built if missing) with
the key that suits its effect, and records its measured validation ESR. Deterministic up to
floating-point threading order; about ``budget × 5`` seconds on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from make_datasets import load_dataset  # noqa: E402

#: name -> (chain spec or None for the default chain, key, ranges, description)
PRESETS = {
    "tanh_drive": (None, "none", None,
                   "Static tanh overdrive: +24 dB into tanh, -6 dB out (one range)"),
    "drive_tone": (None, "amplitude", 8,
                   "Overdrive with tone filters: 150 Hz highpass, 24 dB drive, 2.5 kHz lowpass"),
    "fuzz": (None, "amplitude", 8,
             "Asymmetric fuzz (biased tanh, 30 dB) into a 2 kHz lowpass"),
    "level_drive": (None, "amplitude", 8,
                    "Level-dependent drive: clean and bright when soft, hard and dark when loud"),
    "pitch_drive": (None, "pitch", 8,
                    "Pitch-dependent drive: low notes hard and dark, high notes clean and thin"),
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-seconds", type=float, default=90.0)
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(PRESETS))
    parser.add_argument("--out", type=Path, default=REPO / "presets")
    args = parser.parse_args(argv)
    from lactose_audio.training import TrainConfig, train

    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or list(PRESETS):
        spec, key, n_ranges, description = PRESETS[name]
        pair = load_dataset(name)
        config = TrainConfig(
            chain_spec=spec, key=key, n_ranges=n_ranges, budget_seconds=args.budget_seconds, seed=0
        )
        result = train(
            pair, config, out=args.out / f"{name}.json", name=name, description=description
        )
        checkpoint = args.out / f"{name}.json.checkpoint.npz"
        checkpoint.unlink(missing_ok=True)  # shipped presets carry no training state
        print(
            f"{name}: validation ESR {result.validation_esr:.5f} "
            f"({result.steps} steps, {result.seconds:.0f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
