"""Pitch-key benchmark: librosa.pyin vs the fast tracker (lactose_audio.pitch), and the
pitch_drive preset's render speed and quality with each.

On a seeded ``pitch_drive`` take (scripts/make_datasets.py, ``--seconds`` long, ``--seed``):

- ``pyin_seconds`` / ``fast_seconds``: the pitch key (``conditioning.pitch_track``, hop of the
  preset) with ``tracker="pyin"`` and ``"fast"``, best of ``--repeats`` after one warm-up;
  ``fast_first_call_seconds`` is the fast tracker's first call in this process (numba cache
  load or compile).
- ``range_agreement_voiced_pct`` / ``range_agreement_all_pct``: frames whose range (the
  preset's edges, ``ranges.range_index``) is the same with both keys, over the frames the pyin
  track calls voiced (eroded) and over all frames; ``track_agreement_pct``: tracker frames with
  the same voicing and f0 bin.
- ``render_seconds``, ``render_rtf``: ``render(preset chain, dry)`` in-process (key included;
  ``render_rtf`` = audio seconds / render seconds); ``render_without_key_seconds`` with the key
  precomputed (the render proper).
- ``esr_fast`` / ``esr_pyin`` and ``esr_change_pct``: ESR of the preset against the take's wet
  signal with each key, on the pair's default take (``--esr-seconds``, default seed).
- ``stream_agreement_pct``: frames where ``KeySpec.stream`` (chunks of ``--chunk`` samples)
  gives the whole-take key's range; ``stream_equal``: stitched == whole bit for bit.

Usage: python scripts/bench_pitch.py [--seconds 15] [--seed 1] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--esr-seconds", type=float, default=32.0)
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    from make_datasets import make_pair

    from lactose_audio import conditioning, pitch, pitch_key
    from lactose_audio.losses import esr
    from lactose_audio.presets import load_preset
    from lactose_audio.ranges import range_index

    effect = load_preset(REPO / "presets" / "pitch_drive.json")
    chain = effect.chain if hasattr(effect, "chain") else effect
    stage = next(s for s in chain.stages if s.keyed and s.key.kind == "pitch")
    spec, edges, hop = stage.key, stage.edges, chain.hop_size

    dry, _, sr = make_pair("pitch_drive", seconds=args.seconds, seed=args.seed)

    def key(tracker: str) -> np.ndarray:
        return conditioning.pitch_track(dry, sr, hop, spec.fmin_hz, spec.fmax_hz, tracker)

    t0 = time.perf_counter()
    fast_key = key("fast")
    t_first = time.perf_counter() - t0
    t_fast = best_of(lambda: key("fast"), args.repeats)
    t_pyin = best_of(lambda: key("pyin"), max(1, args.repeats // 2))
    pyin_key = key("pyin")
    same = range_index(fast_key, edges) == range_index(pyin_key, edges)

    y16 = pitch._resample(dry, sr)
    f_fast, v_fast = pitch.track(y16, spec.fmin_hz, spec.fmax_hz)
    f_ref, v_ref = pitch.pyin_track(y16, spec.fmin_hz, spec.fmax_hz)
    track_same = (v_fast == v_ref) & (~v_ref | (f_fast == f_ref))
    # output frames the reference calls voiced: the nearest tracker frame, eroded
    frame_length = pitch.frame_length_for(pitch.snap_fmin(spec.fmin_hz))
    eroded = pitch_key._erode(v_ref, frame_length // (2 * pitch.PITCH_HOP))
    centre = pitch_key.frame_times(0, fast_key.size, hop, sr)
    nearest = np.minimum(
        np.rint(centre / (pitch.PITCH_HOP / pitch.PITCH_SAMPLE_RATE)), eroded.size - 1
    ).astype(int)
    voiced_frames = eroded[nearest]

    from lactose_audio.render import render

    t_render = best_of(lambda: render(chain, dry, sr), args.repeats)
    keys = {repr(sorted(spec.to_dict().items())): fast_key}
    real_track = conditioning.pitch_track
    conditioning.pitch_track = lambda *a, **k: keys[repr(sorted(spec.to_dict().items()))]
    try:
        t_render_nokey = best_of(lambda: render(chain, dry, sr), args.repeats)
    finally:
        conditioning.pitch_track = real_track

    # quality: the preset's ESR on the pair's default take, fast key vs pyin key
    dry_e, wet_e, sr_e = make_pair("pitch_drive", seconds=args.esr_seconds)
    esr_fast = esr(wet_e, render(chain, dry_e, sr_e))
    conditioning.pitch_track = partial(real_track, tracker="pyin")
    try:
        esr_pyin = esr(wet_e, render(chain, dry_e, sr_e))
    finally:
        conditioning.pitch_track = real_track

    # streaming: chunked key vs whole key
    stream = spec.stream(sr, hop)
    parts = [stream.process(dry[i : i + args.chunk]) for i in range(0, dry.size, args.chunk)]
    stitched = np.concatenate(parts + [stream.flush()])
    stream_same = range_index(stitched, edges) == range_index(fast_key, edges)

    result = {
        "seconds_audio": args.seconds,
        "seed": args.seed,
        "pyin_seconds": t_pyin,
        "fast_seconds": t_fast,
        "speedup": t_pyin / t_fast,
        "fast_key_rtf": args.seconds / t_fast,
        "fast_first_call_seconds": t_first,
        "range_agreement_voiced_pct": 100.0 * float(same[voiced_frames].mean()),
        "range_agreement_all_pct": 100.0 * float(same.mean()),
        "track_agreement_pct": 100.0 * float(track_same.mean()),
        "n_frames": int(fast_key.size),
        "n_voiced_frames": int(voiced_frames.sum()),
        "render_seconds": t_render,
        "render_rtf": args.seconds / t_render,
        "render_without_key_seconds": t_render_nokey,
        "esr_seconds_audio": args.esr_seconds,
        "esr_fast": esr_fast,
        "esr_pyin": esr_pyin,
        "esr_change_pct": 100.0 * (esr_fast - esr_pyin) / esr_pyin,
        "stream_chunk": args.chunk,
        "stream_lookahead_seconds": stream.lookahead_seconds,
        "stream_agreement_pct": 100.0 * float(stream_same.mean()),
        "stream_equal": bool(np.array_equal(stitched, fast_key)),
        "timing": f"best of {args.repeats} after 1 warm-up (pyin: {max(1, args.repeats // 2)})",
    }
    if args.json:
        print(json.dumps(result))
        return
    rows = [
        ("pitch key, librosa.pyin", f"{t_pyin * 1e3:9.1f} ms", f"{args.seconds / t_pyin:8.0f}x"),
        ("pitch key, fast tracker", f"{t_fast * 1e3:9.1f} ms", f"{args.seconds / t_fast:8.0f}x"),
        ("fast tracker, first call", f"{t_first * 1e3:9.1f} ms", ""),
        ("render, key included", f"{t_render * 1e3:9.1f} ms", f"{args.seconds / t_render:8.0f}x"),
        (
            "render, key precomputed",
            f"{t_render_nokey * 1e3:9.1f} ms",
            f"{args.seconds / t_render_nokey:8.0f}x",
        ),
    ]
    print(f"pitch_drive take: {args.seconds:g} s, seed {args.seed}, hop {hop}")
    print(f"{'':28s}{'time':>12s}{'x real time':>12s}")
    for name, t, x in rows:
        print(f"{name:28s}{t:>12s}{x:>12s}")
    print(f"speed-up fast vs pyin: {t_pyin / t_fast:.0f}x")
    print(
        f"same range: {result['range_agreement_voiced_pct']:.2f} % of voiced frames, "
        f"{result['range_agreement_all_pct']:.2f} % of all; same track: "
        f"{result['track_agreement_pct']:.2f} %"
    )
    print(
        f"ESR ({args.esr_seconds:g} s default take): fast {esr_fast:.5f}, pyin {esr_pyin:.5f} "
        f"({result['esr_change_pct']:+.2f} %)"
    )
    print(
        f"stream (chunks of {args.chunk}, look-ahead {stream.lookahead_seconds:g} s): "
        f"{result['stream_agreement_pct']:.2f} % same range, bit-equal: "
        f"{result['stream_equal']}"
    )


if __name__ == "__main__":
    main()
