"""Ensembles: several models searched as one, by the mean of their next-label probabilities."""

import numpy as np
import pytest
import tensorflow as tf

from models.ensemble import Ensemble
from models.search import beam_search, greedy_search, max_decode_lengths
from tests.models.test_models import BOS, EOS, tiny_model

VOCAB = (30, 40)


def _batch():
    rng = np.random.default_rng(7)
    inputs = rng.integers(4, VOCAB[0], size=(3, 6)).astype(np.int32)
    return tf.constant(inputs), tf.constant([6, 4, 2], tf.int32)


def _searches(model, candidate_ids=None):
    inputs, lengths = _batch()
    limits = max_decode_lengths(lengths, 1.5, 9)
    arguments = (model, inputs, lengths, BOS, EOS, limits)
    return (
        greedy_search(*arguments, candidate_ids=candidate_ids),
        beam_search(*arguments, beam_size=3, candidate_ids=candidate_ids),
    )


@pytest.mark.parametrize("candidates", [False, True])
def test_an_ensemble_of_copies_of_one_model_searches_as_that_model(candidates):
    candidate_ids = tf.constant([[5, 6, 7, 8, -1], [9, 10, 11, 12, 13], [5, 20, 30, -1, -1]])
    candidate_ids = candidate_ids if candidates else None
    single = tiny_model(vocab=VOCAB)
    ensemble = Ensemble([tiny_model(vocab=VOCAB), tiny_model(vocab=VOCAB)])
    for alone, together in zip(
        _searches(single, candidate_ids), _searches(ensemble, candidate_ids), strict=True
    ):
        np.testing.assert_array_equal(alone["ids"], together["ids"])
        np.testing.assert_array_equal(alone["lengths"], together["lengths"])
        np.testing.assert_allclose(alone["scores"], together["scores"], rtol=1e-5)
        np.testing.assert_allclose(alone["alignments"], together["alignments"], atol=1e-6)


def test_an_ensemble_step_is_the_log_of_the_members_mean_probability():
    members = [tiny_model(vocab=VOCAB), tiny_model("bahdanau", "lstm", vocab=VOCAB)]
    ensemble = Ensemble(members)
    inputs, lengths = _batch()
    tokens = tf.constant([BOS, 7, 9])

    def first_step(model):
        memory, memory_lengths, encoder_state = model.encode(inputs, lengths)
        prepared = model.decoder.prepare_memory(memory, memory_lengths)
        state = model.decoder.initial_state(encoder_state, prepared)
        logits, _, alignment = model.decoder.step(tokens, state, prepared)
        return logits, alignment

    (logits_a, align_a), (logits_b, align_b) = (first_step(m) for m in members)
    mixed, mixed_alignment = first_step(ensemble)
    expected = np.log((tf.nn.softmax(logits_a) + tf.nn.softmax(logits_b)).numpy() / 2)
    np.testing.assert_allclose(mixed, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.exp(mixed).sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(mixed_alignment, (align_a + align_b) / 2, atol=1e-6)
    assert not np.allclose(logits_a, logits_b)  # the members really differ

    greedy, beam = _searches(ensemble)
    assert greedy["ids"].shape[0] == beam["ids"].shape[0] == 3


def test_ensemble_members_need_one_vocabulary_and_two_members():
    with pytest.raises(ValueError, match="one target vocabulary"):
        Ensemble([tiny_model(vocab=VOCAB), tiny_model(vocab=(30, 41))])
    with pytest.raises(ValueError, match="at least two"):
        Ensemble([tiny_model(vocab=VOCAB)])
