import itertools

import numpy as np
import pytest
import tensorflow as tf

from configs.common import translation_config
from models.losses import (
    guided_attention_penalty,
    sequence_cross_entropy,
    word_frame_cross_entropy,
    word_window_penalty,
)
from models.search import beam_search, greedy_search, max_decode_lengths
from models.seq2seq import build_model

BOS, EOS = 2, 3


def tiny_model(attention="luong", cell="gru", vocab=(30, 20), **overrides):
    config = translation_config().model
    config.embedding_dim = 8
    config.encoder_units = 8
    config.decoder_units = 16
    config.attention_units = 8
    config.encoder_layers = 2
    config.attention = attention
    config.encoder_cell = cell
    config.decoder_cell = cell
    config.update(overrides)
    tf.keras.utils.set_random_seed(1)
    return build_model(config, *vocab)


VARIANTS = [
    ("luong", "gru"),
    ("bahdanau", "gru"),
    ("luong", "lstm"),
    ("bahdanau", "lstm"),
    ("location", "gru"),
]


@pytest.mark.parametrize("attention,cell", VARIANTS)
def test_padding_never_changes_outputs(attention, cell):
    model = tiny_model(attention, cell)
    rng = np.random.default_rng(0)
    inputs = rng.integers(4, 30, size=(2, 5)).astype(np.int32)
    targets = rng.integers(4, 20, size=(2, 4)).astype(np.int32)
    lengths = np.array([5, 3], np.int32)
    base = model({"inputs": inputs, "input_lengths": lengths, "targets": targets})
    # Extra padding columns filled with junk ids must not change anything on real positions.
    junk = rng.integers(4, 30, size=(2, 4)).astype(np.int32)
    padded_inputs = np.concatenate([inputs, junk], axis=1)
    padded_inputs[1, 3:] = rng.integers(4, 30, size=6)
    padded = model({"inputs": padded_inputs, "input_lengths": lengths, "targets": targets})
    np.testing.assert_allclose(base["logits"][0], padded["logits"][0], atol=1e-5)
    # Row 1 had real length 3 in both cases; its positions 3..4 were junk in one and real
    # tokens in the other, so its outputs agree only because padding is masked.
    np.testing.assert_allclose(base["logits"][1], padded["logits"][1], atol=1e-5)
    alignments = padded["alignments"].numpy()
    assert np.all(alignments[1, :, 3:] == 0.0)
    np.testing.assert_allclose(alignments.sum(-1), 1.0, atol=1e-5)


def test_output_shapes():
    model = tiny_model()
    out = model(
        {
            "inputs": tf.ones([3, 7], tf.int32),
            "input_lengths": tf.constant([7, 2, 1]),
            "targets": tf.ones([3, 6], tf.int32),
        }
    )
    assert out["logits"].shape == (3, 6, 20)
    assert out["alignments"].shape == (3, 6, 7)


def test_loss_ignores_padding_and_matches_plain_cross_entropy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 6)).astype(np.float32)
    labels = rng.integers(0, 6, size=(2, 4)).astype(np.int32)
    lengths = np.array([4, 2], np.int32)
    total, count = sequence_cross_entropy(logits, labels, lengths)
    assert float(count) == 6.0
    changed = logits.copy()
    changed[1, 2:] += 100.0 * rng.normal(size=(2, 6))
    total_changed, _ = sequence_cross_entropy(changed, labels, lengths)
    assert float(total) == pytest.approx(float(total_changed), rel=1e-6)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -sum(log_probs[b, t, labels[b, t]] for b in range(2) for t in range(lengths[b]))
    assert float(total) == pytest.approx(expected, rel=1e-5)


def test_label_smoothing_adds_uniform_term():
    logits = np.zeros((1, 1, 4), np.float32)
    logits[0, 0, 1] = 2.0
    labels = np.array([[1]], np.int32)
    plain, _ = sequence_cross_entropy(logits, labels, np.array([1]))
    smooth, _ = sequence_cross_entropy(logits, labels, np.array([1]), label_smoothing=0.2)
    log_probs = logits[0, 0] - np.log(np.exp(logits[0, 0]).sum())
    assert float(smooth) == pytest.approx(0.8 * float(plain) - 0.2 * log_probs.mean(), rel=1e-5)


