"""Pitch edges where the effect changes (:mod:`lactose_audio.ranges.segments`).

Oracles: exhaustive enumeration of the cuts (the dynamic programme's optimum), and the switch
notes of the pitch_drive dataset's effect (third-party processing per pitch bucket).
"""

from __future__ import annotations

import itertools

import numpy as np
from oracles import dataset_pair

from lactose_audio.chain_spec import make_key
from lactose_audio.chains import Chain
from lactose_audio.conditioning import compute_key
from lactose_audio.frames import frame_mean
from lactose_audio.ranges.segments import effect_edges, segment


def _spread(signature, weight, runs) -> float:
    total = 0.0
    for a, b in runs:
        w, s = weight[a:b], signature[a:b]
        mean = (w * s).sum(axis=0) / np.maximum(w.sum(axis=0), 1e-300)
        total += float((w * (s - mean) ** 2).sum())
    return total


def test_segment_is_the_exhaustive_optimum_with_its_shares() -> None:
    rng = np.random.default_rng(7)
    for trial in range(20):
        u, n_runs, share = int(rng.integers(4, 10)), int(rng.integers(2, 5)), 0.1
        if u < n_runs:
            continue
        signature = rng.normal(size=(u, 3)) * 5.0
        weight = rng.uniform(0.0, 1.0, size=(u, 3)) ** 2
        total = weight.sum()
        best, best_cut = np.inf, None
        for cut in itertools.combinations(range(1, u), n_runs - 1):
            bounds = [0, *cut, u]
            runs = list(itertools.pairwise(bounds))
            if any(weight[a:b].sum() < share * total * (1 - 1e-9) for a, b in runs):
                continue
            cost = _spread(signature, weight, runs)
            if cost < best - 1e-9:
                best, best_cut = cost, cut
        got = segment(signature, weight, n_runs, share)
        if best_cut is None:
            assert got.size == 0
            continue
        runs = list(itertools.pairwise([0, *got.tolist(), u]))
        assert np.isclose(_spread(signature, weight, runs), best, rtol=1e-9, atol=1e-9), trial


def _separates(edges, switch: float, notes: np.ndarray) -> bool:
    """An edge splits the take's notes where ``switch`` does (no note between them)."""
    return any(not np.any((notes > min(e, switch)) & (notes < max(e, switch))) for e in edges)


def test_edges_fall_on_the_effects_switch_notes() -> None:
    dry, wet, sr = dataset_pair("pitch_drive", 24.0, seed=3)
    switches = (51.5, 63.5)  # make_datasets' pitch_drive buckets (edges_midi)
    chain = Chain.from_spec("gain>tanh>lowpass", key=make_key("pitch"), n_ranges=8)
    chain.fit_edges(dry, sr, wet=wet)
    edges = chain.stages[0].edges.edges
    assert all(float(e) % 1.0 == 0.5 for e in edges)
    key = compute_key(chain.stages[0].key, dry, sr, chain.hop_size)
    loud = frame_mean(dry.astype(np.float32) ** 2, chain.hop_size) > 1e-6
    notes = np.unique(np.rint(key[loud[: key.size]]))
    assert all(_separates(edges, s, notes) for s in switches), (edges, notes)
    # the quantile edges (no wet) do not: the test fails without the segmentation
    plain = Chain.from_spec("gain>tanh>lowpass", key=make_key("pitch"), n_ranges=8)
    plain.fit_edges(dry, sr)
    assert not all(_separates(plain.stages[0].edges.edges, s, notes) for s in switches)


def test_too_few_notes_fall_back_to_none() -> None:
    sr, hop = 44100, 1024
    x = np.random.default_rng(1).standard_normal(hop * 40)
    keys = np.repeat([50.0, 60.0], 20)
    assert effect_edges(keys, x, 2.0 * x, hop, sr, 4) is None
    assert effect_edges(keys, x, 2.0 * x, hop, sr, 2) == (55.5,)
