"""Attention decoder with input feeding; one step function serves training and search.

Each step (Luong et al. 2015 "global attention", with either score function):
    x_t   = [embed(y_{t-1}); a_{t-1}]          (input feeding: last attentional vector)
    h_t   = RNN(x_t, h_{t-1})
    c_t, alignment_t = attention(h_t, memory)
    a_t   = tanh(W [h_t; c_t])                 (attentional vector)
    logits_t = V a_t
Teacher forcing runs this step over the gold prefix inside a tf.while_loop; beam search calls
`step` directly, so training and inference share every weight and every line of the step.
"""

import keras
import tensorflow as tf

from models.attention import build_attention
from models.masking import sequence_mask

CELLS = {"gru": keras.layers.GRUCell, "lstm": keras.layers.LSTMCell}


def _sampled_softmax_loss(projection, vectors, labels):
    return tf.nn.sampled_softmax_loss(
        weights=projection.kernel,
        biases=projection.bias,
        labels=tf.cast(labels[:, None], tf.int64),
        inputs=vectors,
        num_sampled=projection.num_sampled,
        num_classes=projection.vocab_size,
    )


@keras.saving.register_keras_serializable("lipseq")
class SampledSoftmaxProjection(keras.layers.Layer):
    """Output layer for large vocabularies: full logits for search and evaluation, and for
    training the sampled-softmax loss (Jean et al. 2015), which scores the target and
    `num_sampled` classes drawn log-uniformly, so a step's cost stops growing with V.

    The kernel is [V, U], one row per class, the layout tf.nn.sampled_softmax_loss gathers
    from. The log-uniform sampler assumes ids in falling frequency, as vocabularies are built.
    """

    def __init__(self, vocab_size: int, num_sampled: int, **kwargs):
        super().__init__(**kwargs)
        if not 0 < num_sampled < vocab_size:
            raise ValueError(f"num_sampled must be in (0, {vocab_size}), got {num_sampled}")
        self.vocab_size = vocab_size
        self.num_sampled = num_sampled

    def build(self, input_shape):
        units = int(input_shape[-1])
        self.kernel = self.add_weight(
            name="kernel", shape=(self.vocab_size, units), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(self.vocab_size,), initializer="zeros")
        super().build(input_shape)

    def call(self, vectors):
        """vectors [..., U] -> logits [..., V] over the whole vocabulary."""
        return tf.einsum("...u,vu->...v", vectors, self.kernel) + self.bias

    def sampled_loss(self, vectors, labels):
        """vectors [N, U], labels [N] -> the sampled-softmax loss of each, [N]."""
        return _sampled_softmax_loss(self, vectors, labels)

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "num_sampled": self.num_sampled,
        }


class TiedProjection(keras.layers.Layer):
    """The output layer whose rows are the target embedding matrix [V, E] (tied embeddings,
    Press & Wolf 2017): a word's input and output vectors are one, learnt from both uses,
    and the decoder's vocabulary parameters halve; with num_sampled > 0 it also gives the
    sampled-softmax loss. The embedding is read through a function so that its variable
    stays the embedding layer's alone (one variable, one checkpoint entry, one update)."""

    def __init__(self, embedding: keras.layers.Embedding, num_sampled: int = 0, **kwargs):
        super().__init__(**kwargs)
        self._embeddings = lambda: embedding.embeddings
        self.vocab_size = embedding.input_dim
        self.num_sampled = num_sampled

    @property
    def kernel(self):
        return self._embeddings()

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(self.vocab_size,), initializer="zeros")
        super().build(input_shape)

    def call(self, vectors):
        kernel = tf.cast(self.kernel, vectors.dtype)
        # tensordot flattens the leading axes into one matmul; an einsum over "..." here had a
        # kernel gradient of [B, T, V, E] (25 GB for Multi30k's batch of 64 and 6,000 pieces).
        return tf.tensordot(vectors, kernel, [[-1], [1]]) + tf.cast(self.bias, vectors.dtype)

    def sampled_loss(self, vectors, labels):
        return _sampled_softmax_loss(self, vectors, labels)


