"""Raw strings in, translations out: tokenisation, search and detokenisation in one graph.

Detokenisation is a table lookup over the target pieces rather than a second SentencePiece
op: two SentencePiece resources in one SavedModel were swapped when it was loaded again.

The same module serves in-process validation during training, evaluation from a checkpoint,
and the exported SavedModel, so all three produce identical output.
"""

from pathlib import Path

import sentencepiece
import tensorflow as tf
import tensorflow_text as tf_text

from models.search import beam_search, greedy_search, max_decode_lengths

# RE2's \s is ASCII-only; \p{Z} adds the Unicode separators that Python's str.split() knows.
_WHITESPACE = r"[\s\p{Z}]+"
_WORD_BOUNDARY = "\u2581"


def normalize_strings(strings: tf.Tensor) -> tf.Tensor:
    """In-graph twin of data_prep.corpora.text.normalize_text; invalid UTF-8 becomes U+FFFD."""
    strings = tf.strings.unicode_transcode(
        strings, "UTF-8", "UTF-8", errors="replace", replace_control_characters=False
    )
    strings = tf_text.normalize_utf8(strings, "NFKC")
    strings = tf.strings.regex_replace(strings, _WHITESPACE, " ")
    return tf.strings.strip(strings)


def target_pieces(spm_path: str | Path) -> list[str]:
    """The surface string of every id: control ids decode to nothing, unknown to ' ⁇ '."""
    processor = sentencepiece.SentencePieceProcessor(model_file=str(spm_path))
    pieces = []
    for i in range(processor.get_piece_size()):
        if processor.is_control(i):
            pieces.append("")
        elif processor.is_unknown(i):
            pieces.append(" \u2047 ")
        else:
            pieces.append(processor.id_to_piece(i))
    return pieces


class Translator(tf.Module):
    """Wraps a trained Seq2Seq model and its SentencePiece models for string-to-string use."""

    def __init__(self, model, source_spm: str | Path, target_spm: str | Path, config, vocab):
        super().__init__(name="translator")
        self.model = model
        self.source_tokenizer = tf_text.SentencepieceTokenizer(
            model=Path(source_spm).read_bytes(), out_type=tf.int32
        )
        self.target_pieces = tf.constant(target_pieces(target_spm))
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

    def encode_source(self, strings: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Strings [B] -> (ids [B, S] with eos appended, lengths [B])."""
        tokens = self.source_tokenizer.tokenize(normalize_strings(strings))
        tokens = tokens[:, : self.max_source_length]
        eos = tf.fill([tokens.nrows(), 1], self.eos_id)
        tokens = tf.concat([tokens, tf.RaggedTensor.from_tensor(eos)], axis=1)
        return tokens.to_tensor(default_value=0), tf.cast(tokens.row_lengths(), tf.int32)

    def detokenize(self, ids: tf.RaggedTensor) -> tf.Tensor:
        """Ragged target ids -> strings, as SentencePiece decodes them."""
        text = tf.strings.reduce_join(tf.gather(self.target_pieces, ids), axis=-1)
        return tf.strings.strip(tf.strings.regex_replace(text, _WORD_BOUNDARY, " "))

    def _outputs(self, search_result) -> dict:
        ids = tf.RaggedTensor.from_tensor(search_result["ids"], lengths=search_result["lengths"])
        return {
            "text": self.detokenize(ids),
            "scores": search_result["scores"],
            "alignments": search_result["alignments"],
            "lengths": search_result["lengths"],
        }

    def _translate_beam(self, source):
        inputs, lengths = self.encode_source(source)
        max_lengths = max_decode_lengths(lengths, self.max_length_ratio, self.max_decode_length)
        return self._outputs(
            beam_search(
                self.model,
                inputs,
                lengths,
                self.bos_id,
                self.eos_id,
                max_lengths,
                beam_size=self.beam_size,
                length_penalty=self.length_penalty,
            )
        )

    def _translate_greedy(self, source):
        inputs, lengths = self.encode_source(source)
        max_lengths = max_decode_lengths(lengths, self.max_length_ratio, self.max_decode_length)
        return self._outputs(
            greedy_search(self.model, inputs, lengths, self.bos_id, self.eos_id, max_lengths)
        )


def translate_all(translate_fn, sentences: list[str], batch_size: int = 64) -> dict:
    """Runs a batched translate function over a list of sentences, keeping the order."""
    texts, scores = [], []
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        out = translate_fn(tf.constant([sentences[i] for i in chunk]))
        texts.extend(t.decode("utf-8") for t in out["text"].numpy())
        scores.extend(float(s) for s in out["scores"].numpy())
    result_texts, result_scores = [""] * len(sentences), [0.0] * len(sentences)
    for position, index in enumerate(order):
        result_texts[index] = texts[position]
        result_scores[index] = scores[position]
    return {"text": result_texts, "scores": result_scores}


MODES = {"beam": "serving_default", "greedy": "greedy"}


def load_translate_modes(export_dir: str | Path, modes=("beam",)) -> dict:
    """mode -> function strings [B] -> outputs dict, from one load of a translation export."""
    from pipelines.serving.saved_model import load_export, signature

    unknown = [mode for mode in modes if mode not in MODES]
    if unknown:
        raise ValueError(
            f"unknown translation mode {unknown[0]!r}; expected one of {', '.join(MODES)}"
        )
    loaded, _ = load_export(export_dir, task="translation")
    functions = {mode: signature(loaded, export_dir, MODES[mode]) for mode in modes}
    return {mode: (lambda strings, f=f: f(source=strings)) for mode, f in functions.items()}


def load_translate(export_dir: str | Path, mode: str = "beam"):
    """A function strings [B] -> outputs dict, backed by a translation export's signature."""
    return load_translate_modes(export_dir, (mode,))[mode]
