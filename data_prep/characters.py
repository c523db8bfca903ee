"""Character vocabulary for lip reading, and word grammars compiled to automata over it.

Ids: 0 pad (also the CTC blank), 1 unknown, 2 bos, 3 eos, then the characters of the
charset in sorted order (space first). The same table serves the attention decoder and CTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from data_prep.corpora.transcripts import CHARSET

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>")


class CharVocabulary:
    """Maps transcript characters to ids and back."""

    def __init__(self, charset: Iterable[str] = CHARSET):
        self.characters = sorted(set(charset))
        self.ids = {c: i + len(SPECIAL_TOKENS) for i, c in enumerate(self.characters)}

    @property
    def size(self) -> int:
        return len(SPECIAL_TOKENS) + len(self.characters)

    def encode(self, text: str) -> list[int]:
        """Characters -> ids (no bos/eos); unknown characters become UNK_ID."""
        return [self.ids.get(c, UNK_ID) for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text, stopping at eos and skipping pad/bos."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i >= len(SPECIAL_TOKENS):
                out.append(self.characters[i - len(SPECIAL_TOKENS)])
            elif i == UNK_ID:
                out.append("?")
        return "".join(out)

    def id_to_string_table(self) -> list[str]:
        """Surface string of every id, for in-graph detokenisation (specials map to '')."""
        return ["", "?", "", ""] + self.characters


def word_grammar_automaton(
    slots: Sequence[Sequence[str]], vocabulary: CharVocabulary, end_id: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A sentence of one word per slot, separated by single spaces, as a character automaton.

    Returns (transitions int32 [Q, V], final bool [Q]): transitions[q, v] is the next state
    after label v in state q, or -1 where v is not allowed; state 0 is the start. With
    `end_id`, final states also accept that label (e.g. eos for an attention decoder) into an
    absorbing accept state.
    """
    transitions: list[dict[int, int]] = [{}]
    final: set[int] = set()
    slot_starts = [0]
    space = vocabulary.ids[" "]
    for index, words in enumerate(slots):
        start = slot_starts[index]
        ends = []
        for word in words:
            state = start
            for ch in word:
                if ch not in vocabulary.ids:
                    raise ValueError(f"grammar word {word!r} has {ch!r}, not in the vocabulary")
                label = vocabulary.ids[ch]
                if label not in transitions[state]:
                    transitions.append({})
                    transitions[state][label] = len(transitions) - 1
                state = transitions[state][label]
            ends.append(state)
        if index + 1 < len(slots):
            transitions.append({})
            next_start = len(transitions) - 1
            slot_starts.append(next_start)
            for state in ends:
                transitions[state][space] = next_start
        else:
            final.update(ends)
    if end_id is not None:
        transitions.append({})
        accept = len(transitions) - 1
        for state in final:
            transitions[state][end_id] = accept
        final = {accept}
    table = np.full((len(transitions), vocabulary.size), -1, np.int32)
    for state, arcs in enumerate(transitions):
        for label, target in arcs.items():
            table[state, label] = target
    is_final = np.zeros(len(transitions), bool)
    is_final[sorted(final)] = True
    return table, is_final
