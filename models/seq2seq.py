"""The shared sequence-to-sequence model: front-end -> encoder -> attention decoder.

    outputs = model({"inputs": x, "input_lengths": n, "targets": y_in}, training=...)
    outputs["logits"]: [B, T, V]; outputs["alignments"]: [B, T, S]
    (training with sampled softmax: outputs["vectors"] [B, T, U] in place of the logits)
    with a CTC head (config.model.ctc_weight > 0) also outputs["ctc_logits"]: [B, S, V] and
    outputs["ctc_lengths"]: [B]; in training with frame labels (config.model.frame_label_weight
    > 0) also outputs["frame_label_logits"]: [B, S, V]
    loss = model.loss_terms(batch, outputs): the joint CTC/attention objective as weighted sums
Lip reading and translation differ only in the front-end chosen by config.
"""

from typing import NamedTuple

import keras
import tensorflow as tf

from models.ctc import ctc_loss_sum
from models.decoders import AttentionDecoder
from models.encoders import build_encoder
from models.frontends import build_frontend
from models.losses import (
    guided_attention_penalty,
    sampled_sequence_loss,
    sequence_cross_entropy,
    word_frame_cross_entropy,
    word_window_penalty,
)

# "diagonal": read the frames in order (over the speech span when the batch has one);
# "words": read each label's own word (needs word timings in the batch).
GUIDED_ATTENTION_PRIORS = ("diagonal", "words")


class LossTerm(NamedTuple):
    """One part of a training objective: weight * total / (count summed over replicas).

    Terms are handed out as sums and counts, not means, so a distributed loop can divide by
    the count of the whole global batch and the replicas' losses add up to the global one.
    """

    name: str
    weight: float
    total: tf.Tensor
    count: tf.Tensor


