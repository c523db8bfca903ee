"""Strings in, their probability under a language model out: tokenisation inside the graph.

Character models normalise as data_prep.language_model does for characters (lowercase, only
the lip-reading characters, single spaces); SentencePiece models normalise as translation
does and tokenise with tensorflow_text, so the export needs no project code.
"""

from pathlib import Path

import tensorflow as tf

from data_prep.characters import UNK_ID, CharVocabulary
from models.language_model import sequence_log_probs
from pipelines.signatures.translator import normalize_strings


class SentenceScorer(tf.Module):
    """Wraps a trained language model: score(text [B]) -> log_prob, num_tokens, perplexity."""

    def __init__(self, model, prepared_dir: str | Path, vocab: dict):
        super().__init__(name="sentence_scorer")
        self.model = model
        self.kind = vocab["kind"]
        self.bos_id, self.eos_id = int(vocab["bos_id"]), int(vocab["eos_id"])
        if self.kind == "characters":
            characters = CharVocabulary()
            keys = tf.constant(list(characters.ids))
            values = tf.constant(list(characters.ids.values()), tf.int32)
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(keys, values), default_value=UNK_ID
            )
            allowed = "".join(sorted(set(characters.ids) - {" ", "'"}))
            self.out_of_set = f"[^{allowed}' ]"
        else:
            # Late: only SentencePiece vocabularies need tensorflow_text's ops.
            import tensorflow_text as tf_text

            model_bytes = (Path(prepared_dir) / vocab["model"]).read_bytes()
            self.tokenizer = tf_text.SentencepieceTokenizer(model=model_bytes, out_type=tf.int32)

    def tokenize(self, text):
        """Strings [B] -> ragged ids [B, (n)], without bos or eos."""
        if self.kind == "characters":
            text = tf.strings.lower(text, encoding="utf-8")
            text = tf.strings.regex_replace(text, self.out_of_set, "")
            text = tf.strings.strip(tf.strings.regex_replace(text, " +", " "))
            return self.table.lookup(tf.strings.unicode_split(text, "UTF-8"))
        return self.tokenizer.tokenize(normalize_strings(text))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def score(self, text):
        ids = self.tokenize(text)
        batch = tf.shape(text)[0]
        bos = tf.fill([batch, 1], self.bos_id)
        eos = tf.fill([batch, 1], self.eos_id)
        lengths = tf.cast(ids.row_lengths(), tf.int32) + 1
        padded = ids.to_tensor(0)
        targets = tf.concat([bos, padded], 1)
        # The eos label goes right after each sentence's last token, wherever padding starts.
        labels = tf.concat([padded, tf.zeros_like(eos)], 1)
        labels += tf.one_hot(lengths - 1, tf.shape(labels)[1], dtype=tf.int32) * self.eos_id
        log_prob = sequence_log_probs(self.model, targets, labels, lengths)
        return {
            "log_prob": log_prob,
            "num_tokens": lengths,
            "perplexity": tf.exp(-log_prob / tf.cast(lengths, tf.float32)),
        }
