"""Large output vocabularies: sampled softmax (the decoder trains on the targets plus a few
sampled classes, and scores the whole vocabulary for evaluation and search) and
candidate-list decoding (the search's softmax over a per-sentence list of words), and tied
output embeddings."""

import numpy as np
import pytest
import tensorflow as tf

from models.decoders import SampledSoftmaxProjection
from models.losses import sequence_cross_entropy
from models.search import beam_search, candidate_mask, greedy_search, max_decode_lengths
from tests.models.test_models import BOS, EOS, tiny_model

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


@pytest.mark.parametrize("tied", [False, True])
def test_training_on_sampled_classes_lowers_the_full_softmax_loss(tied):
    model = tiny_model(vocab=VOCAB, sampled_softmax=50, tie_embeddings=tied)
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
    assert "logits" not in outputs and outputs["vectors"].shape[-1] == (8 if tied else 16)
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


def _searches(model, batch, candidate_ids=None):
    limits = max_decode_lengths(batch["input_lengths"], 1.5, 10)
    arguments = (model, batch["inputs"], batch["input_lengths"], BOS, EOS, limits)
    greedy = greedy_search(*arguments, candidate_ids=candidate_ids)
    beam = beam_search(*arguments, beam_size=4, candidate_ids=candidate_ids)
    return greedy, beam


def test_a_candidate_list_of_the_whole_vocabulary_is_the_full_search():
    model = tiny_model(vocab=VOCAB)
    batch = _copy_batch(np.random.default_rng(3), size=3)
    everything = tf.tile(tf.range(VOCAB[1])[None], [3, 1])
    for full, listed in zip(
        _searches(model, batch), _searches(model, batch, everything), strict=True
    ):
        np.testing.assert_array_equal(full["ids"], listed["ids"])
        np.testing.assert_allclose(full["scores"], listed["scores"], rtol=1e-6)


def test_candidate_lists_keep_each_sentence_inside_its_own_list():
    model = tiny_model(vocab=VOCAB)
    bias = model.decoder.output_projection.bias
    bias.assign(tf.tensor_scatter_nd_update(bias, [[EOS]], [-10.0]))  # words before eos
    batch = _copy_batch(np.random.default_rng(4), size=2)
    lists = tf.constant([[10, 11, 12, -1], [500, 501, 502, 503]])
    for result in _searches(model, batch, lists):
        assert int(tf.reduce_sum(result["lengths"])) > 0  # words were chosen, not just eos
        for row, allowed in enumerate(({10, 11, 12, EOS}, {500, 501, 502, 503, EOS})):
            length = int(result["lengths"][row])
            assert set(result["ids"][row, :length].numpy().tolist()) <= allowed
    mask = candidate_mask(lists, VOCAB[1], EOS).numpy()
    assert mask.sum(axis=1).tolist() == [4, 5] and mask[:, EOS].all()


@pytest.mark.parametrize("sampled,tied", [(0, False), (50, False), (0, True)])
def test_a_listed_step_computes_only_the_listed_logits_and_they_match_the_full_ones(sampled, tied):
    model = tiny_model(vocab=VOCAB, sampled_softmax=sampled, tie_embeddings=tied)
    batch = _copy_batch(np.random.default_rng(5), size=2)
    memory, memory_lengths, encoder_state = model.encode(batch["inputs"], batch["input_lengths"])
    prepared = model.decoder.prepare_memory(memory, memory_lengths)
    state = model.decoder.initial_state(encoder_state, prepared)
    tokens = tf.fill([2], BOS)
    full, _, _ = model.decoder.step(tokens, state, prepared)
    ids = [7, 300, 599, EOS, 4, 12]
    listed = model.decoder.listed_projection(ids)
    restricted, _, _ = model.decoder.step(tokens, state, prepared, listed=listed)
    np.testing.assert_allclose(
        tf.gather(restricted, ids, axis=1), tf.gather(full, ids, axis=1), rtol=1e-5, atol=1e-6
    )
    others = np.setdiff1d(np.arange(VOCAB[1]), ids)
    assert (restricted.numpy()[:, others] <= -1e8).all()


