"""Sequence losses, masked by length so padding never contributes."""

import tensorflow as tf

from models.masking import sequence_mask


def sequence_cross_entropy(
    logits: tf.Tensor, labels: tf.Tensor, lengths: tf.Tensor, label_smoothing: float = 0.0
) -> tuple[tf.Tensor, tf.Tensor]:
    """Label-smoothed cross-entropy summed over real tokens.

    logits [B, T, V], labels [B, T], lengths [B] -> (loss sum, number of real tokens).
    The smoothed target puts 1 - eps on the label and eps spread uniformly over V.
    """
    logits = tf.cast(logits, tf.float32)
    log_probs = tf.nn.log_softmax(logits, axis=-1)
    nll = -tf.gather(log_probs, labels, axis=-1, batch_dims=2)
    if label_smoothing:
        uniform = -tf.reduce_mean(log_probs, axis=-1)
        nll = (1.0 - label_smoothing) * nll + label_smoothing * uniform
    mask = tf.cast(sequence_mask(lengths, tf.shape(labels)[1]), tf.float32)
    return tf.reduce_sum(nll * mask), tf.reduce_sum(mask)
