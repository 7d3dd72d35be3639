"""Scalings and parameter specs: inverse(forward(x)) == x, bounds, validation messages."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lactose_audio.errors import ParameterError
from lactose_audio.params import (
    START_MARGIN,
    ParamSpec,
    physical_to_raw_np,
    raw_to_physical_np,
    split_row,
    start_raw_np,
    validate_values,
)
from lactose_audio.units import Scaling, db_to_gain, gain_to_db, hz_to_midi, midi_to_hz

CUTOFF = ParamSpec("cutoff_hz", "Hz", 20.0, 20000.0, "log", 1000.0)
DRIVE = ParamSpec("drive_db", "dB", -24.0, 48.0, "linear", 0.0)


def test_unit_conversions_closed_form():
    np.testing.assert_allclose(db_to_gain([-20.0, 0.0, 6.0]), [0.1, 1.0, 10 ** (6 / 20)])
    np.testing.assert_allclose(
        gain_to_db(db_to_gain(np.linspace(-60, 20, 9))), np.linspace(-60, 20, 9)
    )
    assert hz_to_midi(440.0) == pytest.approx(69.0)
    np.testing.assert_allclose(midi_to_hz(hz_to_midi([27.5, 1000.0])), [27.5, 1000.0])


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-12.0, max_value=12.0))
def test_inverse_of_forward_raw(raw):
    for spec in (CUTOFF, DRIVE):
        phys = spec.to_physical_np(raw)
        assert spec.minimum <= phys <= spec.maximum
        np.testing.assert_allclose(spec.to_raw_np(phys), raw, atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0.0, max_value=1.0))
def test_forward_of_inverse_physical(unit):
    for spec in (CUTOFF, DRIVE):
        lo, hi = spec.minimum, spec.maximum
        phys = lo * (hi / lo) ** unit if spec.scaling == "log" else lo + (hi - lo) * unit
        phys = min(max(phys, lo), hi)
        np.testing.assert_allclose(spec.to_physical_np(spec.to_raw_np(phys)), phys, rtol=1e-6)


def test_log_scaling_is_geometric_and_tf_matches_numpy():
    # sigmoid(0) = 0.5 sits at the geometric mean for log, the arithmetic mean for linear.
    assert CUTOFF.to_physical_np(0.0) == pytest.approx(np.sqrt(20.0 * 20000.0))
    assert DRIVE.to_physical_np(0.0) == pytest.approx(12.0)
    raw = np.linspace(-30, 30, 61)
    for spec in (CUTOFF, DRIVE):
        tf_values = spec.to_physical_tf(raw.astype(np.float32)).numpy()
        np.testing.assert_allclose(tf_values, spec.to_physical_np(raw), rtol=2e-6)
        assert tf_values.min() >= spec.minimum and tf_values.max() <= spec.maximum


def test_bounds_map_to_finite_raw():
    for spec in (CUTOFF, DRIVE):
        raw = spec.to_raw_np([spec.minimum, spec.maximum])
        assert np.all(np.isfinite(raw)) and np.all(np.abs(raw) < 17)
        np.testing.assert_allclose(
            spec.to_physical_np(raw), [spec.minimum, spec.maximum], rtol=1e-5
        )


def test_a_start_is_kept_inside_the_bounds():
    """A start at a bound (sigmoid slope ~1e-7: a gradient fit could never move it) is placed
    START_MARGIN of the sigmoid's range inside; a start inside stays exact."""
    specs = (ParamSpec("cutoff_hz", "Hz", 5.0, 20000.0, "log", 25.0),
             ParamSpec("gain_db", "dB", -24.0, 24.0, "linear", 0.0))  # fmt: skip
    raw = start_raw_np(specs, [[5.0, 24.0], [1000.0, -3.0]])
    unit = 1.0 / (1.0 + np.exp(-raw))
    np.testing.assert_allclose(unit[0], [START_MARGIN, 1.0 - START_MARGIN], rtol=1e-9)
    np.testing.assert_allclose(raw[1], physical_to_raw_np(specs, [1000.0, -3.0]), rtol=1e-12)


def test_validation_messages_name_value_range_unit():
    with pytest.raises(
        ParameterError, match=r"cutoff_hz must be between 20 Hz and 20000 Hz, got 5 Hz"
    ):
        CUTOFF.validate(5.0)
    with pytest.raises(ParameterError, match=r"drive_db .* got nan dB"):
        DRIVE.validate([1.0, float("nan")])
    with pytest.raises(ParameterError, match="missing"):
        validate_values((CUTOFF, DRIVE), {"cutoff_hz": 100.0})
    validate_values((CUTOFF, DRIVE), {"cutoff_hz": 100.0, "drive_db": 3.0})


def test_bad_declarations_are_refused():
    with pytest.raises(ParameterError, match="log scaling needs minimum > 0"):
        ParamSpec("f_hz", "Hz", 0.0, 10.0, "log", 1.0)
    with pytest.raises(ParameterError, match="scaling must be one of"):
        ParamSpec("x", "", 0.0, 1.0, "cubic", 0.5)
    with pytest.raises(ParameterError, match="must be between"):
        ParamSpec("x", "", 0.0, 1.0, "linear", 2.0)
    with pytest.raises(ValueError):
        Scaling("linear", 1.0, 1.0)


def test_rows_split_and_round_trip():
    params = (CUTOFF, DRIVE)
    phys = np.array([[100.0, -3.0], [8000.0, 40.0]])
    raw = physical_to_raw_np(params, phys)
    np.testing.assert_allclose(raw_to_physical_np(params, raw), phys, rtol=1e-9)
    named = split_row(params, phys)
    np.testing.assert_array_equal(named["cutoff_hz"], [100.0, 8000.0])
    with pytest.raises(ParameterError, match="cutoff_hz must be between"):
        physical_to_raw_np(params, [[1.0, 0.0]])


def test_params_module_imports_without_tensorflow():
    code = "import sys, lactose_audio.params; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
