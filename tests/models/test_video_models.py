import itertools

import numpy as np
import pytest
import tensorflow as tf

from configs.common import translation_config
from models.ctc import BLANK_ID, ctc_greedy_search, ctc_loss_sum
from models.frontends import FusedBatchNormalization, LipNetFrontEnd, ResNetFrontEnd
from models.seq2seq import build_model


@pytest.mark.parametrize(
    "frontend",
    [
        lambda: LipNetFrontEnd((24, 48, 3), filters=(4, 8, 8)),
        lambda: LipNetFrontEnd((24, 48, 3), filters=(4, 8), kernels=((3, 5, 5), (5, 3, 3))),
        lambda: LipNetFrontEnd((24, 48, 3), filters=(4, 8, 8), pool_first=True),
        lambda: ResNetFrontEnd((32, 32, 1), stem_filters=4, stage_filters=(4, 8)),
    ],
    ids=["lipnet", "lipnet_kernels", "lipnet_pool_first", "resnet"],
)
def test_video_frontends_keep_time_and_ignore_padding(frontend):
    layer = frontend()
    rng = np.random.default_rng(0)
    frames = rng.random((2, 7, *layer.frame_shape), dtype=np.float32)
    lengths = np.array([7, 4], np.int32)
    features, out_lengths = layer(frames, lengths)
    assert features.shape == (2, 7, layer.output_dim)
    np.testing.assert_array_equal(out_lengths, lengths)
    padded = np.concatenate([frames, rng.random((2, 3, *layer.frame_shape), dtype=np.float32)], 1)
    padded[1, 4:] = rng.random((6, *layer.frame_shape))
    padded_features, _ = layer(padded, lengths)
    np.testing.assert_allclose(features, padded_features[:, :7], atol=1e-5)
    assert np.all(padded_features[1, 4:].numpy() == 0.0)


def test_pooling_first_reads_the_same_weights_as_pooling_last_at_inference():
    rng = np.random.default_rng(1)
    frames = rng.random((2, 6, 24, 48, 1), dtype=np.float32)
    lengths = np.array([6, 3], np.int32)
    last = LipNetFrontEnd((24, 48, 1), filters=(4, 8))
    first = LipNetFrontEnd((24, 48, 1), filters=(4, 8), pool_first=True)
    last(frames, lengths), first(frames, lengths)
    weights = [rng.normal(0.5, 0.2, w.shape).astype(np.float32) for w in last.get_weights()]
    # Positive batch-norm scales and variances: pooling commutes with an increasing map.
    weights = [np.abs(w) if w.ndim == 1 else w for w in weights]
    last.set_weights(weights), first.set_weights(weights)
    np.testing.assert_allclose(
        last(frames, lengths)[0], first(frames, lengths)[0], rtol=1e-5, atol=1e-5
    )
    # In training the statistics come from different values (pooled or not).
    assert not np.allclose(
        last(frames, lengths, training=True)[0], first(frames, lengths, training=True)[0]
    )


