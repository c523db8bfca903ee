"""Mouth frames in, text out: normalisation, the model and every decoding mode in one graph.

Decoding modes (all stock TensorFlow ops inside tf.while_loop / tf.scan):
    ctc_greedy     best path of the CTC head (with a grammar: the best path among its sentences)
    ctc_beam       CTC prefix beam search
    attention      attention beam search with length normalisation
    joint          attention beam search scored with CTC prefix probabilities
each with an optional grammar automaton (e.g. GRID's six word slots) given as data, and,
with a character language model, ctc_beam_lm, attention_lm and joint_lm: the same searches
with shallow fusion (lm_weight and lm_length_bonus are inputs of those functions).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from data_prep.characters import BOS_ID, EOS_ID, CharVocabulary, word_grammar_automaton
from data_prep.corpora.grid import GRID_GRAMMAR
from data_prep.errors import ConfigError
from models.ctc import ctc_grammar_best_path, ctc_greedy_search, ctc_prefix_beam_search
from models.search import beam_search
from pipelines.inputs.video import inference_frames

MODES = ("ctc_greedy", "ctc_beam", "attention", "joint")
FUSED_MODES = ("ctc_beam", "attention", "joint")


def grammar_for(config, vocabulary: CharVocabulary):
    """(transitions, final_states) for config.decode.grammar, or None; used by every mode."""
    name = config.decode.grammar
    if not name:
        return None
    if name != "grid":
        raise ConfigError(f"unknown grammar {name!r}; known: grid")

    return word_grammar_automaton(list(GRID_GRAMMAR.values()), vocabulary)


class Transcriber(tf.Module):
    """Wraps a trained lip-reading Seq2Seq model for frames-to-text use and export."""

    def __init__(
        self,
        model,
        config,
        normalisation: dict,
        vocabulary: CharVocabulary | None = None,
        grammar: bool = False,
        language_model=None,
    ):
        super().__init__(name="transcriber")
        self.model = model
        self.language_model = language_model
        self.vocabulary = vocabulary or CharVocabulary()
        self.strings = tf.constant(self.vocabulary.id_to_string_table())
        self.mean = tf.constant(normalisation["mean"], tf.float32)
        self.std = tf.constant(normalisation["std"], tf.float32)
        self.crop_size = tuple(config.data.crop_size)
        self.beam_size = int(config.decode.beam_size)
        self.length_penalty = float(config.decode.length_penalty)
        self.ctc_weight = float(config.decode.ctc_weight)
        self.max_length = int(config.decode.max_length)
        self.has_ctc = model.ctc_head is not None
        self.grammar = grammar_for(config, self.vocabulary) if grammar else None
        frames = tf.TensorSpec([None, None, None, None, None], tf.uint8, name="frames")
        lengths = tf.TensorSpec([None], tf.int32, name="lengths")
        self.functions = {
            mode: tf.function(
                lambda f, n, mode=mode: self._transcribe(f, n, mode),
                input_signature=[frames, lengths],
            )
            for mode in self.available_modes()
        }
        # What each function reads and how it decodes: the export's signature catalogue.
        grammar_named = self.grammar is not None
        self.descriptions = {
            mode: {"modality": "video", "mode": mode, "grammar": grammar_named, "fusion": False}
            for mode in self.functions
        }
        if language_model is not None:
            weight = tf.TensorSpec([], tf.float32, name="lm_weight")
            bonus = tf.TensorSpec([], tf.float32, name="lm_length_bonus")
            for mode in FUSED_MODES:
                if mode in self.available_modes():
                    self.functions[f"{mode}_lm"] = tf.function(
                        lambda f, n, w, b, mode=mode: self._transcribe(f, n, mode, (w, b)),
                        input_signature=[frames, lengths, weight, bonus],
                    )
                    self.descriptions[f"{mode}_lm"] = {
                        "modality": "video",
                        "mode": mode,
                        "grammar": grammar_named,
                        "fusion": True,
                    }

    def available_modes(self) -> tuple[str, ...]:
        return MODES if self.has_ctc else ("attention",)

    def detokenize(self, ids, lengths):
        ragged = tf.RaggedTensor.from_tensor(ids, lengths=lengths)
        return tf.strings.reduce_join(tf.gather(self.strings, ragged), axis=-1)

    def _transcribe(self, frames, lengths, mode, fusion=None):
        inputs = inference_frames(frames, self.mean, self.std, self.crop_size)
        lengths = tf.cast(lengths, tf.int32)
        return self._search(self.model, inputs, lengths, mode, tf.shape(frames)[1], fusion)

    def _search(self, model, inputs, lengths, mode, num_frames, fusion=None):
        """Text, scores and alignments of one decoding mode; `model` is the model or a view
        of a multi-stream one (models.multistream.StreamsView) whose first stream it reads.
        fusion: (lm_weight, lm_length_bonus) to search with self.language_model."""
        lm = {}
        if fusion is not None:
            lm = {
                "language_model": self.language_model,
                "lm_weight": fusion[0],
                "lm_length_bonus": fusion[1],
            }
        batch = tf.shape(tf.nest.flatten(lengths)[0])[0]
        no_alignment = tf.zeros([batch, 0, num_frames], tf.float32)
        if mode in ("ctc_greedy", "ctc_beam"):
            logits, memory_lengths = model.ctc_outputs(inputs, lengths)
            if mode == "ctc_greedy" and self.grammar is None:
                result = ctc_greedy_search(logits, memory_lengths)
            elif mode == "ctc_greedy":
                result = ctc_grammar_best_path(logits, memory_lengths, *self.grammar)
            else:
                table, final = self.grammar if self.grammar is not None else (None, None)
                result = ctc_prefix_beam_search(
                    logits, memory_lengths, self.beam_size, self.max_length, table, final, **lm
                )
            result["alignments"] = no_alignment
        else:
            max_lengths = tf.fill([batch], self.max_length)
            result = beam_search(
                model,
                inputs,
                lengths,
                BOS_ID,
                EOS_ID,
                max_lengths,
                beam_size=self.beam_size,
                length_penalty=self.length_penalty,
                ctc_weight=self.ctc_weight if mode == "joint" else 0.0,
                grammar=self.grammar,
                **lm,
            )
        return {
            "text": self.detokenize(result["ids"], result["lengths"]),
            "scores": result["scores"],
            "alignments": tf.cast(result["alignments"], tf.float32),
        }


def transcribe_batches(
    function, clips: list[np.ndarray], batch_size: int = 16, alignments: list | None = None
) -> list[str]:
    """Runs a frames->text function over uint8 clips [T, H, W, C] of varied length.

    With `alignments` (a list), each clip's attention weights [output steps, T] are appended.
    """
    texts = []
    for start in range(0, len(clips), batch_size):
        chunk = clips[start : start + batch_size]
        longest = max(len(c) for c in chunk)
        padded = np.zeros((len(chunk), longest, *chunk[0].shape[1:]), np.uint8)
        for i, clip in enumerate(chunk):
            padded[i, : len(clip)] = clip
        out = function(tf.constant(padded), tf.constant([len(c) for c in chunk], tf.int32))
        texts.extend(t.decode() for t in out["text"].numpy())
        if alignments is not None:
            weights = out["alignments"].numpy()
            alignments.extend(weights[i, :, : len(c)] for i, c in enumerate(chunk))
    return texts