@keras.saving.register_keras_serializable("lipseq")
class Seq2Seq(keras.Model):
    """Composes a front-end, a bidirectional encoder and an attention decoder."""

    def __init__(
        self,
        frontend,
        encoder,
        decoder,
        ctc_vocab_size: int = 0,
        ctc_weight: float = 0.0,
        guided_attention_weight: float = 0.0,
        guided_attention_width: float = 0.2,
        guided_attention_prior: str = "diagonal",
        frame_label_weight: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if guided_attention_prior not in GUIDED_ATTENTION_PRIORS:
            raise ValueError(
                f"unknown guided_attention_prior {guided_attention_prior!r}; "
                f"known: {', '.join(GUIDED_ATTENTION_PRIORS)}"
            )
        self.guided_attention_weight = float(guided_attention_weight)
        self.guided_attention_width = float(guided_attention_width)
        self.guided_attention_prior = guided_attention_prior
        self.frontend = frontend
        self.encoder = encoder
        self.decoder = decoder
        self.ctc_weight = float(ctc_weight) if ctc_vocab_size else 0.0
        self.ctc_head = (
            keras.layers.Dense(ctc_vocab_size, name="ctc_head") if ctc_vocab_size else None
        )
        self.frame_label_weight = float(frame_label_weight)
        self.frame_label_head = (
            keras.layers.Dense(decoder.vocab_size, name="frame_label_head")
            if self.frame_label_weight > 0
            else None
        )

    def build(self, input_shape=None):
        self.frontend.build(self.frontend.batch_input_shape)
        self.encoder.build((None, None, self.frontend.output_dim))
        self.decoder.build()
        if self.ctc_head is not None:
            self.ctc_head.build((None, None, self.encoder.output_dim))
        if self.frame_label_head is not None:
            self.frame_label_head.build((None, None, self.encoder.output_dim))
        super().build(input_shape)

    def frontend_variables(self) -> list[tf.Variable]:
        """The variables a front-end freeze holds still (config.freeze_frontend_steps): the
        front-end's trainable ones."""
        return list(self.frontend.trainable_variables)

    def encode(self, inputs, input_lengths, training=False):
        """Inputs -> (memory [B, S, D], memory_lengths [B], encoder_state [B, 2U])."""
        features, lengths = self.frontend(inputs, input_lengths, training=training)
        memory, encoder_state, memory_lengths = self.encoder(features, lengths, training=training)
        return memory, memory_lengths, encoder_state

    def ctc_outputs(self, inputs, input_lengths):
        """Inputs -> (CTC logits [B, S, V], their lengths [B]) for the CTC searches."""
        memory, memory_lengths, _ = self.encode(inputs, input_lengths)
        return self.ctc_head(memory), memory_lengths

    def ctc_scores(self, memory: dict) -> list:
        """(CTC logits, lengths, share of the CTC weight) of each head a joint search scores
        with, from the decoder's prepared memory: here the one CTC head."""
        return single_head_scores(self.ctc_head, memory)

    def call(self, batch, training=False):
        memory, memory_lengths, encoder_state = self.encode(
            batch["inputs"], batch["input_lengths"], training=training
        )
        prepared = self.decoder.prepare_memory(memory, memory_lengths)
        state = self.decoder.initial_state(encoder_state, prepared)
        outputs = self.decoder(batch["targets"], prepared, state, training=training)
        outputs["memory_lengths"] = memory_lengths
        if self.ctc_head is not None:
            outputs["ctc_logits"] = self.ctc_head(memory)
            outputs["ctc_lengths"] = memory_lengths
        if self.frame_label_head is not None and training:
            outputs["frame_label_logits"] = self.frame_label_head(memory)
        return outputs

    def loss_terms(self, batch, outputs, label_smoothing: float = 0.0) -> list[LossTerm]:
        """The objective (1 - w) * attention cross-entropy + w * CTC, w = ctc_weight.

        batch: labels [B, L] (target ids + eos) and target_lengths [B]; outputs: this model's.
        The attention term is normalised by target tokens, the CTC term by its labels (the
        targets without eos). The first term's count is the number of target tokens. With
        guided_attention_weight > 0 a third term adds that weight times the attention mass
        off the diagonal (models/losses.py: guided_attention_penalty), per target token; the
        diagonal spans the speech when the batch has `speech_span` [B, 2] (clip fractions).
        With guided_attention_prior "words" the term is instead the mass outside each label's
        word (word_window_penalty; the batch's `label_windows` [B, L, 2]), per timed label.
        With frame_label_weight > 0 (training only) a last term has each encoder frame inside
        a timed word name its letters (word_frame_cross_entropy), per such frame.
        """
        terms = self.attention_terms(batch, outputs, label_smoothing)
        if self.ctc_weight > 0:
            label_lengths = batch["target_lengths"] - 1
            ctc_sum = ctc_loss_sum(
                outputs["ctc_logits"], outputs["ctc_lengths"], batch["labels"], label_lengths
            )
            ctc_tokens = tf.cast(tf.reduce_sum(label_lengths), tf.float32)
            terms.insert(1, LossTerm("ctc", self.ctc_weight, ctc_sum, ctc_tokens))
        if "frame_label_logits" in outputs:
            frame_sum, num_frames = word_frame_cross_entropy(
                outputs["frame_label_logits"],
                outputs["memory_lengths"],
                batch["labels"],
                batch["target_lengths"],
                word_timings(batch, "frame_label_weight > 0", "frame_label_weight=0"),
            )
            terms.append(LossTerm("frame_labels", self.frame_label_weight, frame_sum, num_frames))
        return terms

    def attention_terms(self, batch, outputs, label_smoothing: float = 0.0) -> list[LossTerm]:
        """The decoder's terms: cross-entropy (weight 1 - ctc_weight) and guided attention.

        With the decoder's vectors instead of logits (training with sampled softmax), the
        cross-entropy is the sampled-softmax loss over the real tokens (no label smoothing).
        """
        if "vectors" in outputs:
            attention_sum, num_tokens = sampled_sequence_loss(
                self.decoder.output_projection,
                outputs["vectors"],
                batch["labels"],
                batch["target_lengths"],
            )
        else:
            attention_sum, num_tokens = sequence_cross_entropy(
                outputs["logits"], batch["labels"], batch["target_lengths"], label_smoothing
            )
        terms = [LossTerm("attention", 1.0 - self.ctc_weight, attention_sum, num_tokens)]
        if self.guided_attention_weight > 0:
            alignments, target_lengths = outputs["alignments"], batch["target_lengths"]
            if self.guided_attention_prior == "words":
                windows = word_timings(
                    batch, 'guided_attention_prior="words"', 'guided_attention_prior="diagonal"'
                )
                penalty, steps = word_window_penalty(
                    alignments, target_lengths, outputs["memory_lengths"], windows
                )
            else:
                penalty, steps = guided_attention_penalty(
                    alignments,
                    target_lengths,
                    outputs["memory_lengths"],
                    self.guided_attention_width,
                    batch.get("speech_span"),
                )
            terms.append(LossTerm("guided_attention", self.guided_attention_weight, penalty, steps))
        return terms


def single_head_scores(ctc_head, memory: dict) -> list:
    """[(CTC logits, lengths, 1.0)] of one head over a decoder's prepared memory."""
    lengths = tf.reduce_sum(tf.cast(memory["mask"], tf.int32), axis=1)
    return [(ctc_head(memory["memory"]), lengths, 1.0)]


def word_timings(batch, setting: str, instead: str) -> tf.Tensor:
    """The batch's `label_windows` [B, L, 2], or a one-line reason naming the setting that asked."""
    if "label_windows" not in batch:
        raise ValueError(
            f"{setting} needs word timings in the batch (label_windows); this task's batches "
            f"have none: set config.model.{instead}"
        )
    return batch["label_windows"]


def decoder_options(model_config, target_vocab_size: int) -> dict:
    """The attention decoder's arguments named by a model config (all but memory sizes)."""
    return {
        "vocab_size": target_vocab_size,
        "embedding_dim": model_config.embedding_dim,
        "units": model_config.decoder_units,
        "cell": model_config.decoder_cell,
        "attention": model_config.attention,
        "attention_units": model_config.attention_units,
        "input_feeding": model_config.input_feeding,
        "dropout": model_config.dropout,
        "sampled_softmax": int(model_config.get("sampled_softmax", 0)),
        "tie_embeddings": bool(model_config.get("tie_embeddings", False)),
        "name": "decoder",
    }


def build_model(model_config, input_vocab_size: int | None, target_vocab_size: int) -> Seq2Seq:
    """Builds (and creates the variables of) the model described by `model_config`."""
    frontend = build_frontend(model_config, input_vocab_size)
    encoder = build_encoder(model_config)
    decoder = AttentionDecoder(
        memory_dim=encoder.output_dim,
        encoder_state_dim=encoder.output_dim,
        **decoder_options(model_config, target_vocab_size),
    )
    ctc_weight = float(model_config.get("ctc_weight", 0.0))
    ctc_vocab_size = target_vocab_size if ctc_weight > 0 else 0
    model = Seq2Seq(
        frontend,
        encoder,
        decoder,
        ctc_vocab_size,
        ctc_weight,
        guided_attention_weight=float(model_config.get("guided_attention_weight", 0.0)),
        guided_attention_width=float(model_config.get("guided_attention_width", 0.2)),
        guided_attention_prior=str(model_config.get("guided_attention_prior", "diagonal")),
        frame_label_weight=float(model_config.get("frame_label_weight", 0.0)),
        name="seq2seq",
    )
    model.build()
    frame_shape = list(frontend.batch_input_shape[2:])
    dummy = {
        "inputs": tf.ones([1, 2, *frame_shape], tf.float32 if frame_shape else tf.int32),
        "input_lengths": tf.constant([2], tf.int32),
        "targets": tf.ones([1, 2], tf.int32),
    }
    model(dummy, training=False)
    return model
