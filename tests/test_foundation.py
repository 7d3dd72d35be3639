"""The foundation: quiet imports, fast CLI start, the ddsp shim, errors → exit codes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import lactose_audio
from lactose_audio import cli
from lactose_audio.errors import DataError, DependencyError, LactoseError


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_import_does_not_load_tensorflow():
    proc = _run_python(
        "import sys, lactose_audio, lactose_audio.cli, lactose_audio.errors\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
        "assert 'ddsp' not in sys.modules, 'ddsp imported'\n"
        "print('ok')"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert proc.stderr == ""


def test_tensorflow_and_ddsp_import_quietly():
    proc = _run_python("from lactose_audio._ddsp import ddsp\nimport ddsp.losses\nprint('ok')")
    assert proc.returncode == 0, proc.stderr
    # No CUDA/cuDNN/absl registration lines, no warnings at all.
    assert proc.stderr == "", proc.stderr


def test_version_and_help_from_the_console_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "lactose_audio", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"lactose, version {lactose_audio.__version__}"
    proc = subprocess.run(
        [sys.executable, "-m", "lactose_audio", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    for command in ("train", "render", "eval", "inspect", "presets"):
        assert command in proc.stdout
    assert proc.stderr == ""


def test_every_command_has_help_with_an_example(capsys):
    for command in ("train", "render", "eval", "inspect", "presets"):
        assert cli.main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert "Example" in out and f"lactose {command}" in out


def test_usage_error_exits_2(capsys):
    assert cli.main(["render"]) == 2
    assert cli.main(["no-such-command"]) == 2


@pytest.fixture()
def command_raising():
    """Register a temporary `lactose boom` command that raises the given exception."""
    import click

    def add(exc: BaseException) -> None:
        def callback() -> None:
            raise exc

        cli.cli.add_command(click.Command("boom", callback=callback))

    yield add
    cli.cli.commands.pop("boom", None)


def test_lactose_error_becomes_one_line_and_exit_2(command_raising, capsys):
    command_raising(DataError("dry.wav: file not found"))
    assert cli.main(["boom"]) == 2
    assert capsys.readouterr().err == "lactose: error: dry.wav: file not found\n"


def test_unexpected_error_exits_1_without_traceback(command_raising, monkeypatch, capsys):
    command_raising(ZeroDivisionError("oops"))
    monkeypatch.delenv("LACTOSE_DEBUG", raising=False)
    assert cli.main(["boom"]) == 1
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError: oops" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_keyboard_interrupt_exits_130(command_raising, capsys):
    command_raising(KeyboardInterrupt())
    assert cli.main(["boom"]) == 130


def test_error_hierarchy():
    for cls in (
        lactose_audio.ParameterError,
        lactose_audio.DataError,
        lactose_audio.PresetError,
        DependencyError,
    ):
        assert issubclass(cls, LactoseError)
    assert issubclass(lactose_audio.ParameterError, ValueError)


# --- ddsp through our shim -----------------------------------------------------------------


@pytest.fixture(scope="module")
def ddsp_tf():
    from lactose_audio._ddsp import ddsp
    from lactose_audio._tf import tf

    return ddsp, tf


def test_spectral_loss_zero_for_identical_and_grows_with_gain_error(ddsp_tf):
    ddsp, tf = ddsp_tf
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((1, 16000)).astype(np.float32) * 0.1)
    loss = ddsp.losses.SpectralLoss(fft_sizes=(2048, 512, 128), mag_weight=1.0, logmag_weight=1.0)
    assert float(loss(x, x)) == 0.0
    values = [float(loss(x, x * g)) for g in (1.1, 1.5, 2.0, 4.0)]
    assert all(v > 0 for v in values)
    assert values == sorted(values), values


def test_frequency_filter_with_flat_unit_magnitude_is_identity(ddsp_tf):
    ddsp, tf = ddsp_tf
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 8192)).astype(np.float32)
    magnitudes = tf.ones([1, 8, 257])  # 8 frames, flat unit response
    y = ddsp.core.frequency_filter(tf.constant(x), magnitudes, window_size=256).numpy()
    # A flat unit magnitude is a (windowed) unit impulse, and 'same' padding compensates
    # the delay: identity to float32 precision (measured max error 7e-7).
    np.testing.assert_allclose(y, x, atol=1e-5)


def test_crepe_use_raises_clear_error(ddsp_tf):
    ddsp, tf = ddsp_tf
    from lactose_audio._ddsp import HAS_REAL_CREPE

    if HAS_REAL_CREPE:
        pytest.skip("a real crepe is installed and used")
    with pytest.raises(DependencyError, match="librosa"):
        ddsp.spectral_ops.compute_f0(np.zeros(16000, np.float32), frame_rate=250)


def test_real_crepe_is_not_shadowed(tmp_path):
    fake = tmp_path / "crepe"
    fake.mkdir()
    (fake / "__init__.py").write_text("REAL = True\n")
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        "from lactose_audio._ddsp import HAS_REAL_CREPE\n"
        "import crepe\n"
        "assert HAS_REAL_CREPE and crepe.REAL\n"
        "print('ok')"
    )
    proc = _run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_esr_is_one_formula_with_a_documented_silent_target():
    import math

    from lactose_audio.losses import RunningErrors, esr

    rng = np.random.default_rng(5)
    target = rng.standard_normal(1000)
    prediction = target + 0.1 * rng.standard_normal(1000)
    expected = np.sum((target - prediction) ** 2) / np.sum(target**2)
    assert esr(target, prediction) == pytest.approx(expected, rel=1e-12)
    silent = np.zeros(8)
    assert esr(silent, silent) == 0.0 and esr(silent, silent, eps=0.0) == 0.0
    assert esr(silent, silent + 1e-3) == pytest.approx(8e-6 / 1e-10)  # finite by default
    assert esr(silent, silent + 1e-3, eps=0.0) == math.inf  # what the plots print
    running = RunningErrors()
    for i in range(0, 1000, 300):
        running.update(target[i : i + 300], prediction[i : i + 300])
    assert running.metrics()["esr"] == pytest.approx(esr(target, prediction), rel=1e-12)
