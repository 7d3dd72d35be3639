"""Tests of lactose_audio.layers.Lactose.

Oracle: the naive loop, i.e. each example run alone through its range's copy; gradients
computed copy by copy on that copy's examples only.
"""

from __future__ import annotations

import numpy as np
import pytest

from lactose_audio._tf import tf
from lactose_audio.errors import ParameterError
from lactose_audio.layers import Lactose
from lactose_audio.ranges import RangeEdges, range_index


def _dense() -> tf.keras.layers.Layer:
    return tf.keras.layers.Dense(3)


def _mlp() -> tf.keras.layers.Layer:
    return tf.keras.Sequential(
        [tf.keras.layers.Dense(6, activation="tanh", input_shape=(4,)), tf.keras.layers.Dense(2)]
    )


def _conv() -> tf.keras.layers.Layer:
    return tf.keras.layers.Conv1D(2, 3, padding="same")


CASES = {"dense": (_dense, (4,)), "mlp": (_mlp, (4,)), "conv1d": (_conv, (12, 1))}


def _loop(wrapper: Lactose, x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Oracle: one example at a time through its own range's copy."""
    return np.concatenate(
        [wrapper.range_layers[k](x[i : i + 1]).numpy() for i, k in enumerate(index)]
    )


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("batch", [1, 7, 64])
def test_outputs_equal_per_example_loop(case: str, batch: int) -> None:
    factory, shape = CASES[case]
    tf.keras.utils.set_random_seed(batch)
    rng = np.random.default_rng(batch)
    wrapper = Lactose(factory, 4)
    x = rng.normal(size=(batch, *shape)).astype(np.float32)
    index = rng.integers(0, 4, batch).astype(np.int32)
    out = wrapper([x, index]).numpy()
    np.testing.assert_allclose(out, _loop(wrapper, x, index), rtol=1e-5, atol=1e-6)
    out_kw = wrapper(x, range_index=tf.constant(index[:, None])).numpy()
    np.testing.assert_array_equal(out_kw, out)
    # Different copies really differ (fresh initialisation per range).
    assert not np.allclose(
        wrapper.range_layers[0].get_weights()[0], wrapper.range_layers[1].get_weights()[0]
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_reach_only_selected_ranges(case: str) -> None:
    factory, shape = CASES[case]
    tf.keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    wrapper = Lactose(factory, 5)
    x = rng.normal(size=(20, *shape)).astype(np.float32)
    index = rng.choice([0, 2, 3], 20).astype(np.int32)  # ranges 1 and 4 unused
    wrapper([x, index])
    target = rng.normal(size=wrapper([x, index]).shape).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum((wrapper([x, index]) - target) ** 2)
    grads = tape.gradient(loss, wrapper.trainable_weights)
    by_var = {v.ref(): g for v, g in zip(wrapper.trainable_weights, grads, strict=True)}
    for k, copy in enumerate(wrapper.range_layers):
        mine = index == k
        for var in copy.trainable_weights:
            g = by_var[var.ref()]
            g = np.zeros(var.shape) if g is None else tf.convert_to_tensor(g).numpy()
            if not mine.any():
                assert not g.any(), f"range {k} has no examples but got a gradient"
                continue
            with tf.GradientTape() as tape:  # oracle: this copy alone on its own examples
                alone = tf.reduce_sum((copy(x[mine]) - target[mine]) ** 2)
            expected = tape.gradient(alone, var).numpy()
            np.testing.assert_allclose(g, expected, rtol=1e-4, atol=1e-5)
            assert np.abs(g).max() > 0


def test_template_weights_are_copied_and_edges_give_n_ranges() -> None:
    tf.keras.utils.set_random_seed(4)
    template = tf.keras.layers.Dense(2)
    template.build((None, 3))
    edges = RangeEdges([-0.5, 0.5], "linear")
    wrapper = Lactose(template, edges)
    assert wrapper.n_ranges == 3
    x = np.random.default_rng(4).normal(size=(9, 3)).astype(np.float32)
    index = range_index(x[:, 0], edges)
    out = wrapper([x, index]).numpy()
    np.testing.assert_allclose(out, template(x).numpy(), rtol=1e-6, atol=1e-6)  # equal copies


def test_functional_model_and_config_round_trip() -> None:
    tf.keras.utils.set_random_seed(5)
    inputs = tf.keras.Input((4,))
    index = tf.keras.Input((), dtype=tf.int32)
    layer = Lactose(tf.keras.layers.Dense(2), 3)
    model = tf.keras.Model([inputs, index], layer([inputs, index]))
    x = np.random.default_rng(5).normal(size=(8, 4)).astype(np.float32)
    idx = np.array([0, 1, 2, 2, 1, 0, 0, 2], np.int32)
    np.testing.assert_allclose(model([x, idx]).numpy(), _loop(layer, x, idx), rtol=1e-5, atol=1e-6)
    clone = Lactose.from_config(layer.get_config())
    assert clone.n_ranges == 3 and len(clone.range_layers) == 3


def test_errors() -> None:
    with pytest.raises(ParameterError):
        Lactose(_dense, 0)
    with pytest.raises(ParameterError):
        Lactose(42, 2)
    with pytest.raises(ParameterError, match="range index"):
        Lactose(_dense, 2)(np.zeros((2, 3), np.float32))
