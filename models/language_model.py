"""A recurrent language model: the decoder stack alone, without a source to attend to.

    outputs = model({"targets": y_in}, training=...)    # y_in = bos + tokens, [B, T]
    outputs["logits"]: [B, T, V], the next token's scores at every position
    loss = model.loss_terms(batch, outputs)              # cross-entropy per target token
    logits, state = model.step(token_ids, state)         # one token at a time, for fusion

Training runs the stacked Keras RNN layers over whole sequences; `step` runs the same layers'
cells one token at a time, so the search scores with exactly the weights that were trained.
"""

import keras
import tensorflow as tf

from models.losses import sequence_cross_entropy
from models.seq2seq import LossTerm

LAYERS = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}


@keras.saving.register_keras_serializable("lipseq")
class RecurrentLanguageModel(keras.Model):
    """Token ids [B, T] -> logits [B, T, V] through an embedding and stacked LSTM/GRU layers.

    tie_embeddings: the output layer reuses the embedding matrix (needs embedding_dim == units),
    which halves the parameters of a large vocabulary and often lowers perplexity.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 128,
        units: int = 256,
        num_layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.0,
        tie_embeddings: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell not in LAYERS:
            raise ValueError(f"unknown language model cell {cell!r}; known: {sorted(LAYERS)}")
        if tie_embeddings and embedding_dim != units:
            raise ValueError(
                f"tied embeddings need embedding_dim == units, got {embedding_dim} and {units}"
            )
        self.vocab_size, self.units, self.cell_type = vocab_size, units, cell
        self.tie_embeddings = tie_embeddings
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        # One attribute per layer: a checkpoint follows attributes, not the items of a list.
        self.num_layers = num_layers
        for i in range(num_layers):
            layer = LAYERS[cell](units, return_sequences=True, return_state=True, name=f"rnn_{i}")
            setattr(self, f"rnn_{i}", layer)
        self.dropout = keras.layers.Dropout(dropout)
        self.output_projection = None
        if not tie_embeddings:
            self.output_projection = keras.layers.Dense(vocab_size, name="output_projection")
        self.output_bias = (
            self.add_weight(shape=(vocab_size,), initializer="zeros", name="output_bias")
            if tie_embeddings
            else None
        )

    @property
    def rnns(self) -> list:
        return [getattr(self, f"rnn_{i}") for i in range(self.num_layers)]

    def build(self, input_shape=None):
        self.embedding.build((None,))
        width = self.embedding.output_dim
        for rnn in self.rnns:
            rnn.build((None, None, width))
            width = self.units
        if self.output_projection is not None:
            self.output_projection.build((None, self.units))
        super().build(input_shape)

    def _project(self, hidden):
        if self.output_projection is not None:
            return self.output_projection(hidden)
        return tf.matmul(hidden, self.embedding.embeddings, transpose_b=True) + self.output_bias

    def call(self, batch, training=False):
        x = self.dropout(self.embedding(batch["targets"]), training=training)
        for rnn in self.rnns:
            x = rnn(x, training=training)[0]
            x = self.dropout(x, training=training)
        return {"logits": self._project(x)}

    def loss_terms(self, batch, outputs, label_smoothing: float = 0.0) -> list[LossTerm]:
        """Cross-entropy summed over target tokens (labels = targets shifted, plus eos)."""
        total, count = sequence_cross_entropy(
            outputs["logits"], batch["labels"], batch["target_lengths"], label_smoothing
        )
        return [LossTerm("language_model", 1.0, total, count)]

    def initial_state(self, batch_size) -> dict:
        """Zero states of every layer: {"h0": [B, U], "c0": [B, U] (LSTM), ...}."""
        zeros = tf.zeros([batch_size, self.units], self.compute_dtype)
        state = {}
        for i in range(len(self.rnns)):
            state[f"h{i}"] = zeros
            if self.cell_type == "lstm":
                state[f"c{i}"] = zeros
        return state

    def step(self, token_ids, state):
        """ids [B] -> (next-token logits [B, V], new state): one position of `call`."""
        x = self.embedding(token_ids)
        new_state = {}
        for i, rnn in enumerate(self.rnns):
            if self.cell_type == "lstm":
                x, (h, c) = rnn.cell(x, [state[f"h{i}"], state[f"c{i}"]])
                new_state[f"h{i}"], new_state[f"c{i}"] = h, c
            else:
                x, h = rnn.cell(x, [state[f"h{i}"]])
                new_state[f"h{i}"] = h[0] if isinstance(h, (list, tuple)) else h
        return self._project(x), new_state


def build_language_model(model_config, vocab_size: int) -> RecurrentLanguageModel:
    """Builds (and creates the variables of) the language model a config describes."""
    model = RecurrentLanguageModel(
        vocab_size,
        embedding_dim=model_config.embedding_dim,
        units=model_config.units,
        num_layers=model_config.num_layers,
        cell=model_config.cell,
        dropout=model_config.dropout,
        tie_embeddings=bool(model_config.get("tie_embeddings", False)),
        name="language_model",
    )
    model.build()
    model({"targets": tf.ones([1, 2], tf.int32)}, training=False)
    return model


def sequence_log_probs(model, targets, labels, lengths):
    """Log-probability of each sequence, float32 [B]: the sum over its first `lengths` labels
    (tokens then eos) of log p(label | the targets before it)."""
    logits = tf.cast(model({"targets": targets}, training=False)["logits"], tf.float32)
    log_probs = tf.gather(tf.nn.log_softmax(logits, -1), labels, axis=-1, batch_dims=2)
    mask = tf.sequence_mask(lengths, tf.shape(labels)[1], tf.float32)
    return tf.reduce_sum(log_probs * mask, axis=1)
