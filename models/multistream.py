"""Watch, Listen, Attend and Spell: one encoder per stream, one attention per stream, one speller.

    outputs = model({"inputs": {"video": frames, "audio": waveform},
                     "input_lengths": {"video": n_v, "audio": n_a}, "targets": y_in})
    outputs["logits"] [B, T, V]; outputs["alignments"] [B, T, S_primary];
    outputs["ctc_logits"] / ["ctc_lengths"]: the primary stream's; ["ctc"][stream] every one's.

Each stream has its own front-end and bidirectional encoder (the shared builders), and the
decoder attends to each memory with its own attention module (the existing classes); the
contexts are concatenated before the attentional vector, as WLAS does. A stream that is
absent for an example (modality dropout in training, or a missing track) has zero memory
and contributes a zero context. The same step function serves training and every search, so
beam search, joint CTC/attention and grammars work unchanged on the primary stream's CTC.
"""

from __future__ import annotations

import contextlib
import logging

import keras
import tensorflow as tf

from models.attention import build_attention
from models.ctc import ctc_loss_sum
from models.decoders import AttentionDecoder
from models.encoders import build_encoder
from models.frontends import build_frontend
from models.masking import sequence_mask
from models.seq2seq import LossTerm, Seq2Seq, decoder_options, single_head_scores


@keras.saving.register_keras_serializable("lipseq")
class MultiStreamAttentionDecoder(AttentionDecoder):
    """The attention decoder with one attention per stream over its own memory.

    prepare_memory takes {stream: memory [B, S_i, D_i]} and {stream: lengths [B]}; the first
    stream is the primary one: its memory, mask and alignments are what searches read.
    """

    def __init__(self, streams: list[str], memory_dims: list[int], **kwargs):
        super().__init__(memory_dim=sum(memory_dims), **kwargs)
        self.streams, self.memory_dims = list(streams), list(memory_dims)
        # The stream whose memory, mask and alignments searches read (reading_streams).
        self.primary = self.streams[0]
        attention = kwargs.get("attention", "luong")
        units = kwargs.get("attention_units", 256)
        for stream in self.streams:
            layer = build_attention(attention, self.units, units, name=f"attention_{stream}")
            setattr(self, f"attention_{stream}", layer)

    def build(self, input_shape=None):
        # The base class's single attention stays unbuilt (no variables): each stream has its own.
        self.embedding.build((None,))
        cell_input = self.embedding_dim + (self.units if self.input_feeding else 0)
        self.cell.build((None, cell_input))
        for stream, dim in zip(self.streams, self.memory_dims, strict=True):
            getattr(self, f"attention_{stream}").build((None, self.units), None, (None, None, dim))
        self.attention_projection.build((None, self.units + self.memory_dim))
        self.bridge.build((None, self.encoder_state_dim))
        self.build_output()
        keras.layers.Layer.build(self, input_shape)

    def prepare_memory(self, memories, memory_lengths) -> dict:
        streams = {}
        for stream in self.streams:
            memory = memories[stream]
            mask = sequence_mask(memory_lengths[stream], tf.shape(memory)[1])
            keys = getattr(self, f"attention_{stream}").prepare_keys(memory)
            streams[stream] = {"memory": memory, "keys": keys, "mask": mask}
        primary = streams[self.primary]
        return {"memory": primary["memory"], "mask": primary["mask"], "streams": streams}

    def initial_state(self, encoder_state, memory: dict) -> dict:
        state = super().initial_state(encoder_state, memory)
        state["alignment"] = {
            stream: tf.zeros(tf.shape(entry["mask"]), state["h"].dtype)
            for stream, entry in memory["streams"].items()
        }
        return state

    def _attend(self, h, state, memory):
        """Each stream's attention over its own memory; the contexts concatenated."""
        contexts, alignments = [], {}
        for stream in self.streams:
            entry = memory["streams"][stream]
            context, alignments[stream] = getattr(self, f"attention_{stream}")(
                h, entry["keys"], entry["memory"], entry["mask"], state["alignment"][stream]
            )
            contexts.append(context)
        return tf.concat(contexts, axis=-1), alignments[self.primary], alignments