def test_guided_attention_penalty_known_answers():
    steps, frames = 4, 8
    diagonal = np.zeros((1, steps, frames), np.float32)
    for n in range(steps):
        diagonal[0, n, 2 * n : 2 * n + 2] = 0.5  # step n reads frames 2n and 2n+1
    at_the_end = np.zeros((1, steps, frames), np.float32)
    at_the_end[0, :, -1] = 1.0
    lengths, num_frames = np.array([steps]), np.array([frames])
    near, count = guided_attention_penalty(diagonal, lengths, num_frames, width=0.2)
    far, _ = guided_attention_penalty(at_the_end, lengths, num_frames, width=0.2)
    assert float(count) == steps
    # Off by a quarter of a frame step: cost 1 - exp(-(1/16)^2 / 0.08) per unit of mass.
    assert float(near) == pytest.approx(steps * (1 - np.exp(-((1 / 16) ** 2) / 0.08)), rel=1e-5)
    distances = [(n + 0.5) / steps - 7.5 / frames for n in range(steps)]
    assert float(far) == pytest.approx(sum(1 - np.exp(-(d**2) / 0.08) for d in distances))
    # Padded steps and frames cost nothing: the same example padded gives the same sum.
    padded = np.zeros((1, steps + 2, frames + 3), np.float32)
    padded[0, :steps, :frames] = at_the_end[0]
    padded[0, steps:, :] = 1.0
    again, count = guided_attention_penalty(padded, lengths, num_frames, width=0.2)
    assert float(again) == pytest.approx(float(far)) and float(count) == steps


def test_guided_attention_lays_its_diagonal_over_the_speech_span():
    steps, frames = 4, 8
    reads_the_words = np.zeros((1, steps, frames), np.float32)
    for n in range(steps):
        reads_the_words[0, n, 2 + n] = 1.0  # words spoken in frames 2-5, silence around them
    lengths, num_frames = np.array([steps]), np.array([frames])
    speech = np.array([[0.25, 0.75]], np.float32)
    on_speech, _ = guided_attention_penalty(reads_the_words, lengths, num_frames, 0.2, speech)
    whole_clip, _ = guided_attention_penalty(reads_the_words, lengths, num_frames, 0.2)
    assert float(on_speech) == pytest.approx(0.0, abs=1e-6)
    # Over the whole clip the same reading is off by (n - 1.5) / 8 at step n.
    expected = sum(1 - np.exp(-(((n - 1.5) / 8) ** 2) / 0.08) for n in range(steps))
    assert float(whole_clip) == pytest.approx(expected, rel=1e-5)
    everything = np.array([[0.0, 1.0]], np.float32)
    same, _ = guided_attention_penalty(reads_the_words, lengths, num_frames, 0.2, everything)
    assert float(same) == pytest.approx(float(whole_clip))
    # Attention resting on the leading silence costs more once the diagonal skips it.
    on_silence = np.zeros_like(reads_the_words)
    on_silence[0, 0, 0] = 1.0
    silent_speech, _ = guided_attention_penalty(on_silence, lengths, num_frames, 0.2, speech)
    silent_clip, _ = guided_attention_penalty(on_silence, lengths, num_frames, 0.2)
    assert float(silent_speech) > float(silent_clip) + 0.3


