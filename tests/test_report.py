"""Tests for lactose_audio.report: curve data against closed forms, PNGs, validation, atomicity."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import signal

from lactose_audio import report
from lactose_audio.chains import Chain, make_key
from lactose_audio.errors import DataError, ParameterError
from lactose_audio.presets import Effect

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SR = 44100
TANH_ROWS = [[0.0, 0.0, 0.0], [10.0, 0.0, -3.0], [24.0, 0.0, -12.0]]  # drive_db, bias, gain_db
LOWPASS_ROWS = [[300.0, 0.5], [1000.0, 1 / math.sqrt(2)], [6000.0, 1.7]]  # cutoff_hz, q


@pytest.fixture(scope="module")
def chain() -> Chain:
    chain = Chain.from_spec("gain>tanh>lowpass", key=make_key("amplitude"), n_ranges=3)
    chain.stages[0].set_physical([[-6.0], [0.0], [3.0]])
    chain.stages[1].set_physical(TANH_ROWS)
    chain.stages[2].set_physical(LOWPASS_ROWS)
    return chain


@pytest.fixture(scope="module")
def effect(chain: Chain) -> Effect:
    coverage = [{"counts": [3, 500, 700], "flagged": [True, False, False]} for _ in chain]
    return Effect(chain=chain, name="test drive", coverage=coverage)


def history(n: int = 60, boundary: int = 30) -> list[dict]:
    return [
        {
            "step": s,
            "seconds": 0.05 * s,
            "phase": "unconditioned" if s < boundary else "ranges",
            "loss": 1.0 / (s + 1),
            "val_esr": None if s % 10 else 0.3 / (s + 1) + (0.01 if s > 40 else 0.0),
        }
        for s in range(n)
    ]


def audio_pair(seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(int(seconds * SR)) / SR
    dry = 0.5 * np.sin(2 * np.pi * 220.0 * t)
    return np.tanh(3.0 * dry), np.tanh(2.5 * dry)


def read_png(path) -> np.ndarray:
    import matplotlib.image

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return matplotlib.image.imread(path)


def rbj_lowpass_sos(cutoff_hz: float, q: float, sample_rate: float) -> np.ndarray:
    """Audio EQ Cookbook lowpass, written independently of the package."""
    w0 = 2 * np.pi * cutoff_hz / sample_rate
    alpha = np.sin(w0) / (2 * q)
    b = np.array([(1 - np.cos(w0)) / 2, 1 - np.cos(w0), (1 - np.cos(w0)) / 2])
    a = np.array([1 + alpha, -2 * np.cos(w0), 1 - alpha])
    return np.concatenate([b / a[0], a / a[0]])[None]


# ---- curve data -------------------------------------------------------------------------------


def test_import_does_not_load_tensorflow_or_matplotlib():
    code = (
        "import sys, lactose_audio.report; "
        "bad = [m for m in ('tensorflow', 'matplotlib') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tanh_transfer_curves_match_closed_form(chain):
    x = np.linspace(-1.0, 1.0, 201)
    curves = report.transfer_curves(chain.stages[1], x)
    assert curves.shape == (3, 201)
    for row, (drive_db, _, gain_db) in zip(curves, TANH_ROWS, strict=True):
        expected = np.tanh(x * 10 ** (drive_db / 20)) * 10 ** (gain_db / 20)
        np.testing.assert_allclose(row, expected, rtol=1e-5, atol=1e-6)


def test_tanh_bias_and_gain_stage_curves():
    stage = Chain.from_spec("tanh").stages[0]
    stage.set_physical([6.0, 0.3, -2.0])
    x = np.linspace(-1.0, 1.0, 101)
    expected = (np.tanh(x * 10 ** (6 / 20) + 0.3) - np.tanh(0.3)) * 10 ** (-2 / 20)
    np.testing.assert_allclose(report.transfer_curves(stage, x)[0], expected, rtol=1e-5, atol=1e-6)
    gain = Chain.from_spec("gain", key=make_key("amplitude"), n_ranges=2).stages[0]
    gain.set_physical([[-6.0], [12.0]])
    np.testing.assert_allclose(
        report.transfer_curves(gain, x), [x * 10 ** (-6 / 20), x * 10 ** (12 / 20)], rtol=1e-5
    )


def test_lowpass_responses_match_sosfreqz(chain):
    freqs = np.geomspace(20.0, SR / 2 * 0.999, 300)
    responses = report.magnitude_responses(chain.stages[2], freqs, SR)
    assert responses.shape == (3, 300)
    for row, (cutoff_hz, q) in zip(responses, LOWPASS_ROWS, strict=True):
        _, h = signal.sosfreqz(rbj_lowpass_sos(cutoff_hz, q, SR), worN=freqs, fs=SR)
        expected = 20 * np.log10(np.abs(h))
        audible = expected > -100.0
        np.testing.assert_allclose(row[audible], expected[audible], atol=0.01)
    # q = 1/sqrt(2) is the 2nd-order Butterworth (both bilinear with prewarping).
    _, h = signal.sosfreqz(signal.butter(2, 1000.0, fs=SR, output="sos"), worN=freqs, fs=SR)
    np.testing.assert_allclose(responses[1], 20 * np.log10(np.abs(h)), atol=0.01)
    assert abs(np.interp(1000.0, freqs, responses[1]) + 3.0103) < 0.01  # -3 dB at cutoff


def test_curve_helpers_refuse_the_wrong_kind_of_stage(chain):
    with pytest.raises(ParameterError, match="linear filter"):
        report.transfer_curves(chain.stages[2], np.linspace(-1, 1, 5))
    with pytest.raises(ParameterError, match="not a linear filter"):
        report.magnitude_responses(chain.stages[1], [100.0], SR)
    with pytest.raises(ParameterError, match="Nyquist"):
        report.magnitude_responses(chain.stages[2], [30000.0], SR)


def test_range_labels_use_the_key_unit(chain):
    assert report.range_labels(chain.stages[0].edges) == [
        "< -40 dBFS",
        "-40..-20 dBFS",
        "≥ -20 dBFS",
    ]
    assert report.range_labels(Chain.from_spec("tanh").stages[0].edges) == ["all"]


# ---- figures ----------------------------------------------------------------------------------


def test_plot_effect_writes_png_with_panels_and_flagged_dashes(tmp_path, effect):
    path = report.plot_effect(effect, tmp_path / "effect.png")
    image = read_png(path)
    width, height = report.EFFECT_PANEL_IN
    expected = (round((2 * height + report.EFFECT_TITLE_IN) * report.DPI), 2 * width * report.DPI)
    assert image.shape[:2] == expected

    fig = report.effect_figure(effect)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == [
        f"{i}. {name}: keyed on amplitude (dBFS, frame rate), 3 ranges"
        for i, name in enumerate(("gain", "tanh", "lowpass"), start=1)
    ]
    for ax in axes:
        ranges = {line.get_gid(): line for line in ax.get_lines() if line.get_gid() != "identity"}
        assert set(ranges) == {"range-0-flagged", "range-1", "range-2"}
        assert ranges["range-0-flagged"].get_linestyle() == "--"
        assert ranges["range-1"].get_linestyle() == "-"
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "< -40 dBFS (flagged)" in legend and "-40..-20 dBFS" in legend
    # The plotted tanh data are the closed-form curves; the filter axis is log frequency.
    tanh_line = next(line for line in axes[1].get_lines() if line.get_gid() == "range-1")
    x = tanh_line.get_xdata()
    np.testing.assert_allclose(
        tanh_line.get_ydata(), np.tanh(x * 10**0.5) * 10 ** (-3 / 20), rtol=1e-5, atol=1e-6
    )
    assert axes[2].get_xscale() == "log"
    assert axes[2].get_xlim() == pytest.approx((20.0, SR / 2))


def test_plot_effect_many_ranges_and_sample_key(tmp_path):
    chain = Chain.from_spec("tanh", key=make_key("sample"), n_ranges=16)
    drives = np.linspace(0.0, 30.0, 16)
    chain.stages[0].set_physical(np.stack([drives, 0 * drives, 0 * drives], axis=1))
    fig = report.effect_figure(chain, sample_rate=48000)
    assert len(fig.axes) == 2  # the panel and its colorbar of range edges
    effective = next(line for line in fig.axes[0].get_lines() if line.get_gid() == "effective")
    x = effective.get_xdata()
    from lactose_audio.ranges import range_index

    drive = drives[range_index(x, chain.stages[0].edges)]
    np.testing.assert_allclose(effective.get_ydata(), np.tanh(x * 10 ** (drive / 20)), atol=1e-6)
    read_png(report.plot_effect(chain, tmp_path / "many.png"))


def test_mix_stage_is_drawn_as_its_values(tmp_path):
    """A dry/wet mix has no transfer curve of its own: one bar per range at its wet value."""
    chain = Chain.from_spec("tanh>mix", key=make_key("amplitude"), n_ranges=3)
    wets = np.array([0.2, 0.5, 0.9])
    chain.stages[1].set_physical(wets[:, None])
    with pytest.raises(ParameterError, match="no transfer curve"):
        report.transfer_curves(chain.stages[1], np.linspace(-1, 1, 5))
    fig = report.effect_figure(chain)
    bars = {p.get_gid(): p.get_height() for p in fig.axes[1].patches}
    assert bars == pytest.approx({f"range-{k}": w for k, w in enumerate(wets)})
    read_png(report.plot_effect(chain, tmp_path / "mix.png"))


def test_plot_effect_rejects_mismatched_coverage(tmp_path, chain):
    bad = Effect(chain=chain, coverage=[{"counts": [1, 1, 1], "flagged": [False, True]}] * 3)
    with pytest.raises(ParameterError, match="coverage\\[0\\].flagged"):
        report.plot_effect(bad, tmp_path / "x.png")
    with pytest.raises(ParameterError, match="coverage lists 1"):
        report.plot_effect(Effect(chain=chain, coverage=bad.coverage[:1]), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_plot_training_marks_phase_boundary_and_best(tmp_path):
    image = read_png(report.plot_training(history(), tmp_path / "training.png"))
    assert image.shape[:2] == (
        report.TRAINING_SIZE_IN[1] * report.DPI,
        report.TRAINING_SIZE_IN[0] * report.DPI,
    )
    fig = report.training_figure(list(reversed(history())))  # plotted in step order anyway
    ax_loss, ax_val = fig.axes
    assert ax_loss.get_yscale() == "log" and ax_val.get_yscale() == "log"
    loss = next(line for line in ax_loss.get_lines() if line.get_gid() == "loss")
    np.testing.assert_array_equal(loss.get_xdata(), np.arange(60))
    for ax in (ax_loss, ax_val):
        boundary = next(line for line in ax.get_lines() if line.get_gid() == "phase_boundary")
        assert list(boundary.get_xdata()) == [30, 30]
    best = next(line for line in ax_val.get_lines() if line.get_gid() == "best_val_esr")
    assert list(best.get_xdata()) == [40] and best.get_ydata()[0] == pytest.approx(0.3 / 41)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([], "empty"),
        ({"step": 0}, "list of training records"),
        ([{"step": 0, "seconds": 0.0, "phase": "ranges"}], "missing loss"),
        ([{"step": 0, "seconds": 0.0, "phase": "ranges", "loss": math.nan}], "loss must be"),
        ([{"step": 0, "seconds": 0.0, "phase": "warmup", "loss": 1.0}], "phase must be"),
        ([{"step": -1, "seconds": 0.0, "phase": "ranges", "loss": 1.0}], "step must be"),
    ],
)
def test_bad_history_is_a_parameter_error(tmp_path, bad, match):
    with pytest.raises(ParameterError, match=match):
        report.plot_training(bad, tmp_path / "t.png")


def test_failed_plot_leaves_existing_file_untouched(tmp_path):
    path = tmp_path / "training.png"
    path.write_bytes(b"previous report")
    with pytest.raises(ParameterError):
        report.plot_training([], path)
    assert path.read_bytes() == b"previous report"
    with pytest.raises(DataError):  # a directory where the PNG should go: rename fails
        report.plot_training(history(), tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        report.plot_training(history(), tmp_path / "missing" / "t.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["training.png"]  # no temp files left
    assert path.read_bytes() == b"previous report"


def test_spectrogram_difference_panel_is_an_oracle(tmp_path):
    target, _ = audio_pair(1.0)
    image = read_png(report.plot_spectrograms(target, target, SR, tmp_path / "s.png"))
    assert image.shape[:2] == (
        report.SPECTROGRAM_SIZE_IN[1] * report.DPI,
        report.SPECTROGRAM_SIZE_IN[0] * report.DPI,
    )
    meshes = {}
    fig = report.spectrogram_figure(target, 0.5 * target, SR, seconds=0.5)
    for ax in fig.axes:
        for artist in ax.collections:
            meshes[artist.get_gid()] = artist
    t_db, m_db = (np.asarray(meshes[k].get_array()) for k in ("target", "model"))
    vmin = meshes["target"].get_clim()[0]
    loud = t_db > vmin + 10  # well above the colour floor (and far above float noise)
    assert loud.mean() > 0.02
    np.testing.assert_allclose(m_db[loud] - t_db[loud], 20 * np.log10(0.5), atol=1e-6)
    assert meshes["target"].get_clim() == meshes["model"].get_clim()
    diff = np.asarray(meshes["difference"].get_array())
    np.testing.assert_allclose(diff[loud], 20 * np.log10(0.5), atol=1e-6)
    assert fig.axes[0].get_xlim()[1] <= 0.5  # only the excerpt
    same = report.spectrogram_figure(target, target, SR)
    diff = next(c for ax in same.axes for c in ax.collections if c.get_gid() == "difference")
    assert not np.asarray(diff.get_array()).any()


def test_spectrogram_validates_audio(tmp_path):
    target, prediction = audio_pair(0.1)
    with pytest.raises(ParameterError, match="same length"):
        report.plot_spectrograms(target, prediction[:-1], SR, tmp_path / "s.png")
    with pytest.raises(ParameterError, match="finite"):
        report.plot_spectrograms(target, prediction * np.nan, SR, tmp_path / "s.png")
    with pytest.raises(ParameterError, match="seconds"):
        report.plot_spectrograms(target, prediction, SR, tmp_path / "s.png", seconds=0)


def test_write_report_writes_every_png(tmp_path, effect):
    target, prediction = audio_pair(1.0)
    folder = tmp_path / "nested" / "report"
    paths = report.write_report(folder, effect, history(), target, prediction, SR)
    assert [p.name for p in paths] == [
        "training.png",
        "effect.png",
        "spectrogram.png",
        "waveform.png",
    ]
    for path in paths:
        assert path.parent == folder
        read_png(path)
    assert read_png(paths[3]).shape[:2] == (
        report.WAVEFORM_SIZE_IN[1] * report.DPI,
        report.WAVEFORM_SIZE_IN[0] * report.DPI,
    )


def test_write_report_validates_before_writing(tmp_path, effect):
    target, prediction = audio_pair(0.2)
    with pytest.raises(ParameterError, match="empty"):
        report.write_report(tmp_path / "r", effect, [], target, prediction, SR)
    with pytest.raises(ParameterError, match="same length"):
        report.write_report(tmp_path / "r", effect, history(), target, prediction[:10], SR)
    assert not (tmp_path / "r").exists()