def test_tied_embeddings_make_the_output_rows_the_target_embedding():
    untied, tied = tiny_model(vocab=VOCAB), tiny_model(vocab=VOCAB, tie_embeddings=True)
    decoder = tied.decoder
    names = [v.path for v in tied.trainable_variables]
    assert len(names) == len(set(names)) and not any("output_projection/kernel" in n for n in names)
    # One [V, E] matrix serves both ends; the [U, V] output kernel gives way to a [U, E] map.
    saved = VOCAB[1] * 16 - 16 * 8
    assert untied.count_params() - tied.count_params() == saved
    batch = _copy_batch(np.random.default_rng(6), size=2)
    decoder.output_projection.bias.assign(tf.range(VOCAB[1], dtype=tf.float32))
    decoder.embedding.embeddings.assign(tf.zeros_like(decoder.embedding.embeddings))
    logits = tied(batch, training=False)["logits"]
    np.testing.assert_allclose(logits, np.broadcast_to(np.arange(VOCAB[1]), logits.shape))


def test_the_tied_projection_gradient_builds_nothing_larger_than_the_logits():
    from models.decoders import TiedProjection

    embedding = tf.keras.layers.Embedding(300, 32)
    embedding.build((None,))
    projection = TiedProjection(embedding)
    projection.build((None, 32))
    vectors = tf.random.normal([4, 5, 32])

    @tf.function
    def gradients(vectors):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.nn.log_softmax(projection(vectors)))
        return tape.gradient(loss, [embedding.embeddings, projection.bias])

    graph = gradients.get_concrete_function(vectors).graph
    sizes = [
        output.shape.num_elements() or 0 for op in graph.get_operations() for output in op.outputs
    ]
    # The largest tensors are the logits [4, 5, 300] and the embedding [300, 32]; a gradient
    # that broadcast the embedding over the batch and time axes would hold [4, 5, 300, 32].
    assert max(sizes) <= max(4 * 5 * 300, 300 * 32)
    expected = tf.keras.layers.Dense(300)
    expected.build((None, 32))
    expected.kernel.assign(tf.transpose(embedding.embeddings))
    np.testing.assert_allclose(projection(vectors), expected(vectors), rtol=1e-5, atol=1e-5)


def test_a_tied_model_learns_and_its_embedding_gets_both_gradients():
    model = tiny_model(vocab=VOCAB, tie_embeddings=True)
    batch = _copy_batch(np.random.default_rng(7))
    embedding = model.decoder.embedding.embeddings
    with tf.GradientTape(persistent=True) as tape:
        outputs = model(batch, training=False)
        (term,) = model.loss_terms(batch, outputs)
        loss = term.total / term.count
        output_side = tf.reduce_sum(model.decoder.output_projection(tf.ones([1, 8])))
    gradient = tf.convert_to_tensor(tape.gradient(loss, embedding))
    # Rows of words never fed to the decoder (not in any target prefix) learn as outputs.
    unseen = np.setdiff1d(np.arange(VOCAB[1]), batch["targets"].numpy())
    assert np.abs(gradient.numpy()[unseen]).sum() > 0
    assert tape.gradient(output_side, embedding) is not None
    optimizer = tf.keras.optimizers.Adam(0.01)
    before = _full_loss(model, batch)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            (term,) = model.loss_terms(batch, model(batch, training=True))
            loss = term.total / term.count
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))

    for _ in range(150):
        step()
    assert _full_loss(model, batch) < 0.6 * before


def test_a_tied_model_round_trips_through_a_checkpoint_and_a_saved_model(tmp_path):
    model = tiny_model(vocab=VOCAB, tie_embeddings=True)
    model.decoder.embedding.embeddings.assign_add(tf.fill([VOCAB[1], 8], 0.5))
    batch = _copy_batch(np.random.default_rng(8), size=2)
    limits = max_decode_lengths(batch["input_lengths"], 1.5, 10)
    expected = greedy_search(model, batch["inputs"], batch["input_lengths"], BOS, EOS, limits)
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    restored = tiny_model(vocab=VOCAB, tie_embeddings=True)
    tf.train.Checkpoint(model=restored).read(path).assert_existing_objects_matched()
    module = tf.Module()
    module.model = restored
    module.greedy = tf.function(
        lambda inputs, lengths: greedy_search(
            restored, inputs, lengths, BOS, EOS, max_decode_lengths(lengths, 1.5, 10)
        ),
        input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32)],
    )
    tf.saved_model.save(module, str(tmp_path / "saved"))
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    result = loaded.greedy(batch["inputs"], batch["input_lengths"])
    np.testing.assert_array_equal(result["ids"], expected["ids"])
    np.testing.assert_allclose(result["scores"], expected["scores"], rtol=1e-5)