@keras.saving.register_keras_serializable("lipseq")
class AttentionDecoder(keras.layers.Layer):
    """Target ids [B, T] + encoder memory [B, S, D] -> logits [B, T, V] and alignments."""

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        units: int,
        memory_dim: int,
        encoder_state_dim: int,
        cell: str = "gru",
        attention: str = "luong",
        attention_units: int = 256,
        input_feeding: bool = True,
        dropout: float = 0.0,
        sampled_softmax: int = 0,
        tie_embeddings: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"unknown decoder cell {cell!r}; known: {sorted(CELLS)}")
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.memory_dim = memory_dim
        self.encoder_state_dim = encoder_state_dim
        self.cell_type = cell
        self.input_feeding = input_feeding
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.cell = CELLS[cell](units, name="cell")
        self.attention = build_attention(attention, units, attention_units)
        self.attention_projection = keras.layers.Dense(
            units, activation="tanh", use_bias=False, name="attention_projection"
        )
        self.bridge = keras.layers.Dense(units, activation="tanh", name="bridge")
        self.sampled_softmax = sampled_softmax
        self.tie_embeddings = tie_embeddings
        # Tied: the attentional vector [U] is mapped linearly to the embedding's width [E].
        self.output_bridge = None
        if tie_embeddings:
            self.output_projection = TiedProjection(
                self.embedding, sampled_softmax, name="output_projection"
            )
            if embedding_dim != units:
                self.output_bridge = keras.layers.Dense(
                    embedding_dim, use_bias=False, name="output_bridge"
                )
        elif sampled_softmax:
            self.output_projection = SampledSoftmaxProjection(
                vocab_size, sampled_softmax, name="output_projection"
            )
        else:
            self.output_projection = keras.layers.Dense(vocab_size, name="output_projection")
        self.dropout = keras.layers.Dropout(dropout)

    def build(self, input_shape=None):
        self.embedding.build((None,))
        cell_input = self.embedding_dim + (self.units if self.input_feeding else 0)
        self.cell.build((None, cell_input))
        self.attention.build((None, self.units), None, (None, None, self.memory_dim), None)
        self.attention_projection.build((None, self.units + self.memory_dim))
        self.bridge.build((None, self.encoder_state_dim))
        self.build_output()
        super().build(input_shape)

    def build_output(self):
        if self.output_bridge is not None:
            self.output_bridge.build((None, self.units))
        width = self.embedding_dim if self.tie_embeddings else self.units
        self.output_projection.build((None, width))

    def _output_vectors(self, attention_vectors):
        """What the output projection reads: the attentional vectors, or with tied embeddings
        their map to the embedding width."""
        if self.output_bridge is None:
            return attention_vectors
        return self.output_bridge(attention_vectors)

    def prepare_memory(self, memory, memory_lengths) -> dict:
        """Everything the steps read from the encoder, computed once: memory, keys, mask."""
        mask = sequence_mask(memory_lengths, tf.shape(memory)[1])
        return {"memory": memory, "keys": self.attention.prepare_keys(memory), "mask": mask}

    def initial_state(self, encoder_state, memory: dict) -> dict:
        """Decoder state before the first step, bridged from the encoder's final state."""
        h = self.bridge(encoder_state)
        alignment = tf.zeros(tf.shape(memory["mask"]), h.dtype)
        state = {"h": h, "attention_vector": tf.zeros_like(h), "alignment": alignment}
        if self.cell_type == "lstm":
            state["c"] = tf.zeros_like(h)
        return state

    def _attend(self, h, state, memory):
        """(context [B, D], alignment [B, S] to report, what the next step's attention reads)."""
        context, alignment = self.attention(
            h, memory["keys"], memory["memory"], memory["mask"], state["alignment"]
        )
        return context, alignment, alignment

    def _step_embedded(self, embedded, state, memory, training=False):
        if self.input_feeding:
            embedded = tf.concat([embedded, state["attention_vector"]], axis=-1)
        cell_state = [state["h"], state["c"]] if self.cell_type == "lstm" else [state["h"]]
        h, new_cell_state = self.cell(embedded, cell_state, training=training)
        context, alignment, alignment_state = self._attend(h, state, memory)
        attention_vector = self.attention_projection(tf.concat([h, context], axis=-1))
        new_state = {"h": h, "attention_vector": attention_vector, "alignment": alignment_state}
        if self.cell_type == "lstm":
            new_state["c"] = new_cell_state[1]
        return attention_vector, alignment, new_state

    def listed_projection(self, output_ids):
        """(ids [K], rows [K, U], bias [K]) of the output projection for the listed words, for
        `step`: gathered once per search rather than at every step."""
        projection = self.output_projection
        output_ids = tf.convert_to_tensor(output_ids, tf.int32)
        if isinstance(projection, keras.layers.Dense):  # kernel [U, V]; the others' [V, U]
            rows = tf.transpose(tf.gather(projection.kernel, output_ids, axis=1))
        else:
            rows = tf.gather(projection.kernel, output_ids)
        return output_ids, rows, tf.gather(projection.bias, output_ids)

    def step(self, token_ids, state, memory, listed=None):
        """One inference step: ids [B] -> logits [B, V], new state, alignment [B, S].

        listed: `listed_projection(ids)` of K words (candidate-list decoding, the union of a
        batch's lists); only their logits are computed and every other word gets -1e9, so the
        step multiplies by K rows of the [V, U] projection instead of all V.
        """
        attention_vector, alignment, new_state = self._step_embedded(
            self.embedding(token_ids), state, memory
        )
        attention_vector = self._output_vectors(attention_vector)
        if listed is None:
            return self.output_projection(attention_vector), new_state, alignment
        return self._listed_logits(attention_vector, *listed), new_state, alignment

    def _listed_logits(self, vectors, output_ids, rows, bias):
        logits = tf.matmul(vectors, tf.cast(rows, vectors.dtype), transpose_b=True)
        logits += tf.cast(bias, logits.dtype)
        # Scattered by word into a [V, B] background: one index per listed word.
        background = tf.fill(
            [self.vocab_size, tf.shape(vectors)[0]], tf.constant(-1e9, logits.dtype)
        )
        listed = tf.tensor_scatter_nd_update(background, output_ids[:, None], tf.transpose(logits))
        return tf.transpose(listed)

    def call(self, targets, memory, state, training=False):
        """Teacher forcing: inputs [B, T] -> {"logits" [B, T, V], "alignments" [B, T, S]}.

        Training with sampled softmax gives "vectors" [B, T, U] (the attentional vectors after
        dropout; with tied embeddings [B, T, E]) instead of logits: the loss then never builds
        the [B, T, V] tensor.
        """
        embedded = self.dropout(self.embedding(targets), training=training)
        embedded_tm = tf.transpose(embedded, [1, 0, 2])
        num_steps = tf.shape(targets)[1]
        vectors = tf.TensorArray(embedded.dtype, size=num_steps)
        alignments = tf.TensorArray(embedded.dtype, size=num_steps)

        def body(t, state, vectors, alignments):
            vector, alignment, state = self._step_embedded(
                embedded_tm[t], state, memory, training=training
            )
            return t + 1, state, vectors.write(t, vector), alignments.write(t, alignment)

        _, _, vectors, alignments = tf.while_loop(
            lambda t, *_: t < num_steps, body, (tf.constant(0), state, vectors, alignments)
        )
        vectors = self.dropout(tf.transpose(vectors.stack(), [1, 0, 2]), training=training)
        vectors = self._output_vectors(vectors)
        outputs = {"alignments": tf.transpose(alignments.stack(), [1, 0, 2])}
        if training and self.sampled_softmax:
            outputs["vectors"] = vectors
        else:
            outputs["logits"] = self.output_projection(vectors)
        return outputs
