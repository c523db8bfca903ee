"""The encoder's GRU and LSTM compute what Keras' layers compute, with the same variables."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.encoders import BidirectionalRNNEncoder, ProjectedInputGRU, ProjectedInputLSTM

PAIRS = {
    "gru": (ProjectedInputGRU, keras.layers.GRU),
    "lstm": (ProjectedInputLSTM, keras.layers.LSTM),
}


def _pair(units=6, go_backwards=False, cell="gru"):
    """Keras' layer and the projected-input one, built with the same weights."""
    kwargs = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    ours_class, stock_class = PAIRS[cell]
    ours, stock = ours_class(units, **kwargs), stock_class(units, **kwargs)
    ours.build((None, None, 5))
    stock.build((None, None, 5))
    rng = np.random.default_rng(0)
    for variable, twin in zip(ours.weights, stock.weights, strict=True):
        value = rng.normal(scale=0.5, size=variable.shape).astype(np.float32)
        variable.assign(value)
        twin.assign(value)
    return ours, stock


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
def test_projected_rnn_matches_keras_with_padding(cell, go_backwards, zero_output_for_mask):
    ours, stock = _pair(go_backwards=go_backwards, cell=cell)
    ours.zero_output_for_mask = stock.zero_output_for_mask = zero_output_for_mask
    inputs = tf.constant(np.random.default_rng(1).normal(size=(3, 7, 5)), tf.float32)
    mask = tf.sequence_mask([7, 4, 1], 7)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(inputs)
        got = ours(inputs, mask=mask)
        want = stock(inputs, mask=mask)
        got_loss = tf.reduce_sum(got[0] ** 2) + tf.reduce_sum(got[1]) + tf.reduce_sum(got[-1])
        want_loss = tf.reduce_sum(want[0] ** 2) + tf.reduce_sum(want[1]) + tf.reduce_sum(want[-1])
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    for a, b in zip(
        tape.gradient(got_loss, [inputs, *ours.weights]),
        tape.gradient(want_loss, [inputs, *stock.weights]),
        strict=True,
    ):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)
    # Padding changes nothing before it: the state stops at each sequence's own end.
    short = stock(inputs[1:2, :4])
    np.testing.assert_allclose(got[1][1].numpy(), short[1][0].numpy(), atol=1e-5)


def test_the_encoder_uses_it_and_keeps_keras_variable_layout():
    encoder = BidirectionalRNNEncoder(units=4, num_layers=1)
    encoder.build((None, None, 5))
    layer = encoder.birnn_0
    assert isinstance(layer.forward_layer, ProjectedInputGRU)
    assert isinstance(layer.backward_layer, ProjectedInputGRU)
    assert layer.backward_layer.go_backwards
    assert [tuple(w.shape) for w in layer.forward_layer.weights] == [(5, 12), (4, 12), (2, 12)]


def test_an_lstm_encoder_uses_the_projected_lstm_with_keras_variable_layout():
    encoder = BidirectionalRNNEncoder(cell="lstm", units=4, num_layers=1)
    encoder.build((None, None, 5))
    layer = encoder.birnn_0
    assert isinstance(layer.forward_layer, ProjectedInputLSTM)
    assert isinstance(layer.backward_layer, ProjectedInputLSTM)
    assert [tuple(w.shape) for w in layer.forward_layer.weights] == [(5, 16), (4, 16), (16,)]
