"""keras_lstm.LSTM against the NumPy reference, option by option."""

import itertools

import keras
import numpy as np
import pytest

import keras_lstm
from numpy_reference import lstm_reference
from random_data import random_inputs, build_random

BATCH, STEPS, FEATURES, UNITS = 3, 5, 4, 6
ATOL = 1e-5

MASKS = {
    "left": [[0, 0, 1, 1, 1], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1]],
    "right": [[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]],
    "middle": [[1, 0, 0, 1, 1], [1, 1, 0, 1, 1], [1, 0, 1, 0, 1]],
    "all_masked_row": [[0, 0, 0, 0, 0], [1, 1, 0, 0, 1], [0, 1, 1, 1, 1]],
}


@pytest.fixture(params=["auto", "step"])
def implementation(request):
    """Each test runs on the layer's own path choice and on the step loop."""
    return request.param


# (implementation, unroll): an unrolled loop is always the step path.
PATHS = [("auto", False), ("step", False), ("step", True)]


def assert_matches_reference(result, reference, return_sequences, return_state):
    outputs, h, c, _ = reference
    if not return_state:
        result = [result]
    expected = outputs if return_sequences else outputs[:, -1]
    np.testing.assert_allclose(result[0], expected, atol=ATOL)
    if return_state:
        assert len(result) == 3
        np.testing.assert_allclose(result[1], h, atol=ATOL)
        np.testing.assert_allclose(result[2], c, atol=ATOL)


OPTIONS = list(itertools.product([False, True], repeat=3))


@pytest.mark.parametrize("implementation, unroll", PATHS)
@pytest.mark.parametrize(
    "return_sequences, return_state, go_backwards", OPTIONS
)
def test_options_match_reference(
    return_sequences, return_state, go_backwards, unroll, implementation
):
    layer = keras_lstm.LSTM(
        UNITS,
        implementation=implementation,
        return_sequences=return_sequences,
        return_state=return_state,
        go_backwards=go_backwards,
        unroll=unroll,
    )
    x = random_inputs(BATCH, STEPS, FEATURES)
    weights = build_random(layer, x.shape)
    reference = lstm_reference(x, *weights, go_backwards=go_backwards)
    assert_matches_reference(
        layer(x), reference, return_sequences, return_state
    )


def test_without_bias_matches_reference(implementation):
    layer = keras_lstm.LSTM(UNITS, use_bias=False, return_sequences=True,
                            implementation=implementation)
    x = random_inputs(BATCH, STEPS, FEATURES)
    weights = build_random(layer, x.shape)
    assert len(weights) == 2
    reference = lstm_reference(x, *weights)
    np.testing.assert_allclose(layer(x), reference[0], atol=ATOL)


@pytest.mark.parametrize("unit_forget_bias", [True, False])
def test_initial_weights_match_reference(unit_forget_bias):
    """Default initialization, including the forget-gate bias, is used."""
    layer = keras_lstm.LSTM(
        UNITS,
        unit_forget_bias=unit_forget_bias,
        bias_initializer="ones",
        return_sequences=True,
    )
    x = random_inputs(BATCH, STEPS, FEATURES)
    layer.build(x.shape)
    kernel, recurrent_kernel, bias = layer.get_weights()
    np.testing.assert_array_equal(bias, 1.0)  # ones either way.
    layer2 = keras_lstm.LSTM(UNITS, unit_forget_bias=unit_forget_bias)
    layer2.build(x.shape)
    expected_bias = np.zeros(4 * UNITS)
    expected_bias[UNITS : 2 * UNITS] = float(unit_forget_bias)
    np.testing.assert_array_equal(layer2.get_weights()[2], expected_bias)
    reference = lstm_reference(x, kernel, recurrent_kernel, bias)
    np.testing.assert_allclose(layer(x), reference[0], atol=ATOL)


@pytest.mark.parametrize("padding", sorted(MASKS))
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("implementation, unroll", PATHS)
def test_masks_match_reference(padding, go_backwards, unroll,
                               implementation):
    layer = keras_lstm.LSTM(
        UNITS,
        implementation=implementation,
        return_sequences=True,
        return_state=True,
        go_backwards=go_backwards,
        unroll=unroll,
    )
    x = random_inputs(BATCH, STEPS, FEATURES)
    mask = np.array(MASKS[padding], bool)
    h0 = random_inputs(BATCH, UNITS, seed=5)
    c0 = random_inputs(BATCH, UNITS, seed=6)
    weights = build_random(layer, x.shape)

    result = layer(x, initial_state=[h0, c0], mask=mask)

    reference = lstm_reference(
        x, *weights, initial_state=[h0, c0], mask=mask,
        go_backwards=go_backwards,
    )
    assert_matches_reference(result, reference, True, True)


def test_masked_steps_repeat_the_previous_output():
    """Right padding: the padded steps emit the last real output."""
    layer = keras_lstm.LSTM(UNITS, return_sequences=True)
    x = random_inputs(BATCH, STEPS, FEATURES)
    build_random(layer, x.shape)
    mask = np.array(MASKS["right"], bool)
    outputs = np.asarray(layer(x, mask=mask))
    np.testing.assert_array_equal(outputs[0, 3], outputs[0, 2])
    np.testing.assert_array_equal(outputs[0, 4], outputs[0, 2])
    last = keras_lstm.LSTM(UNITS)
    last.build(x.shape)
    last.set_weights(layer.get_weights())
    np.testing.assert_allclose(last(x, mask=mask)[0], outputs[0, 2], atol=ATOL)