def test_word_windows_cost_attention_outside_each_labels_word():
    # Two words: frames 2-3 and 5-7 of 10; labels "ab cd" + eos, the space and eos free.
    frames = 10
    windows = np.array(
        [[[0.2, 0.4], [0.2, 0.4], [-1, -1], [0.5, 0.8], [0.5, 0.8], [-1, -1]]], np.float32
    )
    lengths, num_frames = np.array([6]), np.array([frames])
    reads_the_words = np.zeros((1, 6, frames), np.float32)
    for step, frame in enumerate([2, 3, 0, 5, 7, 9]):
        reads_the_words[0, step, frame] = 1.0  # the space and eos look anywhere
    inside, count = word_window_penalty(reads_the_words, lengths, num_frames, windows)
    assert float(inside) == pytest.approx(0.0, abs=1e-6) and float(count) == 4
    swapped = reads_the_words[:, [3, 4, 2, 0, 1, 5]]  # each word's letters on the other word
    outside, _ = word_window_penalty(swapped, lengths, num_frames, windows)
    assert float(outside) > 3.0
    # Just beside a word costs less than far from it.
    near = np.zeros_like(reads_the_words)
    near[0, 0, 4] = 1.0
    far = np.zeros_like(reads_the_words)
    far[0, 0, 9] = 1.0
    near_cost, _ = word_window_penalty(near, lengths, num_frames, windows, width=0.05)
    far_cost, _ = word_window_penalty(far, lengths, num_frames, windows, width=0.05)
    assert 0.0 < float(near_cost) < 0.5 < float(far_cost)
    # Padded steps cost nothing, and an untimed clip is free.
    padded = np.zeros((1, 8, frames), np.float32)
    padded[0, :6] = swapped[0]
    padded[0, 6:, 0] = 1.0
    more_windows = np.concatenate([windows, np.full((1, 2, 2), 0.9, np.float32)], axis=1)
    again, _ = word_window_penalty(padded, lengths, num_frames, more_windows)
    assert float(again) == pytest.approx(float(outside))
    free, none = word_window_penalty(swapped, lengths, num_frames, np.full_like(windows, -1.0))
    assert float(free) == 0.0 and float(none) == 0.0


def test_guided_attention_is_a_loss_term_of_the_model():
    batch = {
        "inputs": tf.ones([2, 7], tf.int32),
        "input_lengths": tf.constant([7, 4]),
        "targets": tf.ones([2, 5], tf.int32),
        "labels": tf.ones([2, 5], tf.int32),
        "target_lengths": tf.constant([5, 3]),
    }
    plain = tiny_model()
    assert [t.name for t in plain.loss_terms(batch, plain(batch))] == ["attention"]
    guided = tiny_model(guided_attention_weight=0.5)
    out = guided(batch)
    terms = {t.name: t for t in guided.loss_terms(batch, out)}
    assert terms["guided_attention"].weight == 0.5
    expected, count = guided_attention_penalty(
        out["alignments"], batch["target_lengths"], batch["input_lengths"], 0.2
    )
    assert float(terms["guided_attention"].total) == pytest.approx(float(expected))
    assert float(terms["guided_attention"].count) == 8.0 and float(expected) > 0


def test_word_frame_cross_entropy_known_answers():
    # "ab c" + eos over 10 frames: "ab" spoken in frames 2-4, "c" in 6-7; the second clip is
    # 8 frames long and untimed.
    labels = np.array([[5, 6, 4, 7, 3], [5, 4, 6, 3, 0]], np.int32)
    lengths = np.array([5, 4], np.int32)
    free = [-1.0, -1.0]
    windows = np.array([[[0.2, 0.5], [0.2, 0.5], free, [0.6, 0.8], free], [free] * 5], np.float32)
    frames, vocab = 10, 9
    memory_lengths = np.array([10, 8], np.int32)
    # Logits that put all mass on the right letters: the word's own bag for frames 2-4.
    certain = np.full((2, frames, vocab), -30.0, np.float32)
    certain[0, 2:5, 5] = certain[0, 2:5, 6] = 0.0
    certain[0, 6:8, 7] = 30.0
    total, count = word_frame_cross_entropy(certain, memory_lengths, labels, lengths, windows)
    assert float(count) == 5.0  # frames 2, 3, 4, 6, 7 of the timed clip; none of the other
    assert float(total) == pytest.approx(3 * np.log(2.0), abs=1e-4)  # {a, b}: half each
    # Uniform logits cost log(vocab) per counted frame, whatever the target.
    uniform = np.zeros((2, frames, vocab), np.float32)
    total, _ = word_frame_cross_entropy(uniform, memory_lengths, labels, lengths, windows)
    assert float(total) == pytest.approx(5 * np.log(vocab), rel=1e-5)
    # A frame past the clip's length is not counted even inside a window.
    total, count = word_frame_cross_entropy(
        uniform, np.array([7, 8], np.int32), labels, lengths, windows
    )
    assert float(count) == 4.0
    # Labels past target_lengths (padding) name nothing.
    total, count = word_frame_cross_entropy(
        uniform, memory_lengths, labels, np.array([2, 4], np.int32), windows
    )
    assert float(count) == 3.0


