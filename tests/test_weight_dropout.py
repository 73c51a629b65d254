"""recurrent_weight_dropout: DropConnect on recurrent_kernel (AWD-LSTM).

In training the layer computes the plain LSTM with ``recurrent_kernel * m``
for one mask m per call (entries 0 or 1 / (1 - rate)), drawn from the cell's
seed generator; at inference the plain weights. The fused and cuDNN paths
take the dropped kernel, so they must agree with the step path, which applies
the same mask inside the cell, outputs and gradients alike.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lstm
from numpy_reference import lstm_reference
from random_data import build_random
from random_data import random_inputs
from test_cudnn_contract import gpu  # noqa: F401 (a fixture)

BATCH, STEPS, FEATURES, UNITS = 3, 6, 4, 5
RATE, SEED = 0.4, 7
ATOL = 1e-5


def _layer(implementation="auto", **kwargs):
    kwargs.setdefault("recurrent_weight_dropout", RATE)
    return keras_lstm.LSTM(
        UNITS, return_sequences=True, return_state=True, seed=SEED,
        implementation=implementation, **kwargs,
    )


def _first_mask(seed=SEED, rate=RATE):
    """The first mask a fresh cell with `seed` draws (no other dropout)."""
    ones = keras.ops.ones((UNITS, 4 * UNITS))
    generator = keras.random.SeedGenerator(seed)
    return np.asarray(keras.random.dropout(ones, rate, seed=generator))


def _outputs_and_gradients(layer, x):
    """Outputs, states and d(loss)/d(x, weights) of one training call."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        results = layer(x, training=True)
        loss = sum(
            tf.reduce_sum(r * random_inputs(*r.shape, seed=20 + k))
            for k, r in enumerate(results)
        )
    grads = tape.gradient(loss, [x] + layer.trainable_weights)
    return [np.asarray(r) for r in results], [np.asarray(g) for g in grads]


@pytest.mark.parametrize("implementation", ["fused", "step"])
def test_training_call_is_the_lstm_with_the_masked_kernel(implementation):
    layer = _layer(implementation)
    x = random_inputs(BATCH, STEPS, FEATURES)
    kernel, recurrent_kernel, bias = build_random(layer, x.shape)
    assert layer.implementation_path == implementation
    mask = _first_mask()
    assert set(np.unique(mask)) == {0.0, np.float32(1 / (1 - RATE))}
    outputs, h, c = layer(x, training=True)
    ref = lstm_reference(x, kernel, recurrent_kernel * mask, bias)
    for ours, theirs in zip((outputs, h, c), ref[:3]):
        np.testing.assert_allclose(ours, theirs, atol=ATOL)


def _assert_matches_step_path(layer, path):
    """Gives `layer` random weights, checks that it runs `path` and that a
    step-path twin with the same seed gives the same outputs and gradients.
    Returns (its weights, its gradients)."""
    step = _layer("step", dropout=layer.dropout)
    x = random_inputs(BATCH, STEPS, FEATURES)
    weights = build_random(layer, x.shape)
    step.build(x.shape)
    step.set_weights(weights)
    assert layer.implementation_path == path
    results, grads = _outputs_and_gradients(layer, x)
    step_results, step_grads = _outputs_and_gradients(step, x)
    for a, b in zip(results + grads, step_results + step_grads):
        np.testing.assert_allclose(a, b, atol=ATOL)
    return weights, grads


def test_fused_matches_step_path_with_the_same_mask():
    """Same seed, same draws: outputs and every gradient agree to 1e-5."""
    fused = _layer("fused", dropout=0.3)
    _, fused_grads = _assert_matches_step_path(fused, "fused")
    # The recurrent kernel's gradient passes through the mask: zero where
    # the weight was dropped.
    dropped = _first_mask_after_input_mask(fused) == 0
    assert np.all(fused_grads[2][dropped] == 0)
    assert np.any(fused_grads[2][~dropped] != 0)


def _first_mask_after_input_mask(layer):
    """The weight mask a fresh twin of `layer` draws after its input mask."""
    twin = _layer(dropout=layer.dropout)
    twin.build((BATCH, STEPS, FEATURES))
    cell = twin.cell
    cell.get_dropout_mask(tf.zeros((BATCH, FEATURES)))
    return np.asarray(cell.get_recurrent_weight_mask())


