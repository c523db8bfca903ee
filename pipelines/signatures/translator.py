"""Raw strings in, translations out: tokenisation, search and detokenisation in one graph.

Detokenisation is a table lookup over the target pieces rather than a second SentencePiece
op: two SentencePiece resources in one SavedModel were swapped when it was loaded again.
Word vocabularies (data_prep/word_vocab.py) share that lookup: their tokens carry the same
word-start mark. With them, an <unk> in the output is replaced by the source token the
attention weighs most at that step, which keeps names and numbers that the vocabulary lacks.

The same module serves in-process validation during training, evaluation from a checkpoint,
and the exported SavedModel, so all three produce identical output.
"""

from pathlib import Path

import numpy as np
import sentencepiece
import tensorflow as tf
import tensorflow_text as tf_text

from data_prep.subwords import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from data_prep.word_vocab import WORD_START, WordTokenizer, load_words, split_words
from models.search import beam_search, greedy_search, max_decode_lengths

# RE2's \s is ASCII-only; \p{Z} adds the Unicode separators that Python's str.split() knows.
_WHITESPACE = r"[\s\p{Z}]+"
_UNKNOWN_SURFACE = " \u2047 "


def normalize_strings(strings: tf.Tensor) -> tf.Tensor:
    """In-graph twin of data_prep.corpora.text.normalize_text; invalid UTF-8 becomes U+FFFD."""
    strings = tf.strings.unicode_transcode(
        strings, "UTF-8", "UTF-8", errors="replace", replace_control_characters=False
    )
    strings = tf_text.normalize_utf8(strings, "NFKC")
    strings = tf.strings.regex_replace(strings, _WHITESPACE, " ")
    return tf.strings.strip(strings)


def target_pieces(model_path: str | Path, kind: str = "subwords") -> list[str]:
    """The surface string of every id: control ids decode to nothing, unknown to ' ⁇ '."""
    if kind == "words":
        control = {PAD_ID, BOS_ID, EOS_ID}
        return [
            "" if i in control else _UNKNOWN_SURFACE if i == UNK_ID else word
            for i, word in enumerate(load_words(model_path))
        ]
    processor = sentencepiece.SentencePieceProcessor(model_file=str(model_path))
    pieces = []
    for i in range(processor.get_piece_size()):
        if processor.is_control(i):
            pieces.append("")
        elif processor.is_unknown(i):
            pieces.append(_UNKNOWN_SURFACE)
        else:
            pieces.append(processor.id_to_piece(i))
    return pieces


def _source_tokenizer(model_path: str | Path, kind: str):
    if kind == "words":
        return WordTokenizer(load_words(model_path))
    return tf_text.SentencepieceTokenizer(model=Path(model_path).read_bytes(), out_type=tf.int32)


