"""The recurrent language model and shallow fusion in every beam search: the step function
agrees with training, a uniform model has perplexity V, fusion with weight 0 is exactly the
unfused search, and with weight > 0 the searches find the best fused score (brute force)."""

import itertools

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from models.ctc import ctc_prefix_beam_search
from models.language_model import build_language_model, sequence_log_probs
from models.search import beam_search
from tests.models.test_models import BOS, EOS, tiny_model


def tiny_lm(vocab_size, cell="lstm", layers=2, seed=4, tie=False):
    config = ml_collections.ConfigDict(
        {
            "embedding_dim": 16 if tie else 8,
            "units": 16,
            "num_layers": layers,
            "cell": cell,
            "dropout": 0.0,
            "tie_embeddings": tie,
        }
    )
    tf.keras.utils.set_random_seed(seed)
    model = build_language_model(config, vocab_size)
    for variable in model.trainable_variables:  # random, peaked preferences to fuse with
        variable.assign(tf.random.normal(variable.shape, stddev=0.8, seed=seed))
    return model


@pytest.mark.parametrize("cell,tie", [("lstm", False), ("gru", False), ("lstm", True)])
def test_one_step_at_a_time_equals_the_whole_sequence(cell, tie):
    lm = tiny_lm(11, cell, tie=tie)
    targets = tf.constant([[BOS, 5, 7, 4, 9], [BOS, 6, 6, 1, 10]], tf.int32)
    whole = lm({"targets": targets})["logits"].numpy()
    state = lm.initial_state(2)
    for t in range(targets.shape[1]):
        logits, state = lm.step(targets[:, t], state)
        np.testing.assert_allclose(logits.numpy(), whole[:, t], rtol=1e-4, atol=1e-5)


def test_a_uniform_model_has_perplexity_equal_to_the_vocabulary():
    vocab = 13
    lm = tiny_lm(vocab)
    lm.output_projection.kernel.assign(tf.zeros_like(lm.output_projection.kernel))
    lm.output_projection.bias.assign(tf.zeros_like(lm.output_projection.bias))
    labels = tf.constant([[5, 7, EOS, 0], [4, EOS, 0, 0]], tf.int32)
    targets = tf.constant([[BOS, 5, 7, 0], [BOS, 4, 0, 0]], tf.int32)
    lengths = tf.constant([3, 2])
    total = sequence_log_probs(lm, targets, labels, lengths)
    perplexity = np.exp(-float(tf.reduce_sum(total)) / 5)
    assert perplexity == pytest.approx(vocab, rel=1e-5)


def _fused_lm_score(lm, tokens, weight, bonus):
    targets = tf.constant([[BOS, *tokens]], tf.int32)
    labels = tf.constant([[*tokens, EOS]], tf.int32)
    lm_log_prob = float(sequence_log_probs(lm, targets, labels, tf.constant([len(tokens) + 1]))[0])
    return weight * lm_log_prob + bonus * len(tokens)


def _model_log_prob(model, inputs, lengths, tokens):
    targets = np.array([[BOS, *tokens]], np.int32)
    logits = model({"inputs": inputs, "input_lengths": lengths, "targets": targets})["logits"]
    log_probs = tf.nn.log_softmax(logits[0]).numpy()
    return sum(log_probs[t, label] for t, label in enumerate([*tokens, EOS]))


def test_attention_beam_search_with_fusion_finds_the_best_fused_sequence():
    vocab = 6
    model = tiny_model(vocab=(12, vocab))
    lm = tiny_lm(vocab)
    bias = lm.output_projection.bias
    bias.assign(bias + 5.0 * tf.one_hot(5, vocab))  # a language model fond of label 5
    inputs, lengths = tf.constant([[5, 7, 9]], tf.int32), tf.constant([3])
    max_steps = 3
    non_eos = [v for v in range(vocab) if v != EOS]
    candidates = [s for n in range(max_steps) for s in itertools.product(non_eos, repeat=n)]
    acoustic = {c: _model_log_prob(model, inputs, lengths, list(c)) for c in candidates}
    answers = set()
    for weight, bonus in ((0.7, 0.0), (1.5, 1.5), (3.0, 3.0)):
        brute = {c: acoustic[c] + _fused_lm_score(lm, list(c), weight, bonus) for c in candidates}
        best, best_score = max(brute.items(), key=lambda kv: kv[1])
        out = beam_search(
            model, inputs, lengths, BOS, EOS, tf.constant([max_steps]),
            beam_size=len(candidates) + 4, length_penalty=0.0,
            language_model=lm, lm_weight=tf.constant(weight), lm_length_bonus=bonus,
        )  # fmt: skip
        n = int(out["lengths"][0])
        assert tuple(out["ids"][0, :n].numpy()) == best
        assert float(out["scores"][0]) == pytest.approx(best_score, abs=1e-4)
        answers.add(best)
    assert (5, 5) in answers and max(acoustic, key=acoustic.get) != (5, 5)


@pytest.mark.parametrize("ctc_weight", [0.0, 0.4])
def test_attention_fusion_with_weight_zero_is_exactly_the_unfused_search(ctc_weight):
    model = tiny_model(vocab=(30, 20), ctc_weight=0.3)
    lm = tiny_lm(20)
    inputs = tf.random.stateless_uniform([3, 6], [1, 2], 4, 30, tf.int32)
    lengths, limits = tf.constant([6, 4, 2]), tf.constant([8, 8, 8])
    common = {"beam_size": 4, "ctc_weight": ctc_weight}
    plain = beam_search(model, inputs, lengths, BOS, EOS, limits, **common)
    fused = beam_search(
        model, inputs, lengths, BOS, EOS, limits, **common,
        language_model=lm, lm_weight=tf.constant(0.0), lm_length_bonus=tf.constant(0.0),
    )  # fmt: skip
    for key in ("ids", "lengths", "scores"):
        np.testing.assert_array_equal(plain[key].numpy(), fused[key].numpy())


