"""Front-ends: turn raw inputs into feature sequences for the encoder.

Every front-end shares one contract so encoders and decoders never know the input type:
    features, lengths = frontend(inputs, lengths, training=...)
    features: float [B, T', D]; lengths: int32 [B] valid steps of features.
"""

import keras
import tensorflow as tf


class FrontEnd(keras.layers.Layer):
    """Base class for front-ends; subclasses implement `call(inputs, lengths, training)`."""

    @property
    def output_dim(self) -> int:
        raise NotImplementedError


@keras.saving.register_keras_serializable("lipseq")
class TokenEmbedding(FrontEnd):
    """Token ids [B, T] -> embeddings [B, T, D] (scaled, with dropout)."""

    def __init__(self, vocab_size: int, embedding_dim: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.dropout = keras.layers.Dropout(dropout)

    @property
    def output_dim(self) -> int:
        return self.embedding_dim

    def build(self, input_shape):
        self.embedding.build(input_shape)
        super().build(input_shape)

    def call(self, inputs, lengths, training=False):
        features = self.dropout(self.embedding(inputs), training=training)
        return features, tf.cast(lengths, tf.int32)


def build_frontend(model_config, input_vocab_size: int | None) -> FrontEnd:
    """The front-end named by `model_config.frontend`."""
    if model_config.frontend == "embedding":
        return TokenEmbedding(
            input_vocab_size, model_config.embedding_dim, model_config.dropout, name="frontend"
        )
    raise ValueError(f"unknown front-end {model_config.frontend!r}; known: embedding")
