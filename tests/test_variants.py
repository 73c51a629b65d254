"""LSTM variants against NumPy references of their papers' equations."""

import keras
import numpy as np
import pytest

import keras_lstm
from numpy_reference import sigmoid
from numpy_reference import split_gates
from random_data import randomize

BATCH, STEPS, FEATURES, UNITS, PROJ = 3, 5, 4, 6, 3
ATOL = 1e-5


# --- NumPy references, one step each, float64 -------------------------------


def peephole_step(x, h, c, w):
    k, u, b, p_i, p_f, p_o = w
    z_i, z_f, z_c, z_o = split_gates(x @ k + h @ u + b)
    i = sigmoid(z_i + p_i * c)
    f = sigmoid(z_f + p_f * c)
    c_new = f * c + i * np.tanh(z_c)
    o = sigmoid(z_o + p_o * c_new)
    return o * np.tanh(c_new), c_new


def layer_norm(a, gain, shift=0.0, eps=1e-3):
    mean = a.mean(-1, keepdims=True)
    var = a.var(-1, keepdims=True)
    return gain * (a - mean) / np.sqrt(var + eps) + shift


def layer_norm_step(x, h, c, w):
    k, u, b, g_x, g_h, g_c, b_c = w
    z = layer_norm(x @ k, g_x) + layer_norm(h @ u, g_h) + b
    z_i, z_f, z_c, z_o = split_gates(z)
    c_new = sigmoid(z_f) * c + sigmoid(z_i) * np.tanh(z_c)
    return sigmoid(z_o) * np.tanh(layer_norm(c_new, g_c, b_c)), c_new


def cifg_step(x, h, c, w):
    k, u, b = w
    z_f, z_c, z_o = np.split(x @ k + h @ u + b, 3, axis=-1)
    f = sigmoid(z_f)
    c_new = f * c + (1.0 - f) * np.tanh(z_c)
    return sigmoid(z_o) * np.tanh(c_new), c_new


def projection_step(x, h, c, w):
    k, u, b, proj = w
    z_i, z_f, z_c, z_o = split_gates(x @ k + h @ u + b)
    c_new = sigmoid(z_f) * c + sigmoid(z_i) * np.tanh(z_c)
    return (sigmoid(z_o) * np.tanh(c_new)) @ proj, c_new


def zoneout_inference_step(rate_h, rate_c):
    def step(x, h, c, w):
        h_new, c_new = projection_step(x, h, c, list(w) + [np.eye(UNITS)])
        return (rate_h * h + (1 - rate_h) * h_new,
                rate_c * c + (1 - rate_c) * c_new)
    return step


def run(step, x, weights, h_size=UNITS):
    """Runs `step` over time; returns outputs (batch, time, h), h_T, c_T."""
    weights = [np.asarray(w, np.float64) for w in weights]
    h = np.zeros((x.shape[0], h_size))
    c = np.zeros((x.shape[0], UNITS))
    outputs = []
    for t in range(x.shape[1]):
        h, c = step(x[:, t].astype(np.float64), h, c, weights)
        outputs.append(h)
    return np.stack(outputs, 1), h, c


# --- helpers ----------------------------------------------------------------