@keras.saving.register_keras_serializable("lipseq")
class MultiStreamSeq2Seq(Seq2Seq):
    """Front-end and encoder per stream, the multi-stream decoder, a CTC head per stream.

    stream_dropout: in training, the chance that an example loses one of its streams (which
    one is drawn evenly), so the same weights read any single stream or all of them.
    """

    def __init__(
        self,
        frontends: dict,
        encoders: dict,
        decoder,
        ctc_vocab_size: int = 0,
        ctc_weight: float = 0.0,
        stream_dropout: float = 0.0,
        **kwargs,
    ):
        streams = list(frontends)
        super().__init__(
            frontends[streams[0]],
            encoders[streams[0]],
            decoder,
            ctc_vocab_size,
            ctc_weight,
            **kwargs,
        )
        self.streams, self.stream_dropout = streams, float(stream_dropout)
        for stream in streams:
            setattr(self, f"frontend_{stream}", frontends[stream])
            setattr(self, f"encoder_{stream}", encoders[stream])
            if ctc_vocab_size:
                head = keras.layers.Dense(ctc_vocab_size, name=f"ctc_head_{stream}")
                setattr(self, f"ctc_head_{stream}", head)
        if ctc_vocab_size:
            self.ctc_head = getattr(self, f"ctc_head_{streams[0]}")

    def build(self, input_shape=None):
        for stream in self.streams:
            frontend = getattr(self, f"frontend_{stream}")
            encoder = getattr(self, f"encoder_{stream}")
            frontend.build(frontend.batch_input_shape)
            encoder.build((None, None, frontend.output_dim))
            if self.ctc_weight:
                getattr(self, f"ctc_head_{stream}").build((None, None, encoder.output_dim))
        self.decoder.build()
        keras.Model.build(self, input_shape)

    def frontend_variables(self) -> list[tf.Variable]:
        """The variables a front-end freeze holds still: the primary stream's front-end's (the
        first of `streams`, the one `frontend` names); the other streams' front-ends train."""
        return list(getattr(self, f"frontend_{self.streams[0]}").trainable_variables)

    def encode(self, inputs, input_lengths, training=False, keep=None):
        """{stream: input} -> ({stream: memory}, {stream: lengths}, final states joined [B, ·]).

        keep: optional {stream: float [B]} (1 keeps the stream for that example, 0 drops it).
        """
        memories, lengths, states = {}, {}, []
        for stream in self.streams:
            features, feature_lengths = getattr(self, f"frontend_{stream}")(
                inputs[stream], input_lengths[stream], training=training
            )
            memory, state, memory_lengths = getattr(self, f"encoder_{stream}")(
                features, feature_lengths, training=training
            )
            if keep is not None:
                memory *= tf.cast(keep[stream], memory.dtype)[:, None, None]
                state *= tf.cast(keep[stream], state.dtype)[:, None]
            memories[stream], lengths[stream] = memory, memory_lengths
            states.append(state)
        return memories, lengths, tf.concat(states, axis=-1)

    def ctc_outputs(self, inputs, input_lengths):
        """(CTC logits [B, S, V], lengths [B]) of the primary stream (the first of `streams`)."""
        memory, memory_lengths, _ = self.encode(inputs, input_lengths)
        stream = self.streams[0]
        return self.ctc_head(memory[stream]), memory_lengths[stream]

    def _stream_keep(self, batch_size):
        """Which streams each example keeps under stream dropout: {stream: float [B]}."""
        drop = tf.random.uniform([batch_size]) < self.stream_dropout
        dropped = tf.random.uniform([batch_size], 0, len(self.streams), tf.int32)
        return {
            stream: 1.0 - tf.cast(drop & (dropped == index), tf.float32)
            for index, stream in enumerate(self.streams)
        }

    def call(self, batch, training=False):
        keep = None
        if training and self.stream_dropout > 0:
            keep = self._stream_keep(tf.shape(batch["targets"])[0])
        memories, lengths, encoder_state = self.encode(
            batch["inputs"], batch["input_lengths"], training=training, keep=keep
        )
        prepared = self.decoder.prepare_memory(memories, lengths)
        state = self.decoder.initial_state(encoder_state, prepared)
        outputs = self.decoder(batch["targets"], prepared, state, training=training)
        outputs["memory_lengths"] = lengths[self.streams[0]]
        if self.ctc_weight:
            outputs["ctc"] = {
                stream: (getattr(self, f"ctc_head_{stream}")(memories[stream]), lengths[stream])
                for stream in self.streams
            }
            if keep is not None:
                outputs["ctc_keep"] = keep
            outputs["ctc_logits"], outputs["ctc_lengths"] = outputs["ctc"][self.streams[0]]
        return outputs

    def loss_terms(self, batch, outputs, label_smoothing: float = 0.0) -> list[LossTerm]:
        """The decoder's terms (Seq2Seq.attention_terms) and one CTC term per stream, the CTC
        weight split evenly, each over the examples that kept that stream."""
        terms = self.attention_terms(batch, outputs, label_smoothing)
        if not self.ctc_weight:
            return terms
        label_lengths = batch["target_lengths"] - 1
        for stream in self.streams:  # outputs' dicts come back with sorted keys
            logits, lengths = outputs["ctc"][stream]
            keep = outputs.get("ctc_keep", {}).get(stream)
            total = ctc_loss_sum(logits, lengths, batch["labels"], label_lengths, keep)
            kept = label_lengths if keep is None else label_lengths * tf.cast(keep, tf.int32)
            count = tf.cast(tf.reduce_sum(kept), tf.float32)
            terms.append(
                LossTerm(f"ctc_{stream}", self.ctc_weight / len(self.streams), total, count)
            )
        return terms


