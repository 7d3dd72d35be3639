"""The train/validation split and the segments the fitter reads (numpy only).

Oracles: interval arithmetic (the validation blocks and the training parts tile the pair
exactly), and a wet signal that encodes its own sample index, so a segment that reads one
validation sample is caught.
"""

from __future__ import annotations

import numpy as np
import pytest

import lactose_audio.sampling as sampling
from lactose_audio.chains import Chain, make_key
from lactose_audio.sampling import (
    MAX_VALIDATION_BLOCKS,
    SegmentSampler,
    Track,
    coverage_counts,
    full_batch,
    pick,
    training_parts,
    validation_batches,
    validation_blocks,
)

SR = 44100
HOP = 1024


@pytest.mark.parametrize("seconds", [3.0, 30.0, 600.0])
@pytest.mark.parametrize("fraction", [0.1, 0.15, 0.5])
def test_validation_blocks_hold_out_the_fraction_on_the_frame_grid(seconds, fraction):
    n = int(seconds * SR) + 77  # not a whole number of hops
    blocks = validation_blocks(n, fraction, HOP, SR)
    assert 1 <= len(blocks) <= MAX_VALIDATION_BLOCKS
    held = sum(e - b for b, e in blocks)
    # whole hops per block, rounding loses less than one hop per block (plus the tail's part)
    assert abs(held - fraction * n) <= len(blocks) * HOP + HOP
    assert all(b % HOP == 0 for b, _ in blocks)
    assert blocks[-1][1] == n
    assert all(e0 <= b1 for (_, e0), (b1, _) in zip(blocks, blocks[1:], strict=False))
    parts = training_parts(n, blocks)
    covered = sorted(parts + list(blocks))
    assert covered[0][0] == 0 and covered[-1][1] == n
    assert all(
        e == b for (_, e), (b, _) in zip(covered, covered[1:], strict=False)
    )  # tiles, no overlap


def test_long_takes_are_validated_all_along_short_ones_on_their_end():
    n = 30 * SR
    blocks = validation_blocks(n, 0.15, HOP, SR)
    assert len(blocks) == 16  # 4.5 s held out: 16 blocks (the most) of at least 0.25 s
    assert blocks[0][0] < n / 16 and blocks[1][0] < n / 8  # the start of the take too
    assert len(validation_blocks(3 * SR, 0.15, HOP, SR)) == 1  # 0.45 s held out: one block
    short = validation_blocks(int(1.5 * SR), 0.15, HOP, SR)
    assert len(short) == 1 and short[0][1] == int(1.5 * SR)  # under 0.25 s held out: the tail


def _track(n: int) -> Track:
    wet = np.arange(n, dtype=np.float32) + 1.0  # a sample's value is its index + 1
    return Track(
        dry=np.zeros(n, np.float32),
        wet=wet,
        selections=[],
        validation=validation_blocks(n, 0.15, HOP, SR),
        n_samples=n,
    )


def _keyless_track(n: int) -> tuple[Chain, Track, np.ndarray]:
    """A one-stage chain, its track of ``n`` samples, and the validation samples by hand."""
    chain = Chain.from_spec("gain", hop_size=HOP)
    track = _track(n)
    track.selections = chain.selections(track.dry, SR)
    held = np.zeros(n, bool)
    for b, e in track.validation:
        held[b:e] = True
    return chain, track, held


def test_segments_never_read_validation_samples():
    chain, track, held = _keyless_track(20 * SR)
    sampler = SegmentSampler(chain, [track], context=4 * HOP, segment=8 * HOP)
    batches = [sampler.batch(np.random.default_rng(s), 16, row0=True) for s in range(10)]
    batches.append(full_batch(sampler, 10_000, row0=True))
    for batch in batches:
        index = batch.wet.astype(np.int64) - 1
        assert not held[index].any()
    # the full batch tiles the training parts: nearly all training audio, each sample once
    tiled = full_batch(sampler, 10_000, row0=True).wet.astype(np.int64).ravel() - 1
    assert np.unique(tiled).size == tiled.size
    assert tiled.size > 0.9 * (~held).sum() - len(track.validation) * 8 * HOP


