"""Masks from lengths: the one place padding is turned into booleans."""

import tensorflow as tf


def sequence_mask(lengths: tf.Tensor, max_length: tf.Tensor | int | None = None) -> tf.Tensor:
    """Boolean mask [B, T], True on real (non-padding) positions."""
    return tf.sequence_mask(lengths, maxlen=max_length)


def masked_fill_value(dtype: tf.DType) -> float:
    """A large negative number that stays finite in `dtype` (float16 included)."""
    return -1e4 if dtype == tf.float16 else -1e9
