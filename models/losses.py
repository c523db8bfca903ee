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


def sampled_sequence_loss(projection, vectors, labels, lengths) -> tuple[tf.Tensor, tf.Tensor]:
    """Sampled-softmax loss summed over real tokens, as sequence_cross_entropy's counterpart.

    projection: a SampledSoftmaxProjection; vectors [B, T, U], labels [B, T], lengths [B] ->
    (loss sum, number of real tokens). Only the real tokens are scored.
    """
    mask = sequence_mask(lengths, tf.shape(labels)[1])
    losses = projection.sampled_loss(
        tf.cast(tf.boolean_mask(vectors, mask), tf.float32), tf.boolean_mask(labels, mask)
    )
    return tf.reduce_sum(losses), tf.cast(tf.shape(losses)[0], tf.float32)


def frame_places(memory_lengths: tf.Tensor, frames) -> tf.Tensor:
    """Each frame's centre as a fraction of its clip: [B, frames], memory_lengths [B]."""
    num_frames = tf.cast(tf.maximum(memory_lengths, 1), tf.float32)[:, None]
    return (tf.cast(tf.range(frames), tf.float32)[None, :] + 0.5) / num_frames


def guided_attention_penalty(
    alignments: tf.Tensor,
    target_lengths: tf.Tensor,
    memory_lengths: tf.Tensor,
    width: float = 0.2,
    spans: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Attention mass far from the diagonal, summed over real output steps.

    alignments [B, N, T] (output step n attends to memory step t), target_lengths [B] (N_b),
    memory_lengths [B] (T_b) -> (penalty sum, number of real output steps). Each weight
    costs 1 - exp(-(n/N_b - u)^2 / (2 width^2)) (Tachibana et al. 2017), u the frame's place
    in the span: a monotonic prior that keeps the decoder reading the frames in order instead
    of the encoder's ends. spans [B, 2] (start, end as fractions of the clip, e.g. where its
    first word starts and its last ends) lay the diagonal over the speech alone, so frames of
    leading and trailing silence cost like any frame off the path; None: the whole clip.
    """
    alignments = tf.cast(alignments, tf.float32)
    steps, frames = tf.shape(alignments)[1], tf.shape(alignments)[2]
    n = tf.cast(tf.range(steps), tf.float32)[None, :, None]
    num_steps = tf.cast(tf.maximum(target_lengths, 1), tf.float32)[:, None, None]
    place = frame_places(memory_lengths, frames)[:, None, :]
    if spans is not None:
        spans = tf.cast(spans, tf.float32)
        start, end = spans[:, 0, None, None], spans[:, 1, None, None]
        place = (place - start) / tf.maximum(end - start, 1e-3)
    distance = (n + 0.5) / num_steps - place
    cost = 1.0 - tf.exp(-tf.square(distance) / (2.0 * width**2))
    step_mask = tf.cast(sequence_mask(target_lengths, steps), tf.float32)
    penalty = tf.reduce_sum(alignments * cost, axis=-1) * step_mask
    return tf.reduce_sum(penalty), tf.reduce_sum(step_mask)


def word_window_penalty(
    alignments: tf.Tensor,
    target_lengths: tf.Tensor,
    memory_lengths: tf.Tensor,
    windows: tf.Tensor,
    width: float = 0.03,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Attention mass outside the frames where each output's word is spoken.

    alignments [B, N, T], target_lengths [B], memory_lengths [B], windows [B, N, 2] (start,
    end of each output step's word as fractions of the clip; start < 0: the step is free,
    as spaces and eos are) -> (penalty sum, number of constrained output steps). A weight at
    distance d outside its window costs 1 - exp(-d^2 / (2 width^2)), so the frames just
    beside a word cost little (word timings are approximate) and the far ones cost 1. Where
    the diagonal prior only says "read in order", this one says where, which the diagonal
    cannot when words are spoken at uneven rates.
    """
    alignments = tf.cast(alignments, tf.float32)
    steps, frames = tf.shape(alignments)[1], tf.shape(alignments)[2]
    windows = tf.cast(windows[:, :steps], tf.float32)
    start, end = windows[..., 0:1], windows[..., 1:2]
    place = frame_places(memory_lengths, frames)[:, None, :]
    outside = tf.maximum(tf.maximum(start - place, place - end), 0.0)
    cost = 1.0 - tf.exp(-tf.square(outside) / (2.0 * width**2))
    constrained = tf.cast(sequence_mask(target_lengths, steps), tf.float32) * tf.cast(
        start[..., 0] >= 0.0, tf.float32
    )
    penalty = tf.reduce_sum(alignments * cost, axis=-1) * constrained
    return tf.reduce_sum(penalty), tf.reduce_sum(constrained)


def word_frame_cross_entropy(
    logits: tf.Tensor,
    memory_lengths: tf.Tensor,
    labels: tf.Tensor,
    target_lengths: tf.Tensor,
    windows: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Each frame inside a timed word names that word's letters.

    logits [B, T, V] (one row per encoder frame), memory_lengths [B], labels [B, L] with
    target_lengths [B], windows [B, L, 2] (as in word_window_penalty) -> (cross-entropy sum,
    number of frames inside a timed word). A frame's target spreads evenly over the labels
    whose word window holds it, so a one-letter word (GRID's letter slot) is a one-hot target
    and a longer word a bag of its letters. Unlike CTC it needs no alignment to be learnt
    first, so the encoder is told what each frame shows from the first step.
    """
    logits = tf.cast(logits, tf.float32)
    frames, steps = tf.shape(logits)[1], tf.shape(labels)[1]
    windows = tf.cast(windows[:, :steps], tf.float32)
    start, end = windows[:, None, :, 0], windows[:, None, :, 1]
    place = frame_places(memory_lengths, frames)[:, :, None]
    timed = tf.logical_and(start >= 0.0, sequence_mask(target_lengths, steps)[:, None, :])
    inside = tf.cast(timed & (place >= start) & (place < end), tf.float32)  # [B, T, L]
    targets = tf.einsum("btl,blv->btv", inside, tf.one_hot(labels, tf.shape(logits)[-1]))
    letters = tf.reduce_sum(targets, axis=-1)
    targets = targets / tf.maximum(letters, 1.0)[..., None]
    cross_entropy = -tf.reduce_sum(targets * tf.nn.log_softmax(logits, axis=-1), axis=-1)
    counted = tf.cast(letters > 0, tf.float32) * tf.cast(
        sequence_mask(memory_lengths, frames), tf.float32
    )
    return tf.reduce_sum(cross_entropy * counted), tf.reduce_sum(counted)