def inputs(seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")


def built(layer_class, *args, **kwargs):
    layer = layer_class(*args, return_sequences=True, return_state=True,
                        **kwargs)
    layer.build((None, STEPS, FEATURES))
    return layer


def assert_matches(layer, step, weights, h_size=UNITS, **call_kwargs):
    x = inputs()
    outputs, h, c = (np.asarray(t) for t in layer(x, **call_kwargs))
    ref_out, ref_h, ref_c = run(step, x, weights, h_size)
    np.testing.assert_allclose(outputs, ref_out, atol=ATOL)
    np.testing.assert_allclose(h, ref_h, atol=ATOL)
    np.testing.assert_allclose(c, ref_c, atol=ATOL)


def plain_outputs(weights, **kwargs):
    layer = built(keras_lstm.LSTM, UNITS, **kwargs)
    layer.set_weights(weights)
    return [np.asarray(t) for t in layer(inputs())]


# --- the equations ----------------------------------------------------------


def test_peephole_matches_reference():
    layer = built(keras_lstm.PeepholeLSTM, UNITS)
    assert [w.shape for w in layer.get_weights()[3:]] == [(UNITS,)] * 3
    assert_matches(layer, peephole_step, randomize(layer))


def test_layer_norm_matches_reference():
    layer = built(keras_lstm.LayerNormLSTM, UNITS)
    assert_matches(layer, layer_norm_step, randomize(layer))


def test_cifg_matches_reference_and_packs_three_blocks():
    layer = built(keras_lstm.CIFGLSTM, UNITS)
    shapes = [w.shape for w in layer.get_weights()]
    assert shapes == [(FEATURES, 3 * UNITS), (UNITS, 3 * UNITS), (3 * UNITS,)]
    assert_matches(layer, cifg_step, randomize(layer))


def test_cifg_input_gate_is_one_minus_forget_gate():
    cell = keras_lstm.CIFGLSTMCell(UNITS)
    z = np.random.default_rng(2).standard_normal((BATCH, 3 * UNITS))
    gates = cell.step(z.astype("float32"), np.ones((BATCH, UNITS), "float32"),
                      None)
    np.testing.assert_allclose(gates.i, 1.0 - np.asarray(gates.f), atol=1e-7)
    np.testing.assert_allclose(gates.f, sigmoid(z[:, :UNITS]), atol=1e-6)


def test_cifg_unit_forget_bias_is_its_first_block():
    cell = keras_lstm.CIFGLSTMCell(UNITS, bias_initializer="ones")
    cell.build((None, FEATURES))
    np.testing.assert_array_equal(cell.bias.numpy(), np.ones(3 * UNITS))
    cell = keras_lstm.CIFGLSTMCell(UNITS)
    cell.build((None, FEATURES))
    expected = np.concatenate([np.ones(UNITS), np.zeros(2 * UNITS)])
    np.testing.assert_array_equal(cell.bias.numpy(), expected)


def test_projection_matches_reference_and_torch_shapes():
    layer = built(keras_lstm.ProjectionLSTM, UNITS, projection_units=PROJ)
    shapes = [w.shape for w in layer.get_weights()]
    assert shapes == [(FEATURES, 4 * UNITS), (PROJ, 4 * UNITS),
                      (4 * UNITS,), (UNITS, PROJ)]
    assert layer.cell.state_size == [PROJ, UNITS]
    assert_matches(layer, projection_step, randomize(layer), h_size=PROJ)


def test_zoneout_inference_is_the_expectation_and_deterministic():
    layer = built(keras_lstm.ZoneoutLSTM, UNITS, zoneout_h=0.3, zoneout_c=0.6)
    weights = randomize(layer)
    assert_matches(layer, zoneout_inference_step(0.3, 0.6), weights)
    first = layer(inputs(), training=False)[0]
    np.testing.assert_array_equal(first, layer(inputs(), training=False)[0])


def test_zoneout_training_keeps_previous_units_at_the_given_rate():
    rate, batch = 0.3, 400
    cell = keras_lstm.ZoneoutLSTMCell(UNITS, zoneout_h=rate, zoneout_c=rate,
                                      seed=5)
    cell.build((None, FEATURES))
    randomize(cell)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((batch, FEATURES)).astype("float32")
    h, c = (rng.standard_normal((batch, UNITS)).astype("float32")
            for _ in range(2))
    z = cell.preactivations(x, h)
    fresh = keras_lstm.LSTMCell.step(cell, z, c, h)
    zoned = cell.step(z, c, h, training=True)
    for new, old, got in ((fresh.h, h, zoned.h), (fresh.c, c, zoned.c)):
        got = np.asarray(got)
        kept = got == old
        assert np.all(kept | (got == np.asarray(new)))
        assert abs(kept.mean() - rate) < 0.03, kept.mean()
    # Fresh noise each step, independent for h and c.
    again = cell.step(z, c, h, training=True)
    assert np.any(np.asarray(again.h) != np.asarray(zoned.h))
    assert np.any((np.asarray(zoned.h) == h) != (np.asarray(zoned.c) == c))


# --- reductions to the plain cell -------------------------------------------


def test_zero_peepholes_are_the_plain_cell():
    layer = built(keras_lstm.PeepholeLSTM, UNITS)
    weights = randomize(layer)[:3]
    layer.set_weights(weights + [np.zeros(UNITS, "float32")] * 3)
    for got, want in zip(layer(inputs()), plain_outputs(weights)):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_peepholes_start_at_zero():
    layer = built(keras_lstm.PeepholeLSTM, UNITS)
    for w in layer.get_weights()[3:]:
        np.testing.assert_array_equal(w, 0.0)


def test_identity_projection_is_the_plain_cell():
    layer = built(keras_lstm.ProjectionLSTM, UNITS, projection_units=UNITS)
    weights = randomize(layer)[:3]
    layer.set_weights(weights + [np.eye(UNITS, dtype="float32")])
    for got, want in zip(layer(inputs()), plain_outputs(weights)):
        np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("training", [False, True])
def test_zero_zoneout_is_the_plain_cell(training):
    layer = built(keras_lstm.ZoneoutLSTM, UNITS)
    weights = randomize(layer)
    got = layer(inputs(), training=training)
    for got, want in zip(got, plain_outputs(weights)):
        np.testing.assert_allclose(got, want, atol=1e-6)


# --- layers, training, serialization ----------------------------------------

VARIANTS = [
    (keras_lstm.PeepholeLSTM, {"peephole_initializer": "ones"}),
    (keras_lstm.LayerNormLSTM, {"norm_epsilon": 1e-5}),
    (keras_lstm.CIFGLSTM, {}),
    (keras_lstm.ProjectionLSTM, {"projection_units": PROJ}),
    (keras_lstm.ZoneoutLSTM, {"zoneout_h": 0.2, "zoneout_c": 0.4}),
]
IDS = [cls.__name__ for cls, _ in VARIANTS]


@pytest.mark.parametrize("layer_class,kwargs", VARIANTS, ids=IDS)
def test_every_weight_gets_a_gradient(layer_class, kwargs):
    import tensorflow as tf

    layer = layer_class(UNITS, dropout=0.1, **kwargs)
    x = inputs()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=True) ** 2)
    grads = tape.gradient(loss, layer.trainable_weights)
    assert len(grads) == len(layer.get_weights())
    for weight, grad in zip(layer.trainable_weights, grads):
        assert grad is not None and np.any(np.asarray(grad) != 0), weight.path


