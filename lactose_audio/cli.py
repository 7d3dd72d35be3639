"""The ``lactose`` command: parses arguments and calls the library.

Exit codes (DESIGN §7): 0 success; 2 bad input or usage (one line on stderr, no
traceback); 1 unexpected internal error; 130 interrupted. Nothing heavy is imported
at module level: TensorFlow is imported only by the commands that need it, so that
``lactose --help`` returns quickly.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Sequence

import click

from lactose_audio import __version__
from lactose_audio.errors import DataError, LactoseError, TrainingInterrupted
from lactose_audio.schema import MAX_RANGES
from lactose_audio.train_config import KEY_KINDS as KEYS


def _finite(ctx, param, value):
    """Option callback: refuse NaN (which passes click's range checks)."""
    if value is not None and value != value:
        raise click.BadParameter(f"{value} is not a number", ctx=ctx, param=param)
    return value


def _parse_edges(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated numbers like -40,-20,-10, got {text!r}",
            param_hint="--edges",
        ) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="lactose")
def cli() -> None:
    """Learn interpretable, range-conditioned (LACTOSE) audio effects from dry/wet recordings.

    \b
    Typical use:
      lactose train dry.wav wet.wav --out my_drive.json
      lactose render my_drive.json guitar_di.wav out.wav
      lactose eval my_drive.json dry.wav wet.wav
      lactose inspect my_drive.json --plot my_drive.png
      lactose export my_drive.json --out my_drive.dsp
      lactose presets
    """


@cli.command()
@click.argument("dry", type=click.Path(dir_okay=True))
@click.argument("wet", type=click.Path(dir_okay=False), required=False)
@click.option(
    "--capture",
    "captures",
    nargs=2,
    multiple=True,
    metavar="WET NAME=VALUE[,NAME=VALUE]",
    help="A knob capture: WET recorded from DRY at these control settings (repeat per "
    "setting; or DRY is a folder with dry.wav and captures.csv). With one control, --chain "
    "auto (the default) searches the structure on the middle capture.",
)
@click.option(
    "--holdout",
    multiple=True,
    metavar="NAME=VALUE",
    help="Leave the capture at these settings out of training; report its interpolated ESR.",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Preset file to write (JSON).",
)
@click.option(
    "--chain",
    "chain_spec",
    default=None,
    help="Chain spec, e.g. 'highpass>gain>tanh>lowpass>highpass'; 'auto' (default) searches "
    "a family of drive structures; 'default' is gain>tanh>lowpass>highpass.",
)
@click.option(
    "--key",
    type=click.Choice((*KEYS, "auto")),
    default=None,
    help="What selects the range: none, sample, amplitude (dBFS), pitch (MIDI) or auto "
    "(default: none, amplitude or pitch, whichever validates clearly best; with --capture: "
    "none, the knob selects each setting's row; a key with --capture makes 2-D banks, one row "
    "per setting and range; auto keeps one only if clearly better than the knob alone).",
)
@click.option(
    "--ranges",
    "n_ranges",
    type=click.IntRange(1, MAX_RANGES),
    default=None,
    help="Number of ranges; edges from quantiles of the training key.",
)
@click.option("--edges", default=None, help="Explicit inner edges, e.g. -40,-25,-12 (key unit).")
@click.option(
    "--budget-seconds",
    type=click.FloatRange(min=0, min_open=True),
    callback=_finite,
    default=None,
    help="Wall-clock training budget in seconds.",
)
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Maximum training steps.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write PNG plots of the training to this folder.",
)
@click.option("--resume", is_flag=True, help="Continue from the checkpoint next to --out.")
@click.option(
    "--channel",
    type=click.IntRange(min=0),
    default=None,
    help="Channel to use from multi-channel files (0-based).",
)
@click.option("--resample", is_flag=True, help="Resample the wet file to the dry file's rate.")
@click.option(
    "--latency",
    type=int,
    default=None,
    help="Latency of wet vs dry in samples (default: found by cross-correlation).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the result as one JSON object (no bar)."
)
def train(
    dry,
    wet,
    captures,
    holdout,
    out,
    chain_spec,
    key,
    n_ranges,
    edges,
    budget_seconds,
    steps,
    seed,
    report_dir,
    resume,
    channel,
    resample,
    latency,
    quiet,
    as_json,
) -> None:
    """Learn an effect from DRY and WET recordings and write a preset.

    DRY may also be a folder of pairs (*_dry.wav/*_wet.wav, or NAM's input.wav/output.wav);
    then WET is omitted.

    \b
    Example:
      lactose train dry.wav wet.wav --out my_drive.json --key amplitude --ranges 8 \\
          --budget-seconds 120 --report my_drive_report
    """
    if n_ranges is not None and edges is not None:
        raise click.UsageError("give either --ranges or --edges, not both")
    from lactose_audio.training import TrainConfig, train_from_files

    knobs = bool(captures) or (
        os.path.isdir(dry) and os.path.isfile(os.path.join(dry, "captures.csv"))
    )
    if knobs and wet is not None:
        raise click.UsageError("give WET files with --capture WET NAME=VALUE, not as WET")
    if holdout and not knobs:
        raise click.UsageError("--holdout needs knob captures (--capture)")

    config = TrainConfig(
        chain_spec=chain_spec,
        key=key,
        n_ranges=n_ranges,
        edges=_parse_edges(edges),
        budget_seconds=budget_seconds,
        steps=steps,
        seed=seed,
    )
    options = dict(
        report_dir=report_dir,
        resume=resume,
        channel=channel,
        resample=resample,
        latency=latency,
        progress=not (quiet or as_json),
    )
    if knobs:
        from lactose_audio.captures import parse_controls, train_captures

        listed = [(w, parse_controls(c)) for w, c in captures] or None
        points = [parse_controls(h) for h in holdout]
        result = train_captures(dry, listed, out, config, holdout=points, **options)
    else:
        result = train_from_files(dry, wet, out, config, **options)
    if as_json:
        document = result.to_dict()
        for name in ("captures", "holdout"):
            if name in result.effect.training:
                document[name] = result.effect.training[name]
        click.echo(json.dumps(document))
    else:
        click.echo(result.summary())
        for row in result.effect.training.get("captures", []):
            click.echo(
                f"  {_point(row['controls'])}: validation ESR {row['validation_esr']:.5f}, "
                f"latency {row['latency_samples']} samples"
            )
        for row in result.effect.training.get("holdout", []):
            click.echo(f"  held out {_point(row['controls'])}: interpolated ESR {row['esr']:.5f}")


