"""``Lactose``: make any Keras layer range-conditioned (one weight set per range).

The paper's "conditional use of available machine learning layers" (Clarke 2025,
arXiv 2502.15829), without its batch-size-1 limit: the wrapper holds ``n_ranges`` copies of a
layer, partitions the batch by range index (``tf.dynamic_partition``), runs each copy on its
examples and stitches the outputs back in the original order (``tf.dynamic_stitch``). Each
copy's weights receive only the error of its own examples (separated error backpropagation).
Range indices come from :func:`lactose_audio.ranges.range_index` (the one boundary rule);
this module never decides ranges itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lactose_audio._tf import tf
from lactose_audio.errors import ParameterError
from lactose_audio.ranges import RangeEdges

__all__ = ["Lactose"]


def _clone(template: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
    if isinstance(template, tf.keras.Model):
        return tf.keras.models.clone_model(template)
    return template.__class__.from_config(template.get_config())


class Lactose(tf.keras.layers.Layer):
    """One copy of a Keras layer per range; every example goes through its range's copy.

    Call as ``wrapper([inputs, range_index])`` (functional-API friendly) or
    ``wrapper(inputs, range_index=range_index)``:

    - ``inputs``: ``[batch, ...]``, whatever the wrapped layer takes;
    - ``range_index``: int ``[batch]`` (or ``[batch, 1]``) in ``[0, n_ranges)``, one range per
      example (e.g. :func:`~lactose_audio.ranges.range_index` of the example's key).

    Returns ``[batch, ...]``: example ``i`` equals ``range_layers[range_index[i]](inputs[i:i+1])``,
    for any batch size (including ranges with no example in the batch).

    Args:
        layer: A Keras layer (or model) used as template: each range gets a fresh copy
            (``clone_model`` for models, ``from_config`` for layers); if the template is built,
            every copy starts from its weights. Or a zero-argument factory returning a new layer.
        n_ranges: Number of ranges, or the :class:`~lactose_audio.ranges.RangeEdges` whose
            ``n_ranges`` to use.
        **kwargs: Passed to ``tf.keras.layers.Layer``.

    Raises:
        ParameterError: If ``n_ranges < 1`` or ``layer`` is neither a layer nor a factory.
    """

    def __init__(
        self,
        layer: tf.keras.layers.Layer | Callable[[], tf.keras.layers.Layer],
        n_ranges: int | RangeEdges,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(n_ranges, RangeEdges):
            n_ranges = n_ranges.n_ranges
        if isinstance(n_ranges, bool) or not isinstance(n_ranges, int) or n_ranges < 1:
            raise ParameterError(f"n_ranges must be an integer >= 1, got {n_ranges!r}")
        self.n_ranges = int(n_ranges)
        if isinstance(layer, tf.keras.layers.Layer):
            self._template_config = tf.keras.layers.serialize(layer)
            self._template_weights = layer.get_weights() if layer.built else None
            self.range_layers = [_clone(layer) for _ in range(self.n_ranges)]
        elif callable(layer):
            self._template_config = None
            self._template_weights = None
            self.range_layers = [layer() for _ in range(self.n_ranges)]
            if not all(isinstance(c, tf.keras.layers.Layer) for c in self.range_layers):
                raise ParameterError("the layer factory must return tf.keras layers")
        else:
            raise ParameterError(f"layer must be a Keras layer or a factory, got {layer!r}")

    def build(self, input_shape: Any) -> None:
        if isinstance(input_shape, list | tuple) and input_shape and _is_shape(input_shape[0]):
            input_shape = input_shape[0]  # [inputs, range_index]
        for copy in self.range_layers:
            if not copy.built:
                copy.build(input_shape)
            if self._template_weights is not None:
                copy.set_weights(self._template_weights)
        super().build(input_shape)

    def call(self, inputs: Any, range_index: Any = None) -> tf.Tensor:
        """Route every example to its range's copy and stitch the outputs back in order."""
        if range_index is None:
            if not isinstance(inputs, list | tuple) or len(inputs) != 2:
                raise ParameterError(
                    "Lactose needs a range index: call it as layer([inputs, range_index]) or "
                    "layer(inputs, range_index=...)"
                )
            inputs, range_index = inputs
        index = tf.reshape(tf.cast(range_index, tf.int32), [-1])
        if self.n_ranges == 1:
            return self.range_layers[0](inputs)
        positions = tf.range(tf.shape(index)[0])
        parts = tf.dynamic_partition(inputs, index, self.n_ranges)
        where = tf.dynamic_partition(positions, index, self.n_ranges)
        outputs = [copy(part) for copy, part in zip(self.range_layers, parts, strict=True)]
        return tf.dynamic_stitch(where, outputs)

    def get_config(self) -> dict[str, Any]:
        if self._template_config is None:
            raise NotImplementedError("a Lactose layer built from a factory cannot be serialised")
        config = super().get_config()
        config.update({"layer": self._template_config, "n_ranges": self.n_ranges})
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Lactose:
        config = dict(config)
        layer = tf.keras.layers.deserialize(config.pop("layer"))
        return cls(layer, **config)


def _is_shape(value: Any) -> bool:
    return isinstance(value, tf.TensorShape | list | tuple)
