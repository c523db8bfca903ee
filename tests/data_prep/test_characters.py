import pytest

from data_prep.characters import EOS_ID, CharVocabulary, word_grammar_automaton
from data_prep.corpora.grid import GRID_GRAMMAR


def accepts(table, final, ids):
    state = 0
    for label in ids:
        state = table[state, label]
        if state < 0:
            return False
    return bool(final[state])


def test_vocabulary_round_trip():
    vocabulary = CharVocabulary()
    text = "place red at c seven again"
    assert vocabulary.decode(vocabulary.encode(text)) == text
    assert vocabulary.decode(vocabulary.encode("ab") + [EOS_ID] + vocabulary.encode("cd")) == "ab"
    assert vocabulary.encode("é") == [1]


def test_grid_grammar_accepts_exactly_grid_sentences():
    vocabulary = CharVocabulary()
    slots = list(GRID_GRAMMAR.values())
    table, final = word_grammar_automaton(slots, vocabulary)
    assert accepts(table, final, vocabulary.encode("bin blue at f two now"))
    assert accepts(table, final, vocabulary.encode("set white with z zero soon"))
    assert not accepts(table, final, vocabulary.encode("bin blue at f two"))
    assert not accepts(table, final, vocabulary.encode("bin blue at w two now"))
    assert not accepts(table, final, vocabulary.encode("bin  blue at f two now"))
    table, final = word_grammar_automaton(slots, vocabulary, end_id=EOS_ID)
    assert accepts(table, final, vocabulary.encode("lay red by a one please") + [EOS_ID])
    assert not accepts(table, final, vocabulary.encode("lay red by a one please"))


def test_grammar_rejects_unknown_characters():
    with pytest.raises(ValueError, match="not in the vocabulary"):
        word_grammar_automaton([["héllo"]], CharVocabulary())
