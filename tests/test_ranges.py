"""Tests of lactose_audio.ranges: the boundary rule, edges, soft selection, bank, separated Adam.

Oracles: exact float64 comparisons written as Python loops / numpy broadcasting, np.bincount-free
counting loops, and a numpy per-row Adam written from Kingma & Ba (2015).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lactose_audio.errors import ParameterError
from lactose_audio.ranges import RangeEdges, Selection, coverage, range_index, select


def _exact_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Oracle: number of edges <= value, compared exactly in float64 (float32 -> float64 exact)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    return (v >= np.asarray(edges, dtype=np.float64)[None, :]).sum(axis=1).reshape(np.shape(values))


# ----------------------------------------------------------------------------- range_index


@pytest.mark.parametrize("n_edges", [0, 1, 3, 16, 17, 40])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_range_index_matches_exact_rule(n_edges: int, dtype: type) -> None:
    rng = np.random.default_rng(n_edges)
    edges = np.sort(rng.uniform(-1, 1, n_edges))  # float64 edges, not float32-representable
    values = rng.uniform(-1.2, 1.2, 20_000).astype(dtype)
    # Values right at, just below and just above every edge in the values' dtype.
    at = edges.astype(dtype)
    near = np.concatenate(
        [at, np.nextafter(at, dtype(-np.inf)), np.nextafter(at, dtype(np.inf))]
    ).astype(dtype)
    values = np.concatenate([values, near, np.array([-np.inf, np.inf], dtype)])
    out = range_index(values, edges)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, _exact_index(values, edges))


def test_range_index_half_open_boundaries() -> None:
    edges = [-0.5, 0.0, 0.25]
    values = np.array([-1.0, -0.5, -0.25, 0.0, 0.1, 0.25, 3.0], dtype=np.float32)
    np.testing.assert_array_equal(range_index(values, edges), [0, 1, 1, 2, 2, 3, 3])


def test_range_index_non_representable_edge_is_exact() -> None:
    edge = 0.1  # float32(0.1) > 0.1, so the float32 just below float32(0.1) is still < 0.1?
    f = np.float32(edge)
    below = np.nextafter(f, np.float32(-np.inf))
    values = np.array([below, f], dtype=np.float32)
    expected = [int(float(below) >= edge), int(float(f) >= edge)]
    np.testing.assert_array_equal(range_index(values, [edge]), expected)
    # An edge between two adjacent float32 values: the upper one is in range 1, lower in 0.
    mid = (float(below) + float(f)) / 2
    np.testing.assert_array_equal(range_index(values, [mid]), [0, 1])


def test_range_index_shape_and_scalars() -> None:
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = range_index(values, RangeEdges((2.0, 7.5), "linear"))
    assert out.shape == (3, 4)
    np.testing.assert_array_equal(out, _exact_index(values, [2.0, 7.5]))
    assert range_index(3.0, [3.0]).shape == ()
    assert int(range_index(3.0, [3.0])) == 1
    np.testing.assert_array_equal(range_index(np.arange(5), [2]), [0, 0, 1, 1, 1])


def test_range_index_refuses_nan_and_bad_edges() -> None:
    with pytest.raises(ParameterError, match="NaN"):
        range_index(np.array([0.0, np.nan]), [0.0])
    with pytest.raises(ParameterError, match="strictly increasing"):
        range_index(np.zeros(3), [0.0, 0.0])
    with pytest.raises(ParameterError, match="finite"):
        range_index(np.zeros(3), [0.0, np.inf])


def test_numpy_half_does_not_import_tensorflow() -> None:
    code = (
        "import sys, numpy as np\n"
        "from lactose_audio.ranges import RangeEdges, range_index, select, coverage\n"
        "e = RangeEdges.from_quantiles(np.arange(10.0), 3, 'linear')\n"
        "s = select(np.arange(10.0), e, 0.5)\n"
        "coverage(range_index(np.arange(10.0), e), 3)\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ----------------------------------------------------------------------------- RangeEdges


def test_edges_validation_and_round_trip() -> None:
    edges = RangeEdges([-30, -20.5, -6], "dBFS")
    assert edges.n_ranges == 4
    assert edges.edges == (-30.0, -20.5, -6.0)
    data = json.loads(json.dumps(edges.to_dict()))
    assert RangeEdges.from_dict(data) == edges
    assert RangeEdges((), "").n_ranges == 1
    with pytest.raises(ParameterError, match="strictly increasing"):
        RangeEdges([1.0, 0.0], "MIDI")
    with pytest.raises(ParameterError, match="finite"):
        RangeEdges([np.nan], "MIDI")
    with pytest.raises(ParameterError):
        RangeEdges.from_dict({"unit": "dBFS"})


def test_from_quantiles_balances_continuous_data() -> None:
    values = np.random.default_rng(1).normal(size=10_001)
    for n_ranges in (1, 2, 4, 16):
        edges = RangeEdges.from_quantiles(values, n_ranges, "linear")
        assert edges.n_ranges == n_ranges and edges.unit == "linear"
        counts = coverage(range_index(values, edges), n_ranges)
        assert counts.sum() == values.size
        # Each range holds values.size / n_ranges within one sample (distinct values).
        assert np.all(np.abs(counts - values.size / n_ranges) <= 1), counts


def test_from_quantiles_with_duplicates_gives_every_range_data() -> None:
    rng = np.random.default_rng(2)
    # 90 % digital silence and a few repeated levels: naive quantiles would repeat.
    values = np.concatenate([np.zeros(9000), rng.choice([0.1, 0.2, 0.3, 0.4, 0.5], 1000)])
    edges = RangeEdges.from_quantiles(values, 6, "linear")
    assert np.all(np.diff(edges.edges) > 0)
    counts = coverage(range_index(values, edges), 6)
    assert np.all(counts > 0), counts
    assert counts.sum() == values.size


def test_from_quantiles_fewer_distinct_values_than_ranges() -> None:
    values = np.repeat([1.0, 2.0], 50)
    edges = RangeEdges.from_quantiles(values, 4, "MIDI")
    assert edges.n_ranges == 4 and np.all(np.diff(edges.edges) > 0)
    counts = coverage(range_index(values, edges), 4)
    np.testing.assert_array_equal(counts, [50, 50, 0, 0])
    constant = RangeEdges.from_quantiles(np.full(10, -120.0), 3, "dBFS")
    np.testing.assert_array_equal(
        coverage(range_index(np.full(10, -120.0), constant), 3), [10, 0, 0]
    )
    with pytest.raises(ParameterError):
        RangeEdges.from_quantiles(np.array([0.0, np.inf]), 2)
    with pytest.raises(ParameterError):
        RangeEdges.from_quantiles(np.zeros(3), 0)


# ----------------------------------------------------------------------------- select/coverage


def _naive_select(values, edges, width):
    """Oracle: loop over values and edges, written from the band definition."""
    lower, upper, frac = [], [], []
    for v in np.asarray(values, dtype=np.float64).ravel():
        k_hard = sum(1 for e in edges if v >= e)
        hit = None
        for k, e in enumerate(edges):
            if e - width / 2 <= v < e + width / 2:
                hit = k
        if hit is None:
            lower.append(k_hard)
            upper.append(k_hard)
            frac.append(0.0)
        else:
            lower.append(hit)
            upper.append(hit + 1)
            frac.append((v - (edges[hit] - width / 2)) / width)
    return np.array(lower), np.array(upper), np.array(frac)


def test_select_hard_is_range_index() -> None:
    values = np.random.default_rng(3).uniform(-2, 2, (7, 11)).astype(np.float32)
    sel = select(values, [-1.0, 0.0, 1.0])
    assert isinstance(sel, Selection)
    np.testing.assert_array_equal(sel.lower, range_index(values, [-1.0, 0.0, 1.0]))
    np.testing.assert_array_equal(sel.upper, sel.lower)
    assert sel.frac.dtype == np.float32 and not sel.frac.any()
    assert sel.lower.shape == values.shape


@pytest.mark.parametrize("width", [0.1, 0.5, 1.0])
def test_select_soft_matches_band_definition(width: float) -> None:
    edges = [-1.0, 0.0, 1.0]
    values = np.concatenate(
        [np.random.default_rng(4).uniform(-2, 2, 2000), [-1.05, -0.95, 0.0, 0.05, 0.5, 1.5]]
    )
    sel = select(values, RangeEdges(edges, "linear"), width)
    lower, upper, frac = _naive_select(values, edges, width)
    np.testing.assert_array_equal(sel.lower, lower)
    np.testing.assert_array_equal(sel.upper, upper)
    np.testing.assert_allclose(sel.frac, frac, atol=1e-6)


def test_soft_selection_is_continuous_across_edges() -> None:
    rows = np.array([0.0, 10.0, -5.0])
    values = np.linspace(-2, 3, 50_001)
    sel = select(values, [0.0, 1.0], soft_width=0.4)
    blended = (1 - sel.frac) * rows[sel.lower] + sel.frac * rows[sel.upper]
    # Largest jump between neighbours: slope 15/0.4 per unit times the grid step, no steps.
    assert np.max(np.abs(np.diff(blended))) <= 15 / 0.4 * 1e-4 * 1.01
    hard = rows[range_index(values, [0.0, 1.0])]
    outside = (np.abs(values) >= 0.2) & (np.abs(values - 1) >= 0.2)
    np.testing.assert_array_equal(blended[outside], hard[outside])


def test_select_refuses_bad_soft_width() -> None:
    with pytest.raises(ParameterError, match="smallest edge"):
        select(np.zeros(3), RangeEdges([0.0, 1.0], "MIDI"), 1.5)
    with pytest.raises(ParameterError):
        select(np.zeros(3), [0.0], -0.1)


def test_coverage_counts() -> None:
    lower = np.random.default_rng(5).integers(0, 5, size=(40, 3))
    expected = [sum(int(x == k) for x in lower.ravel()) for k in range(7)]
    counts = coverage(lower, 7)
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, expected)
    with pytest.raises(ParameterError):
        coverage(np.array([0, 3]), 3)


# ----------------------------------------------------------------------------- RangeBank


def test_bank_init_broadcast_and_set_rows() -> None:
    from lactose_audio.ranges import RangeBank

    bank = RangeBank(4, 3, [1.0, 2.0, 3.0], "drive")
    np.testing.assert_array_equal(bank.numpy(), np.tile([1.0, 2.0, 3.0], (4, 1)))
    assert (bank.n_ranges, bank.n_params) == (4, 3)
    bank.set_rows([1, 3], np.array([[9.0, 8.0, 7.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_array_equal(bank.numpy()[1], [9.0, 8.0, 7.0])
    np.testing.assert_array_equal(bank.numpy()[3], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(bank.numpy()[0], [1.0, 2.0, 3.0])
    with pytest.raises(ParameterError):
        RangeBank(4, 3, np.zeros((2, 3)))
    with pytest.raises(ParameterError):
        RangeBank(0, 3)
    with pytest.raises(ParameterError):
        bank.set_rows([4], np.zeros(3))


@pytest.mark.parametrize("shape", [(), (5,), (2, 7), (2, 3, 4)])
def test_bank_gather_matches_numpy(shape: tuple[int, ...]) -> None:
    from lactose_audio._tf import tf
    from lactose_audio.ranges import RangeBank

    rng = np.random.default_rng(6)
    table = rng.normal(size=(4, 3)).astype(np.float32)
    bank = RangeBank(4, 3, table)
    values = rng.uniform(-1.5, 1.5, shape).astype(np.float32)
    hard = select(values, [-0.5, 0.0, 0.5])
    np.testing.assert_array_equal(bank.gather(hard).numpy(), table[hard.lower])
    np.testing.assert_array_equal(bank.gather(tf.constant(hard.lower)).numpy(), table[hard.lower])
    soft = select(values, [-0.5, 0.0, 0.5], 0.3)
    expected = (1 - soft.frac[..., None]) * table[soft.lower] + soft.frac[..., None] * table[
        soft.upper
    ]
    np.testing.assert_allclose(bank.gather(soft).numpy(), expected, rtol=1e-6, atol=1e-6)
    as_tensors = Selection(*(tf.constant(a) for a in soft))
    np.testing.assert_allclose(bank.gather(as_tensors).numpy(), expected, rtol=1e-6, atol=1e-6)


def test_bank_gradient_reaches_only_selected_rows() -> None:
    from lactose_audio._tf import tf
    from lactose_audio.ranges import RangeBank

    rng = np.random.default_rng(7)
    bank = RangeBank(5, 2, rng.normal(size=(5, 2)))
    sel = select(rng.uniform(-1, 0.49, 64).astype(np.float32), [-0.5, 0.0, 0.5, 1.0], 0.2)
    weights = rng.normal(size=(64, 2)).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(bank.gather(sel) * weights)
    grad = tf.convert_to_tensor(tape.gradient(loss, bank.variable)).numpy()
    expected = np.zeros((5, 2))
    np.add.at(expected, sel.lower, (1 - sel.frac[:, None]) * weights)
    np.add.at(expected, sel.upper, sel.frac[:, None] * weights)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-5)
    assert not grad[4].any()  # no value reaches the top range


# ----------------------------------------------------------------------------- SeparatedAdam


def _numpy_adam(row, grads, lr, b1=0.9, b2=0.999, eps=1e-7):
    """Oracle: Adam on one row (Kingma & Ba 2015, Keras' epsilon-hat form)."""
    m = np.zeros_like(row)
    v = np.zeros_like(row)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        row = row - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    return row, m, v


def test_separated_adam_leaves_untouched_rows_bit_identical() -> None:
    from lactose_audio._tf import tf
    from lactose_audio.ranges import RangeBank, SeparatedAdam

    rng = np.random.default_rng(8)
    bank_a = RangeBank(4, 3, rng.normal(size=(4, 3)), "a")
    bank_b = RangeBank(4, 2, rng.normal(size=(4, 2)), "b")
    opt = SeparatedAdam(learning_rate=0.01)
    target_a = rng.normal(size=3).astype(np.float32)

    @tf.function
    def step(index, counts):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum((bank_a.gather(index) - target_a) ** 2) + tf.reduce_sum(
                bank_b.gather(index) ** 2
            )
        grads = tape.gradient(loss, [bank_a.variable, bank_b.variable])
        opt.apply_gradients(zip(grads, [bank_a, bank_b], strict=True), counts=counts)

    # Two steps everywhere, so every row has non-zero moments, then steps on range 2 only.
    for _ in range(2):
        idx = np.array([0, 1, 2, 3, 2], np.int32)
        step(tf.constant(idx), tf.constant(coverage(idx, 4)))
    before = [bank_a.numpy(), bank_b.numpy()] + [s.numpy() for s in opt.slots(bank_a)]
    before += [s.numpy() for s in opt.slots(bank_b)]
    row2_start = bank_a.numpy()[2].copy()
    grads_seen = []
    for _ in range(3):
        idx = np.array([2, 2, 2], np.int32)
        grads_seen.append(3 * 2 * (bank_a.numpy()[2] - target_a))
        step(tf.constant(idx), tf.constant(coverage(idx, 4)))
    after = [bank_a.numpy(), bank_b.numpy()] + [s.numpy() for s in opt.slots(bank_a)]
    after += [s.numpy() for s in opt.slots(bank_b)]
    others = [0, 1, 3]
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(a[others], b[others])  # values, m, v, steps: bit-identical
        assert not np.array_equal(a[2], b[2])
    np.testing.assert_array_equal(opt.slots(bank_a)[2].numpy(), [2, 2, 5, 2])
    # Row 2 followed per-row Adam from its own state (steps 3..5), checked against numpy.
    m0, v0 = before[2][2], before[3][2]
    row, m, v = row2_start.astype(np.float64), m0.astype(np.float64), v0.astype(np.float64)
    for t, g in enumerate(grads_seen, start=3):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        row = row - 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(bank_a.numpy()[2], row, rtol=1e-5, atol=1e-6)


def test_separated_adam_own_step_count_and_zero_gradient_detection() -> None:
    from lactose_audio._tf import tf
    from lactose_audio.ranges import SeparatedAdam

    var = tf.Variable(np.ones((3, 2), np.float32))
    opt = SeparatedAdam(learning_rate=0.1)
    g_row0 = [np.array([1.0, -2.0]), np.array([0.5, 0.5]), np.array([-1.0, 3.0])]
    g_row2 = np.array([4.0, -0.25])
    for step in range(3):
        grad = np.zeros((3, 2), np.float32)
        grad[0] = g_row0[step]
        if step == 2:
            grad[2] = g_row2
        opt.apply_gradients([(tf.constant(grad), var)])  # counts=None: non-zero rows are active
    expected0, _, _ = _numpy_adam(np.ones(2), g_row0, 0.1)
    expected2, _, _ = _numpy_adam(np.ones(2), [g_row2], 0.1)  # its first step, not its third
    np.testing.assert_allclose(var.numpy()[0], expected0, rtol=1e-5)
    np.testing.assert_allclose(var.numpy()[2], expected2, rtol=1e-5)
    np.testing.assert_array_equal(var.numpy()[1], [1.0, 1.0])
    np.testing.assert_array_equal(opt.slots(var)[2].numpy(), [3, 0, 1])


def test_weighted_quantiles_follow_the_weight_not_the_count():
    values = np.arange(100, dtype=np.float64)
    weights = (values >= 50).astype(np.float64)  # only the top half carries weight
    edges = RangeEdges.from_quantiles(values, 2, "dBFS", weights=weights)
    assert edges.edges == (74.5,)  # the weighted median of 50..99
    plain = RangeEdges.from_quantiles(values, 2, "dBFS")
    assert plain.edges == (49.5,)
    with pytest.raises(ParameterError, match="weights"):
        RangeEdges.from_quantiles(values, 2, "dBFS", weights=np.zeros(100))
    with pytest.raises(ParameterError, match="weights"):
        RangeEdges.from_quantiles(values, 2, "dBFS", weights=np.ones(3))
