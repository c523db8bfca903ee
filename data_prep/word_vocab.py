"""Word vocabularies for translation: whole words and punctuation marks as tokens, <unk> for
words outside the vocabulary.

A token is a run of letters and digits, or one other character; a token that followed a
space carries the word-start mark U+2581 (as SentencePiece pieces do), so joining the tokens
and turning marks back into spaces gives the text again: "Holz." is "▁Holz" and ".".

The split runs as TensorFlow ops, in preparation and in the exported graph alike, so both
cut text the same way; the vocabulary file has one token per line, its line number the id,
ids 0-3 the special tokens of the subword models.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from data_prep.atomic import atomic_open, atomic_path
from data_prep.errors import LipseqError
from data_prep.records import sha256_file
from data_prep.subwords import EOS_ID, SPECIAL_IDS, SPECIAL_PIECES, UNK_ID, SubwordModelInfo

WORD_START = "\u2581"
_TOKEN = r"\x{2581}?(?:[\p{L}\p{N}]+|[^\p{L}\p{N}\x{2581}])"
SPECIAL_TOKENS = [
    SPECIAL_PIECES[name.replace("_id", "_piece")]
    for name, _ in sorted(SPECIAL_IDS.items(), key=lambda item: item[1])
]
_BATCH = 512


class WordVocabularyError(LipseqError, ValueError):
    """A word vocabulary file is missing or malformed."""


def split_words(strings: tf.Tensor) -> tf.RaggedTensor:
    """Normalised strings [B] -> ragged word and punctuation tokens [B, None], start-marked."""
    strings = tf.strings.regex_replace(strings, WORD_START, " ")
    marked = tf.strings.regex_replace(strings, " ", WORD_START)
    marked = tf.where(strings == "", strings, tf.strings.join([WORD_START, marked]))
    return tf_text.regex_split(marked, _TOKEN, keep_delim_regex_pattern=_TOKEN)


@tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
def _split_batch(strings):
    return split_words(strings)


def tokenize_lines(lines: Sequence[str]) -> list[list[str]]:
    """The tokens of each line (already normalised), as Python strings."""
    tokens = []
    for start in range(0, len(lines), _BATCH):
        batch = _split_batch(tf.constant(list(lines[start : start + _BATCH])))
        tokens.extend([t.decode("utf-8") for t in row] for row in batch.to_list())
    return tokens


def count_tokens(paths: Iterable[str | os.PathLike]) -> collections.Counter:
    """How often each token occurs in one-sentence-per-line files."""
    counts: collections.Counter = collections.Counter()
    for path in paths:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        for tokens in tokenize_lines(lines):
            counts.update(tokens)
    return counts


def build_word_vocabulary(
    input_files: Sequence[str | os.PathLike],
    vocab_path: str | os.PathLike,
    vocab_size: int,
    min_count: int = 1,
) -> SubwordModelInfo:
    """The `vocab_size` most frequent tokens (at least `min_count` times) into `vocab_path`.

    Ties are broken by the token itself, so the file depends only on the text. The actual
    size can be smaller than asked when the corpus has fewer tokens.
    """
    counts = count_tokens(input_files)
    ranked = sorted(
        (token for token, count in counts.items() if count >= min_count),
        key=lambda token: (-counts[token], token),
    )
    words = SPECIAL_TOKENS + [t for t in ranked if t not in SPECIAL_TOKENS]
    words = words[:vocab_size]
    vocab_path = Path(vocab_path)
    with atomic_open(vocab_path, "w", encoding="utf-8") as out:
        out.writelines(word + "\n" for word in words)
    return SubwordModelInfo(vocab_path, len(words), vocab_size, sha256_file(vocab_path))


def load_words(path: str | os.PathLike) -> list[str]:
    """The tokens of a vocabulary file, by id."""
    path = Path(path)
    if not path.is_file():
        raise WordVocabularyError(f"word vocabulary not found: {path}")
    words = path.read_text(encoding="utf-8").split("\n")[:-1]
    if words[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
        raise WordVocabularyError(
            f"{path}: not a word vocabulary (its first lines are not {SPECIAL_TOKENS})"
        )
    return words


class WordTokenizer(tf.Module):
    """Normalised strings -> word ids, inside the graph; unknown tokens become <unk>."""

    def __init__(self, words: Sequence[str]):
        super().__init__(name="word_tokenizer")
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(words)), tf.range(len(words), dtype=tf.int32)
            ),
            default_value=UNK_ID,
        )

    def tokenize(self, strings: tf.Tensor) -> tf.RaggedTensor:
        return tf.ragged.map_flat_values(self.table.lookup, split_words(strings))


class WordEncoder:
    """One normalised sentence -> word ids (for preparation)."""

    def __init__(self, words: Sequence[str]):
        self.ids = {word: i for i, word in enumerate(words)}

    def __call__(self, sentence: str) -> list[int]:
        return self.encode_batch([sentence])[0]

    def encode_batch(self, sentences: Sequence[str]) -> list[list[int]]:
        return [
            [self.ids.get(token, UNK_ID) for token in tokens]
            for tokens in tokenize_lines(sentences)
        ]


def learn_dictionary(
    pairs: Iterable[tuple[Sequence[int], Sequence[int]]],
    source_size: int,
    target_size: int,
    per_word: int,
) -> np.ndarray:
    """For each source word id, the `per_word` target words most associated with it in the
    training pairs, by the Dice coefficient of the sentences they occur in; [source_size,
    per_word] int32, -1 where a word has fewer partners (and for the special ids).

    Candidate-list decoding adds each source word's row to a sentence's list of outputs.
    """
    source_counts = np.zeros(source_size, np.int64)
    target_counts = np.zeros(target_size, np.int64)
    keys = []
    for source_ids, target_ids in pairs:
        source = np.unique(np.asarray(source_ids, np.int64))
        target = np.unique(np.asarray(target_ids, np.int64))
        source, target = source[source > EOS_ID], target[target > EOS_ID]
        source_counts[source] += 1
        target_counts[target] += 1
        keys.append((source[:, None] * target_size + target[None, :]).ravel())
    table = np.full((source_size, per_word), -1, np.int32)
    if not keys:
        return table
    pair_keys, together = np.unique(np.concatenate(keys), return_counts=True)
    source, target = pair_keys // target_size, pair_keys % target_size
    dice = 2.0 * together / (source_counts[source] + target_counts[target])
    order = np.lexsort((target, -dice, source))  # by source, best first, ties by id
    source, target = source[order], target[order]
    starts = np.searchsorted(source, source, side="left")
    rank = np.arange(len(source)) - starts
    keep = rank < per_word
    table[source[keep], rank[keep]] = target[keep]
    return table


def save_dictionary(table: np.ndarray, path: str | os.PathLike) -> Path:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, table)
    return Path(path)
