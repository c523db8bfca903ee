"""Decoding inside the graph with stock TensorFlow ops: greedy and batched beam search.

Both call `decoder.step` in a tf.while_loop, so they compile into an exported SavedModel and
run in stock TensorFlow Serving (no custom ops). Outputs:
    ids [B, T] (ids after the end are eos), lengths [B] (tokens before eos), scores [B],
    alignments [B, T, S].
"""

import tensorflow as tf


def max_decode_lengths(
    input_lengths: tf.Tensor, max_length_ratio: float, max_length: int
) -> tf.Tensor:
    """Per-example step limit [B]: ratio * source length + 10, capped at max_length."""
    limit = tf.cast(tf.cast(input_lengths, tf.float32) * max_length_ratio, tf.int32) + 10
    return tf.minimum(limit, max_length)


def _prepare(model, inputs, input_lengths):
    memory, memory_lengths, encoder_state = model.encode(inputs, input_lengths, training=False)
    prepared = model.decoder.prepare_memory(memory, memory_lengths)
    return prepared, model.decoder.initial_state(encoder_state, prepared)


def greedy_search(model, inputs, input_lengths, bos_id: int, eos_id: int, max_lengths) -> dict:
    """Picks the most likely token at each step until eos or the step limit."""
    memory, state = _prepare(model, inputs, input_lengths)
    batch_size = tf.shape(input_lengths)[0]
    num_steps = tf.reduce_max(max_lengths)
    tokens = tf.fill([batch_size], bos_id)
    finished = tf.zeros([batch_size], tf.bool)
    lengths = tf.zeros([batch_size], tf.int32)
    scores = tf.zeros([batch_size], tf.float32)
    ids_ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
    align_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)

    def cond(t, tokens, state, finished, lengths, scores, ids_ta, align_ta):
        return tf.logical_and(t < num_steps, tf.logical_not(tf.reduce_all(finished)))

    def body(t, tokens, state, finished, lengths, scores, ids_ta, align_ta):
        logits, state, alignment = model.decoder.step(tokens, state, memory)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        next_tokens = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
        next_tokens = tf.where(t + 1 >= max_lengths, eos_id, next_tokens)
        next_tokens = tf.where(finished, eos_id, next_tokens)
        token_log_probs = tf.gather(log_probs, next_tokens, batch_dims=1)
        scores += tf.where(finished, 0.0, token_log_probs)
        ended = tf.logical_or(finished, next_tokens == eos_id)
        lengths += tf.cast(tf.logical_not(ended), tf.int32)
        return (
            t + 1,
            next_tokens,
            state,
            ended,
            lengths,
            scores,
            ids_ta.write(t, next_tokens),
            align_ta.write(t, tf.cast(alignment, tf.float32)),
        )

    _, _, _, _, lengths, scores, ids_ta, align_ta = tf.while_loop(
        cond, body, (tf.constant(0), tokens, state, finished, lengths, scores, ids_ta, align_ta)
    )
    return {
        "ids": tf.transpose(ids_ta.stack(), [1, 0]),
        "lengths": lengths,
        "scores": scores,
        "alignments": tf.transpose(align_ta.stack(), [1, 0, 2]),
    }


def _keep_static_shapes(new, old):
    return tf.nest.map_structure(lambda n, o: tf.ensure_shape(n, o.shape), new, old)


def _tile_beams(tensor, beam_size):
    return tf.repeat(tensor, beam_size, axis=0)


def _gather_beams(tensor, flat_indices):
    return tf.gather(tensor, flat_indices, axis=0)