@pytest.mark.parametrize("shape", [(3, 4, 5, 6, 7), (6, 5, 4, 3)], ids=["rank5", "rank4"])
def test_fused_batch_norm_trains_and_infers_as_keras_batch_norm(shape):
    import keras

    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.normal(2.0, 3.0, shape), tf.float32)
    fused = FusedBatchNormalization(momentum=0.5)
    stock = keras.layers.BatchNormalization(momentum=0.5)
    fused.build(shape), stock.build(shape)
    gamma = rng.uniform(0.5, 1.5, shape[-1]).astype(np.float32)
    for layer in (fused, stock):
        layer.gamma.assign(gamma)
        layer.beta.assign(np.linspace(-1.0, 1.0, shape[-1]).astype(np.float32))
    weights = tf.constant(rng.normal(size=shape), tf.float32)
    results = []
    for layer in (fused, stock):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs, training=True)
            loss = tf.reduce_sum(outputs * weights)
        gradients = tape.gradient(loss, [inputs, layer.gamma, layer.beta])
        results.append([outputs, *gradients, layer.moving_mean, layer.moving_variance])
    for got, want in zip(*results, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # The moving statistics moved off their initial 0 and 1 towards the batch's 2 and 9.
    assert np.all(fused.moving_mean.numpy() > 0.5) and np.all(fused.moving_variance.numpy() > 3.0)
    np.testing.assert_allclose(fused(inputs), stock(inputs), rtol=1e-5, atol=1e-5)


def test_lipnet_model_with_ctc_head_trains():
    config = translation_config().model
    config.frontend = "lipnet"
    config.frame_shape = (24, 48, 3)
    config.lipnet_filters = (4, 8, 8)
    config.encoder_units = 8
    config.decoder_units = 16
    config.embedding_dim = 8
    config.ctc_weight = 0.5
    model = build_model(config, None, 12)
    batch = {
        "inputs": tf.random.uniform([2, 9, 24, 48, 3]),
        "input_lengths": tf.constant([9, 6]),
        "targets": tf.constant([[2, 5, 6], [2, 7, 0]]),
    }
    with tf.GradientTape() as tape:
        out = model(batch, training=True)
        loss = ctc_loss_sum(
            out["ctc_logits"],
            out["ctc_lengths"],
            tf.constant([[5, 6], [7, 0]]),
            tf.constant([2, 1]),
        )
    assert out["ctc_logits"].shape == (2, 9, 12)
    assert out["logits"].shape == (2, 3, 12)
    gradients = tape.gradient(loss, model.trainable_variables)
    frontend_grads = [
        g for g, v in zip(gradients, model.trainable_variables, strict=True) if "frontend" in v.path
    ]
    assert frontend_grads and all(g is not None for g in frontend_grads)


def _log_softmax(x):
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _collapse(path):
    out = []
    for i, symbol in enumerate(path):
        if symbol != BLANK_ID and (i == 0 or path[i - 1] != symbol):
            out.append(symbol)
    return out


def test_ctc_loss_matches_sum_over_all_alignments():
    rng = np.random.default_rng(0)
    steps, vocab = 4, 3
    logits = rng.normal(size=(1, steps, vocab)).astype(np.float32)
    log_probs = _log_softmax(logits[0])
    label = [1, 2]
    total = sum(
        np.exp(sum(log_probs[t, s] for t, s in enumerate(path)))
        for path in itertools.product(range(vocab), repeat=steps)
        if _collapse(path) == label
    )
    loss = ctc_loss_sum(logits, [steps], [label], [len(label)])
    assert float(loss) == pytest.approx(-np.log(total), rel=1e-4)


def test_ctc_greedy_merges_repeats_and_drops_blanks():
    best_paths = [[1, 1, 0, 1, 2, 2, 0], [0, 3, 3, 3, 0, 0, 4]]
    lengths = [7, 4]
    logits = np.full((2, 7, 5), -5.0, np.float32)
    for b, path in enumerate(best_paths):
        for t, symbol in enumerate(path):
            logits[b, t, symbol] = 5.0
    out = ctc_greedy_search(tf.constant(logits), tf.constant(lengths))
    assert out["lengths"].numpy().tolist() == [3, 1]
    assert out["ids"].numpy()[0].tolist() == [1, 1, 2]
    assert out["ids"].numpy()[1, :1].tolist() == [3]


def _brute_force_labellings(log_probs, steps):
    scores = {}
    vocab = log_probs.shape[-1]
    for path in itertools.product(range(vocab), repeat=steps):
        label = tuple(_collapse(path))
        p = np.exp(sum(log_probs[t, s] for t, s in enumerate(path)))
        scores[label] = scores.get(label, 0.0) + p
    return scores


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_ctc_prefix_beam_search_matches_brute_force(seed):
    from models.ctc import ctc_prefix_beam_search

    rng = np.random.default_rng(seed)
    steps, vocab = 5, 3
    logits = rng.normal(scale=2.0, size=(1, steps, vocab)).astype(np.float32)
    brute = _brute_force_labellings(_log_softmax(logits[0]), steps)
    best_label, best_p = max(brute.items(), key=lambda kv: kv[1])
    out = ctc_prefix_beam_search(
        tf.constant(logits), tf.constant([steps]), beam_size=64, max_output_length=steps
    )
    n = int(out["lengths"][0])
    assert tuple(out["ids"][0, :n].numpy()) == best_label
    assert float(out["scores"][0]) == pytest.approx(np.log(best_p), abs=1e-4)


def test_ctc_prefix_beam_search_respects_lengths_and_grammar():
    from models.ctc import ctc_prefix_beam_search

    rng = np.random.default_rng(5)
    logits = rng.normal(scale=2.0, size=(2, 5, 4)).astype(np.float32)
    lengths = np.array([5, 3])
    # Grammar over labels 1..3: exactly "1 2" or "3" (state 0 -1-> 1 -2-> 2; 0 -3-> 2).
    transitions = np.full((3, 4), -1, np.int32)
    transitions[0, 1], transitions[1, 2], transitions[0, 3] = 1, 2, 2
    final_states = np.array([False, False, True])
    out = ctc_prefix_beam_search(
        tf.constant(logits),
        tf.constant(lengths),
        beam_size=16,
        max_output_length=5,
        transitions=transitions,
        final_states=final_states,
    )
    for row in range(2):
        n = int(out["lengths"][row])
        assert tuple(out["ids"][row, :n].numpy()) in {(1, 2), (3,)}
        brute = _brute_force_labellings(_log_softmax(logits[row, : lengths[row]]), lengths[row])
        best = max((p, label) for label, p in brute.items() if label in {(1, 2), (3,)})
        assert tuple(out["ids"][row, :n].numpy()) == best[1]
        assert float(out["scores"][row]) == pytest.approx(np.log(best[0]), abs=1e-4)


def test_frames_to_finish_counts_labels_and_blanks_between_repeats():
    from models.ctc import frames_to_finish

    # "1 2" or "3", as above, plus "1 1" (a repeat needs a blank frame between the labels).
    transitions = np.full((4, 4), -1, np.int32)
    transitions[0, 1], transitions[1, 2], transitions[0, 3], transitions[1, 1] = 1, 2, 2, 3
    final_states = np.array([False, False, True, True])
    assert frames_to_finish(transitions, final_states).tolist() == [1, 1, 0, 0]
    only_repeat = transitions.copy()
    only_repeat[1, 2] = only_repeat[0, 3] = -1
    assert frames_to_finish(only_repeat, np.array([False, False, False, True]))[:2].tolist() == [
        3,
        2,
    ]


@pytest.mark.parametrize("beam_size", [1, 8])
def test_constrained_ctc_search_returns_a_sentence_from_a_weak_model(beam_size):
    from data_prep.characters import CharVocabulary, word_grammar_automaton
    from data_prep.corpora.grid import GRID_GRAMMAR
    from models.ctc import ctc_prefix_beam_search

    vocabulary = CharVocabulary()
    transitions, final_states = word_grammar_automaton(list(GRID_GRAMMAR.values()), vocabulary)
    # An untrained model: blank almost everywhere, labels as noise.
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 75, vocabulary.size)).astype(np.float32)
    logits[..., 0] += 8.0
    lengths = np.array([75, 60, 36])
    out = ctc_prefix_beam_search(
        tf.constant(logits), tf.constant(lengths), beam_size, 64, transitions, final_states
    )
    for row in range(3):
        ids = out["ids"][row, : int(out["lengths"][row])].numpy()
        words = vocabulary.decode(ids).split(" ")
        assert len(words) == len(GRID_GRAMMAR), words
        assert all(w in slot for w, slot in zip(words, GRID_GRAMMAR.values(), strict=True))
        assert np.isfinite(float(out["scores"][row]))