def _point(controls: dict) -> str:
    return ",".join(f"{k}={v:g}" for k, v in controls.items())


@cli.command()
@click.argument("preset")
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.argument("output", type=click.Path())
@click.option(
    "--mix",
    type=click.FloatRange(0.0, 1.0),
    callback=_finite,
    default=1.0,
    show_default=True,
    help="Dry/wet mix: 0 is the input, 1 the effect.",
)
@click.option(
    "--channel",
    type=click.IntRange(min=0),
    default=None,
    help="Channel to use from a multi-channel input (0-based).",
)
@click.option(
    "--subtype",
    default=None,
    type=click.Choice(["FLOAT", "PCM_16", "PCM_24", "PCM_32"], case_sensitive=False),
    help="Output sample format (default: 32-bit float; 24-bit for FLAC); integer formats "
    "clip above 0 dBFS (with a warning).",
)
@click.option(
    "--engine",
    type=click.Choice(["iir", "graph"]),
    default="iir",
    show_default=True,
    help="iir: exact recursive filters (fast); graph: exactly the training graph.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Folder rendering: processes rendering at once (default 1: this one).",
)
@click.option(
    "--pattern",
    default=None,
    help="Folder rendering: files to render, searched recursively (default '*.wav').",
)
@click.option(
    "--overwrite", is_flag=True, help="Folder rendering: replace outputs that already exist."
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="NAME=VALUE",
    help="A knob's value (repeat per control), between the captured settings.",
)
def render(
    preset, input_path, output, mix, channel, subtype, engine, jobs, pattern, overwrite, settings
) -> None:
    """Process INPUT through PRESET (a file or a shipped preset's name) into OUTPUT.

    INPUT may be a folder: every file matching --pattern under it is rendered into the
    folder OUTPUT, mirroring the tree; existing outputs are kept unless --overwrite; a file
    that fails is reported at the end without stopping the others (exit code 2).

    \b
    Example:
      lactose render my_drive.json guitar_di.wav out.wav --mix 0.8
      lactose render my_drive.json takes/ rendered/ --jobs 2
      lactose render knob_drive.json guitar_di.wav out.wav --set gain=3.7
    """
    subtype = subtype.upper() if subtype else None
    controls = _knob_settings(settings)
    if os.path.isdir(input_path):
        _render_folder(
            preset,
            input_path,
            output,
            mix,
            channel,
            subtype,
            engine,
            jobs,
            pattern,
            overwrite,
            controls,
        )
        return
    given = [
        n for n, v in (("--jobs", jobs), ("--pattern", pattern), ("--overwrite", overwrite)) if v
    ]
    if given:
        raise click.UsageError(
            f"{', '.join(given)}: only for folder rendering, and {input_path} is not a folder"
        )
    from lactose_audio.workflows import render_file

    click.echo(
        render_file(
            preset,
            input_path,
            output,
            mix=mix,
            channel=channel,
            subtype=subtype,
            engine=engine,
            controls=controls,
        )
    )


