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


def _batch_size(input_lengths) -> tf.Tensor:
    """Examples in the batch; input_lengths is [B], or {stream: [B]} for a multi-stream model."""
    return tf.shape(tf.nest.flatten(input_lengths)[0])[0]


def _prepare(model, inputs, input_lengths):
    memory, memory_lengths, encoder_state = model.encode(inputs, input_lengths, training=False)
    prepared = model.decoder.prepare_memory(memory, memory_lengths)
    return prepared, model.decoder.initial_state(encoder_state, prepared)


def candidate_mask(candidates, vocab_size: int, eos_id: int) -> tf.Tensor:
    """Candidate-list decoding: ids int [B, C] (-1 pads) -> bool [B, V], the words each
    sentence may output (its candidates, and eos), built by scatter so no [B, C, V] exists."""
    candidates = tf.convert_to_tensor(candidates, tf.int32)
    valid = candidates >= 0
    rows = tf.broadcast_to(tf.range(tf.shape(candidates)[0])[:, None], tf.shape(candidates))
    indices = tf.stack([tf.boolean_mask(rows, valid), tf.boolean_mask(candidates, valid)], 1)
    hits = tf.scatter_nd(
        indices, tf.ones([tf.shape(indices)[0]], tf.int32), [tf.shape(candidates)[0], vocab_size]
    )
    return (hits > 0) | (tf.range(vocab_size) == eos_id)[None, :]


def _candidate_outputs(model, candidates, eos_id: int) -> dict:
    """decoder.step's keyword for candidate ids [B, C]: the projection rows of the union of
    the batch's lists and eos, so each step computes the logits of those words alone (the
    per-sentence mask then keeps every sentence inside its own list)."""
    if candidates is None:
        return {}
    candidates = tf.reshape(tf.convert_to_tensor(candidates, tf.int32), [-1])
    listed = tf.concat([tf.boolean_mask(candidates, candidates >= 0), [eos_id]], axis=0)
    return {"listed": model.decoder.listed_projection(tf.unique(listed).y)}


def _restricted_log_probs(logits, allowed):
    """Log-softmax over the allowed words only (all words when allowed is None)."""
    logits = tf.cast(logits, tf.float32)
    if allowed is not None:
        logits = tf.where(allowed, logits, -1e9)
    return tf.nn.log_softmax(logits, axis=-1)


def greedy_search(
    model, inputs, input_lengths, bos_id: int, eos_id: int, max_lengths, candidate_ids=None
) -> dict:
    """Picks the most likely token at each step until eos or the step limit.

    candidate_ids: optional ids [B, C] per sentence (-1 pads); the softmax then runs over them
    and eos only (candidate-list decoding). The whole vocabulary gives the full search.
    """
    memory, state = _prepare(model, inputs, input_lengths)
    batch_size = _batch_size(input_lengths)
    allowed = None
    if candidate_ids is not None:
        allowed = candidate_mask(candidate_ids, model.decoder.vocab_size, eos_id)
    restricted = _candidate_outputs(model, candidate_ids, eos_id)
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
        logits, state, alignment = model.decoder.step(tokens, state, memory, **restricted)
        log_probs = _restricted_log_probs(logits, allowed)
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


class GrammarScorer:
    """Allows only labels the automaton accepts; eos only where a sentence may end.

    transitions: int32 [Q, V] (next state or -1), final_states: bool [Q]; state 0 is the start.
    """

    key = "grammar_state"

    def __init__(self, transitions, final_states, eos_id: int):
        self.transitions = tf.constant(transitions, tf.int32)
        self.final_states = tf.constant(final_states, tf.bool)
        self.eos_id = eos_id

    def initial_state(self, num_hypotheses) -> dict:
        return {self.key: tf.zeros([num_hypotheses], tf.int32)}

    def score(self, state, tokens) -> tuple[tf.Tensor, dict, dict]:
        """Additive log-scores [N, V] (0 or -inf) and the per-label next states [N, V]."""
        del tokens
        current = state[self.key]
        alive = (current >= 0)[:, None]
        next_states = tf.gather(self.transitions, tf.maximum(current, 0))
        can_end = tf.gather(self.final_states, tf.maximum(current, 0))
        is_eos = tf.range(tf.shape(next_states)[1]) == self.eos_id
        allowed = alive & tf.where(is_eos[None, :], can_end[:, None], next_states >= 0)
        scores = tf.where(allowed, 0.0, -1e9)
        candidates = {self.key: tf.where(is_eos[None, :], state[self.key][:, None], next_states)}
        return scores, candidates, {}


