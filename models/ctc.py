"""CTC on the encoder: loss and greedy decoding with stock TensorFlow ops.

The blank is id 0, the pad id: padding never appears inside a label sequence, so the
target vocabulary serves both the attention decoder and the CTC head.
"""

import numpy as np
import tensorflow as tf

BLANK_ID = 0


def ctc_loss_sum(
    logits: tf.Tensor,
    logit_lengths: tf.Tensor,
    labels: tf.Tensor,
    label_lengths: tf.Tensor,
    example_weights: tf.Tensor | None = None,
) -> tf.Tensor:
    """Summed CTC negative log-likelihood: logits [B, S, V], labels [B, L] (no bos/eos);
    example_weights [B] (e.g. 0 for an example whose stream was dropped) scale each term."""
    losses = tf.nn.ctc_loss(
        labels=tf.cast(labels, tf.int32),
        logits=tf.cast(logits, tf.float32),
        label_length=tf.cast(label_lengths, tf.int32),
        logit_length=tf.cast(logit_lengths, tf.int32),
        logits_time_major=False,
        blank_index=BLANK_ID,
    )
    if example_weights is not None:
        losses *= tf.cast(example_weights, losses.dtype)
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


def ctc_grammar_best_path(
    logits: tf.Tensor, lengths: tf.Tensor, transitions: np.ndarray, final_states: np.ndarray
) -> dict:
    """The best single CTC path whose labelling the grammar accepts: greedy's grammar twin.

    Exact (Viterbi over the CTC graph of the automaton, states and arcs as in
    ctc_prefix_beam_search), so when greedy's own output is a sentence of the grammar it is
    returned unchanged, and otherwise the most likely path among the grammar's sentences;
    a width-1 prefix search instead commits to each label as it goes and cannot take one back.
    A clip too short for any sentence gets an empty output with score -1e30.
    Returns ids [B, L], lengths [B], scores [B] (log-probability of the path).
    """
    # Hand-written in stock ops: it runs inside the exported graph (TensorFlow Serving, no
    # custom ops), and no TensorFlow op decodes CTC within an automaton's sentences.
    graph = _BestPathGraph(transitions, final_states)
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    lengths = tf.cast(lengths, tf.int32)
    scores, backs = graph.forward(log_probs, lengths)
    final_scores = tf.where(graph.final_nodes[None, :], scores, _NEG_INF)
    last_node = tf.argmax(final_scores, axis=1, output_type=tf.int32)
    nodes = _backtrack(backs, last_node)  # [B, T]
    labels = tf.gather(graph.node_labels, nodes)
    previous = tf.pad(nodes[:, :-1], [[0, 0], [1, 0]])  # blank node 0 before the first frame
    emits = (labels != BLANK_ID) & (nodes != previous)
    emits &= tf.sequence_mask(lengths, tf.shape(nodes)[1])
    best = tf.reduce_max(final_scores, axis=1)
    emits &= (best > _NEG_INF / 2)[:, None]
    ragged = tf.ragged.boolean_mask(labels, emits)
    return {
        "ids": ragged.to_tensor(default_value=BLANK_ID),
        "lengths": tf.cast(ragged.row_lengths(), tf.int32),
        "scores": best,
    }


_NEG_INF = -1e30


