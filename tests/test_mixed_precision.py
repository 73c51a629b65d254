"""The layer under mixed_bfloat16 and mixed_float16 policies."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lstm
from random_data import random_inputs

BATCH, STEPS, FEATURES, UNITS = 4, 6, 3, 5
POLICIES = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
# bfloat16 keeps 8 bits of mantissa, float16 11; outputs lie in (-1, 1).
TOLERANCE = {"mixed_bfloat16": 5e-2, "mixed_float16": 5e-3}


def dtype_name(x):
    return keras.backend.standardize_dtype(x.dtype)


def float32_twin(layer_kwargs, weights, x, initial_state=None, mask=None):
    """The same layer and weights under the float32 policy."""
    layer = keras_lstm.LSTM(UNITS, dtype="float32", **layer_kwargs)
    layer.build(x.shape)
    layer.set_weights(weights)
    return layer(x, initial_state=initial_state, mask=mask)


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("masked", [False, True])
def test_computes_in_low_precision_with_float32_variables(policy, masked):
    keras.mixed_precision.set_global_policy(policy)
    kwargs = dict(return_sequences=True, return_state=True)
    layer = keras_lstm.LSTM(UNITS, **kwargs)
    x = random_inputs(BATCH, STEPS, FEATURES)
    mask = np.array([[1] * STEPS, [0, 0] + [1] * (STEPS - 2)] * 2, bool)
    mask = mask if masked else None

    outputs, h, c = layer(x, mask=mask)

    assert layer.compute_dtype == POLICIES[policy]
    assert layer.cell.compute_dtype == POLICIES[policy]
    for result in (outputs, h, c):
        assert dtype_name(result) == POLICIES[policy]
    assert len(layer.weights) == 3
    for weight in layer.weights:
        assert weight.dtype == "float32", weight.path
    keras.mixed_precision.set_global_policy("float32")
    expected = float32_twin(kwargs, layer.get_weights(), x, mask=mask)
    atol = TOLERANCE[policy]
    for got, want in zip((outputs, h, c), expected):
        got = np.asarray(tf.cast(got, "float32"))
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, want, atol=atol)


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("implementation", ["fused", "step"])
def test_matmuls_run_in_the_low_precision(policy, implementation):
    """The traced graph multiplies the inputs by the kernel in 16 bits."""
    keras.mixed_precision.set_global_policy(policy)
    layer = keras_lstm.LSTM(UNITS, implementation=implementation)
    x = random_inputs(BATCH, STEPS, FEATURES)
    layer(x)  # Builds the layer outside the traced function.
    graph = tf.function(layer).get_concrete_function(x).graph
    matmul_dtypes = {
        op.get_attr("T").name
        for op in graph.get_operations()
        if op.type in ("MatMul", "BatchMatMulV2")
    }
    assert POLICIES[policy] in matmul_dtypes, matmul_dtypes


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_initial_state_in_float32_is_accepted(policy):
    keras.mixed_precision.set_global_policy(policy)
    layer = keras_lstm.LSTM(UNITS)
    x = random_inputs(BATCH, STEPS, FEATURES)
    states = [random_inputs(BATCH, UNITS, seed=s) for s in (5, 6)]
    output = layer(x, initial_state=states)
    assert dtype_name(output) == POLICIES[policy]
    keras.mixed_precision.set_global_policy("float32")
    expected = float32_twin({}, layer.get_weights(), x, states)
    np.testing.assert_allclose(
        np.asarray(tf.cast(output, "float32")), expected,
        atol=TOLERANCE[policy],
    )


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_model_trains_one_step_without_nan(policy):
    keras.mixed_precision.set_global_policy(policy)
    model = keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            keras_lstm.LSTM(UNITS, return_sequences=True),
            keras.layers.Bidirectional(keras_lstm.LSTM(UNITS)),
            keras.layers.Dense(1, dtype="float32"),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = random_inputs(16, STEPS, FEATURES)
    y = x[:, :, :1].mean(axis=1)
    before = [w.numpy().copy() for w in model.trainable_weights]

    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)

    assert np.isfinite(history.history["loss"][0])
    after = [w.numpy() for w in model.trainable_weights]
    for weight, old, new in zip(model.trainable_weights, before, after):
        assert weight.dtype == "float32", weight.path
        assert np.all(np.isfinite(new)), weight.path
        assert not np.array_equal(old, new), f"{weight.path} did not move"


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_gradient_tape_step_is_finite(policy):
    keras.mixed_precision.set_global_policy(policy)
    layer = keras_lstm.LSTM(UNITS, return_sequences=True)
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1))
    x = random_inputs(BATCH, STEPS, FEATURES)
    layer.build(x.shape)
    optimizer.build(layer.trainable_variables)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.cast(layer(x, training=True), "float32") ** 2)
        scaled = optimizer.scale_loss(loss)
    grads = tape.gradient(scaled, layer.trainable_variables)
    for grad in grads:
        assert grad.dtype == tf.float32
        assert np.all(np.isfinite(grad.numpy()))
        assert np.any(grad.numpy() != 0)
    optimizer.apply(grads, layer.trainable_variables)
    for weight in layer.trainable_variables:
        assert np.all(np.isfinite(weight.numpy()))


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_saved_model_keeps_its_policy(policy, tmp_path):
    keras.mixed_precision.set_global_policy(policy)
    model = keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            keras_lstm.LSTM(UNITS, return_sequences=True),
            keras.layers.Bidirectional(keras_lstm.LSTM(UNITS)),
        ]
    )
    x = random_inputs(BATCH, STEPS, FEATURES)
    expected = np.asarray(tf.cast(model(x), "float32"))
    path = str(tmp_path / "mixed.keras")
    model.save(path)
    keras.mixed_precision.set_global_policy("float32")

    loaded = keras.models.load_model(path)

    cells = [loaded.layers[0].cell, loaded.layers[1].forward_layer.cell,
             loaded.layers[1].backward_layer.cell]
    for cell in cells:
        assert cell.compute_dtype == POLICIES[policy]
        assert cell.variable_dtype == "float32"
    got = np.asarray(tf.cast(loaded(x), "float32"))
    np.testing.assert_array_equal(got, expected)
