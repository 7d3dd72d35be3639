#!/usr/bin/env python
"""Benchmark the LACTOSE bank against the paper's per-sample loop (DESIGN.md section 9).

Measured side by side in one run, on the same model (MLP waveshaper 1 -> 8 tanh -> 1 keyed on
the ``sample`` key, tests/naive_lactose.py) and the same data:

- training throughput (samples/s): the naive loop (set_weights / forward / backward with batch
  size 1 / SGD step / get_weights per sample, as published) vs the batched bank (RangeBank
  gather, batches of 8192 samples, SeparatedAdam, several steps per ``tf.function`` call),
  for 1, 4 and 16 ranges; the speedup reported is the MINIMUM over range counts;
- inference time on 1M samples (range_index + gathered forward pass, best of several runs) for
  1, 4, 16 and 64 ranges, and the ratio 64 / 1.

Usage: ``python scripts/bench_bank.py [--json] [--naive-samples N] [--batch B]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from naive_lactose import BankedMLPWaveshaper, NaiveLactose, flatten_weights, make_mlp  # noqa: E402

from lactose_audio._tf import tf  # noqa: E402
from lactose_audio.ranges import RangeEdges, SeparatedAdam, range_index  # noqa: E402

HIDDEN = 8
TRAIN_RANGES = (1, 4, 16)
INFER_RANGES = (1, 4, 16, 64)


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n).astype(np.float32)
    return x, np.tanh(4 * x).astype(np.float32)


def _edges(x: np.ndarray, n_ranges: int) -> RangeEdges:
    return RangeEdges.from_quantiles(x, n_ranges, "linear")


def naive_train_rate(n_ranges: int, n_samples: int) -> float:
    """Samples/s of the published per-sample weight-swapping loop."""
    x, y = _data(n_samples + 20, seed=1)
    naive = NaiveLactose(make_mlp(HIDDEN, 0), _edges(x, n_ranges), learning_rate=0.01)
    naive.train(x[:20], y[:20])  # warm-up (tracing, first allocations)
    start = time.perf_counter()
    naive.train(x[20:], y[20:])
    return n_samples / (time.perf_counter() - start)


def batched_train_rate(n_ranges: int, batch: int, steps_per_call: int, calls: int) -> float:
    """Samples/s of the batched bank: gather, sum-of-squares loss, SeparatedAdam."""
    x, y = _data(batch * steps_per_call, seed=2)
    edges = _edges(x, n_ranges)
    index = range_index(x, edges)
    model = BankedMLPWaveshaper(
        n_ranges, HIDDEN, flatten_weights(make_mlp(HIDDEN, 0).get_weights())
    )
    opt = SeparatedAdam(learning_rate=1e-3)
    opt.build([model.bank])
    xs = tf.constant(x.reshape(steps_per_call, batch))
    ks = tf.constant(index.reshape(steps_per_call, batch))
    ys = tf.constant(y.reshape(steps_per_call, batch))
    var = model.bank.variable

    @tf.function
    def train_steps():
        for i in tf.range(steps_per_call):
            with tf.GradientTape() as tape:
                loss = model.loss(xs[i], ks[i], ys[i])
            opt.apply_gradients([(tape.gradient(loss, var), model.bank)])

    train_steps()  # trace + warm-up
    best = np.inf
    for _ in range(calls):
        start = time.perf_counter()
        train_steps()
        best = min(best, time.perf_counter() - start)
    return batch * steps_per_call / best


def inference_seconds(n_ranges: int, n_samples: int, repeats: int) -> float:
    """Best wall time of range_index + gathered forward pass over ``n_samples`` samples."""
    x, _ = _data(n_samples, seed=3)
    edges = _edges(x, n_ranges)
    rng = np.random.default_rng(n_ranges)
    row = flatten_weights(make_mlp(HIDDEN, 0).get_weights())
    rows = row[None] + 0.1 * rng.normal(size=(n_ranges, row.size)).astype(np.float32)
    model = BankedMLPWaveshaper(n_ranges, HIDDEN, rows)
    forward = tf.function(lambda a, k: model(a, k))
    x_tf = tf.constant(x)
    forward(x_tf, tf.constant(range_index(x, edges))).numpy()  # trace + warm-up
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        forward(x_tf, tf.constant(range_index(x, edges))).numpy()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--naive-samples", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--steps-per-call", type=int, default=32)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--infer-samples", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    train = {}
    for n in TRAIN_RANGES:
        naive = naive_train_rate(n, args.naive_samples)
        batched = batched_train_rate(n, args.batch, args.steps_per_call, args.calls)
        train[n] = {
            "naive_samples_per_s": naive,
            "batched_samples_per_s": batched,
            "speedup": batched / naive,
        }
    infer = {n: inference_seconds(n, args.infer_samples, args.repeats) for n in INFER_RANGES}
    result = {
        "train": {str(n): v for n, v in train.items()},
        "train_speedup_vs_naive": min(v["speedup"] for v in train.values()),
        "train_speedup_definition": "minimum over n_ranges in (1, 4, 16)",
        "inference_seconds": {str(n): s for n, s in infer.items()},
        "inference_samples": args.infer_samples,
        "inference_ratio_64_vs_1": infer[64] / infer[1],
        "batch": args.batch,
        "naive_samples": args.naive_samples,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print("Training throughput (MLP waveshaper, sample key)")
    print(f"{'n_ranges':>8} {'naive samples/s':>16} {'batched samples/s':>18} {'speedup':>9}")
    for n, v in train.items():
        print(
            f"{n:>8} {v['naive_samples_per_s']:>16,.0f} {v['batched_samples_per_s']:>18,.0f} "
            f"{v['speedup']:>8,.0f}x"
        )
    print(f"train_speedup_vs_naive (min): {result['train_speedup_vs_naive']:,.0f}x")
    print()
    print(
        f"Inference, {args.infer_samples:,} samples (range_index + forward, best of {args.repeats})"
    )
    print(f"{'n_ranges':>8} {'ms':>9} {'x real time @44.1k':>19} {'vs 1 range':>11}")
    for n, s in infer.items():
        rt = args.infer_samples / 44100 / s
        print(f"{n:>8} {s * 1e3:>9.1f} {rt:>19,.0f} {s / infer[1]:>10.2f}x")
    print(f"inference_ratio_64_vs_1: {result['inference_ratio_64_vs_1']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