class Translator(tf.Module):
    """Wraps a trained Seq2Seq model and its vocabularies (SentencePiece models or word lists,
    as vocab["kind"] says) for string-to-string use."""

    def __init__(
        self,
        model,
        source_model: str | Path,
        target_model: str | Path,
        config,
        vocab,
        language_model=None,
        dictionary: str | Path | None = None,
    ):
        super().__init__(name="translator")
        self.model = model
        self.language_model = language_model
        kind = vocab.get("kind", "subwords")
        self.source_tokenizer = _source_tokenizer(source_model, kind)
        pieces = target_pieces(target_model, kind)
        target_size = len(pieces)
        self.target_pieces = tf.constant(pieces)
        self.replace_unknown = kind == "words" and bool(config.decode.replace_unknown)
        self.bos_id = int(vocab["bos_id"])
        self.eos_id = int(vocab["eos_id"])
        self.max_source_length = int(config.data.max_length)
        self.max_length_ratio = float(config.decode.max_length_ratio)
        self.max_decode_length = int(config.decode.max_length)
        self.beam_size = int(config.decode.beam_size)
        self.length_penalty = float(config.decode.length_penalty)
        string_batch = tf.TensorSpec([None], tf.string, name="source")
        self.translate_beam = tf.function(self._translate_beam, input_signature=[string_batch])
        self.translate_greedy = tf.function(self._translate_greedy, input_signature=[string_batch])
        # Searching each sentence's candidate list needs the prepared dictionary.
        self.has_candidates = dictionary is not None
        if self.has_candidates:
            self.dictionary = tf.constant(np.load(dictionary))
            frequent = int(config.decode.candidate_frequent)
            # <unk> stays a candidate: replace_unknown turns it into a copied source word.
            self.frequent_ids = tf.concat(
                [[UNK_ID], tf.range(EOS_ID + 1, min(EOS_ID + 1 + frequent, target_size))], 0
            )
            self.translate_beam_candidates = tf.function(
                lambda source: self._translate_beam(source, candidates=True),
                input_signature=[string_batch],
            )
        if language_model is not None:
            weight = tf.TensorSpec([], tf.float32, name="lm_weight")
            bonus = tf.TensorSpec([], tf.float32, name="lm_length_bonus")
            self.translate_beam_lm = tf.function(
                lambda source, w, b: self._translate_beam(source, (w, b)),
                input_signature=[string_batch, weight, bonus],
            )

    def encode_source(self, strings: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Strings [B] -> (ids [B, S] with eos appended, lengths [B])."""
        tokens = self.source_tokenizer.tokenize(normalize_strings(strings))
        tokens = tokens[:, : self.max_source_length]
        eos = tf.fill([tokens.nrows(), 1], self.eos_id)
        tokens = tf.concat([tokens, tf.RaggedTensor.from_tensor(eos)], axis=1)
        return tokens.to_tensor(default_value=0), tf.cast(tokens.row_lengths(), tf.int32)

    def detokenize(self, ids: tf.RaggedTensor) -> tf.Tensor:
        """Ragged target ids -> strings, as SentencePiece decodes them."""
        return self._join(tf.gather(self.target_pieces, ids))

    @staticmethod
    def _join(pieces) -> tf.Tensor:
        text = tf.strings.reduce_join(pieces, axis=-1)
        return tf.strings.strip(tf.strings.regex_replace(text, WORD_START, " "))

    def _copy_unknown(self, pieces, ids, alignments, source):
        """Each <unk> piece becomes the source token most attended at its step."""
        source_tokens = split_words(normalize_strings(source))[:, : self.max_source_length]
        # Padded to the attention's width; eos and padding columns hold "" and copy nothing.
        source_tokens = source_tokens.to_tensor(default_value="")
        missing = tf.shape(alignments)[2] - tf.shape(source_tokens)[1]
        source_tokens = tf.pad(source_tokens, [[0, 0], [0, missing]], constant_values="")
        attended = tf.argmax(alignments, axis=-1, output_type=tf.int32)
        copied = tf.gather(source_tokens, attended, batch_dims=1)
        marked = tf.strings.join(
            [WORD_START, tf.strings.regex_replace(copied, f"^{WORD_START}", "")]
        )
        copied = tf.where(copied == "", copied, marked)
        return tf.where(tf.equal(ids, UNK_ID), copied, pieces)

    def _outputs(self, search_result, source) -> dict:
        pieces = tf.gather(self.target_pieces, search_result["ids"])
        if self.replace_unknown:
            pieces = self._copy_unknown(
                pieces, search_result["ids"], search_result["alignments"], source
            )
        pieces = tf.RaggedTensor.from_tensor(pieces, lengths=search_result["lengths"])
        return {
            "text": self._join(pieces),
            "scores": search_result["scores"],
            "alignments": search_result["alignments"],
            "lengths": search_result["lengths"],
        }

    def candidate_ids(self, inputs) -> tf.Tensor:
        """Source ids [B, S] -> each sentence's candidate outputs [B, C] (-1 pads): <unk>, the
        most frequent target words and the dictionary's entries for its source words."""
        batch = tf.shape(inputs)[0]
        frequent = tf.tile(self.frequent_ids[None], [batch, 1])
        translations = tf.reshape(tf.gather(self.dictionary, inputs), [batch, -1])
        return tf.concat([frequent, translations], axis=1)

    def _translate_beam(self, source, fusion=None, candidates=False):
        """fusion: (lm_weight, lm_length_bonus) to search with self.language_model;
        candidates: search over each sentence's candidate list only."""
        search_options = {}
        if fusion is not None:
            search_options = {
                "language_model": self.language_model,
                "lm_weight": fusion[0],
                "lm_length_bonus": fusion[1],
            }
        inputs, lengths = self.encode_source(source)
        if candidates:
            search_options["candidate_ids"] = self.candidate_ids(inputs)
        max_lengths = max_decode_lengths(lengths, self.max_length_ratio, self.max_decode_length)
        return self._outputs(
            source=source,
            search_result=beam_search(
                self.model,
                inputs,
                lengths,
                self.bos_id,
                self.eos_id,
                max_lengths,
                beam_size=self.beam_size,
                length_penalty=self.length_penalty,
                **search_options,
            ),
        )

    def _translate_greedy(self, source):
        inputs, lengths = self.encode_source(source)
        max_lengths = max_decode_lengths(lengths, self.max_length_ratio, self.max_decode_length)
        return self._outputs(
            greedy_search(self.model, inputs, lengths, self.bos_id, self.eos_id, max_lengths),
            source,
        )