def test_frame_labels_are_a_training_only_loss_term_of_the_model():
    batch = {
        "inputs": tf.ones([2, 7], tf.int32),
        "input_lengths": tf.constant([7, 4]),
        "targets": tf.ones([2, 5], tf.int32),
        "labels": tf.constant([[5, 6, 4, 7, 3], [5, 3, 0, 0, 0]], tf.int32),
        "target_lengths": tf.constant([5, 2]),
        "label_windows": tf.constant(
            [
                [[0.0, 0.5], [0.0, 0.5], [-1, -1], [0.5, 1.0], [-1, -1]],
                [[0.0, 1.0]] + [[-1, -1]] * 4,
            ],
            tf.float32,
        ),
    }
    model = tiny_model(frame_label_weight=0.3)
    assert "frame_label_logits" not in model(batch)  # inference never pays for the head
    out = model(batch, training=True)
    terms = {t.name: t for t in model.loss_terms(batch, out)}
    assert terms["frame_labels"].weight == 0.3
    assert float(terms["frame_labels"].count) == 7.0 + 4.0  # every frame of both clips is in a word
    head = model.frame_label_head
    assert head.units == model.decoder.vocab_size and len(head.trainable_weights) == 2
    untimed = {k: v for k, v in batch.items() if k != "label_windows"}
    with pytest.raises(ValueError, match="needs word timings"):
        model.loss_terms(untimed, model(untimed, training=True))
    plain = tiny_model()
    assert "frame_labels" not in {
        t.name for t in plain.loss_terms(batch, plain(batch, training=True))
    }
    # The words guidance reads the same timings and says so alike when they are missing.
    guided = tiny_model(guided_attention_weight=1.0, guided_attention_prior="words")
    with pytest.raises(ValueError, match='prior="words" needs word timings'):
        guided.loss_terms(untimed, guided(untimed, training=True))


@pytest.mark.parametrize("attention,cell", [VARIANTS[0], VARIANTS[1], VARIANTS[4]])
def test_beam_of_one_equals_greedy(attention, cell):
    model = tiny_model(attention, cell)
    inputs = tf.random.stateless_uniform([4, 6], [1, 2], 4, 30, tf.int32)
    lengths = tf.constant([6, 4, 2, 1])
    limits = max_decode_lengths(lengths, 1.5, 12)
    greedy = greedy_search(model, inputs, lengths, BOS, EOS, limits)
    beam = beam_search(model, inputs, lengths, BOS, EOS, limits, beam_size=1, length_penalty=0.0)
    np.testing.assert_array_equal(greedy["lengths"], beam["lengths"])
    for row in range(4):
        n = int(greedy["lengths"][row])
        np.testing.assert_array_equal(greedy["ids"][row, :n], beam["ids"][row, :n])
    np.testing.assert_allclose(greedy["scores"], beam["scores"], rtol=1e-5)


def _sequence_log_prob(model, inputs, lengths, tokens):
    targets = np.array([[BOS] + tokens], np.int32)
    labels = np.array([tokens + [EOS]])
    logits = model({"inputs": inputs, "input_lengths": lengths, "targets": targets})["logits"]
    log_probs = tf.nn.log_softmax(logits[0]).numpy()
    return sum(log_probs[t, labels[0, t]] for t in range(labels.shape[1]))


