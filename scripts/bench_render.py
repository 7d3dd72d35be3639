"""Render benchmark: the default chain vs pedalboard on 60 s of 44.1 kHz audio.

Ours: ``default_chain()`` (gain > tanh drive > lowpass > highpass, keyed on the frame-rate
amplitude, 8 ranges), edges fitted on the audio, every range with its own parameters.
Timed: ``render(chain, audio, sample_rate)`` -- key computation, range selection, the
pointwise TF kernels and the filters.
Pedalboard: ``Pedalboard([Gain, Distortion, LowpassFilter, HighpassFilter])`` on the same audio.
Each timing is the best of ``--repeats`` runs after one warm-up run (tracing, allocation,
numba compilation); both are measured alternately in one process. Both render engines are
timed: ``iir`` (the default: exact recursive biquads; keys ``render_*``, ``ratio_*``) and
``graph`` (exactly the training graph; keys ``*_graph``); ``first_call_seconds`` is the
default engine's first call (numba compile or cache load, TF tracing) in this process.

Usage: python scripts/bench_render.py [--seconds 60] [--repeats 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

SR = 44100


def guitar_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Seeded plucked notes (decaying harmonics) at varied levels, plus a little noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n, np.float32)
    start = 0
    while start < n:
        length = int(rng.uniform(0.2, 0.8) * SR)
        f0 = 82.41 * 2 ** (rng.integers(0, 30) / 12)
        level = 10 ** (rng.uniform(-30, -1) / 20)
        t = np.arange(min(length, n - start), dtype=np.float32) / SR
        note = sum(np.sin(2 * np.pi * f0 * k * t) / k**1.5 for k in range(1, 6))
        out[start : start + t.size] += (level * np.exp(-t * rng.uniform(2, 8)) * note).astype(
            np.float32
        )
        start += length
    out += 1e-3 * rng.standard_normal(n).astype(np.float32)
    return out


def best_interleaved(fns, repeats: int) -> list[float]:
    """Best time of each of ``fns`` over ``repeats`` rounds, each round running every fn once.

    Interleaving makes a slow spell of the machine hit all contenders alike, so the ratios
    between them are measured side by side, not minutes apart.
    """
    for fn in fns:
        fn()  # warm-up
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_chain(n_ranges: int, audio: np.ndarray):
    """The benchmarked default chain, edges fitted on ``audio``, each range its own values."""
    from lactose_audio.chains import default_chain

    chain = default_chain(n_ranges=n_ranges)
    chain.fit_edges(audio, SR)
    k = np.linspace(0.0, 1.0, n_ranges)[:, None]
    chain[0].set_physical(np.hstack([6.0 - 6.0 * k]))
    chain[1].set_physical(np.hstack([20.0 + 10.0 * k, 0.1 * k, -6.0 + 0.0 * k]))
    chain[2].set_physical(np.hstack([5000.0 - 2000.0 * k, 0.7071 + 0.3 * k]))
    chain[3].set_physical(np.hstack([80.0 + 40.0 * k, 0.7071 + 0.0 * k]))
    return chain


def ours(n_ranges: int, audio: np.ndarray, engine: str = "iir"):
    from lactose_audio.render import render

    chain = bench_chain(n_ranges, audio)
    return lambda: render(chain, audio, SR, engine=engine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    import pedalboard

    audio = guitar_like(args.seconds)
    board = pedalboard.Pedalboard(
        [
            pedalboard.Gain(gain_db=6.0),
            pedalboard.Distortion(drive_db=20.0),
            pedalboard.LowpassFilter(cutoff_frequency_hz=5000.0),
            pedalboard.HighpassFilter(cutoff_frequency_hz=80.0),
        ]
    )
    # default engine (iir) and the training graph, 8/1/2/64 ranges
    run8, run1, run2, run64 = (ours(n, audio, "iir") for n in (8, 1, 2, 64))
    graph8, graph1, graph2, graph64 = (ours(n, audio, "graph") for n in (8, 1, 2, 64))
    t0 = time.perf_counter()
    run8()
    t_first = time.perf_counter() - t0
    t_pb, t_ours, t_graph = best_interleaved([lambda: board(audio, SR), run8, graph8], args.repeats)
    t1, t2, t64 = best_interleaved([run1, run2, run64], 3 * args.repeats)
    t1_g, t2_g, t64_g = best_interleaved([graph1, graph2, graph64], args.repeats)
    result = {
        "seconds_audio": args.seconds,
        "render_seconds": t_ours,
        "render_rtf": args.seconds / t_ours,
        "pedalboard_seconds": t_pb,
        "pedalboard_rtf": args.seconds / t_pb,
        "ratio_vs_pedalboard": t_pb / t_ours,
        "ranges_1_seconds": t1,
        "ranges_2_seconds": t2,
        "ranges_64_seconds": t64,
        "ratio_64_vs_1": t64 / t1,
        "ratio_64_vs_2": t64 / t2,
        "render_seconds_graph": t_graph,
        "render_rtf_graph": args.seconds / t_graph,
        "ratio_vs_pedalboard_graph": t_pb / t_graph,
        "ranges_1_seconds_graph": t1_g,
        "ranges_2_seconds_graph": t2_g,
        "ranges_64_seconds_graph": t64_g,
        "ratio_64_vs_1_graph": t64_g / t1_g,
        "ratio_64_vs_2_graph": t64_g / t2_g,
        "first_call_seconds": t_first,
        "timing": (
            f"best of {args.repeats} interleaved rounds ({3 * args.repeats} for the iir range "
            "counts) after 1 warm-up, key computation included"
        ),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"audio: {args.seconds:g} s at {SR} Hz; {result['timing']}")
    print(f"{'':34s}{'time ms':>10s}{'x real time':>14s}")
    rows = [
        ("lactose default chain, 8 ranges", t_ours),
        ("  same, engine=graph", t_graph),
        ("pedalboard chain", t_pb),
    ]
    for label, seconds in rows:
        print(f"{label:34s}{1e3 * seconds:10.1f}{args.seconds / seconds:14.0f}")
    print(
        f"ratio vs pedalboard (RTF ours / RTF pedalboard): {result['ratio_vs_pedalboard']:.2f}"
        f" (graph engine {result['ratio_vs_pedalboard_graph']:.2f})"
    )
    for engine, (a, b, c) in (("iir", (t1, t2, t64)), ("graph", (t1_g, t2_g, t64_g))):
        print(
            f"{engine:>5}: 1 range {1e3 * a:.1f} ms (no key), 2 ranges {1e3 * b:.1f} ms, "
            f"64 ranges {1e3 * c:.1f} ms; 64 vs 1 {c / a:.2f}x, 64 vs 2 {c / b:.2f}x"
        )
    print(f"first call (numba compile or cache load, TF tracing): {t_first:.2f} s")


if __name__ == "__main__":
    main()