def test_coverage_counts_only_training_samples():
    chain, track, held = _keyless_track(12 * SR)
    counts = coverage_counts(chain, [track], 0.05)[0]["counts"]
    step = 1 if chain.stages[0].control_rate == "sample" else HOP
    frames = held[: track.n_samples // step * step].reshape(-1, step)
    assert counts == [int((~frames.any(axis=1)).sum())]  # frames with no validation sample
    assert pick(track.wet, track.validation).size == held.sum()
    assert pick(track.wet, training_parts(track.n_samples, track.validation)).size == (~held).sum()


def test_a_small_full_batch_spans_the_take_from_quiet_to_loud():
    """A take whose loud passage is short: a thinned batch still holds it (and quiet ones)."""
    chain = Chain.from_spec("gain", hop_size=HOP)
    n = 20 * SR
    t = np.arange(n) / SR
    level = np.where((t > 12.0) & (t < 13.0), 1.0, 0.02 + 0.002 * t)  # loud for 1 s only
    track = _track(n)
    track.wet = (level * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    track.selections = chain.selections(track.dry, SR)
    sampler = SegmentSampler(chain, [track], context=4 * HOP, segment=8 * HOP)
    batch = full_batch(sampler, 6, row0=True)
    rms = np.sqrt(np.mean(batch.wet.astype(np.float64) ** 2, axis=1))
    assert batch.n_segments == 6
    assert rms.max() > 0.5  # the loud second is in
    assert rms.min() < 0.03  # and the quiet start


def test_a_pair_too_short_for_one_segment_is_refused_with_the_length_it_needs():
    """The trainer's refusal follows the sampler's rule: a segment's loss samples must be
    training audio with a filter context before them (0.25 s: 4096 + 8192 samples do not fit
    in its 85 %)."""
    from lactose_audio.data import pair_from_arrays
    from lactose_audio.errors import ParameterError
    from lactose_audio.train_config import TrainConfig
    from lactose_audio.training import train

    x = (0.3 * np.sin(2 * np.pi * 220.0 * np.arange(int(0.25 * SR)) / SR)).astype(np.float32)
    pair = pair_from_arrays(x, np.tanh(2.0 * x), SR, latency=0)
    config = TrainConfig(chain_spec="gain>tanh", key="none", steps=2)
    with pytest.raises(ParameterError, match=r"training audio too short: needs at least 0\.3 s"):
        train(pair, config)


@pytest.mark.parametrize("piece", [3 * HOP, 8 * HOP])
@pytest.mark.parametrize("fraction", [0.15, 0.85])
def test_validation_batches_hold_every_held_out_sample_once_after_its_context(
    piece, fraction, monkeypatch
):
    """Oracle: a dry and a wet that encode their sample index, and a key that encodes its
    frame. Every held-out sample appears exactly once unmasked, preceded by exactly its
    ``context`` dry samples (silence before the pair's start: with 85 % held out the first
    block begins inside the context); padding is masked; pieces have the given length."""
    monkeypatch.setattr(sampling, "VALIDATION_BATCH_SAMPLES", 5 * (piece + 4 * HOP))
    n, context = 2 * SR + 77, 4 * HOP
    chain = Chain.from_spec("gain", hop_size=HOP, key=make_key("amplitude"), n_ranges=4)
    track = _track(n)
    track.validation = validation_blocks(n, fraction, HOP, SR)
    track.dry = track.wet.copy()
    frames = chain.selections(track.dry, SR)[0]
    lower = np.arange(np.asarray(frames[0]).shape[-1])  # frame f selects "row" f
    track.selections = [type(frames)(lower, lower, np.zeros(lower.shape, np.float32))]
    batches = validation_batches(chain, [track], context, row0=False, piece=piece)
    pieces = sum(-(-(e - b) // piece) for b, e in track.validation)
    assert sum(len(b.dry) for b in batches) == pieces and all(len(b.dry) <= 5 for b in batches)
    assert {(b.dry.shape[1], b.wet.shape[1], b.mask.shape[1]) for b in batches} == {
        (context + piece, piece, piece)
    }
    held = np.concatenate([np.arange(b, e) for b, e in track.validation])
    if fraction == 0.85:
        assert track.validation[0][0] < context  # the case of silence before the pair
    seen = []
    for batch in batches:
        for dry, wet, mask, first in zip(
            batch.dry, batch.wet, batch.mask, batch.selections[0][0], strict=True
        ):
            kept = mask > 0
            assert np.all(wet[~kept] == 0.0) and kept[0]
            index = wet[kept].astype(np.int64) - 1
            begin = index[0]
            assert np.array_equal(index, np.arange(begin, begin + index.size))  # contiguous
            expected = np.arange(begin - context, begin + dry.size - context) + 1.0
            expected[(expected < 1) | (expected > n)] = 0.0  # silence outside the pair
            np.testing.assert_array_equal(dry, expected)
            assert first[0] == max((begin - context) // HOP, 0)  # the key's frames, aligned
            seen.append(index)
    seen = np.concatenate(seen)
    np.testing.assert_array_equal(np.sort(seen), held)  # every held-out sample, once