def test_initial_state_matches_reference(implementation):
    layer = keras_lstm.LSTM(UNITS, return_sequences=True, return_state=True,
                            implementation=implementation)
    x = random_inputs(BATCH, STEPS, FEATURES)
    h0 = random_inputs(BATCH, UNITS, seed=5)
    c0 = random_inputs(BATCH, UNITS, seed=6)
    weights = build_random(layer, x.shape)
    result = layer(x, initial_state=[h0, c0])
    reference = lstm_reference(x, *weights, initial_state=[h0, c0])
    assert_matches_reference(result, reference, True, True)


def test_stateful_carries_state_over_batches_until_reset(implementation):
    layer = keras_lstm.LSTM(UNITS, stateful=True, return_sequences=True,
                            implementation=implementation)
    first = random_inputs(BATCH, STEPS, FEATURES, seed=1)
    second = random_inputs(BATCH, STEPS, FEATURES, seed=2)
    weights = build_random(layer, first.shape)

    out_first = layer(first)
    out_second = layer(second)

    ref_first = lstm_reference(first, *weights)
    ref_second = lstm_reference(
        second, *weights, initial_state=ref_first[1:3]
    )
    np.testing.assert_allclose(out_first, ref_first[0], atol=ATOL)
    np.testing.assert_allclose(out_second, ref_second[0], atol=ATOL)
    np.testing.assert_allclose(layer.states[0], ref_second[1], atol=ATOL)
    np.testing.assert_allclose(layer.states[1], ref_second[2], atol=ATOL)

    layer.reset_state()
    np.testing.assert_array_equal(layer.states[0], 0.0)
    ref_fresh = lstm_reference(second, *weights)
    np.testing.assert_allclose(layer(second), ref_fresh[0], atol=ATOL)


def test_stateful_in_a_model_with_fixed_batch():
    model = keras.Sequential(
        [
            keras.Input(batch_shape=(BATCH, STEPS, FEATURES)),
            keras_lstm.LSTM(UNITS, stateful=True),
        ]
    )
    x = random_inputs(BATCH, STEPS, FEATURES)
    weights = model.get_weights()
    once = lstm_reference(x, *weights)
    twice = lstm_reference(x, *weights, initial_state=once[1:3])
    np.testing.assert_allclose(model(x), once[0][:, -1], atol=ATOL)
    np.testing.assert_allclose(model(x), twice[0][:, -1], atol=ATOL)


def test_keras_rnn_wrapping_the_cell_equals_the_layer():
    x = random_inputs(BATCH, STEPS, FEATURES)
    ours = keras_lstm.LSTM(UNITS, return_sequences=True)
    weights = build_random(ours, x.shape)
    wrapped = keras.layers.RNN(
        keras_lstm.LSTMCell(UNITS), return_sequences=True
    )
    wrapped.build(x.shape)
    wrapped.set_weights(weights)
    np.testing.assert_allclose(wrapped(x), ours(x), atol=ATOL)


# Keras integration.


def test_sequential_model_matches_reference():
    model = keras.Sequential(
        [keras.Input((STEPS, FEATURES)), keras_lstm.LSTM(UNITS)]
    )
    x = random_inputs(BATCH, STEPS, FEATURES)
    reference = lstm_reference(x, *model.get_weights())
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               reference[0][:, -1], atol=ATOL)


def test_functional_model_with_states_matches_reference():
    inputs = keras.Input((None, FEATURES))
    h0 = keras.Input((UNITS,))
    c0 = keras.Input((UNITS,))
    outputs = keras_lstm.LSTM(UNITS, return_sequences=True, return_state=True)(
        inputs, initial_state=[h0, c0]
    )
    model = keras.Model([inputs, h0, c0], outputs)
    x = random_inputs(BATCH, STEPS, FEATURES)
    states = [random_inputs(BATCH, UNITS, seed=s) for s in (5, 6)]
    result = model([x, *states])
    reference = lstm_reference(x, *model.get_weights(), initial_state=states)
    assert_matches_reference(result, reference, True, True)


def test_embedding_mask_zero_feeds_the_mask():
    tokens = np.array([[0, 0, 3, 4, 5], [1, 2, 3, 0, 0], [6, 0, 7, 8, 9]])
    embedding = keras.layers.Embedding(10, FEATURES, mask_zero=True)
    layer = keras_lstm.LSTM(UNITS, return_sequences=True)
    model = keras.Sequential([keras.Input((STEPS,), dtype="int32"),
                              embedding, layer])
    embedded = np.asarray(embedding(tokens))
    reference = lstm_reference(embedded, *layer.get_weights(),
                               mask=tokens != 0)
    np.testing.assert_allclose(model(tokens), reference[0], atol=ATOL)


def test_bidirectional_matches_reference(implementation):
    layer = keras.layers.Bidirectional(
        keras_lstm.LSTM(UNITS, return_sequences=True,
                        implementation=implementation)
    )
    x = random_inputs(BATCH, STEPS, FEATURES)
    mask = np.array(MASKS["right"], bool)
    weights = build_random(layer, x.shape)
    result = np.asarray(layer(x, mask=mask))

    forward = lstm_reference(x, *weights[:3], mask=mask)[0]
    backward = lstm_reference(x, *weights[3:], mask=mask,
                              go_backwards=True)[0][:, ::-1]
    # Bidirectional zeroes the outputs of masked steps.
    keep = mask[:, :, None]
    np.testing.assert_allclose(result[..., :UNITS], forward * keep, atol=ATOL)
    np.testing.assert_allclose(result[..., UNITS:], backward * keep,
                               atol=ATOL)


def test_fit_decreases_loss():
    model = keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            keras_lstm.LSTM(8),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    x = random_inputs(32, STEPS, FEATURES)
    y = x[:, :, 0].sum(axis=1, keepdims=True)  # Sum of the first feature.
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.7 * losses[0]
    assert np.all(np.isfinite(losses))