def _render_folder(
    preset, in_dir, out_dir, mix, channel, subtype, engine, jobs, pattern, overwrite, controls
):
    from lactose_audio.batch import DEFAULT_PATTERN, render_files

    executor = None
    if jobs is not None and jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from lactose_audio._process import skip_teardown_at_exit

        # jobs - 1 workers, and this process renders too (work_here). On Linux the workers are
        # forked (they load the kernels in ~10 ms while this process renders its first files;
        # ~0.5 s each under spawn); this path never imports TensorFlow, and numba's kernels
        # run no threads. Elsewhere (and if TensorFlow is loaded, whose forked copy can hang)
        # spawn.
        fork = sys.platform.startswith("linux") and "tensorflow" not in sys.modules
        executor = ProcessPoolExecutor(
            jobs - 1,
            mp_context=multiprocessing.get_context("fork" if fork else "spawn"),
            initializer=skip_teardown_at_exit,
        )
    try:
        result = render_files(
            preset,
            in_dir,
            out_dir,
            executor,
            pattern=pattern or DEFAULT_PATTERN,
            mix=mix,
            channel=channel,
            subtype=subtype,
            engine=engine,
            overwrite=overwrite,
            progress=None,
            controls=controls,
            work_here=executor is not None,
        )
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    if not (result.written or result.skipped or result.failed):
        raise DataError(f"{in_dir}: no files match {pattern or DEFAULT_PATTERN!r} (see --pattern)")
    click.echo(result.summary())
    for _, problem in result.failed:
        click.echo(f"lactose: error: {problem}", err=True)
    if result.failed:
        raise click.exceptions.Exit(2)


def _knob_settings(settings: tuple[str, ...]) -> dict[str, float]:
    """``--set NAME=VALUE`` options as ``{name: value}`` (a name given twice: usage error)."""
    controls: dict[str, float] = {}
    if settings:
        from lactose_audio.captures import parse_controls

        for item in settings:
            for name, value in parse_controls(item).items():
                if name in controls:
                    raise click.UsageError(f"--set {name} is given twice")
                controls[name] = value
    return controls


@cli.command(name="eval")
@click.argument("preset")
@click.argument("dry", type=click.Path(dir_okay=False))
@click.argument("wet", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--channel", type=click.IntRange(min=0), default=None)
@click.option("--resample", is_flag=True, help="Resample the wet file to the dry file's rate.")
@click.option("--latency", type=int, default=None, help="Latency of wet vs dry in samples.")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="NAME=VALUE",
    help="A knob's value (repeat per control): the setting WET was recorded at.",
)
def eval_cmd(preset, dry, wet, as_json, channel, resample, latency, settings) -> None:
    """Measure how well PRESET turns DRY into WET (ESR, pre-emphasis ESR, MR-STFT, SNR).

    \b
    Example:
      lactose eval my_drive.json dry.wav wet.wav --json
      lactose eval knob_drive.json dry.wav wet_g5.wav --set gain=5
    """
    from lactose_audio.workflows import evaluate_files

    metrics = evaluate_files(
        preset,
        dry,
        wet,
        channel=channel,
        resample=resample,
        latency=latency,
        controls=_knob_settings(settings),
    )
    if as_json:
        click.echo(json.dumps(metrics, sort_keys=True))
    else:
        for name, value in metrics.items():
            click.echo(f"{name:>16}: {value}")