class _BestPathGraph:
    """The CTC graph of a grammar automaton, built once outside the graph from its arrays.

    Node q < Q: in automaton state q, the last frame blank (or no frame yet); node Q + i:
    in the state of arc i's target, the last frame that arc's label. Each node lists its
    predecessors (padded with a node that is never alive), so a frame is one gather and max.
    """

    def __init__(self, transitions: np.ndarray, final_states: np.ndarray):
        transitions = np.asarray(transitions)
        num_states = transitions.shape[0]
        sources, arc_labels = np.nonzero(
            (transitions >= 0) & (np.arange(transitions.shape[1]) != BLANK_ID)
        )
        targets = transitions[sources, arc_labels]
        arcs = sorted(set(zip(targets.tolist(), arc_labels.tolist(), strict=True)))
        node_of_arc = {arc: num_states + i for i, arc in enumerate(arcs)}
        node_state = np.array(list(range(num_states)) + [q for q, _ in arcs])
        label_nodes_in = [[] for _ in range(num_states)]
        for (state, label), node in node_of_arc.items():
            label_nodes_in[state].append((node, label))
        predecessors = [[q, *(n for n, _ in label_nodes_in[q])] for q in range(num_states)]
        for (target, label), node in node_of_arc.items():
            into = [node]  # the same label again, merged
            for source in sources[(targets == target) & (arc_labels == label)]:
                into.append(int(source))
                into.extend(n for n, other in label_nodes_in[source] if other != label)
            predecessors.append(into)
        dead = len(predecessors)
        width = max(len(p) for p in predecessors)
        padded = [p + [dead] * (width - len(p)) for p in predecessors]
        self.num_nodes = dead
        self.predecessors = tf.constant(padded, tf.int32)  # [N, P]
        self.node_labels = tf.constant([BLANK_ID] * num_states + [v for _, v in arcs], tf.int32)
        self.final_nodes = tf.constant(np.asarray(final_states, bool)[node_state])

    def forward(self, log_probs: tf.Tensor, lengths: tf.Tensor):
        """Best path score into each node after each example's last frame [B, N], and every
        frame's back-pointers [T, B, N] (a node points at itself past an example's end)."""
        batch, frames = tf.shape(log_probs)[0], tf.shape(log_probs)[1]
        start = tf.one_hot(tf.zeros([batch], tf.int32), self.num_nodes, 0.0, _NEG_INF)
        itself = tf.tile(tf.range(self.num_nodes)[None], [batch, 1])

        def body(t, scores, backs):
            alive = tf.pad(scores, [[0, 0], [0, 1]], constant_values=_NEG_INF)
            candidates = tf.gather(alive, self.predecessors, axis=1)  # [B, N, P]
            choice = tf.argmax(candidates, axis=-1, output_type=tf.int32)
            emitted = tf.gather(log_probs[:, t], self.node_labels, axis=1)
            moved = tf.reduce_max(candidates, axis=-1) + emitted
            back = tf.transpose(tf.gather(self.predecessors, tf.transpose(choice), batch_dims=1))
            running = (t < lengths)[:, None]
            scores = tf.where(running, tf.maximum(moved, _NEG_INF), scores)
            return t + 1, scores, backs.write(t, tf.where(running, back, itself))

        backs = tf.TensorArray(tf.int32, size=frames)
        _, scores, backs = tf.while_loop(
            lambda t, *_: t < frames, body, (tf.constant(0), start, backs)
        )
        return scores, backs.stack()


def _backtrack(backs: tf.Tensor, last_node: tf.Tensor) -> tf.Tensor:
    """Nodes [B, T] of the best path ending in last_node [B], from back-pointers [T, B, N]."""
    earlier = tf.scan(
        lambda node, back: tf.gather(back, node, batch_dims=1),
        tf.reverse(backs[1:], axis=[0]),
        initializer=last_node,
    )
    return tf.transpose(tf.concat([tf.reverse(earlier, axis=[0]), last_node[None]], 0))