def beam_search(
    model,
    inputs,
    input_lengths,
    bos_id: int,
    eos_id: int,
    max_lengths,
    beam_size: int = 5,
    length_penalty: float = 0.6,
) -> dict:
    """Batched beam search; hypotheses ranked by log_prob / length**length_penalty."""
    memory, state = _prepare(model, inputs, input_lengths)
    batch_size = tf.shape(input_lengths)[0]
    source_length = tf.shape(memory["memory"])[1]
    memory = tf.nest.map_structure(lambda x: _tile_beams(x, beam_size), memory)
    state = tf.nest.map_structure(lambda x: _tile_beams(x, beam_size), state)
    beam_max_lengths = tf.reshape(_tile_beams(max_lengths, beam_size), [batch_size, beam_size])
    num_steps = tf.reduce_max(max_lengths)
    vocab_size = model.decoder.vocab_size
    neg_inf = tf.constant(-1e9, tf.float32)

    # Only the first beam is live at the start, so the first top-k draws K distinct tokens.
    log_probs = tf.tile(
        tf.concat([[0.0], tf.fill([beam_size - 1], neg_inf)], axis=0)[None], [batch_size, 1]
    )
    finished = tf.zeros([batch_size, beam_size], tf.bool)
    lengths = tf.zeros([batch_size, beam_size], tf.int32)
    tokens = tf.fill([batch_size * beam_size], bos_id)
    sequences = tf.fill([batch_size, beam_size, num_steps], eos_id)
    alignments = tf.zeros([batch_size, beam_size, num_steps, source_length], tf.float32)
    eos_only = tf.where(tf.range(vocab_size) == eos_id, 0.0, neg_inf)
    batch_offsets = tf.range(batch_size)[:, None] * beam_size

    def cond(t, tokens, state, log_probs, finished, lengths, sequences, alignments):
        return tf.logical_and(t < num_steps, tf.logical_not(tf.reduce_all(finished)))

    def body(t, tokens, state, log_probs, finished, lengths, sequences, alignments):
        loop_vars = (tokens, state, log_probs, finished, lengths, sequences, alignments)
        logits, state, alignment = model.decoder.step(tokens, state, memory)
        step_log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        step_log_probs = tf.reshape(step_log_probs, [batch_size, beam_size, vocab_size])
        must_end = (t + 1 >= beam_max_lengths)[:, :, None]
        step_log_probs = tf.where(
            must_end,
            tf.where(tf.range(vocab_size) == eos_id, step_log_probs, neg_inf),
            step_log_probs,
        )
        # A finished hypothesis may only be extended by eos, at no cost and no length.
        step_log_probs = tf.where(finished[:, :, None], eos_only, step_log_probs)
        total = log_probs[:, :, None] + step_log_probs
        new_lengths = lengths + tf.cast(tf.logical_not(finished), tf.int32)
        normaliser = tf.pow(tf.cast(tf.maximum(new_lengths, 1), tf.float32), length_penalty)
        normalised = total / normaliser[:, :, None]
        _, top = tf.math.top_k(tf.reshape(normalised, [batch_size, -1]), k=beam_size)
        parents = top // vocab_size
        next_tokens = top % vocab_size
        log_probs = tf.gather(tf.reshape(total, [batch_size, -1]), top, batch_dims=1)
        lengths = tf.gather(new_lengths, parents, batch_dims=1)
        finished = tf.logical_or(tf.gather(finished, parents, batch_dims=1), next_tokens == eos_id)
        flat_parents = tf.reshape(parents + batch_offsets, [-1])
        state = tf.nest.map_structure(lambda x: _gather_beams(x, flat_parents), state)
        alignment = tf.reshape(
            _gather_beams(tf.cast(alignment, tf.float32), flat_parents),
            [batch_size, beam_size, 1, source_length],
        )
        step_one_hot = tf.one_hot(t, num_steps, dtype=tf.int32)
        sequences = tf.gather(sequences, parents, batch_dims=1)
        sequences = sequences * (1 - step_one_hot) + next_tokens[:, :, None] * step_one_hot
        alignments = tf.gather(alignments, parents, batch_dims=1)
        alignments += alignment * tf.cast(step_one_hot, tf.float32)[:, None]
        new_vars = (
            tf.reshape(next_tokens, [-1]),
            state,
            log_probs,
            finished,
            lengths,
            sequences,
            alignments,
        )
        return (t + 1,) + _keep_static_shapes(new_vars, loop_vars)

    t, _, _, log_probs, finished, lengths, sequences, alignments = tf.while_loop(
        cond,
        body,
        (tf.constant(0), tokens, state, log_probs, finished, lengths, sequences, alignments),
    )
    scores = log_probs / tf.pow(tf.cast(tf.maximum(lengths, 1), tf.float32), length_penalty)
    best = tf.argmax(scores, axis=1, output_type=tf.int32)
    ids = tf.gather(sequences, best, batch_dims=1)[:, :t]
    best_lengths = tf.gather(lengths, best, batch_dims=1)
    token_lengths = tf.reduce_sum(
        tf.cast(tf.cumsum(tf.cast(ids == eos_id, tf.int32), axis=1) == 0, tf.int32), axis=1
    )
    return {
        "ids": ids,
        "lengths": tf.minimum(token_lengths, best_lengths),
        "scores": tf.gather(scores, best, batch_dims=1),
        "alignments": tf.gather(alignments, best, batch_dims=1)[:, :t],
    }
