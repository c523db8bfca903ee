"""Bidirectional recurrent encoder shared by every task.

Contract: outputs, state, lengths = encoder(features, lengths, training=...)
    outputs: [B, T, 2U] (forward and backward concatenated); state: [B, 2U] the top layer's
    final forward and backward hidden states; lengths: int32 [B] unchanged.
"""

import keras
import tensorflow as tf

from models.masking import sequence_mask

RNN_LAYERS = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}


def make_rnn(cell: str, units: int, **kwargs) -> keras.layers.Layer:
    """A Keras GRU/LSTM configured so Keras can use the cuDNN kernel on GPU."""
    if cell not in RNN_LAYERS:
        raise ValueError(f"unknown RNN cell {cell!r}; known: {sorted(RNN_LAYERS)}")
    # tanh/sigmoid, no recurrent dropout, reset_after (GRU) keep the cuDNN fast path.
    return RNN_LAYERS[cell](units, activation="tanh", recurrent_activation="sigmoid", **kwargs)


@keras.saving.register_keras_serializable("lipseq")
class BidirectionalRNNEncoder(keras.layers.Layer):
    """N stacked bidirectional GRU/LSTM layers with dropout between and optional residuals."""

    def __init__(
        self,
        cell: str = "gru",
        units: int = 256,
        num_layers: int = 2,
        dropout: float = 0.0,
        residual: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.residual = residual
        # Each layer is its own attribute: TensorFlow checkpoints do not follow Keras lists.
        for i in range(num_layers):
            layer = keras.layers.Bidirectional(
                make_rnn(cell, units, return_sequences=True, return_state=True),
                name=f"birnn_{i}",
            )
            setattr(self, f"birnn_{i}", layer)
        self.dropout = keras.layers.Dropout(dropout)

    @property
    def output_dim(self) -> int:
        return 2 * self.units

    @property
    def rnn_layers(self) -> list[keras.layers.Layer]:
        return [getattr(self, f"birnn_{i}") for i in range(self.num_layers)]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.rnn_layers:
            layer.build(shape)
            shape = shape[:-1] + (2 * self.units,)
        super().build(input_shape)

    def call(self, features, lengths, training=False):
        mask = sequence_mask(lengths, tf.shape(features)[1])
        outputs = features
        state = None
        for i, layer in enumerate(self.rnn_layers):
            if i > 0:
                outputs = self.dropout(outputs, training=training)
            results = layer(outputs, mask=mask, training=training)
            layer_outputs = results[0]
            # GRU: [out, h_fw, h_bw]; LSTM: [out, h_fw, c_fw, h_bw, c_bw].
            half = (len(results) - 1) // 2
            state = tf.concat([results[1], results[1 + half]], axis=-1)
            if self.residual and layer_outputs.shape[-1] == outputs.shape[-1]:
                layer_outputs = layer_outputs + outputs
            outputs = layer_outputs
        outputs = outputs * tf.cast(mask, outputs.dtype)[:, :, None]
        return outputs, state, lengths


def build_encoder(model_config) -> BidirectionalRNNEncoder:
    """The encoder described by `model_config`."""
    return BidirectionalRNNEncoder(
        cell=model_config.encoder_cell,
        units=model_config.encoder_units,
        num_layers=model_config.encoder_layers,
        dropout=model_config.dropout,
        residual=model_config.encoder_residual,
        name="encoder",
    )