class CTCPrefixScorer:
    """Scores each extension of a hypothesis by its CTC prefix probability (Watanabe et al.).

    For prefix g with forward variables r_n(g), r_b(g) over the encoder frames, extending by
    label c gives the probability of all alignments whose labelling starts with g + c; eos gets
    the probability of exactly g. The score added is weight * (psi(g + c) - psi(g)).
    """

    def __init__(
        self,
        ctc_logits,
        ctc_lengths,
        weight: float,
        eos_id: int,
        blank_id: int = 0,
        bos_id: int = 2,
        key: str = "ctc",
    ):
        # key names this scorer's state, so several CTC heads can score one search.
        self.key = key
        self.log_probs = tf.nn.log_softmax(tf.cast(ctc_logits, tf.float32), axis=-1)  # [N,T,V]
        self.lengths = tf.cast(ctc_lengths, tf.int32)
        self.weight = weight
        self.eos_id, self.blank_id, self.bos_id = eos_id, blank_id, bos_id

    def initial_state(self, num_hypotheses) -> dict:
        del num_hypotheses
        frames = tf.shape(self.log_probs)[1]
        valid = tf.sequence_mask(self.lengths, frames)
        blank = tf.where(valid, self.log_probs[:, :, self.blank_id], 0.0)
        return {
            f"{self.key}_r_label": tf.fill(tf.shape(blank), -1e30),
            f"{self.key}_r_blank": tf.math.cumsum(blank, axis=1),
            f"{self.key}_psi": tf.zeros([tf.shape(blank)[0]]),
            f"{self.key}_last": tf.fill([tf.shape(blank)[0]], -1),
        }

    def score(self, state, tokens) -> tuple[tf.Tensor, dict, dict]:
        del tokens
        log_probs, neg_inf = self.log_probs, tf.constant(-1e30)
        num_hyps, frames = tf.shape(log_probs)[0], tf.shape(log_probs)[1]
        vocab = log_probs.shape[-1]
        labels = tf.range(vocab)
        r_label, r_blank = state[f"{self.key}_r_label"], state[f"{self.key}_r_blank"]  # [N, T]
        empty = tf.equal(state[f"{self.key}_last"], -1)
        repeat = labels[None, :] == state[f"{self.key}_last"][:, None]  # [N, V]
        # phi[n, c, t]: prefix g ends at frame t so that c can start at t + 1.
        phi = tf.where(
            repeat[:, :, None],
            r_blank[:, None, :],
            tf.reduce_logsumexp(tf.stack([r_blank, r_label]), 0)[:, None, :],
        )
        label_frames = tf.transpose(log_probs, [1, 0, 2])  # [T, N, V]
        blank_frames = label_frames[:, :, self.blank_id]  # [T, N]
        phi_frames = tf.transpose(phi, [2, 0, 1])  # [T, N, V]
        first = tf.where(empty[:, None], label_frames[0], neg_inf)  # r_label(h) at t = 0
        start = (first, tf.fill(tf.shape(first), neg_inf), first)

        def step(carry, inputs):
            label_prev, blank_prev, psi = carry
            label_lp, blank_lp, phi_prev, t = inputs
            label_now = tf.reduce_logsumexp(tf.stack([label_prev, phi_prev]), 0) + label_lp
            blank_now = (
                tf.reduce_logsumexp(tf.stack([blank_prev, label_prev]), 0) + blank_lp[:, None]
            )
            active = (t < self.lengths)[:, None]
            psi = tf.where(
                active, tf.reduce_logsumexp(tf.stack([psi, phi_prev + label_lp]), 0), psi
            )
            return (
                tf.where(active, label_now, label_prev),
                tf.where(active, blank_now, blank_prev),
                psi,
            )

        steps = tf.range(1, frames)
        label_seq, blank_seq, psi_seq = tf.scan(
            step, (label_frames[1:], blank_frames[1:], phi_frames[:-1], steps), initializer=start
        )
        r_label_new = tf.concat([start[0][None], label_seq], 0)  # [T, N, V]
        r_blank_new = tf.concat([start[1][None], blank_seq], 0)
        psi = tf.concat([start[2][None], psi_seq], 0)[-1]  # [N, V]
        last_frame = tf.maximum(self.lengths - 1, 0)
        end_score = tf.reduce_logsumexp(
            tf.stack(
                [
                    tf.gather(r_label, last_frame, batch_dims=1),
                    tf.gather(r_blank, last_frame, batch_dims=1),
                ]
            ),
            0,
        )
        is_eos = labels == self.eos_id
        psi = tf.where(is_eos[None, :], end_score[:, None], psi)
        unusable = (labels == self.blank_id) | (labels == self.bos_id)
        psi = tf.where(unusable[None, :], neg_inf, psi)
        # psi(g + c) <= psi(g); a dead parent (psi(g) = -inf) must not turn into a gain.
        dead = (state[f"{self.key}_psi"] < -1e29)[:, None]
        scores = tf.where(
            dead, -1e9, self.weight * tf.minimum(psi - state[f"{self.key}_psi"][:, None], 0.0)
        )
        del num_hyps
        candidates = {
            f"{self.key}_r_label": tf.transpose(r_label_new, [1, 2, 0]),  # [N, V, T]
            f"{self.key}_r_blank": tf.transpose(r_blank_new, [1, 2, 0]),
            f"{self.key}_psi": psi,
            f"{self.key}_last": tf.tile(labels[None, :], [tf.shape(psi)[0], 1]),
        }
        return tf.clip_by_value(scores, -1e9, 0.0), candidates, {}