def build_multistream_model(model_config, target_vocab_size: int) -> MultiStreamSeq2Seq:
    """A model over `model_config.streams` ({name: front-end config}), e.g. video + audio;
    `model_config.primary_stream` (default: the first name in order) is the one whose CTC
    and alignments searches read."""
    guidance = float(model_config.get("guided_attention_weight", 0.0))
    if guidance > 0:
        # Warn rather than fail: workdirs written before the audio-visual configs zeroed it
        # must still restore and export.
        logging.getLogger(__name__).warning(
            "guided_attention_weight=%s is not applied: multi-stream models train unguided",
            guidance,
        )
    if float(model_config.get("frame_label_weight", 0.0)) > 0:
        logging.getLogger(__name__).warning(
            "frame_label_weight is not applied: multi-stream models train without frame labels"
        )
    names = sorted(model_config.streams)
    primary = model_config.get("primary_stream") or names[0]
    if primary not in names:
        raise ValueError(f"primary_stream {primary!r} is not one of the streams {names}")
    frontends, encoders, dims = {}, {}, []
    for stream in [primary] + [n for n in names if n != primary]:
        frontend_config = model_config.streams[stream]
        config = model_config.copy_and_resolve_references()
        with config.unlocked():
            config.update(frontend_config)
        frontends[stream] = build_frontend(config, None)
        encoders[stream] = build_encoder(config)
        dims.append(encoders[stream].output_dim)
    decoder = MultiStreamAttentionDecoder(
        streams=list(frontends),
        memory_dims=dims,
        encoder_state_dim=sum(dims),
        **decoder_options(model_config, target_vocab_size),
    )
    ctc_weight = float(model_config.get("ctc_weight", 0.0))
    model = MultiStreamSeq2Seq(
        frontends,
        encoders,
        decoder,
        target_vocab_size if ctc_weight > 0 else 0,
        ctc_weight,
        stream_dropout=float(model_config.get("stream_dropout", 0.0)),
        name="seq2seq",
    )
    model.build()
    return model


class StreamsView:
    """A multi-stream model as the searches see it when it reads only `streams`.

    encode() drops the other streams (zero memory and state, as stream dropout taught the
    model), and ctc_head is the first read stream's. Use it inside `reading_streams`, which
    also points the decoder's searches at that stream's memory and alignments. With
    all_ctc_heads, joint decoding scores with the CTC head of every read stream
    (`ctc_scores`), so a stream that noise has spoilt is outvoted rather than followed;
    head_weights (stream -> weight, the missing ones 1) set each head's share of the CTC
    weight, so a stream that is far the stronger when clean can count for more.
    """

    def __init__(
        self,
        model: MultiStreamSeq2Seq,
        streams: list[str],
        all_ctc_heads=False,
        head_weights: dict | None = None,
    ):
        unknown = set(streams) - set(model.streams)
        if not streams or unknown:
            raise ValueError(f"streams must be some of {model.streams}, got {streams}")
        head_weights = dict(head_weights or {})
        unknown = set(head_weights) - set(model.streams)
        if unknown or any(w < 0 for w in head_weights.values()):
            raise ValueError(
                f"CTC head weights {head_weights} must be >= 0 and name streams of {model.streams}"
            )
        self.model, self.streams = model, list(streams)
        self.decoder = model.decoder
        self.ctc_head = getattr(model, f"ctc_head_{streams[0]}", None)
        self.all_ctc_heads = all_ctc_heads
        self.head_weights = head_weights

    def ctc_outputs(self, inputs, input_lengths):
        """(CTC logits [B, S, V], lengths [B]) of the first read stream."""
        memory, memory_lengths, _ = self.encode(inputs, input_lengths)
        stream = self.streams[0]
        return self.ctc_head(memory[stream]), memory_lengths[stream]

    def ctc_scores(self, memory: dict) -> list:
        """(CTC logits, lengths, share of the CTC weight) of every read stream with a CTC
        head, from the decoder's prepared memory; the first read stream's head alone unless
        all_ctc_heads. The shares sum to 1."""
        if not self.all_ctc_heads:
            return single_head_scores(self.ctc_head, memory)
        scores = []
        for stream in self.streams:
            head = getattr(self.model, f"ctc_head_{stream}", None)
            weight = float(self.head_weights.get(stream, 1.0))
            if head is not None and weight > 0:
                entry = memory["streams"][stream]
                lengths = tf.reduce_sum(tf.cast(entry["mask"], tf.int32), axis=1)
                scores.append((head(entry["memory"]), lengths, weight))
        total = sum(weight for _, _, weight in scores)
        return [(logits, lengths, weight / total) for logits, lengths, weight in scores]

    def encode(self, inputs, input_lengths, training=False):
        batch = tf.shape(input_lengths[self.model.streams[0]])[0]
        keep = {
            stream: tf.fill([batch], 1.0 if stream in self.streams else 0.0)
            for stream in self.model.streams
        }
        return self.model.encode(inputs, input_lengths, training=training, keep=keep)


@contextlib.contextmanager
def reading_streams(
    model: MultiStreamSeq2Seq, streams: list[str], all_ctc_heads=False, head_weights=None
):
    """The model's view for `streams`, with the decoder reading streams[0] as its primary
    (searches' CTC, lengths and alignments) until the block ends."""
    view = StreamsView(model, streams, all_ctc_heads, head_weights)
    previous = model.decoder.primary
    model.decoder.primary = streams[0]
    try:
        yield view
    finally:
        model.decoder.primary = previous