def _logaddexp(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    return tf.reduce_logsumexp(tf.stack([a, b]), axis=0)


def frames_to_finish(transitions: np.ndarray, final_states: np.ndarray) -> np.ndarray:
    """Fewest CTC frames that take each grammar state to a final state: int32 [Q].

    Each label costs a frame; a label equal to the one that entered the state (where one
    label enters it) costs a blank frame more, as CTC needs a blank between repeats. States
    that cannot finish get a large number. Computed once, outside the graph, from the data.
    """
    transitions = np.asarray(transitions)
    num_states, vocab_size = transitions.shape
    unreachable = np.iinfo(np.int32).max // 4
    entering = np.full(num_states, -1)
    for label in range(vocab_size):
        targets = transitions[:, label]
        for target in targets[targets >= 0]:
            entering[target] = label if entering[target] in (-1, label) else -2
    cost = 1 + (np.arange(vocab_size)[None, :] == entering[:, None]).astype(np.int64)
    need = np.where(np.asarray(final_states, bool), 0, unreachable).astype(np.int64)
    for _ in range(num_states):
        through = np.where(transitions >= 0, cost + need[np.maximum(transitions, 0)], unreachable)
        updated = np.minimum(need, through.min(axis=1))
        if np.array_equal(updated, need):
            break
        need = updated
    return np.minimum(need, unreachable).astype(np.int32)


def frames_to_finish_after_blank(transitions: np.ndarray, final_states: np.ndarray) -> np.ndarray:
    """frames_to_finish for an alignment whose last frame was blank: int32 [Q].

    After a blank even the label that entered the state may follow at once, so a prefix
    that waits on blank needs no extra frame before a repeat (GRID's "soon" spoken in a
    clip's last five frames, "s o _ o n", must not be pruned at its blank).
    """
    transitions = np.asarray(transitions)
    need = frames_to_finish(transitions, final_states).astype(np.int64)
    through = np.where(transitions >= 0, 1 + need[np.maximum(transitions, 0)], need.max())
    after_blank = np.where(np.asarray(final_states, bool), 0, through.min(axis=1))
    return np.minimum(after_blank, need).astype(np.int32)


def ctc_prefix_beam_search(
    logits: tf.Tensor,
    lengths: tf.Tensor,
    beam_size: int = 8,
    max_output_length: int = 64,
    transitions: tf.Tensor | None = None,
    final_states: tf.Tensor | None = None,
    language_model=None,
    lm_weight=0.0,
    lm_length_bonus=0.0,
    bos_id: int = 2,
    eos_id: int = 3,
) -> dict:
    """CTC prefix beam search in the graph: logits [B, S, V] -> best labelling per example.

    Each hypothesis is a labelling (prefix) with two log-probabilities: of all alignments so
    far that end in blank (pb) and in its last label (pnb); extensions that reproduce another
    live prefix are merged into it, so every prefix is scored by the sum over its alignments.
    An optional grammar is a deterministic automaton given as data: `transitions` [Q, V]
    (next state, or -1 where label v is not allowed in state q; state 0 is the start) and
    `final_states` bool [Q] (where a complete output may end). Under a grammar given as
    arrays, hypotheses that can no longer reach a final state in the frames left are pruned,
    so the beam (even of width 1) ends on complete outputs whenever the clip is long enough
    for one, however weak the model.
    Shallow fusion: a `language_model` (models.language_model, the CTC labels as its
    vocabulary) adds lm_weight * log p_LM(label | prefix) + lm_length_bonus to every extension
    and lm_weight * log p_LM(eos | labelling) to the final scores; lm_weight 0 leaves the
    search as it is without one.
    Returns ids [B, L], lengths [B], scores [B] (log-probability of the labelling).
    """
    logits = tf.cast(logits, tf.float32)
    lengths = tf.cast(lengths, tf.int32)
    batch_size = tf.shape(logits)[0]
    num_frames = tf.shape(logits)[1]
    vocab_size = logits.shape[-1]
    k, length_cap = beam_size, max_output_length
    neg_inf = tf.constant(-1e30, tf.float32)
    positions = tf.range(length_cap)
    labels = tf.range(vocab_size)
    if transitions is None:
        transitions = tf.zeros([1, vocab_size], tf.int32)
        final_states = tf.constant([True])
    need = need_after_blank = None
    if isinstance(transitions, np.ndarray):
        need = tf.constant(frames_to_finish(transitions, final_states))
        need_after_blank = tf.constant(frames_to_finish_after_blank(transitions, final_states))
    transitions = tf.cast(transitions, tf.int32)

    prefixes = tf.zeros([batch_size, k, length_cap], tf.int32)
    prefix_lengths = tf.zeros([batch_size, k], tf.int32)
    last = tf.fill([batch_size, k], -1)
    start = tf.concat([[0.0], tf.fill([k - 1], neg_inf)], axis=0)
    p_blank = tf.tile(start[None], [batch_size, 1])
    p_label = tf.fill([batch_size, k], neg_inf)
    states = tf.zeros([batch_size, k], tf.int32)
    fusion = _LanguageModelPrefixes(language_model, lm_weight, batch_size, k, vocab_size, bos_id)

    def body(t, prefixes, prefix_lengths, last, p_blank, p_label, states, lm):
        log_probs = tf.nn.log_softmax(logits[:, t], axis=-1)  # [B, V]
        total = _logaddexp(p_blank, p_label)
        alive = total > neg_inf / 2
        stay_blank = total + log_probs[:, BLANK_ID][:, None]
        repeat = tf.gather(log_probs, tf.maximum(last, 0), batch_dims=1)
        stay_label = tf.where(prefix_lengths > 0, p_label + repeat, neg_inf)

        same_as_last = labels[None, None, :] == last[:, :, None]
        base = tf.where(same_as_last, p_blank[:, :, None], total[:, :, None])
        extend = base + log_probs[:, None, :]
        if language_model is not None:
            extend += lm_weight * lm["log_probs"] + lm_length_bonus
        allowed = tf.gather(transitions, states) >= 0  # [B, K, V]
        allowed &= (labels != BLANK_ID)[None, None, :]
        allowed &= (prefix_lengths < length_cap)[:, :, None] & alive[:, :, None]
        if need is not None:
            # Frames after this one; an output that cannot finish in them is dropped.
            frames_left = (lengths - t - 1)[:, None, None]
            next_states = tf.gather(transitions, states)  # [B, K, V]
            allowed &= tf.gather(need, tf.maximum(next_states, 0)) <= frames_left
        extend = tf.where(allowed, extend, neg_inf)

        # child[b, p, j]: live prefix j equals live prefix p plus one label (last[j]).
        same = tf.equal(prefixes[:, :, None, :], prefixes[:, None, :, :])
        within = positions[None, None, None, :] < prefix_lengths[:, :, None, None]
        child = tf.reduce_all(same | ~within, axis=-1)
        child &= prefix_lengths[:, None, :] == prefix_lengths[:, :, None] + 1
        child &= alive[:, :, None] & alive[:, None, :]
        # into_child[b, p, j] = extend[b, p, last[b, j]]
        into_child = tf.gather(
            extend, tf.tile(tf.maximum(last, 0)[:, None, :], [1, k, 1]), batch_dims=2
        )
        merged = tf.reduce_logsumexp(tf.where(child, into_child, neg_inf), axis=1)
        stay_label = _logaddexp(stay_label, merged)
        last_one_hot = tf.one_hot(tf.maximum(last, 0), vocab_size)  # [B, K(j), V]
        taken = tf.matmul(tf.cast(child, tf.float32), last_one_hot) > 0
        extend = tf.where(taken, neg_inf, extend)

        if need is not None:
            frames_after = (lengths - t - 1)[:, None]
            can_finish = tf.gather(need_after_blank, states) <= frames_after
            stay_blank = tf.where(can_finish, stay_blank, neg_inf)
            can_finish = tf.gather(need, states) <= frames_after
            stay_label = tf.where(can_finish, stay_label, neg_inf)
        stay_total = _logaddexp(stay_blank, stay_label)
        stay_total = tf.where(alive, stay_total, neg_inf)
        candidates = tf.concat([stay_total, tf.reshape(extend, [batch_size, -1])], axis=1)
        _, top = tf.math.top_k(candidates, k=k)
        is_extension = top >= k
        parent = tf.where(is_extension, (top - k) // vocab_size, top)
        label = tf.where(is_extension, (top - k) % vocab_size, 0)

        parent_prefixes = tf.gather(prefixes, parent, batch_dims=1)
        parent_lengths = tf.gather(prefix_lengths, parent, batch_dims=1)
        write = tf.one_hot(parent_lengths, length_cap, dtype=tf.int32) * label[:, :, None]
        new_prefixes = tf.where(is_extension[:, :, None], parent_prefixes + write, parent_prefixes)
        new_lengths = parent_lengths + tf.cast(is_extension, tf.int32)
        new_last = tf.where(is_extension, label, tf.gather(last, parent, batch_dims=1))
        new_blank = tf.where(is_extension, neg_inf, tf.gather(stay_blank, parent, batch_dims=1))
        new_label = tf.where(
            is_extension,
            tf.gather(tf.reshape(extend, [batch_size, -1]), tf.maximum(top - k, 0), batch_dims=1),
            tf.gather(stay_label, parent, batch_dims=1),
        )
        parent_states = tf.gather(states, parent, batch_dims=1)
        new_states = tf.where(
            is_extension,
            tf.gather_nd(transitions, tf.stack([parent_states, label], axis=-1)),
            parent_states,
        )
        active = (t < lengths)[:, None]
        keep = lambda new, old: tf.where(  # noqa: E731
            tf.reshape(active, [-1] + [1] * (len(new.shape) - 1)), new, old
        )
        new_lm = fusion.advance(lm, parent, is_extension, label)
        if lm:
            per_hypothesis = tf.repeat(active[:, 0], k)[:, None]
            new_lm = {
                "state": {
                    key: tf.where(per_hypothesis, value, lm["state"][key])
                    for key, value in new_lm["state"].items()
                },
                "log_probs": keep(new_lm["log_probs"], lm["log_probs"]),
            }
        return (
            t + 1,
            keep(new_prefixes, prefixes),
            keep(new_lengths, prefix_lengths),
            keep(new_last, last),
            keep(new_blank, p_blank),
            keep(new_label, p_label),
            keep(new_states, states),
            new_lm,
        )

    _, prefixes, prefix_lengths, _, p_blank, p_label, states, lm = tf.while_loop(
        lambda t, *_: t < num_frames,
        body,
        (tf.constant(0), prefixes, prefix_lengths, last, p_blank, p_label, states, fusion.start),
    )
    scores = _logaddexp(p_blank, p_label)
    if language_model is not None:
        scores += lm_weight * lm["log_probs"][:, :, eos_id]
    scores = tf.where(tf.gather(tf.cast(final_states, tf.bool), states), scores, neg_inf)
    best = tf.argmax(scores, axis=1, output_type=tf.int32)
    best_scores = tf.gather(scores, best, batch_dims=1)
    # No hypothesis reached a final state: the output is empty, with score -inf.
    found = best_scores > neg_inf / 2
    return {
        "ids": tf.gather(prefixes, best, batch_dims=1),
        "lengths": tf.where(found, tf.gather(prefix_lengths, best, batch_dims=1), 0),
        "scores": best_scores,
    }


class _LanguageModelPrefixes:
    """The language model's state and next-label log-probs [B, K, V] of each live prefix of
    ctc_prefix_beam_search, advanced by one label when a prefix is extended."""

    def __init__(self, language_model, weight, batch_size, beam_size: int, vocab_size, bos_id):
        self.language_model, self.weight = language_model, weight
        self.batch_size, self.beam_size, self.vocab_size = batch_size, beam_size, vocab_size
        if language_model is None:
            self.start = {}
            return
        if language_model.vocab_size != vocab_size:
            raise ValueError(
                f"the language model has {language_model.vocab_size} labels, the CTC head "
                f"{vocab_size}: fusion needs one vocabulary"
            )
        hypotheses = batch_size * beam_size
        state = language_model.initial_state(hypotheses)
        self.start = self._step(tf.fill([hypotheses], bos_id), state)

    def _step(self, labels, state) -> dict:
        logits, state = self.language_model.step(labels, state)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        shape = [self.batch_size, self.beam_size, self.vocab_size]
        return {"state": state, "log_probs": tf.reshape(log_probs, shape)}

    def advance(self, lm: dict, parent, is_extension, label) -> dict:
        """Each new hypothesis' entry: its parent's, moved on by `label` where it extends."""
        if self.language_model is None:
            return lm
        flat_parent = tf.reshape(parent + tf.range(self.batch_size)[:, None] * self.beam_size, [-1])
        inherited = {
            "state": {key: tf.gather(v, flat_parent) for key, v in lm["state"].items()},
            "log_probs": tf.gather(lm["log_probs"], parent, batch_dims=1),
        }
        moved = self._step(tf.reshape(label, [-1]), inherited["state"])
        flat_extension = tf.reshape(is_extension, [-1, 1])
        return {
            "state": {
                key: tf.where(flat_extension, moved["state"][key], value)
                for key, value in inherited["state"].items()
            },
            "log_probs": tf.where(
                is_extension[:, :, None], moved["log_probs"], inherited["log_probs"]
            ),
        }
