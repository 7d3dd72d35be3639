"""Rendering, eval, inspect, presets and ``load_preset(p)(x, sr)`` never import TensorFlow.

Each runs in a fresh interpreter (a test process has TensorFlow loaded already), which then
reports whether ``tensorflow`` is in ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
PRESET = "drive_tone"
SR = 44100

PROBE = """
import json, sys
{body}
print("@@" + json.dumps("tensorflow" in sys.modules))
"""

CLI = """
from lactose_audio.cli import main
code = main({argv!r})
assert code in (0, None), code
"""


def _run(body: str) -> bool:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(body=body)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("@@")][-1]
    return json.loads(line[2:])


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("notf")
    dry = (0.3 * rng.standard_normal(SR)).astype(np.float32)
    sf.write(folder / "dry.wav", dry, SR, subtype="FLOAT")
    sf.write(folder / "wet.wav", np.tanh(3 * dry), SR, subtype="FLOAT")
    return folder


@pytest.mark.parametrize(
    "argv",
    [
        ["render", PRESET, "{d}/dry.wav", "{d}/out.wav"],
        ["render", "pitch_drive", "{d}/dry.wav", "{d}/out_pitch.wav"],
        ["eval", PRESET, "{d}/dry.wav", "{d}/wet.wav", "--json"],
        ["inspect", PRESET, "--json"],
        ["presets"],
        ["export", PRESET, "--out", "{d}/fx.dsp"],
    ],
    ids=["render", "render-pitch", "eval", "inspect", "presets", "export"],
)
def test_cli_commands_do_not_import_tensorflow(wavs, argv):
    argv = [a.format(d=wavs) for a in argv]
    assert _run(CLI.format(argv=argv)) is False


def test_load_preset_call_does_not_import_tensorflow():
    body = f"""
import numpy as np
from lactose_audio import load_preset
x = np.random.default_rng(0).standard_normal({SR}).astype(np.float32) * 0.3
y = load_preset({PRESET!r})(x, {SR})
assert y.shape == x.shape and np.all(np.isfinite(y))
"""
    assert _run(body) is False


def test_probe_sees_tensorflow_when_it_is_imported():
    """The probe itself can tell (the graph engine imports TensorFlow)."""
    body = f"""
import numpy as np
from lactose_audio import load_preset
from lactose_audio.render import render
x = np.zeros(2048, np.float32)
render(load_preset({PRESET!r}).chain, x, {SR}, engine="graph")
"""
    assert _run(body) is True


def test_mr_stft_numpy_equals_ddsp_spectral_loss():
    """The numpy MR-STFT of ``lactose eval`` against the oracle, ddsp's SpectralLoss."""
    from lactose_audio._tf import tf
    from lactose_audio.losses import DEFAULT_FFT_SIZES, mr_stft_distance, spectral_loss

    rng = np.random.default_rng(3)
    target = rng.standard_normal((2, 12345)).astype(np.float32)
    prediction = (target + 0.2 * rng.standard_normal(target.shape)).astype(np.float32)
    ours = mr_stft_distance(target, prediction)
    ref = float(spectral_loss(DEFAULT_FFT_SIZES)(tf.constant(target), tf.constant(prediction)))
    assert abs(ours - ref) <= 1e-5 * ref


@pytest.mark.parametrize(
    "argv,code,stream,text",
    [
        (["presets"], 0, "stdout", "drive_tone"),
        (["inspect", "no_such_preset"], 2, "stderr", "no_such_preset"),
    ],
)
def test_program_exit_code_and_output_survive_the_fast_exit(argv, code, stream, text):
    """``python -m lactose_audio`` ends without interpreter teardown (``_process``): the exit
    code and everything printed (stdout piped, so block-buffered) still arrive."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "lactose_audio", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == code
    assert text in getattr(done, stream)


def test_knob_render_does_not_import_tensorflow(wavs):
    """A preset with a control key, rendered with --set and streamed with set()."""
    body = f"""
import numpy as np
from lactose_audio.chain_spec import ControlKey
from lactose_audio.chains import Chain
from lactose_audio.presets import Effect, save_preset
from lactose_audio.render import RenderStream
chain = Chain.from_spec("tanh>lowpass", key=ControlKey("gain", (0.0, 10.0)))
cover = [{{"counts": [1, 1], "flagged": [False, False]}}] * 2
save_preset(Effect(chain=chain, name="knob", coverage=cover), "{wavs}/knob.json")
from lactose_audio.cli import main
argv = ["render", "{wavs}/knob.json", "{wavs}/dry.wav", "{wavs}/k.wav", "--set", "gain=2"]
assert main(argv) == 0
stream = RenderStream(chain, {SR}, controls={{"gain": 1.0}})
stream.process(np.zeros(3000, np.float32))
stream.set(gain=9.0)
stream.process(np.ones(3000, np.float32))
"""
    assert _run(body) is False


@pytest.mark.parametrize("daemon,torn_down", [(True, False), (False, True)])
def test_fast_exit_ignores_daemon_threads(daemon, torn_down):
    """A daemon thread (tqdm's progress-bar monitor) does not send the program back to the
    interpreter's teardown (~0.3-1 s with numba loaded); a running non-daemon thread does,
    so its work is not cut short. Teardown is seen by an object whose ``__del__`` prints."""
    body = f"""
import sys, threading, time
from lactose_audio._process import exit_process
class Witness:
    def __del__(self):
        sys.stderr.write("torn down\\n")
witness = Witness()
threading.Thread(target=time.sleep, args=(0.2,), daemon={daemon}).start()
exit_process(3)
"""
    done = subprocess.run(
        [sys.executable, "-c", body],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=300,
    )
    assert done.returncode == 3
    assert ("torn down" in done.stderr) is torn_down