def _collapse(path):
    out, previous = [], None
    for symbol in path:
        if symbol != previous and symbol != 0:
            out.append(symbol)
        previous = symbol
    return out


def test_ctc_prefix_beam_search_with_fusion_finds_the_best_fused_labelling():
    rng = np.random.default_rng(3)
    steps, vocab = 4, 6  # labels 1, 4, 5 are spoken; 2 (bos) and 3 (eos) never are
    logits = rng.normal(scale=1.5, size=(1, steps, vocab)).astype(np.float32)
    logits[:, :, [2, 3]] = -30.0
    log_probs = logits[0] - np.log(np.exp(logits[0]).sum(-1, keepdims=True))
    lm = tiny_lm(vocab, seed=7)
    acoustic = {}
    for path in itertools.product(range(vocab), repeat=steps):
        label = tuple(_collapse(path))
        p = np.exp(sum(log_probs[t, s] for t, s in enumerate(path)))
        acoustic[label] = acoustic.get(label, 0.0) + p
    acoustic = {k: v for k, v in acoustic.items() if not set(k) & {2, 3}}
    answers = set()
    for weight, bonus in ((0.8, 0.0), (2.0, 1.0), (20.0, 0.0)):
        fused = {
            label: np.log(p) + _fused_lm_score(lm, list(label), weight, bonus)
            for label, p in acoustic.items()
        }
        best, best_score = max(fused.items(), key=lambda kv: kv[1])
        out = ctc_prefix_beam_search(
            tf.constant(logits), tf.constant([steps]), beam_size=128, max_output_length=steps,
            language_model=lm, lm_weight=tf.constant(weight), lm_length_bonus=bonus,
            bos_id=BOS, eos_id=EOS,
        )  # fmt: skip
        n = int(out["lengths"][0])
        assert tuple(out["ids"][0, :n].numpy()) == best
        assert float(out["scores"][0]) == pytest.approx(best_score, abs=1e-3)
        answers.add(best)
    assert answers - {max(acoustic, key=acoustic.get)}


def test_ctc_fusion_with_weight_zero_is_exactly_the_unfused_search():
    rng = np.random.default_rng(8)
    logits = tf.constant(rng.normal(scale=2.0, size=(3, 9, 12)).astype(np.float32))
    lengths = tf.constant([9, 6, 2])
    plain = ctc_prefix_beam_search(logits, lengths, beam_size=5, max_output_length=9)
    fused = ctc_prefix_beam_search(
        logits, lengths, beam_size=5, max_output_length=9,
        language_model=tiny_lm(12), lm_weight=tf.constant(0.0), lm_length_bonus=0.0,
    )  # fmt: skip
    for key in ("ids", "lengths", "scores"):
        np.testing.assert_array_equal(plain[key].numpy(), fused[key].numpy())


def test_fusion_refuses_a_language_model_of_another_vocabulary():
    with pytest.raises(ValueError, match="one vocabulary"):
        ctc_prefix_beam_search(
            tf.zeros([1, 3, 8]), tf.constant([3]), language_model=tiny_lm(9), lm_weight=1.0
        )


def test_fused_searches_give_each_example_of_a_batch_what_it_gets_alone():
    model = tiny_model(vocab=(30, 20), ctc_weight=0.3)
    lm = tiny_lm(20)
    inputs = tf.random.stateless_uniform([3, 6], [5, 6], 4, 30, tf.int32)
    lengths, limits = tf.constant([6, 4, 2]), tf.constant([8, 8, 8])
    fusion = {"language_model": lm, "lm_weight": tf.constant(0.7), "lm_length_bonus": 0.5}
    for ctc_weight in (0.0, 0.4):
        both = beam_search(
            model, inputs, lengths, BOS, EOS, limits, beam_size=3, ctc_weight=ctc_weight, **fusion
        )
        for row in range(3):
            alone = beam_search(
                model, inputs[row : row + 1], lengths[row : row + 1], BOS, EOS,
                limits[row : row + 1], beam_size=3, ctc_weight=ctc_weight, **fusion,
            )  # fmt: skip
            n = int(alone["lengths"][0])
            assert int(both["lengths"][row]) == n
            np.testing.assert_array_equal(both["ids"][row, :n], alone["ids"][0, :n])
            assert float(both["scores"][row]) == pytest.approx(float(alone["scores"][0]), abs=1e-4)
    logits = tf.random.stateless_normal([3, 9, 20], [7, 8]) * 2.0
    ctc_lengths = tf.constant([9, 6, 3])
    options = {"beam_size": 4, "max_output_length": 9, "bos_id": BOS, "eos_id": EOS, **fusion}
    both = ctc_prefix_beam_search(logits, ctc_lengths, **options)
    for row in range(3):
        alone = ctc_prefix_beam_search(logits[row : row + 1], ctc_lengths[row : row + 1], **options)
        n = int(alone["lengths"][0])
        assert int(both["lengths"][row]) == n
        np.testing.assert_array_equal(both["ids"][row, :n], alone["ids"][0, :n])
        assert float(both["scores"][row]) == pytest.approx(float(alone["scores"][0]), abs=1e-4)