@pytest.mark.parametrize("layer_class,kwargs", VARIANTS, ids=IDS)
def test_flat_config_round_trip(layer_class, kwargs):
    layer = layer_class(UNITS, return_sequences=True, name="v", **kwargs)
    config = layer.get_config()
    assert "cell" not in config
    assert config["units"] == UNITS and config["return_sequences"] is True
    for key, value in kwargs.items():
        if key.endswith("initializer"):
            value = keras.initializers.serialize(keras.initializers.get(value))
        assert config[key] == value
    clone = layer_class.from_config(config)
    assert clone.get_config() == config
    cell_config = layer.cell.get_config()
    cell_clone = type(layer.cell).from_config(cell_config)
    assert cell_clone.get_config() == cell_config


@pytest.mark.parametrize("layer_class,kwargs", VARIANTS, ids=IDS)
def test_cell_works_in_keras_rnn(layer_class, kwargs):
    named = built(layer_class, UNITS, **kwargs)
    weights = randomize(named)
    rnn = keras.layers.RNN(layer_class.cell_class(UNITS, **kwargs),
                           return_sequences=True, return_state=True)
    rnn.build((None, STEPS, FEATURES))
    rnn.set_weights(weights)
    for got, want in zip(rnn(inputs()), named(inputs())):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_masked_projection_keeps_states():
    layer = built(keras_lstm.ProjectionLSTM, UNITS, projection_units=PROJ)
    weights = randomize(layer)
    mask = np.ones((BATCH, STEPS), bool)
    mask[0, 2:] = False
    outputs, h, c = layer(inputs(), mask=mask)
    ref_out, _, ref_c = run(projection_step, inputs()[:, :2], weights, PROJ)
    np.testing.assert_allclose(h[0], ref_out[0, -1], atol=ATOL)
    np.testing.assert_allclose(c[0], ref_c[0], atol=ATOL)
    np.testing.assert_allclose(outputs[0, 4], ref_out[0, -1], atol=ATOL)


def test_save_and_load_without_custom_objects(tmp_path):
    x = keras.Input((STEPS, FEATURES))
    branches = [cls(UNITS, **kw)(x) for cls, kw in VARIANTS]
    model = keras.Model(x, keras.layers.Concatenate()(branches))
    for layer in model.layers[1:-1]:
        randomize(layer)
    path = str(tmp_path / "variants.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [
        type(layer) for layer in model.layers
    ]
    np.testing.assert_allclose(loaded(inputs()), model(inputs()), atol=1e-6)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="projection_units=0"):
        keras_lstm.ProjectionLSTMCell(UNITS, 0)
    with pytest.raises(ValueError, match="zoneout_c=1.0"):
        keras_lstm.ZoneoutLSTM(UNITS, zoneout_c=1.0)
    with pytest.raises(ValueError, match="norm_epsilon=0"):
        keras_lstm.LayerNormLSTMCell(UNITS, norm_epsilon=0)
    layer = keras_lstm.ProjectionLSTM(UNITS, projection_units=PROJ)
    states = [np.zeros((BATCH, UNITS), "float32")] * 2
    with pytest.raises(ValueError, match=r"Received: initial_state shapes"):
        layer(inputs(), initial_state=states)
    with pytest.raises(TypeError, match="Received: inputs.dtype=str"):
        layer(np.full((BATCH, STEPS, FEATURES), "a"))