@cli.command()
@click.argument("preset")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Draw transfer curves and filter responses per range to this PNG.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the preset's ranges as JSON.")
def inspect(preset, plot, as_json) -> None:
    """Show a preset's ranges x parameters (physical units) and data coverage.

    \b
    Example:
      lactose inspect my_drive.json --plot my_drive.png
    """
    from lactose_audio.workflows import inspect_preset

    click.echo(inspect_preset(preset, plot=plot, as_json=as_json))


@cli.command()
@click.argument("preset")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(),
    help="The Faust program to write (FILE.dsp), or the folder of a plugin build (--format).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("dsp", "lv2", "vst3", "clap", "jack")),
    default="dsp",
    show_default=True,
    help="dsp: the Faust program; lv2|vst3|clap|jack: build a plugin with Faust's toolchain.",
)
@click.option(
    "--sample-rate",
    "sample_rates",
    type=int,
    multiple=True,
    help="Host rate(s), Hz (1000..768000), a fir_eq's taps are designed for (repeat the "
    "option; default 44100, 48000 and the preset's rate); at other rates the plugin mutes "
    "that filter. Other blocks run at any rate.",
)
def export(preset, out, fmt, sample_rates) -> None:
    """Export PRESET as a real-time plugin: a Faust program, or a built LV2/VST3/CLAP/JACK.

    The program does what `lactose render` does, causally (latency: one frame when a key is
    per frame), with mix and output sliders. Pitch-keyed presets are refused, and keyed
    fir_eq stages (a FIR changing every frame).

    \b
    Example:
      lactose export my_drive.json --out my_drive.dsp
      lactose export my_drive.json --format lv2 --out plugins/
      lactose export my_eq.json --out my_eq.dsp --sample-rate 96000
    """
    from lactose_audio.plugin import export_preset

    click.echo(export_preset(preset, out, fmt, sample_rates=tuple(sample_rates) or None))


@cli.command()
def presets() -> None:
    """List the shipped presets with a one-line description.

    \b
    Example:
      lactose presets
      lactose render tanh_drive guitar_di.wav out.wav
    """
    from lactose_audio.presets import list_presets

    for name, description in list_presets():
        click.echo(f"{name:<16} {description}")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one ``lactose: warning: ...`` line on stderr (no source file and line)."""
    text = str(message).splitlines()[0] if str(message) else category.__name__
    click.echo(f"lactose: warning: {text}", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (0 ok, 2 bad input, 1 internal error).

    Called without ``argv`` (the ``lactose`` program, ``python -m lactose_audio``) it ends the
    process with that code right away, skipping the interpreter's teardown
    (:func:`lactose_audio._process.exit_process`); with ``argv`` it returns the code.
    """
    with warnings.catch_warnings():  # restores the previous formatter when done
        warnings.showwarning = _show_warning
        code = _run(argv)
    if argv is None:
        from lactose_audio._process import exit_process

        exit_process(code)
    return code


def _run(argv: Sequence[str] | None) -> int:
    try:
        code = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="lactose",
            standalone_mode=False,
        )
        if isinstance(code, int):  # a click.exceptions.Exit raised by a command
            return code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:  # one line, like every other refusal
        where = exc.ctx.command_path if exc.ctx is not None else "lactose"
        message = " ".join(exc.format_message().split())
        click.echo(f"lactose: error: {message} (see '{where} --help')", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"lactose: error: {' '.join(exc.format_message().split())}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("lactose: interrupted", err=True)
        return 130
    except TrainingInterrupted as exc:
        click.echo(f"lactose: {exc}", err=True)
        return 130
    except LactoseError as exc:
        click.echo(f"lactose: error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("lactose: interrupted", err=True)
        return 130
    except Exception as exc:  # a bug: say so, keep the traceback behind a flag
        if os.environ.get("LACTOSE_DEBUG"):
            raise
        click.echo(
            f"lactose: internal error: {type(exc).__name__}: {exc} "
            "(set LACTOSE_DEBUG=1 for the traceback)",
            err=True,
        )
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
