"""CTC on the encoder: loss and greedy decoding with stock TensorFlow ops.

The blank is id 0, the pad id: padding never appears inside a label sequence, so the
target vocabulary serves both the attention decoder and the CTC head.
"""

import tensorflow as tf

BLANK_ID = 0


def ctc_loss_sum(
    logits: tf.Tensor, logit_lengths: tf.Tensor, labels: tf.Tensor, label_lengths: tf.Tensor
) -> tf.Tensor:
    """Summed CTC negative log-likelihood: logits [B, S, V], labels [B, L] (no bos/eos)."""
    losses = tf.nn.ctc_loss(
        labels=tf.cast(labels, tf.int32),
        logits=tf.cast(logits, tf.float32),
        label_length=tf.cast(label_lengths, tf.int32),
        logit_length=tf.cast(logit_lengths, tf.int32),
        logits_time_major=False,
        blank_index=BLANK_ID,
    )
    return tf.reduce_sum(losses)


def ctc_greedy_search(logits: tf.Tensor, lengths: tf.Tensor) -> dict:
    """Best path: argmax per frame, merge repeats, drop blanks -> ids [B, L], lengths [B]."""
    best = tf.argmax(logits, axis=-1, output_type=tf.int32)
    mask = tf.sequence_mask(lengths, tf.shape(best)[1])
    previous = tf.pad(best[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
    keep = mask & (best != BLANK_ID) & (best != previous)
    ragged = tf.ragged.boolean_mask(best, keep)
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    path_scores = tf.reduce_sum(tf.where(mask, tf.reduce_max(log_probs, axis=-1), 0.0), axis=1)
    return {
        "ids": ragged.to_tensor(default_value=BLANK_ID),
        "lengths": tf.cast(ragged.row_lengths(), tf.int32),
        "scores": path_scores,
    }
