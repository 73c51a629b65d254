"""The fused path gives the step-by-step path's outputs, states and gradients.

Every case builds two `keras_lstm.LSTM` layers with the same weights, one with
implementation="fused" and one with implementation="step" (the cell run by
`keras.layers.RNN`), and compares forward results and the gradients of a loss
that weighs every result differently, w.r.t. inputs, initial states and
weights. Cases run in float64 (so 1e-9 differences would show a wrong formula)
and in float32 at the issue's tolerance of 1e-5.
"""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lstm
from keras_lstm import fused

BATCH, STEPS, FEATURES, UNITS = 3, 6, 4, 5

MASKS = {
    "right": [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0]],
    "left": [[0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]],
    "holes": [[1, 0, 1, 0, 0, 1], [0, 0, 1, 1, 0, 1], [1, 1, 0, 1, 1, 0]],
    "empty_row": [[0, 0, 0, 0, 0, 0], [1, 1, 0, 1, 1, 1], [0, 1, 1, 1, 1, 0]],
}

CASES = {
    "last_output": {},
    "sequences_and_states": dict(return_sequences=True, return_state=True),
    "go_backwards": dict(go_backwards=True, return_sequences=True),
    "no_bias": dict(use_bias=False, return_state=True),
    "dropout": dict(dropout=0.4, seed=7, return_sequences=True),
}


def random_array(*shape, seed=0, dtype="float64"):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def twin_layers(dtype="float64", **kwargs):
    """A fused and a step layer with the same random weights."""
    fast = keras_lstm.LSTM(UNITS, implementation="fused", dtype=dtype, **kwargs)
    slow = keras_lstm.LSTM(UNITS, implementation="step", dtype=dtype, **kwargs)
    for layer in (fast, slow):
        layer.build((BATCH, STEPS, FEATURES))
    weights = [random_array(*w.shape, seed=k) * 0.6
               for k, w in enumerate(fast.get_weights())]
    fast.set_weights(weights)
    slow.set_weights(weights)
    assert fast.implementation_path == "fused"
    assert slow.implementation_path == "step"
    return fast, slow


def run(layer, x, states=None, mask=None, training=False, call=None):
    """Results and gradients of a loss weighing every result differently."""
    x = tf.convert_to_tensor(x)
    states = None if states is None else [tf.convert_to_tensor(s) for s in states]
    kwargs = {"training": training}
    if mask is not None:
        kwargs["mask"] = tf.constant(np.array(mask, bool))
    with tf.GradientTape() as tape:
        tape.watch(x)
        if states is not None:
            tape.watch(states)
            kwargs["initial_state"] = states
        result = tf.nest.flatten((call or layer)(x, **kwargs))
        loss = sum(
            tf.reduce_sum(r * random_array(*r.shape, seed=20 + k, dtype=r.dtype.name))
            for k, r in enumerate(result)
        )
    sources = [x] + (states or []) + list(layer.trainable_weights)
    grads = tape.gradient(loss, sources)
    return [r.numpy() for r in result], [g.numpy() for g in grads]