def test_wide_beam_finds_the_exact_best_sequence():
    vocab = 5
    model = tiny_model(vocab=(12, vocab))
    inputs = tf.constant([[5, 7, 9]], tf.int32)
    lengths = tf.constant([3])
    max_steps = 3  # up to 2 tokens, then eos is forced
    non_eos = [v for v in range(vocab) if v != EOS]
    candidates = [
        list(seq) for n in range(max_steps) for seq in itertools.product(non_eos, repeat=n)
    ]
    brute = {tuple(c): _sequence_log_prob(model, inputs, lengths, c) for c in candidates}
    best_tokens, best_score = max(brute.items(), key=lambda kv: kv[1])
    result = beam_search(
        model,
        inputs,
        lengths,
        BOS,
        EOS,
        tf.constant([max_steps]),
        beam_size=len(candidates) + 4,
        length_penalty=0.0,
    )
    n = int(result["lengths"][0])
    assert tuple(result["ids"][0, :n].numpy()) == best_tokens
    assert float(result["scores"][0]) == pytest.approx(best_score, abs=1e-4)


def test_beam_search_compiles_and_respects_limits():
    model = tiny_model(attention="bahdanau")
    inputs = tf.random.stateless_uniform([3, 5], [3, 4], 4, 30, tf.int32)
    lengths = tf.constant([5, 3, 1])
    limits = tf.constant([4, 2, 6])
    search = tf.function(lambda x, n, m: beam_search(model, x, n, BOS, EOS, m, beam_size=4))
    out = search(inputs, lengths, limits)
    assert np.all(out["lengths"].numpy() <= limits.numpy() - 1)
    assert out["alignments"].shape[0] == 3 and out["alignments"].shape[2] == 5
    assert np.all(np.isfinite(out["scores"].numpy()))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_checkpoint_restores_every_trainable_weight(cell, tmp_path):
    source = tiny_model(cell=cell)
    path = tf.train.Checkpoint(model=source).save(str(tmp_path / "ckpt"))
    tf.keras.utils.set_random_seed(99)
    restored = tiny_model(cell=cell)
    for variable in restored.trainable_variables:
        variable.assign(tf.random.normal(variable.shape))
    tf.train.Checkpoint(model=restored).read(path).assert_existing_objects_matched()
    assert len(source.trainable_variables) == len(restored.trainable_variables) > 20
    for a, b in zip(source.trainable_variables, restored.trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


@pytest.mark.parametrize("shares", [(0.5, 0.5), (0.25, 0.75)])
def test_joint_search_shares_the_ctc_weight_between_several_heads(shares):
    model = tiny_model(vocab=(30, 20), ctc_weight=0.3)

    class TwoEqualHeads:
        """The model, scoring joint decoding with its one CTC head counted twice."""

        def __getattr__(self, name):
            return getattr(model, name)

        def ctc_scores(self, memory):
            lengths = tf.reduce_sum(tf.cast(memory["mask"], tf.int32), axis=1)
            logits = model.ctc_head(memory["memory"])
            return [(logits, lengths, share) for share in shares]

    inputs = tf.random.stateless_uniform([3, 6], [2, 3], 4, 30, tf.int32)
    lengths, limits = tf.constant([6, 4, 2]), tf.constant([8, 8, 8])
    one = beam_search(model, inputs, lengths, BOS, EOS, limits, beam_size=3, ctc_weight=0.4)
    two = beam_search(
        TwoEqualHeads(), inputs, lengths, BOS, EOS, limits, beam_size=3, ctc_weight=0.4
    )
    # One head counted twice, its shares summing to 1, is the one head at the whole weight.
    np.testing.assert_array_equal(one["ids"].numpy(), two["ids"].numpy())
    np.testing.assert_allclose(one["scores"].numpy(), two["scores"].numpy(), rtol=1e-5)
