"""The oracle: LACTOSE as published (Clarke 2025, arXiv 2502.15829), and the same model batched.

``NaiveLactose`` is the paper's algorithm: ONE Keras model; for every sample, find its range
(``range_index``), load that range's weights into the model (``set_weights``), forward,
backward with batch size 1, optimizer step (plain SGD), store the weights back
(``get_weights``). It is slow on purpose — it is the reference and the benchmark baseline.

``BankedMLPWaveshaper`` is the same model (a small MLP waveshaper ``y = W2 tanh(W1 x + b1) +
b2`` per sample, keyed on the ``sample`` key) with its weights in a
:class:`~lactose_audio.ranges.RangeBank` row per range, gathered per sample: the batched
formulation. Used by tests/test_bank_vs_naive.py and scripts/bench_bank.py.
"""

from __future__ import annotations

import numpy as np

from lactose_audio._tf import tf
from lactose_audio.ranges import RangeBank, RangeEdges, range_index


def make_mlp(hidden: int = 8, seed: int = 0) -> tf.keras.Sequential:
    """The waveshaper MLP ``1 -> hidden (tanh) -> 1`` as a plain Keras model."""
    tf.keras.utils.set_random_seed(seed)
    return tf.keras.Sequential(
        [
            tf.keras.layers.Dense(hidden, activation="tanh", input_shape=(1,)),
            tf.keras.layers.Dense(1),
        ]
    )


def flatten_weights(weights: list[np.ndarray]) -> np.ndarray:
    """Keras weights [W1 [1,h], b1 [h], W2 [h,1], b2 [1]] -> one row [3h + 1]."""
    return np.concatenate([np.ravel(w) for w in weights]).astype(np.float32)


def unflatten_weights(row: np.ndarray, hidden: int) -> list[np.ndarray]:
    """Inverse of :func:`flatten_weights`."""
    h = hidden
    row = np.asarray(row, dtype=np.float32)
    return [row[:h].reshape(1, h), row[h : 2 * h], row[2 * h : 3 * h].reshape(h, 1), row[3 * h :]]


class NaiveLactose:
    """The published per-sample weight-swapping loop.

    Args:
        model: The Keras model (its current weights initialise every range).
        edges: Range edges of the ``sample`` key.
        learning_rate: Plain SGD step.
    """

    def __init__(self, model: tf.keras.Model, edges: RangeEdges, learning_rate: float = 0.01):
        self.model = model
        self.edges = edges
        self.weights = [[np.array(w) for w in model.get_weights()] for _ in range(edges.n_ranges)]
        self.optimizer = tf.keras.optimizers.SGD(learning_rate=learning_rate)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Per sample: load the range's weights, run the model. ``[n] -> [n]``."""
        out = np.empty(len(x), dtype=np.float32)
        for i, (value, k) in enumerate(zip(x, range_index(x, self.edges), strict=True)):
            self.model.set_weights(self.weights[k])
            out[i] = self.model(np.array([[value]], np.float32), training=False).numpy()[0, 0]
        return out

    def sample_gradient(self, value: float, target: float) -> tuple[int, np.ndarray]:
        """Range and flattened gradient of ``(f(x) - y)^2`` for one sample (no update)."""
        k = int(range_index(np.float32(value), self.edges))
        self.model.set_weights(self.weights[k])
        with tf.GradientTape() as tape:
            pred = self.model(np.array([[value]], np.float32), training=True)
            loss = tf.reduce_sum((pred - target) ** 2)
        grads = tape.gradient(loss, self.model.trainable_variables)
        return k, flatten_weights([g.numpy() for g in grads])

    def train(self, x: np.ndarray, y: np.ndarray) -> None:
        """The paper's loop: batch size 1, one SGD step per sample, weights swapped per range."""
        for value, target in zip(x, y, strict=True):
            k = int(range_index(np.float32(value), self.edges))
            self.model.set_weights(self.weights[k])
            with tf.GradientTape() as tape:
                pred = self.model(np.array([[value]], np.float32), training=True)
                loss = tf.reduce_sum((pred - target) ** 2)
            grads = tape.gradient(loss, self.model.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables, strict=True))
            self.weights[k] = self.model.get_weights()

    def bank(self) -> np.ndarray:
        """Current weights as a bank ``[n_ranges, 3h + 1]``."""
        return np.stack([flatten_weights(w) for w in self.weights])


class BankedMLPWaveshaper:
    """The same MLP with one weight row per range, gathered per sample (batched LACTOSE).

    Args:
        n_ranges: Number of ranges.
        hidden: Hidden units ``h``.
        initial_row: ``[3h + 1]`` (every range) or ``[n_ranges, 3h + 1]`` flattened weights.
    """

    def __init__(self, n_ranges: int, hidden: int, initial_row: np.ndarray):
        self.hidden = hidden
        self.bank = RangeBank(n_ranges, 3 * hidden + 1, initial_row, name="mlp_bank")

    def __call__(self, x: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        """``x [...]`` float32, ``index [...]`` int32 -> ``[...]``."""
        h = self.hidden
        rows = self.bank.gather(index)  # [..., 3h + 1]
        w1, b1, w2, b2 = (
            rows[..., :h],
            rows[..., h : 2 * h],
            rows[..., 2 * h : 3 * h],
            rows[..., 3 * h],
        )
        hidden = tf.tanh(x[..., None] * w1 + b1)
        return tf.reduce_sum(hidden * w2, axis=-1) + b2

    def loss(self, x: tf.Tensor, index: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        """Sum of squared errors (so each row's gradient is the sum of per-sample gradients)."""
        return tf.reduce_sum((self(x, index) - y) ** 2)
