"""Bidirectional recurrent encoder shared by every task.

Contract: outputs, state, lengths = encoder(features, lengths, training=...)
    outputs: [B, T, 2U] (forward and backward concatenated); state: [B, 2U] the top layer's
    final forward and backward hidden states; lengths: int32 [B] unchanged.
"""

import keras
import tensorflow as tf

from models.masking import sequence_mask


def _keras_loop_needed(layer) -> bool:
    """Whether Keras' own loop must run: on a GPU (cuDNN) or with options ours does not cover."""
    cell = layer.cell
    return bool(
        tf.config.list_logical_devices("GPU")
        or cell.dropout
        or cell.recurrent_dropout
        or not getattr(cell, "reset_after", True)
        or not cell.use_bias
        or layer.unroll
    )


def _projected_sequence(layer, sequences, mask, input_bias):
    """Time-major input products [T, B, K] for the whole sequence, the time-major keep mask
    [T, B], both in the layer's stepping order, and the recurrent kernel in their dtype."""
    mask = mask[0] if isinstance(mask, (list, tuple)) else mask
    dtype = sequences.dtype
    kernel = tf.cast(layer.cell.kernel, dtype)
    projected = tf.einsum("btd,dk->tbk", sequences, kernel) + tf.cast(input_bias, dtype)
    if mask is None:
        keep = tf.ones(tf.shape(projected)[:2], tf.bool)
    else:
        keep = tf.transpose(tf.cast(mask, tf.bool))
    if layer.go_backwards:
        projected, keep = tf.reverse(projected, [0]), tf.reverse(keep, [0])
    return projected, keep, mask is not None, tf.cast(layer.cell.recurrent_kernel, dtype)


def _batch_major(layer, states, keep, masked):
    """[B, T, U] outputs of time-major states, zero past each end where the layer asks."""
    if layer.zero_output_for_mask and masked:
        states = tf.where(keep[:, :, None], states, tf.zeros_like(states))
    return tf.transpose(states, [1, 0, 2])


@keras.saving.register_keras_serializable("lipseq")
class ProjectedInputGRU(keras.layers.GRU):
    """keras.layers.GRU with the same variables and arithmetic whose loop, off the GPU, takes
    the input kernel's product for the whole sequence in one matmul before stepping.

    Keras' own CPU loop multiplies each frame by the input kernel inside the time loop, and its
    gradient adds one small product per frame; on a lip-reading front-end's wide features that
    product is most of the encoder's arithmetic, and one [B*T, D] product keeps the cores far
    busier than T [B, D] ones. Written by hand because Keras has no such GRU off cuDNN; on a
    GPU (and for the options this loop does not cover) Keras' own path, cuDNN, runs.
    """

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if _keras_loop_needed(self):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        cell = self.cell
        state = initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state
        input_bias, recurrent_bias = tf.unstack(cell.bias)
        projected, keep, masked, recurrent_kernel = _projected_sequence(
            self, sequences, mask, input_bias
        )
        recurrent_bias = tf.cast(recurrent_bias, sequences.dtype)
        activation, gate = cell.activation, cell.recurrent_activation

        def step(h, frame):
            x, keep_t = frame
            x_z, x_r, x_h = tf.split(x, 3, axis=-1)
            h_z, h_r, h_h = tf.split(tf.matmul(h, recurrent_kernel) + recurrent_bias, 3, axis=-1)
            z = gate(x_z + h_z)
            r = gate(x_r + h_r)
            new = z * h + (1.0 - z) * activation(x_h + r * h_h)
            return tf.where(keep_t[:, None], new, h)

        states = tf.scan(step, (projected, keep), initializer=state)
        last = states[-1]
        return last, _batch_major(self, states, keep, masked), [last]


@keras.saving.register_keras_serializable("lipseq")
class ProjectedInputLSTM(keras.layers.LSTM):
    """keras.layers.LSTM with the same variables and arithmetic whose loop, off the GPU, takes
    the input kernel's product for the whole sequence in one matmul before stepping (the
    reason and the fallbacks are ProjectedInputGRU's)."""

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if _keras_loop_needed(self):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        cell = self.cell
        projected, keep, masked, recurrent_kernel = _projected_sequence(
            self, sequences, mask, cell.bias
        )
        activation, gate = cell.activation, cell.recurrent_activation

        def step(state, frame):
            h, c = state
            x, keep_t = frame
            z_i, z_f, z_c, z_o = tf.split(x + tf.matmul(h, recurrent_kernel), 4, axis=-1)
            new_c = gate(z_f) * c + gate(z_i) * activation(z_c)
            new_h = gate(z_o) * activation(new_c)
            keep_t = keep_t[:, None]
            return tf.where(keep_t, new_h, h), tf.where(keep_t, new_c, c)

        hs, cs = tf.scan(step, (projected, keep), initializer=tuple(initial_state[:2]))
        return hs[-1], _batch_major(self, hs, keep, masked), [hs[-1], cs[-1]]


RNN_LAYERS = {"gru": ProjectedInputGRU, "lstm": ProjectedInputLSTM}


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
