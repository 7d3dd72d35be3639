"""Export benchmark: the compiled Faust program vs ``lactose render`` and pedalboard.

Fidelity: every shipped preset that exports (pitch-keyed ones are refused) is exported,
compiled in-process by DawDreamer and run on 10 s of seeded guitar-like plucks at 44.1 kHz;
``max_esr_vs_render`` is the largest ESR against ``lactose render`` (the numpy renderer), the
plugin's output shifted by its declared latency.

Speed: the default-ish chain of ``scripts/bench_render.py`` (gain > tanh > lowpass > highpass,
8 amplitude ranges, edges fitted, every range its own parameters) on 60 s of 44.1 kHz audio:
the compiled program rendered by DawDreamer (host block 512, compile excluded, the host's own
overhead included) as x real time (``plugin_rtf``, bar >= 500); ``plugin_over_render`` and
``plugin_over_pedalboard`` are its speed over ``lactose render``'s in-process time and over
pedalboard's comparable chain (Gain, Distortion, LowpassFilter, HighpassFilter), all three
timed in interleaved rounds in this one process (best of ``--repeats`` after a warm-up).

``fir_eq``: an unkeyed ``fir_eq`` after a drive, exported for 44.1 and 48 kHz (a direct-form
FIR of the renderer's 4132 taps at 44.1 kHz): its ESR against ``lactose render``, its compile
seconds and its speed; keyed ``fir_eq`` stages are refused by ``lactose export``.

Usage: python scripts/bench_export.py [--seconds 60] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_render import SR, bench_chain, best_interleaved, guitar_like  # noqa: E402


def esr(y: np.ndarray, ref: np.ndarray) -> float:
    """ESR of ``y`` against the reference ``ref`` (:func:`lactose_audio.losses.esr`)."""
    from lactose_audio.losses import esr as esr_of

    return esr_of(ref, y)


def fidelity(seconds: float, speed_audio: np.ndarray) -> tuple[dict, dict]:
    """ESR of each exportable shipped preset's plugin vs ``lactose render`` (on ``seconds``
    of audio), and its speed (x real time, best of 3) on ``speed_audio``."""
    from lactose_audio.errors import ExportError
    from lactose_audio.faust import export_faust
    from lactose_audio.plugin import FaustHost, render_faust
    from lactose_audio.presets import SHIPPED_DIR, load_preset
    from lactose_audio.render import render

    out, speed = {}, {}
    for path in sorted(SHIPPED_DIR.glob("*.json")):
        effect = load_preset(path)
        try:
            code = export_faust(effect)
        except ExportError:
            continue
        latency = int(code.split('latency_samples "', 1)[1].split('"', 1)[0])
        hop = effect.chain.hop_size
        audio = guitar_like(seconds, seed=len(out))
        audio = audio[: audio.size // hop * hop]  # whole frames (see lactose_audio.faust)
        ref = render(effect.chain, audio, SR)
        y = render_faust(code, audio, SR, n_samples=audio.size + latency)[latency:]
        out[path.stem] = esr(y, ref)
        host = FaustHost(code, SR)
        host.load(speed_audio)
        best = min(_timed(host.run) for _ in range(4))
        speed[path.stem] = speed_audio.size / SR / best
    return out, speed


def fir_eq_case(seconds: float) -> dict:
    """An unkeyed ``fir_eq`` after a drive (``tanh > fir_eq``, seeded band gains within
    +-12 dB), exported for 44.1 and 48 kHz: ESR vs ``lactose render`` at 44.1 kHz on
    ``seconds`` of audio, the program's compile seconds and its speed (x real time)."""
    from lactose_audio.chains import Chain, Stage
    from lactose_audio.faust import export_faust
    from lactose_audio.plugin import FaustHost
    from lactose_audio.render import render

    eq = Stage("fir_eq")
    eq.set_physical(np.random.default_rng(5).uniform(-12.0, 12.0, (1, eq.block.n_params)))
    chain = Chain([Stage("tanh"), eq], hop_size=512)
    code = export_faust(chain, sample_rates=(44100, 48000))
    audio = guitar_like(seconds, seed=99)
    audio = audio[: audio.size // 512 * 512]
    t0 = time.perf_counter()
    host = FaustHost(code, SR)
    compile_seconds = time.perf_counter() - t0
    host.load(audio)
    y = host.run()
    run_seconds = min(_timed(host.run) for _ in range(3))
    return {
        "esr_vs_render": esr(y, render(chain, audio, SR)),
        "compile_seconds": round(compile_seconds, 1),
        "plugin_rtf": audio.size / SR / run_seconds,
    }


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    import pedalboard

    from lactose_audio.faust import export_faust
    from lactose_audio.plugin import FaustHost
    from lactose_audio.render import render

    audio = guitar_like(args.seconds)
    per_preset, preset_rtf = fidelity(10.0, audio)
    fir_eq = fir_eq_case(10.0)
    chain = bench_chain(8, audio)
    code = export_faust(chain)
    t0 = time.perf_counter()
    host = FaustHost(code, SR, block_size=512)
    compile_seconds = time.perf_counter() - t0
    host.load(audio)
    board = pedalboard.Pedalboard(
        [
            pedalboard.Gain(gain_db=6.0),
            pedalboard.Distortion(drive_db=20.0),
            pedalboard.LowpassFilter(cutoff_frequency_hz=5000.0),
            pedalboard.HighpassFilter(cutoff_frequency_hz=80.0),
        ]
    )
    t_plugin, t_render, t_pb = best_interleaved(
        [host.run, lambda: render(chain, audio, SR), lambda: board(audio, SR)], args.repeats
    )
    result = {
        "seconds_audio": args.seconds,
        "max_esr_vs_render": max(per_preset.values()),
        "esr_vs_render": per_preset,
        "preset_plugin_rtf": preset_rtf,
        "plugin_seconds": t_plugin,
        "plugin_rtf": args.seconds / t_plugin,
        "render_seconds": t_render,
        "pedalboard_seconds": t_pb,
        "plugin_over_render": t_render / t_plugin,
        "plugin_over_pedalboard": t_pb / t_plugin,
        "compile_seconds": compile_seconds,
        "fir_eq": fir_eq,
        "timing": f"best of {args.repeats} interleaved rounds after 1 warm-up; host block 512",
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"audio: {args.seconds:g} s at {SR} Hz; {result['timing']}")
    for name, value in per_preset.items():
        print(f"  {name:<14} ESR vs lactose render {value:.2e}, {preset_rtf[name]:.0f}x real time")
    for label, seconds in (
        ("compiled Faust (DawDreamer)", t_plugin),
        ("lactose render", t_render),
        ("pedalboard chain", t_pb),
    ):
        print(f"{label:30s}{1e3 * seconds:10.1f} ms{args.seconds / seconds:10.0f}x real time")
    print(
        f"plugin over render {result['plugin_over_render']:.2f}x, over pedalboard "
        f"{result['plugin_over_pedalboard']:.2f}x; compile {compile_seconds:.2f} s"
    )
    print(
        f"tanh > fir_eq (unkeyed, 4132 taps at 44.1 kHz): ESR vs render "
        f"{fir_eq['esr_vs_render']:.2e}, compile {fir_eq['compile_seconds']:.0f} s, "
        f"{fir_eq['plugin_rtf']:.1f}x real time"
    )


if __name__ == "__main__":
    main()