def _ctc_model(vocab=6):
    config = translation_config().model
    config.embedding_dim = 8
    config.encoder_units = 8
    config.decoder_units = 16
    config.encoder_layers = 1
    config.ctc_weight = 0.5
    tf.keras.utils.set_random_seed(3)
    return build_model(config, 10, vocab)


def test_joint_search_with_full_ctc_weight_finds_the_best_ctc_labelling():
    from models.search import beam_search

    model = _ctc_model(vocab=6)  # ids: 0 blank/pad, 1 unk, 2 bos, 3 eos, 4 and 5 labels
    inputs, lengths = tf.constant([[5, 6, 7, 8]]), tf.constant([4])
    memory, memory_lengths, _ = model.encode(inputs, lengths)
    logits = model.ctc_head(memory).numpy()
    log_probs = _log_softmax(logits[0])
    brute = _brute_force_labellings(log_probs, 4)
    usable = {label: p for label, p in brute.items() if all(x in (1, 4, 5) for x in label)}
    best_label, best_p = max(usable.items(), key=lambda kv: kv[1])
    out = beam_search(
        model,
        inputs,
        lengths,
        2,
        3,
        tf.constant([6]),
        beam_size=40,
        length_penalty=0.0,
        ctc_weight=1.0,
    )
    n = int(out["lengths"][0])
    assert tuple(out["ids"][0, :n].numpy()) == best_label
    assert float(out["scores"][0]) == pytest.approx(np.log(best_p), abs=1e-3)


def test_grammar_constrains_attention_and_joint_beam_search():
    from data_prep.characters import CharVocabulary, word_grammar_automaton
    from models.search import beam_search

    vocabulary = CharVocabulary("ab ")
    table, final = word_grammar_automaton([["ab", "b"], ["a"]], vocabulary)
    model = _ctc_model(vocab=vocabulary.size)
    inputs = tf.constant([[5, 6, 7, 8, 9], [4, 4, 4, 0, 0]])
    lengths = tf.constant([5, 3])
    for weight in (0.0, 0.5):
        out = beam_search(
            model,
            inputs,
            lengths,
            2,
            3,
            tf.constant([8, 8]),
            beam_size=4,
            ctc_weight=weight,
            grammar=(table, final),
        )
        for row in range(2):
            n = int(out["lengths"][row])
            assert vocabulary.decode(out["ids"][row, :n].numpy()) in {"ab a", "b a"}
