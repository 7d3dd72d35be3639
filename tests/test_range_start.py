"""The per-range data-driven start of a keyed fit (lactose_audio.range_start).

Oracle: a level-switched effect made with scipy (RBJ biquads, lfilter) whose per-range corner
and gain are known: the quiet range through a 8 kHz low-pass at +6 dB, the loud one through a
1.5 kHz low-pass at -6 dB. Both corners are on the start's grid, so each range must find its
own (the pooled compromise cannot be right for both) and its least-squares level.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from lactose_audio.chain_spec import make_key
from lactose_audio.chains import Chain
from lactose_audio.data import pair_from_arrays
from lactose_audio.range_start import start_ranges_from_data
from lactose_audio.ranges import RangeEdges
from lactose_audio.sampling import prepare_tracks

SR = 44100
HOP = 1024


def _rbj_lowpass(cutoff_hz: float, q: float = 0.7071):
    w0 = 2 * np.pi * cutoff_hz / SR
    alpha = np.sin(w0) / (2 * q)
    cos = np.cos(w0)
    b = np.array([(1 - cos) / 2, 1 - cos, (1 - cos) / 2])
    a = np.array([1 + alpha, -2 * cos, 1 - alpha])
    return b / a[0], a / a[0]


def _level_switched(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dry, wet, loud): noise bursts of 40 hops alternating -32 and -8 dBFS (the amplitude
    key's 50 ms release puts the first ~3 hops of a quiet burst in the loud range: 24 dB
    quieter, they barely move the loud range's least squares)."""
    rng = np.random.default_rng(seed)
    n_blocks = 14
    loud = np.repeat(np.arange(n_blocks) % 2 == 1, 40 * HOP)
    level = np.where(loud, 10 ** (-8 / 20), 10 ** (-32 / 20))
    dry = (level * rng.standard_normal(loud.size)).astype(np.float32)
    quiet_wet = 2.0 * lfilter(*_rbj_lowpass(8000.0), dry)
    loud_wet = 0.5 * lfilter(*_rbj_lowpass(1500.0), dry)
    wet = np.where(loud, loud_wet, quiet_wet).astype(np.float32)
    return dry, wet, loud


@pytest.fixture(scope="module")
def fitted():
    dry, wet, _ = _level_switched(seed=4)
    chain = Chain.from_spec(
        "lowpass>gain", key=make_key("amplitude"), edges=RangeEdges((-20.0,), "dBFS"),
        hop_size=HOP,
    )  # fmt: skip
    pair = pair_from_arrays(dry, wet, SR, latency=0)
    tracks = prepare_tracks([pair], chain, 0.2, SR)
    changed = start_ranges_from_data(chain, tracks, SR)
    return chain, changed


def test_each_range_finds_its_own_corner_and_level(fitted):
    chain, changed = fitted
    lowpass, gain = chain.stages
    assert changed
    cutoff = lowpass.params["cutoff_hz"]
    # the grid's corners, placed START_MARGIN inside the bounds (a 0.7 % move at most)
    assert cutoff[0] == pytest.approx(8000.0, rel=0.01)
    assert cutoff[1] == pytest.approx(1500.0, rel=0.01)
    assert gain.params["gain_db"][0] == pytest.approx(6.02, abs=0.3)
    assert gain.params["gain_db"][1] == pytest.approx(-6.02, abs=0.3)


def test_a_range_without_data_keeps_its_start():
    dry, wet, _ = _level_switched(seed=5)
    chain = Chain.from_spec(
        "lowpass>gain", key=make_key("amplitude"), edges=RangeEdges((-20.0, 10.0), "dBFS"),
        hop_size=HOP,
    )  # fmt: skip
    before = [s.bank.numpy()[2].copy() for s in chain.stages]
    tracks = prepare_tracks([pair_from_arrays(dry, wet, SR, latency=0)], chain, 0.2, SR)
    assert start_ranges_from_data(chain, tracks, SR)
    for stage, row in zip(chain.stages, before, strict=True):
        np.testing.assert_array_equal(stage.bank.numpy()[2], row)  # nothing above +10 dBFS


def test_unkeyed_chains_are_left_alone():
    dry, wet, _ = _level_switched(seed=6)
    chain = Chain.from_spec("lowpass>gain", hop_size=HOP)
    before = [s.bank.numpy().copy() for s in chain.stages]
    tracks = prepare_tracks([pair_from_arrays(dry, wet, SR, latency=0)], chain, 0.2, SR)
    assert not start_ranges_from_data(chain, tracks, SR)
    for stage, values in zip(chain.stages, before, strict=True):
        np.testing.assert_array_equal(stage.bank.numpy(), values)


def _keyed_trainer():
    from lactose_audio.train_config import TrainConfig
    from lactose_audio.trainer import Trainer

    dry, wet, _ = _level_switched(seed=4)
    cfg = TrainConfig(chain_spec="lowpass>gain", key="amplitude", edges=(-20.0,), steps=10,
                      hop_size=HOP).resolved()  # fmt: skip
    chain = Chain.from_spec(
        "lowpass>gain", key=make_key("amplitude"), edges=RangeEdges((-20.0,), "dBFS"),
        hop_size=HOP,
    )  # fmt: skip
    trainer = Trainer(chain, [pair_from_arrays(dry, wet, SR, latency=0)], cfg, SR)
    start = [s.bank.numpy() for s in chain.stages]  # one compromise: the block defaults
    return trainer, start, trainer.validation_esr()


def _pulled_in(start):
    """The ranges phase's start before the per-range search: row 0 everywhere, raw values
    within params.START_RAW_LIMIT."""
    from lactose_audio.params import clip_start_raw

    return [clip_start_raw(np.broadcast_to(v[0], v.shape)).astype(v.dtype) for v in start]


@pytest.mark.slow
def test_the_trainer_keeps_the_per_range_start_when_it_validates_better():
    trainer, start, esr = _keyed_trainer()
    trainer.begin_ranges(start, esr)
    assert trainer.best_esr == pytest.approx(trainer.validation_esr(), rel=1e-6)
    cutoff = trainer.chain.stages[0].params["cutoff_hz"]
    for stage, values in zip(trainer.chain.stages, _pulled_in(start), strict=True):
        stage.bank.assign(values)  # the start without the per-range search
    assert trainer.best_esr < 0.5 * trainer.validation_esr()
    assert cutoff[0] == pytest.approx(8000.0, rel=0.01)
    assert cutoff[1] == pytest.approx(1500.0, rel=0.01)


@pytest.mark.slow
def test_the_trainer_drops_a_per_range_start_that_validates_worse(monkeypatch):
    import lactose_audio.range_start as range_start

    def worse(chain, tracks, sample_rate):
        gain = chain.stages[-1]  # every row's output gain near its top: far too loud
        gain.bank.assign(np.full(gain.bank.numpy().shape, 5.0, np.float32))
        return True

    monkeypatch.setattr(range_start, "start_ranges_from_data", worse)
    trainer, start, esr = _keyed_trainer()
    trainer.begin_ranges(start, esr)
    for stage, values in zip(trainer.chain.stages, _pulled_in(start), strict=True):
        np.testing.assert_allclose(stage.bank.numpy(), values, atol=1e-6)
    assert trainer.best_esr == pytest.approx(trainer.validation_esr(), rel=1e-6)
