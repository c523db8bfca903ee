"""Sampled softmax for large output vocabularies: the decoder trains on the targets plus a few
sampled classes, and scores the whole vocabulary for evaluation and search."""

import numpy as np
import pytest
import tensorflow as tf

from models.decoders import SampledSoftmaxProjection
from models.losses import sequence_cross_entropy
from models.search import beam_search, greedy_search, max_decode_lengths
from tests.test_models import BOS, EOS, tiny_model

VOCAB = (40, 600)


def _copy_batch(rng, size=16, length=6):
    """A toy task with a learnable answer: the target repeats the source's ids (shifted)."""
    source = rng.integers(4, VOCAB[0], size=(size, length)).astype(np.int32)
    labels = np.concatenate([source * 7 % (VOCAB[1] - 4) + 4, np.full((size, 1), 3)], 1)
    targets = np.concatenate([np.full((size, 1), 2), labels[:, :-1]], 1).astype(np.int32)
    return {
        "inputs": tf.constant(source),
        "input_lengths": tf.fill([size], length),
        "targets": tf.constant(targets),
        "labels": tf.constant(labels.astype(np.int32)),
        "target_lengths": tf.fill([size], length + 1),
    }


def _full_loss(model, batch) -> float:
    total, count = sequence_cross_entropy(
        model(batch, training=False)["logits"], batch["labels"], batch["target_lengths"]
    )
    return float(total / count)


def test_training_on_sampled_classes_lowers_the_full_softmax_loss():
    model = tiny_model(vocab=VOCAB, sampled_softmax=50)
    batch = _copy_batch(np.random.default_rng(0))
    optimizer = tf.keras.optimizers.Adam(0.01)
    before = _full_loss(model, batch)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            outputs = model(batch, training=True)
            (term,) = model.loss_terms(batch, outputs)
            loss = term.total / term.count
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return outputs

    for _ in range(300):
        outputs = step()
    # Training never built the [B, T, V] logits; the full softmax still learnt the task.
    assert "logits" not in outputs and outputs["vectors"].shape[-1] == 16
    after = _full_loss(model, batch)
    assert before == pytest.approx(np.log(VOCAB[1]), rel=0.05)
    assert after < 0.6 * before, (before, after)


def test_padding_is_never_scored_by_the_sampled_loss():
    model = tiny_model(vocab=VOCAB, sampled_softmax=20)
    batch = _copy_batch(np.random.default_rng(1), size=2)
    short = {**batch, "target_lengths": tf.constant([7, 3])}
    outputs = model(short, training=True)
    (term,) = model.loss_terms(short, outputs)
    assert float(term.count) == 10.0


def test_evaluation_and_search_score_the_whole_vocabulary():
    projection = SampledSoftmaxProjection(50, 5)
    projection.build((None, 8))
    vectors = tf.random.normal([3, 4, 8])
    expected = tf.matmul(vectors, projection.kernel, transpose_b=True) + projection.bias
    np.testing.assert_allclose(projection(vectors), expected, atol=1e-5)
    model = tiny_model(vocab=VOCAB, sampled_softmax=20)
    batch = _copy_batch(np.random.default_rng(2), size=2)
    logits = model(batch, training=False)["logits"]
    assert logits.shape == (2, 7, VOCAB[1])
    # Search steps through the same full projection: greedy picks the argmax over all words.
    limits = max_decode_lengths(batch["input_lengths"], 1.5, 10)
    greedy = greedy_search(model, batch["inputs"], batch["input_lengths"], BOS, EOS, limits)
    beam = beam_search(model, batch["inputs"], batch["input_lengths"], BOS, EOS, limits, 1, 0.0)
    np.testing.assert_array_equal(greedy["ids"], beam["ids"])
    assert int(tf.reduce_max(greedy["ids"])) < VOCAB[1]


@pytest.mark.parametrize("num_sampled", [0, 50])
def test_sampled_classes_must_be_fewer_than_the_vocabulary(num_sampled):
    with pytest.raises(ValueError, match="num_sampled"):
        SampledSoftmaxProjection(50, num_sampled)