class LanguageModelScorer:
    """Shallow fusion: adds weight * log p_LM(label | prefix), plus length_bonus for every label
    but eos, so the language model's preference for short outputs can be paid back.

    The language model (models.language_model) shares the search's vocabulary. Its state
    lives in the decoder state under "lm_" keys and is advanced by the token the hypothesis
    chose last, exactly as the decoder's own state is, so it needs no per-label candidates.
    weight and length_bonus may be tensors (a per-request option of an export).
    """

    prefix = "lm_"

    def __init__(self, language_model, weight, eos_id: int, length_bonus=0.0):
        self.language_model = language_model
        self.weight, self.length_bonus, self.eos_id = weight, length_bonus, eos_id

    def initial_state(self, num_hypotheses) -> dict:
        state = self.language_model.initial_state(num_hypotheses)
        return {self.prefix + key: value for key, value in state.items()}

    def score(self, state, tokens) -> tuple[tf.Tensor, dict, dict]:
        own = {
            key[len(self.prefix) :]: value
            for key, value in state.items()
            if key.startswith(self.prefix)
        }
        logits, new_state = self.language_model.step(tokens, own)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        not_eos = tf.cast(tf.range(tf.shape(log_probs)[1]) != self.eos_id, tf.float32)
        scores = self.weight * log_probs + self.length_bonus * not_eos[None, :]
        updates = {self.prefix + key: value for key, value in new_state.items()}
        return scores, {}, updates


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
    ctc_weight: float = 0.0,
    grammar=None,
    language_model=None,
    lm_weight=0.0,
    lm_length_bonus=0.0,
    candidate_ids=None,
) -> dict:
    """Batched beam search; hypotheses ranked by log_prob / length**length_penalty.

    candidate_ids: optional ids [B, C] per sentence (-1 pads), as in greedy_search.

    Joint CTC/attention decoding (ctc_weight > 0, needs the model's CTC head) scores each
    extension by (1 - ctc_weight) * attention log-prob + ctc_weight * CTC prefix score;
    `grammar` = (transitions, final_states) restricts outputs to an automaton's language.
    `language_model` (with the same vocabulary) adds lm_weight * its log-prob of each label
    plus lm_length_bonus per label but eos (shallow fusion); lm_weight 0 gives exactly the
    search without it. A scorer's state lives in the decoder state, so it follows the beams;
    its per-label candidate states are picked by the chosen label.
    """
    memory, state = _prepare(model, inputs, input_lengths)
    scorers = []
    if grammar is not None:
        scorers.append(GrammarScorer(grammar[0], grammar[1], eos_id))
    if ctc_weight > 0:
        if model.ctc_head is None:
            raise ValueError("ctc_weight > 0 needs a model with a CTC head")
        # A model may score with several CTC heads (a multi-stream view reading all of its
        # streams' heads), each with its share of the CTC weight.
        for index, (ctc_logits, ctc_lengths, share) in enumerate(model.ctc_scores(memory)):
            scorers.append(
                CTCPrefixScorer(
                    _tile_beams(ctc_logits, beam_size),
                    _tile_beams(ctc_lengths, beam_size),
                    ctc_weight * share,
                    eos_id,
                    bos_id=bos_id,
                    key=f"ctc{index}" if index else "ctc",
                )
            )
    if language_model is not None:
        if language_model.vocab_size != model.decoder.vocab_size:
            raise ValueError(
                f"the language model has {language_model.vocab_size} labels, the decoder "
                f"{model.decoder.vocab_size}: fusion needs one vocabulary"
            )
        scorers.append(LanguageModelScorer(language_model, lm_weight, eos_id, lm_length_bonus))
    attention_weight = 1.0 - ctc_weight
    batch_size = _batch_size(input_lengths)
    source_length = tf.shape(memory["mask"])[1]
    memory = tf.nest.map_structure(lambda x: _tile_beams(x, beam_size), memory)
    state = tf.nest.map_structure(lambda x: _tile_beams(x, beam_size), state)
    for scorer in scorers:
        state.update(scorer.initial_state(_batch_size(input_lengths) * beam_size))
    beam_max_lengths = tf.reshape(_tile_beams(max_lengths, beam_size), [batch_size, beam_size])
    num_steps = tf.reduce_max(max_lengths)
    vocab_size = model.decoder.vocab_size
    neg_inf = tf.constant(-1e9, tf.float32)
    allowed = None
    if candidate_ids is not None:
        allowed = _tile_beams(candidate_mask(candidate_ids, vocab_size, eos_id), beam_size)
    restricted = _candidate_outputs(model, candidate_ids, eos_id)

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
        logits, new_state, alignment = model.decoder.step(tokens, state, memory, **restricted)
        step_log_probs = attention_weight * _restricted_log_probs(logits, allowed)
        candidates, updates = {}, {}
        for scorer in scorers:
            extra, scorer_candidates, scorer_updates = scorer.score(state, tokens)
            step_log_probs += extra
            candidates.update(scorer_candidates)
            updates.update(scorer_updates)
        state = {**state, **new_state, **updates}
        if allowed is not None:  # whatever the other scorers add, the list stays closed
            step_log_probs = tf.where(allowed, step_log_probs, neg_inf)
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
        flat_tokens = tf.reshape(next_tokens, [-1])
        for key, value in candidates.items():
            state[key] = tf.gather(_gather_beams(value, flat_parents), flat_tokens, batch_dims=1)
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
