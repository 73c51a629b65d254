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


@pytest.mark.parametrize("value", [0, 1, 2])
def test_keras_implementation_integers_match_keras(value):
    x = np.random.default_rng(1).standard_normal((BATCH, STEPS, FEATURES))
    x = x.astype("float32")
    ours, theirs = same_weights(
        keras_lstm.LSTM(UNITS, implementation=value, return_sequences=True),
        keras.layers.LSTM(UNITS, implementation=value, return_sequences=True),
        x.shape,
    )
    assert ours.cell.implementation == theirs.cell.implementation == value
    assert ours.implementation_path == "fused"
    our_out, our_grads = run_with_gradients(ours, x)
    their_out, their_grads = run_with_gradients(theirs, x)
    assert_all_close(our_out, their_out, "outputs")
    assert_all_close(our_grads, their_grads, "gradients")
    config = ours.get_config()
    assert config["implementation"] == value
    assert keras_lstm.LSTM.from_config(config).cell.implementation == value


@pytest.mark.parametrize("value", [0, 1, 2])
def test_cell_takes_keras_implementation_integers(value):
    cell = keras_lstm.LSTMCell(UNITS, implementation=value)
    assert cell.implementation == keras.layers.LSTMCell(
        UNITS, implementation=value).implementation
    assert keras_lstm.LSTMCell.from_config(cell.get_config()).implementation \
        == value


def test_cell_rejects_other_implementations():
    with pytest.raises(ValueError, match="Received: implementation=3"):
        keras_lstm.LSTMCell(UNITS, implementation=3)
    with pytest.raises(ValueError, match="Received: implementation='fast'"):
        keras_lstm.LSTM(UNITS, implementation="fast")


def _seeded_training_run(layer, x, mask=None):
    """Outputs and gradients of one training call (dropout on)."""
    kwargs = {} if mask is None else {"mask": tf.constant(mask)}
    with tf.GradientTape() as tape:
        outputs = layer(x, training=True, **kwargs)
        loss = tf.reduce_sum(outputs * np.linspace(-1, 1, outputs.shape[-1]))
    return outputs.numpy(), [
        g.numpy() for g in tape.gradient(loss, layer.trainable_weights)
    ]


@pytest.mark.parametrize(
    "rates", [dict(recurrent_dropout=0.4), dict(dropout=0.3,
                                                recurrent_dropout=0.4)],
    ids=["recurrent", "both"],
)
@pytest.mark.parametrize("masked", [False, True])
def test_recurrent_dropout_matches_keras_with_the_same_seed(rates, masked):
    x = np.random.default_rng(2).standard_normal((BATCH, STEPS, FEATURES))
    x = x.astype("float32")
    mask = None
    if masked:
        mask = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1]],
                        bool)
    ours, theirs = same_weights(
        keras_lstm.LSTM(UNITS, seed=7, return_sequences=True, **rates),
        keras.layers.LSTM(UNITS, seed=7, return_sequences=True, **rates),
        x.shape,
    )
    for _ in range(2):  # The second call draws new masks on both.
        our_out, our_grads = _seeded_training_run(ours, x, mask)
        their_out, their_grads = _seeded_training_run(theirs, x, mask)
        np.testing.assert_allclose(our_out, their_out, atol=1e-5)
        assert_all_close(our_grads, their_grads, "gradients")


def test_implementation_1_input_dropout_is_per_gate_as_keras_cell():
    """keras.layers.LSTM(implementation=1, dropout>0) fails in Keras 3.15
    (it broadcasts the four masks as one); Keras's cell in
    keras.layers.RNN draws a mask per gate, and so does keras_lstm.LSTM."""
    x = np.random.default_rng(3).standard_normal((BATCH, STEPS, FEATURES))
    x = x.astype("float32")
    ours, theirs = same_weights(
        keras_lstm.LSTM(UNITS, seed=4, dropout=0.5, implementation=1,
                        return_sequences=True),
        keras.layers.RNN(
            keras.layers.LSTMCell(UNITS, seed=4, dropout=0.5,
                                  implementation=1),
            return_sequences=True,
        ),
        x.shape,
    )
    assert ours.implementation_path == "step"
    our_out, our_grads = _seeded_training_run(ours, x)
    their_out, their_grads = _seeded_training_run(theirs, x)
    np.testing.assert_allclose(our_out, their_out, atol=1e-5)
    assert_all_close(our_grads, their_grads, "gradients")


def test_type_checks_see_keras_classes():
    assert isinstance(keras_lstm.LSTM(UNITS), keras.layers.LSTM)
    assert isinstance(keras_lstm.LSTMCell(UNITS), keras.layers.LSTMCell)
    layer = keras.layers.Bidirectional(keras_lstm.LSTM(UNITS))
    assert isinstance(layer.backward_layer, keras_lstm.LSTM)


NAN_MASK = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1], [1, 0, 1, 0, 1]], bool)


def _gradients_with_nan_at_masked_steps(layer, fill):
    x = np.random.default_rng(5).standard_normal((BATCH, STEPS, FEATURES))
    x = x.astype("float32")
    x[~NAN_MASK] = fill
    return run_with_gradients(layer, x, mask=NAN_MASK)


@pytest.mark.parametrize("path", ["native", "xla", "step", "variant"])
def test_nan_at_masked_steps_gives_finite_gradients(path, monkeypatch):
    """Masked steps read zeros: the results equal keras.layers.LSTM's with
    zeros there, where Keras itself gives NaN gradients for NaN inputs."""
    if path == "xla":
        monkeypatch.setattr(keras_lstm.native, "available", lambda: False)
    kwargs = dict(return_sequences=True, return_state=True)
    if path == "variant":
        ours = keras_lstm.ZoneoutLSTM(UNITS, **kwargs)  # zoneout 0: plain.
    else:
        ours = keras_lstm.LSTM(
            UNITS, implementation="step" if path == "step" else "auto",
            **kwargs)
    ours, theirs = same_weights(ours, keras.layers.LSTM(UNITS, **kwargs),
                                (BATCH, STEPS, FEATURES))
    if path in ("native", "xla"):
        assert ours.fused_loops == path

    our_out, our_grads = _gradients_with_nan_at_masked_steps(ours, np.nan)
    their_out, their_grads = _gradients_with_nan_at_masked_steps(theirs, 0.0)
    _, keras_nan_grads = _gradients_with_nan_at_masked_steps(theirs, np.nan)

    assert all(np.isfinite(g).all() for g in our_grads)
    assert not np.isfinite(keras_nan_grads[1]).all()  # Keras: NaN kernel grad.
    assert_all_close(our_out, their_out, "outputs and states")
    assert_all_close(our_grads, their_grads, "gradients")


def test_keras_integers_choose_paths_as_auto(monkeypatch):
    """Inference with more features than units on the XLA loops runs step
    by step under "auto" (dispatch.inference_prefers_step); so with 0/1/2."""
    monkeypatch.setattr(keras_lstm.native, "available", lambda: False)
    calls = []
    step = keras.layers.RNN.inner_loop
    monkeypatch.setattr(keras.layers.RNN, "inner_loop",
                        lambda *a, **k: calls.append(1) or step(*a, **k))
    x = np.ones((BATCH, STEPS, 2 * UNITS), "float32")
    for value in ("auto", 2):
        keras_lstm.LSTM(UNITS, implementation=value)(x)
    assert len(calls) == 2
