"""Attention mechanisms behind one contract.

    keys = attention.prepare_keys(memory)                       # once per source batch
    context, alignment = attention(query, keys, memory, mask, previous_alignment)
    query: [B, Q]; memory: [B, S, D]; mask: bool [B, S]; context: [B, D]; alignment: [B, S];
    previous_alignment: [B, S], the last step's weights (used by location-aware attention).
Padding positions get zero weight: the score is replaced before the softmax.
"""

import keras
import tensorflow as tf

from models.masking import masked_fill_value


class Attention(keras.layers.Layer):
    """Base: subclasses define `prepare_keys` and `score`."""

    def prepare_keys(self, memory):
        raise NotImplementedError

    def score(self, query, keys, previous_alignment=None):
        raise NotImplementedError

    def call(self, query, keys, memory, mask, previous_alignment=None):
        scores = self.score(query, keys, previous_alignment)
        scores = tf.where(mask, scores, tf.cast(masked_fill_value(scores.dtype), scores.dtype))
        alignment = tf.nn.softmax(scores, axis=-1)
        context = tf.einsum("bs,bsd->bd", alignment, memory)
        return context, alignment


@keras.saving.register_keras_serializable("lipseq")
class LuongAttention(Attention):
    """Multiplicative ("general") attention: score = query · (W memory)."""

    def __init__(self, query_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.query_dim = query_dim
        self.memory_projection = keras.layers.Dense(query_dim, use_bias=False, name="memory_proj")

    def build(self, query_shape, keys_shape=None, memory_shape=None, mask_shape=None):
        if memory_shape is not None and not self.memory_projection.built:
            self.memory_projection.build(memory_shape)
        super().build(query_shape)

    def prepare_keys(self, memory):
        return self.memory_projection(memory)

    def score(self, query, keys, previous_alignment=None):
        return tf.einsum("bq,bsq->bs", query, keys)


@keras.saving.register_keras_serializable("lipseq")
class BahdanauAttention(Attention):
    """Additive attention: score = v · tanh(W_k memory + W_q query)."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.memory_projection = keras.layers.Dense(units, use_bias=False, name="memory_proj")
        self.query_projection = keras.layers.Dense(units, use_bias=True, name="query_proj")
        self.v = keras.layers.Dense(1, use_bias=False, name="v")

    def build(self, query_shape, keys_shape=None, memory_shape=None, mask_shape=None):
        if memory_shape is not None and not self.memory_projection.built:
            self.memory_projection.build(memory_shape)
        self.query_projection.build(query_shape)
        self.v.build((None, None, self.units))
        super().build(query_shape)

    def prepare_keys(self, memory):
        return self.memory_projection(memory)

    def score(self, query, keys, previous_alignment=None):
        hidden = tf.tanh(keys + self.query_projection(query)[:, None, :])
        return tf.squeeze(self.v(hidden), axis=-1)


@keras.saving.register_keras_serializable("lipseq")
class LocationAwareAttention(BahdanauAttention):
    """Additive attention that also sees where it looked last (Chorowski et al., 2015).

    score = v · tanh(W_k memory + W_q query + U conv(previous_alignment)); the convolution
    over the previous weights lets it move forward monotonically, as speech and video need.
    """

    def __init__(self, units: int, filters: int = 10, kernel_size: int = 15, **kwargs):
        super().__init__(units, **kwargs)
        self.filters, self.kernel_size = filters, kernel_size
        self.location_conv = keras.layers.Conv1D(
            filters, kernel_size, padding="same", use_bias=False, name="location_conv"
        )
        self.location_projection = keras.layers.Dense(
            units, use_bias=False, name="location_proj"
        )

    def build(self, query_shape, keys_shape=None, memory_shape=None, mask_shape=None):
        self.location_conv.build((None, None, 1))
        self.location_projection.build((None, None, self.filters))
        super().build(query_shape, keys_shape, memory_shape, mask_shape)

    def score(self, query, keys, previous_alignment=None):
        if previous_alignment is None:
            previous_alignment = tf.zeros(tf.shape(keys)[:2], keys.dtype)
        location = self.location_conv(tf.cast(previous_alignment, keys.dtype)[:, :, None])
        hidden = tf.tanh(
            keys + self.query_projection(query)[:, None, :] + self.location_projection(location)
        )
        return tf.squeeze(self.v(hidden), axis=-1)


def build_attention(kind: str, query_dim: int, units: int, name: str = "attention") -> Attention:
    """The attention mechanism named `kind`."""
    if kind == "luong":
        return LuongAttention(query_dim, name=name)
    if kind == "bahdanau":
        return BahdanauAttention(units, name=name)
    if kind == "location":
        return LocationAwareAttention(units, name=name)
    raise ValueError(f"unknown attention {kind!r}; known: bahdanau, location, luong")
