"""CTC searches restricted to a grammar, against brute force over every alignment: they find
the best sentence of the grammar, however late a word with a doubled letter ends, and
greedy's twin answers greedy's own output whenever that is a sentence of the grammar."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from data_prep.characters import CharVocabulary, word_grammar_automaton
from data_prep.corpora.grid import GRID_GRAMMAR
from models.ctc import (
    BLANK_ID,
    ctc_grammar_best_path,
    ctc_greedy_search,
    ctc_prefix_beam_search,
    frames_to_finish_after_blank,
)

# Labels 1..3; sentences "1 1", "1 2", "2" and "3 1 1": two with a repeat, which CTC can
# only spell with a blank frame between the two labels.
TRANSITIONS = np.full((6, 4), -1, np.int32)
TRANSITIONS[0, 1], TRANSITIONS[1, 1], TRANSITIONS[1, 2], TRANSITIONS[0, 2] = 1, 2, 2, 2
TRANSITIONS[0, 3], TRANSITIONS[3, 1], TRANSITIONS[4, 1] = 3, 4, 5
FINAL = np.array([False, False, True, False, False, True])
SENTENCES = {(1, 1), (1, 2), (2,), (3, 1, 1)}


def _collapse(path) -> tuple:
    return tuple(s for i, s in enumerate(path) if s != BLANK_ID and (i == 0 or s != path[i - 1]))


def _log_softmax(x):
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _paths(log_probs):
    """(log-probability, labelling) of every path of a [T, V] posterior."""
    steps, vocab = log_probs.shape
    for path in itertools.product(range(vocab), repeat=steps):
        yield sum(log_probs[t, s] for t, s in enumerate(path)), _collapse(path)


def _best_sentence(log_probs):
    """The grammar's sentence of highest probability (summed over its alignments)."""
    totals = {}
    for score, label in _paths(log_probs):
        if label in SENTENCES:
            totals[label] = np.logaddexp(totals.get(label, -np.inf), score)
    return max(((s, label) for label, s in totals.items()), default=None)


def _best_path(log_probs):
    return max(((s, label) for s, label in _paths(log_probs) if label in SENTENCES), default=None)


def _outputs(out, row):
    n = int(out["lengths"][row])
    return tuple(out["ids"][row, :n].numpy()), float(out["scores"][row])


def _random_posteriors(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(2, 6, 4)).astype(np.float32)
    lengths = np.array([rng.integers(1, 7), 6], np.int32)
    return logits, lengths


def test_a_repeat_spoken_in_the_last_frames_survives_its_blank():
    # "3 1 _ 1" fills the clip: at the blank, the prefix "3 1" needs one frame more, not two.
    logits = np.full((1, 4, 4), -6.0, np.float32)
    for t, label in enumerate([3, 1, BLANK_ID, 1]):
        logits[0, t, label] = 6.0
    for width in (1, 4):
        out = ctc_prefix_beam_search(logits, [4], width, 6, TRANSITIONS, FINAL)
        assert _outputs(out, 0)[0] == (3, 1, 1)
    assert frames_to_finish_after_blank(TRANSITIONS, FINAL).tolist() == [1, 1, 0, 3, 1, 0]


@pytest.mark.parametrize("seed", range(12))
def test_constrained_prefix_beam_finds_the_best_sentence(seed):
    logits, lengths = _random_posteriors(seed)
    out = ctc_prefix_beam_search(logits, lengths, 16, 6, TRANSITIONS, FINAL)
    for row in range(2):
        best = _best_sentence(_log_softmax(logits[row, : lengths[row]]))
        label, score = _outputs(out, row)
        if best is None:  # too few frames for any sentence
            assert label == () and score < -1e29
            continue
        assert label == best[1]
        assert score == pytest.approx(best[0], abs=1e-4)


@pytest.mark.parametrize("seed", range(12))
def test_greedy_grammar_twin_is_the_best_path_among_the_sentences(seed):
    logits, lengths = _random_posteriors(seed)
    out = ctc_grammar_best_path(logits, lengths, TRANSITIONS, FINAL)
    for row in range(2):
        best = _best_path(_log_softmax(logits[row, : lengths[row]]))
        label, score = _outputs(out, row)
        if best is None:
            assert label == () and score < -1e29
            continue
        assert label == best[1]
        assert score == pytest.approx(best[0], abs=1e-4)


def _grid_posterior(paths: list[str], vocabulary, frames: int, seed: int):
    """Logits whose best path spells each of `paths` ("_" a blank frame), padded with blank
    frames to `frames`, plus noise that leaves every frame's best label in place."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=0.5, size=(len(paths), frames, vocabulary.size)).astype(np.float32)
    for row, path in enumerate(paths):
        labels = [BLANK_ID if c == "_" else vocabulary.ids[c] for c in path]
        labels += [BLANK_ID] * (frames - len(labels))
        logits[row, np.arange(frames), labels] += 6.0
    return logits


def test_greedy_grammar_twin_keeps_greedy_when_greedy_is_a_sentence():
    vocabulary = CharVocabulary()
    transitions, final = word_grammar_automaton(list(GRID_GRAMMAR.values()), vocabulary)
    # A sentence whose doubled "o" takes the clip's last frames, a sentence with a letter
    # outside the grammar ("nox"), and one with a slot missing.
    paths = [
        "__bin__ _blue_ _at_ _f_ _two_ __so_on",
        "__bin__ _blue_ _at_ _f_ _two_ _nox__",
        "__bin__ _blue_ _at_ _f_ _two_______",
    ]
    frames = max(len(p) for p in paths)
    logits = _grid_posterior(paths, vocabulary, frames, seed=0)
    lengths = np.full(len(paths), frames, np.int32)
    twin = ctc_grammar_best_path(logits, lengths, transitions, final)
    greedy = ctc_greedy_search(tf.constant(logits), tf.constant(lengths))
    texts = [vocabulary.decode(_outputs(twin, row)[0]) for row in range(3)]
    assert texts[0] == vocabulary.decode(_outputs(greedy, 0)[0]) == "bin blue at f two soon"
    assert _outputs(twin, 0)[1] == pytest.approx(_outputs(greedy, 0)[1], abs=1e-4)
    for text in texts[1:]:
        words = text.split(" ")
        assert all(w in slot for w, slot in zip(words, GRID_GRAMMAR.values(), strict=True))
        assert words[:5] == ["bin", "blue", "at", "f", "two"]
    beam = ctc_prefix_beam_search(logits, lengths, 8, 64, transitions, final)
    assert vocabulary.decode(_outputs(beam, 0)[0]) == "bin blue at f two soon"
