"""Bad arguments and inputs: a clear error, raised before any work."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lstm

BATCH, STEPS, FEATURES, UNITS = 2, 5, 3, 4
X = np.zeros((BATCH, STEPS, FEATURES), "float32")


def assert_untouched(layer):
    """The error came before Keras built the layer or created weights."""
    assert not layer.built
    assert layer.weights == []


@pytest.mark.parametrize("cls", [keras_lstm.LSTM, keras_lstm.LSTMCell])
@pytest.mark.parametrize(
    "units, error, received",
    [
        (0, ValueError, "units=0"),
        (-3, ValueError, "units=-3"),
        (2.5, TypeError, "units=2.5 of type float"),
        ("8", TypeError, "units='8' of type str"),
        (True, TypeError, "units=True of type bool"),
        (None, TypeError, "units=None"),
    ],
)
def test_units_must_be_a_positive_int(cls, units, error, received):
    pattern = "`units` must be a positive integer.*Received: " + re.escape(
        received
    )
    with pytest.raises(error, match=pattern):
        cls(units)


def test_numpy_integer_units_are_accepted():
    assert keras_lstm.LSTM(np.int64(3)).units == 3


@pytest.mark.parametrize("cls", [keras_lstm.LSTM, keras_lstm.LSTMCell])
@pytest.mark.parametrize("name", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_rates_outside_zero_one_are_rejected(cls, name, rate):
    pattern = re.escape(f"`{name}` must be a float in [0, 1)") + (
        ".*" + re.escape(f"Received: {name}={rate}")
    )
    with pytest.raises(ValueError, match=pattern):
        cls(UNITS, **{name: rate})


@pytest.mark.parametrize("name", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("rate", ["0.1", None])
def test_rates_of_the_wrong_type_are_rejected(name, rate):
    pattern = re.escape(f"Received: {name}={rate!r}")
    with pytest.raises(TypeError, match=pattern):
        keras_lstm.LSTM(UNITS, **{name: rate})


@pytest.mark.parametrize("rate", [0.0, 0.5, 0.99])
def test_rates_inside_zero_one_are_accepted(rate):
    layer = keras_lstm.LSTM(UNITS, dropout=rate, recurrent_dropout=rate)
    assert layer.dropout == rate and layer.recurrent_dropout == rate


@pytest.mark.parametrize("use_cudnn", ["yes", None, 1.5])
def test_use_cudnn_must_be_auto_true_or_false(use_cudnn):
    pattern = "`use_cudnn` must be one of 'auto', True or False.*" + re.escape(
        f"Received: use_cudnn={use_cudnn!r}"
    )
    with pytest.raises(ValueError, match=pattern):
        keras_lstm.LSTM(UNITS, use_cudnn=use_cudnn)


@pytest.mark.parametrize(
    "shape", [(BATCH, FEATURES), (BATCH, STEPS, FEATURES, 1), (STEPS,)]
)
def test_inputs_must_have_rank_3(shape):
    layer = keras_lstm.LSTM(UNITS)
    pattern = re.escape(
        f"expects inputs of rank 3, shaped (batch, timesteps, features). "
        f"Received: inputs.shape={shape} (rank {len(shape)})"
    )
    with pytest.raises(ValueError, match=pattern):
        layer(np.zeros(shape, "float32"))
    assert_untouched(layer)


def test_symbolic_inputs_of_wrong_rank_are_rejected():
    layer = keras_lstm.LSTM(UNITS)
    with pytest.raises(ValueError, match=re.escape("shape=(None, 3) (rank 2)")):
        layer(keras.Input((FEATURES,)))
    assert_untouched(layer)


@pytest.mark.parametrize(
    "inputs, dtype",
    [
        (tf.fill((BATCH, STEPS, FEATURES), "a"), "string"),
        (np.full((BATCH, STEPS, FEATURES), "a"), "str32"),
    ],
    ids=["tf_string", "numpy_str"],
)
def test_inputs_must_be_numeric(inputs, dtype):
    layer = keras_lstm.LSTM(UNITS)
    pattern = "expects numeric inputs.*" + re.escape(
        f"Received: inputs.dtype={dtype}"
    )
    with pytest.raises(TypeError, match=pattern):
        layer(inputs)
    assert_untouched(layer)


def test_cell_rejects_a_whole_sequence():
    cell = keras_lstm.LSTMCell(UNITS)
    states = [np.zeros((BATCH, UNITS), "float32")] * 2
    with pytest.raises(ValueError, match=re.escape("(rank 3)")):
        cell(X, states)


@pytest.mark.parametrize(
    "initial_state, received",
    [
        ([np.zeros((BATCH, UNITS))], f"[({BATCH}, {UNITS})]"),
        (np.zeros((BATCH, UNITS)), f"[({BATCH}, {UNITS})]"),
        ([np.zeros((BATCH, UNITS))] * 3, f"[({BATCH}, {UNITS})" + ", "),
        (
            [np.zeros((BATCH, UNITS)), np.zeros((BATCH, UNITS + 1))],
            f"[({BATCH}, {UNITS}), ({BATCH}, {UNITS + 1})]",
        ),
        ([np.zeros((BATCH + 1, UNITS))] * 2, f"[({BATCH + 1}, {UNITS})"),
        ([np.zeros((BATCH, 1, UNITS))] * 2, f"[({BATCH}, 1, {UNITS})"),
    ],
    ids=["one_state", "bare_tensor", "three_states", "wrong_units",
         "wrong_batch", "wrong_rank"],
)
def test_initial_state_must_be_h_and_c(initial_state, received):
    layer = keras_lstm.LSTM(UNITS)
    pattern = (
        re.escape("expects initial_state to be a list of two tensors [h, c]")
        + ".*"
        + re.escape(f"Received: initial_state shapes={received}")
    )
    with pytest.raises(ValueError, match=pattern):
        layer(X, initial_state=initial_state)
    assert_untouched(layer)


@pytest.mark.parametrize(
    "mask_shape",
    [(BATCH, STEPS - 1), (BATCH + 1, STEPS), (BATCH, STEPS, FEATURES),
     (BATCH,)],
)
def test_mask_must_match_the_inputs(mask_shape):
    layer = keras_lstm.LSTM(UNITS)
    pattern = re.escape(
        f"expects a mask of shape (batch, timesteps) = ({BATCH}, {STEPS}) "
        f"matching its inputs. Received: mask.shape={mask_shape}"
    )
    with pytest.raises(ValueError, match=pattern):
        layer(X, mask=np.ones(mask_shape, bool))
    assert_untouched(layer)


def test_stateful_needs_a_fixed_batch_size_in_a_functional_model():
    layer = keras_lstm.LSTM(UNITS, stateful=True)
    pattern = "is stateful, so it needs a fixed batch size.*" + re.escape(
        f"Received: inputs.shape=(None, {STEPS}, {FEATURES})"
    )
    with pytest.raises(ValueError, match=pattern):
        layer(keras.Input(shape=(STEPS, FEATURES)))
    assert_untouched(layer)


def test_stateful_needs_a_fixed_batch_size_in_a_sequential_model():
    layer = keras_lstm.LSTM(UNITS, stateful=True)
    with pytest.raises(ValueError, match="needs a fixed batch size"):
        keras.Sequential([keras.Input(shape=(STEPS, FEATURES)), layer])
    assert_untouched(layer)


def test_stateful_with_a_fixed_batch_size_is_accepted():
    layer = keras_lstm.LSTM(UNITS, stateful=True)
    output = layer(keras.Input(batch_shape=(BATCH, STEPS, FEATURES)))
    assert tuple(output.shape) == (BATCH, UNITS)
