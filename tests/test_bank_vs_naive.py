"""Batched LACTOSE (RangeBank + gather) against the paper's per-sample loop (tests/naive_lactose).

Same MLP waveshaper keyed on the ``sample`` key, same initial weights, same edges.
"""

from __future__ import annotations

import numpy as np
import pytest
from naive_lactose import BankedMLPWaveshaper, NaiveLactose, flatten_weights, make_mlp

from lactose_audio._tf import tf
from lactose_audio.ranges import RangeEdges, coverage, range_index

HIDDEN = 6


def _setup(n_ranges: int, n: int, seed: int, lr: float = 0.05):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n).astype(np.float32)
    y = np.tanh(3 * x).astype(np.float32) * np.where(x > 0.3, 0.5, 1.0).astype(np.float32)
    edges = RangeEdges.from_quantiles(x, n_ranges, "linear") if n_ranges > 1 else RangeEdges(())
    model = make_mlp(HIDDEN, seed)
    naive = NaiveLactose(model, edges, learning_rate=lr)
    # Distinct weights per range, so that a wrong routing cannot pass unnoticed.
    row = flatten_weights(model.get_weights())
    rows = row[None, :] + 0.3 * rng.normal(size=(n_ranges, row.size)).astype(np.float32)
    naive.weights = [_unflat(r) for r in rows]
    batched = BankedMLPWaveshaper(n_ranges, HIDDEN, rows)
    return x, y, edges, naive, batched


def _unflat(row: np.ndarray) -> list[np.ndarray]:
    from naive_lactose import unflatten_weights

    return unflatten_weights(row, HIDDEN)


@pytest.mark.parametrize("n_ranges", [1, 4, 7])
def test_batched_forward_equals_naive_forward(n_ranges: int) -> None:
    x, _, edges, naive, batched = _setup(n_ranges, 200, seed=n_ranges)
    index = range_index(x, edges)
    out = batched(tf.constant(x), tf.constant(index)).numpy()
    np.testing.assert_allclose(out, naive.forward(x), rtol=1e-5, atol=1e-6)


def test_batched_row_gradient_is_sum_of_naive_sample_gradients() -> None:
    n_ranges = 5
    x, y, edges, naive, batched = _setup(n_ranges, 120, seed=1)
    x = x[x < 0.5]  # leave the top range(s) empty
    y = y[: x.size]
    index = range_index(x, edges)
    with tf.GradientTape() as tape:
        loss = batched.loss(tf.constant(x), tf.constant(index), tf.constant(y))
    grad = tf.convert_to_tensor(tape.gradient(loss, batched.bank.variable)).numpy()
    expected = np.zeros_like(grad)
    for value, target in zip(x, y, strict=True):
        k, g = naive.sample_gradient(value, target)
        expected[k] += g
    counts = coverage(index, n_ranges)
    assert (counts == 0).any() and (counts > 0).sum() >= 2
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(grad[counts == 0], 0.0)  # exactly zero, not just small


def test_batch_size_one_sgd_reproduces_the_naive_loop() -> None:
    n_ranges, lr = 4, 0.05
    x, y, edges, naive, batched = _setup(n_ranges, 150, seed=2, lr=lr)
    index = range_index(x, edges)
    var = batched.bank.variable

    @tf.function
    def step(xi, ki, yi):
        with tf.GradientTape() as tape:
            loss = batched.loss(xi, ki, yi)
        var.assign_sub(lr * tf.convert_to_tensor(tape.gradient(loss, var)))

    start = batched.bank.numpy()
    for i in range(x.size):
        step(tf.constant(x[i : i + 1]), tf.constant(index[i : i + 1]), tf.constant(y[i : i + 1]))
    naive.train(x, y)
    np.testing.assert_allclose(batched.bank.numpy(), naive.bank(), rtol=1e-4, atol=1e-5)
    moved = np.abs(batched.bank.numpy() - start).max(axis=1)
    assert np.all(moved > 1e-3)  # every range trained (quantile edges give each data)
