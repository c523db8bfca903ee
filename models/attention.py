"""Attention mechanisms behind one contract.

    keys = attention.prepare_keys(memory)                       # once per source batch
    context, alignment = attention(query, keys, memory, mask)   # once per decoder step
    query: [B, Q]; memory: [B, S, D]; mask: bool [B, S]; context: [B, D]; alignment: [B, S].
Padding positions get zero weight: the score is replaced before the softmax.
"""

import keras
import tensorflow as tf

from models.masking import masked_fill_value


class Attention(keras.layers.Layer):
    """Base: subclasses define `prepare_keys` and `score`."""

    def prepare_keys(self, memory):
        raise NotImplementedError

    def score(self, query, keys):
        raise NotImplementedError

    def call(self, query, keys, memory, mask):
        scores = self.score(query, keys)
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

    def score(self, query, keys):
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

    def score(self, query, keys):
        hidden = tf.tanh(keys + self.query_projection(query)[:, None, :])
        return tf.squeeze(self.v(hidden), axis=-1)


def build_attention(kind: str, query_dim: int, units: int) -> Attention:
    """The attention mechanism named `kind`."""
    if kind == "luong":
        return LuongAttention(query_dim, name="attention")
    if kind == "bahdanau":
        return BahdanauAttention(units, name="attention")
    raise ValueError(f"unknown attention {kind!r}; known: bahdanau, luong")