def assert_same(fast, slow, atol):
    (fast_out, fast_grads), (slow_out, slow_grads) = fast, slow
    assert len(fast_out) == len(slow_out) and len(fast_grads) == len(slow_grads)
    for k, (a, b) in enumerate(zip(fast_out, slow_out)):
        np.testing.assert_allclose(a, b, atol=atol, err_msg=f"result {k}")
    for k, (a, b) in enumerate(zip(fast_grads, slow_grads)):
        np.testing.assert_allclose(a, b, atol=atol, err_msg=f"gradient {k}")


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("mask", [None] + sorted(MASKS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_step_path_float64(case, mask, training):
    # training=True stores the gates in the forward pass; training=False
    # stores only the outputs (or only the last one) and its gradient reruns
    # the forward pass.
    fast, slow = twin_layers(**CASES[case])
    x = random_array(BATCH, STEPS, FEATURES, seed=1)
    states = [random_array(BATCH, UNITS, seed=s) for s in (2, 3)]
    mask = None if mask is None else MASKS[mask]
    assert_same(
        run(fast, x, states, mask, training=training),
        run(slow, x, states, mask, training=training),
        atol=1e-9,
    )


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_matches_step_path_float32(go_backwards, training):
    # training=False stores no gates; its gradient reruns the forward pass.
    kwargs = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    fast, slow = twin_layers(dtype="float32", **kwargs)
    x = random_array(BATCH, STEPS, FEATURES, seed=1, dtype="float32")
    states = [random_array(BATCH, UNITS, seed=s, dtype="float32") for s in (2, 3)]
    assert_same(
        run(fast, x, states, MASKS["holes"], training=training),
        run(slow, x, states, MASKS["holes"], training=training),
        atol=1e-5,
    )


def test_fused_lstm_without_xla_matches_xla():
    args = [random_array(BATCH, STEPS, FEATURES)]
    args += [random_array(BATCH, UNITS, seed=s) for s in (2, 3)]
    args += [random_array(FEATURES, 4 * UNITS, seed=4) * 0.5,
             random_array(UNITS, 4 * UNITS, seed=5) * 0.5,
             random_array(4 * UNITS, seed=6)]
    args = [tf.constant(a) for a in args]
    mask = tf.constant(np.array(MASKS["holes"], bool))

    def results(loops):
        with tf.GradientTape() as tape:
            tape.watch(args)
            out = fused.fused_lstm(*args, mask=mask, loops=loops)
            loss = tf.reduce_sum(out[1] ** 2) + tf.reduce_sum(out[2][1] * 3.0)
        return [out[1]] + tape.gradient(loss, args)

    for a, b in zip(results("xla"), results("python")):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_stateful_carries_states_like_step_path():
    fast, slow = twin_layers(
        dtype="float32", stateful=True, return_sequences=True
    )
    for seed in (1, 2):  # The second batch starts from the first's states.
        x = random_array(BATCH, STEPS, FEATURES, seed=seed, dtype="float32")
        np.testing.assert_allclose(fast(x), slow(x), atol=1e-5)
    for a, b in zip(fast.states, slow.states):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_inside_tf_function(jit_compile):
    fast, slow = twin_layers(dtype="float32", return_sequences=True)
    x = random_array(BATCH, STEPS, FEATURES, seed=1, dtype="float32")
    mask = np.array(MASKS["left"], bool)

    @tf.function(jit_compile=jit_compile)
    def fast_call(x, mask, training):
        return fast(x, mask=mask, training=training)

    assert_same(
        run(fast, x, mask=mask, call=fast_call),
        run(slow, x, mask=mask),
        atol=1e-5,
    )


def test_bidirectional_matches_step_path():
    def wrap(implementation):
        layer = keras.layers.Bidirectional(
            keras_lstm.LSTM(UNITS, return_sequences=True, implementation=implementation)
        )
        layer.build((BATCH, STEPS, FEATURES))
        return layer

    fast, slow = wrap("fused"), wrap("step")
    weights = [random_array(*w.shape, seed=k, dtype="float32") * 0.6
               for k, w in enumerate(fast.get_weights())]
    fast.set_weights(weights)
    slow.set_weights(weights)
    assert fast.backward_layer.implementation_path == "fused"
    x = random_array(BATCH, STEPS, FEATURES, seed=1, dtype="float32")
    assert_same(
        run(fast, x, mask=MASKS["right"]),
        run(slow, x, mask=MASKS["right"]),
        atol=1e-5,
    )


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_close_to_step_path(policy):
    keras.mixed_precision.set_global_policy(policy)
    fast, slow = twin_layers(dtype=None, return_sequences=True, return_state=True)
    x = random_array(BATCH, STEPS, FEATURES, seed=1, dtype="float32")
    fast_out, fast_grads = run(fast, x, mask=MASKS["holes"])
    slow_out, slow_grads = run(slow, x, mask=MASKS["holes"])
    # The fused path computes in float32 and rounds once at the end; the step
    # path rounds every step, so they agree to the low precision's accuracy.
    atol = 0.02 if policy == "mixed_float16" else 0.1
    for a, b in zip(fast_out + fast_grads, slow_out + slow_grads):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(
            a.astype("float32"), b.astype("float32"), atol=atol
        )
    compute_dtype = keras.mixed_precision.global_policy().compute_dtype
    assert fast_out[0].dtype == np.dtype(compute_dtype)


def test_gradients_in_a_keras_training_step():
    model = keras.Sequential([
        keras.Input((STEPS, FEATURES)),
        keras_lstm.LSTM(UNITS, implementation="fused"),
        keras.layers.Dense(1),
    ])
    twin = keras.models.clone_model(model)
    twin.layers[0].implementation = "step"
    twin.set_weights(model.get_weights())
    x = random_array(8, STEPS, FEATURES, seed=1, dtype="float32")
    y = random_array(8, 1, seed=2, dtype="float32")
    for m in (model, twin):
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        m.fit(x, y, epochs=2, batch_size=4, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


_MIRRORED_SCRIPT = textwrap.dedent("""
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, keras_lstm
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    x = np.random.default_rng(0).normal(size=(8, 6, 4)).astype("float32")
    y = np.random.default_rng(1).normal(size=(8, 1)).astype("float32")
    weights = None
    for implementation in ("fused", "step"):
        with strategy.scope():
            model = keras.Sequential([keras.Input((6, 4)),
                keras_lstm.LSTM(5, implementation=implementation),
                keras.layers.Dense(1)])
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        if weights is None:
            weights = model.get_weights()
        model.set_weights(weights)
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
        np.save(f"{implementation}.npy", model.get_weights()[1])
""")


@pytest.mark.slow  # ~30 s: a fresh process with two logical CPU devices.
def test_mirrored_strategy_two_cpus(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT], cwd=tmp_path, env=env,
        check=True, timeout=300,
    )
    fast, slow = np.load(tmp_path / "fused.npy"), np.load(tmp_path / "step.npy")
    assert not np.allclose(fast, 0)
    np.testing.assert_allclose(fast, slow, atol=1e-5)


@pytest.mark.parametrize("mask", [None, "holes", "empty_row"])
def test_both_backward_loops_agree(monkeypatch, mask):
    # Small states precompute the backward factors, large ones read the
    # saved gates per step; both must give the same gradients.
    args = [random_array(BATCH, STEPS, FEATURES)]
    args += [random_array(BATCH, UNITS, seed=s) for s in (2, 3)]
    args += [random_array(FEATURES, 4 * UNITS, seed=4) * 0.5,
             random_array(UNITS, 4 * UNITS, seed=5) * 0.5,
             random_array(4 * UNITS, seed=6)]
    args = [tf.constant(a) for a in args]
    mask = None if mask is None else tf.constant(np.array(MASKS[mask], bool))

    def gradients(max_units):
        monkeypatch.setattr(fused, "_BACKWARD_VECTORIZED_MAX_UNITS", max_units)
        with tf.GradientTape() as tape:
            tape.watch(args)
            out = fused.fused_lstm(*args, mask=mask, go_backwards=True)
            loss = tf.reduce_sum(out[1] * random_array(*out[1].shape, seed=9))
            loss += tf.reduce_sum(out[2][1] * 3.0)
        return tape.gradient(loss, args)

    for a, b in zip(gradients(UNITS), gradients(0)):
        np.testing.assert_allclose(a, b, atol=1e-12)