def test_inference_uses_the_plain_weights():
    layer, plain = _layer(), _layer(recurrent_weight_dropout=0.0)
    x = random_inputs(BATCH, STEPS, FEATURES)
    build_random(layer, x.shape)
    plain.build(x.shape)
    plain.set_weights(layer.get_weights())
    for training in (False, None):
        np.testing.assert_array_equal(
            layer(x, training=training)[0], plain(x, training=training)[0]
        )
    assert not np.allclose(layer(x, training=True)[0], plain(x)[0])


@pytest.mark.parametrize("compiled", [False, True])
def test_a_new_mask_every_training_call(compiled):
    layer = _layer()
    x = random_inputs(BATCH, STEPS, FEATURES)
    build_random(layer, x.shape)
    call = lambda inputs: layer(inputs, training=True)[0]  # noqa: E731
    if compiled:
        call = tf.function(call)
    first, second = np.asarray(call(x)), np.asarray(call(x))
    assert not np.allclose(first, second)
    # Same seed, same sequence of masks.
    again = _layer()
    build_random(again, x.shape)
    np.testing.assert_array_equal(again(x, training=True)[0], first)


def test_cudnn_path_packs_the_masked_kernel(gpu):  # noqa: F811
    layer = _layer()
    kernel, recurrent_kernel, bias = _assert_matches_step_path(layer, "cudnn")[0]
    (call,) = gpu.calls
    packed = keras_lstm.cudnn.to_cudnn_params(
        kernel, recurrent_kernel * _first_mask(), bias
    )
    np.testing.assert_allclose(call["params"], packed, atol=1e-6)


def test_config_round_trip_and_saved_model(tmp_path):
    layer = _layer()
    config = layer.get_config()
    assert config["recurrent_weight_dropout"] == RATE
    assert keras_lstm.LSTM.from_config(config).recurrent_weight_dropout == RATE
    cell_config = layer.cell.get_config()
    assert keras_lstm.LSTMCell.from_config(
        cell_config
    ).recurrent_weight_dropout == RATE
    model = keras.Sequential([keras.Input((STEPS, FEATURES)), _layer()])
    x = random_inputs(BATCH, STEPS, FEATURES)
    expected = model(x)[0]
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.layers[0].recurrent_weight_dropout == RATE
    np.testing.assert_array_equal(loaded(x)[0], expected)


def test_the_cell_in_keras_rnn_drops_its_recurrent_kernel():
    cell = keras_lstm.LSTMCell(UNITS, recurrent_weight_dropout=RATE, seed=SEED)
    layer = keras.layers.RNN(cell, return_sequences=True)
    x = random_inputs(BATCH, STEPS, FEATURES)
    kernel, recurrent_kernel, bias = build_random(layer, x.shape)
    ref = lstm_reference(x, kernel, recurrent_kernel * _first_mask(), bias)
    np.testing.assert_allclose(layer(x, training=True), ref[0], atol=ATOL)
    plain = lstm_reference(x, kernel, recurrent_kernel, bias)
    np.testing.assert_allclose(layer(x), plain[0], atol=ATOL)


@pytest.mark.parametrize("rate", [1.0, -0.1, "0.5"])
def test_bad_rate_is_rejected(rate):
    with pytest.raises((ValueError, TypeError), match="recurrent_weight_dropout"):
        keras_lstm.LSTM(UNITS, recurrent_weight_dropout=rate)


@pytest.mark.parametrize(
    "cell_class", [keras_lstm.LayerNormLSTMCell, keras_lstm.PeepholeLSTMCell,
                   keras_lstm.ProjectionLSTMCell],
)
def test_variant_cells_drop_their_recurrent_kernel(cell_class):
    """Training with the rate equals the cell without it on the masked kernel."""
    extra = {}
    if cell_class is keras_lstm.ProjectionLSTMCell:
        extra["projection_units"] = UNITS  # recurrent_kernel (UNITS, 4 UNITS)
    dropped = keras.layers.RNN(cell_class(
        UNITS, recurrent_weight_dropout=RATE, seed=SEED, **extra))
    plain = keras.layers.RNN(cell_class(UNITS, **extra))
    x = random_inputs(BATCH, STEPS, FEATURES)
    weights = build_random(dropped, x.shape)
    plain.build(x.shape)
    assert dropped.weights[1].name == "recurrent_kernel"
    plain.set_weights([weights[0], weights[1] * _first_mask()] + weights[2:])
    np.testing.assert_allclose(dropped(x, training=True), plain(x), atol=ATOL)
