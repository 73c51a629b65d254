"""Contract tests of the cuDNN path on CPU, against Keras's own cuDNN path.

No GPU exists here, so GPU detection is patched on (for Keras's
`keras/src/backend/tensorflow/rnn.py` and for keras_lstm) and
`tf.raw_ops.CudnnRNNV3` is replaced by `cudnn_emulator`, which records every
call, checks shapes as TensorFlow's GPU kernel does and computes what cuDNN
computes. For the same layers, weights and inputs the tests compare

- the CudnnRNNV3 calls of keras.layers.LSTM and keras_lstm.LSTM: input,
  input_h/input_c (values and layout), the packed weights and biases,
  sequence lengths and every attribute, eagerly and as traced graph nodes;
- what each layer reads back from the op (outputs, final states, their
  gradients) against keras.layers.LSTM's step loop (use_cudnn=False).

Cases: right-padded masks, go_backwards (with and without a mask),
return_state with initial states, stateful, Bidirectional.
"""

import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.trainers.trainer import model_supports_jit

import cudnn_emulator
import keras_lstm
from keras_lstm import cudnn
from keras_lstm import devices
from random_data import random_weights
from test_keras_equivalence import assert_all_close
from test_keras_equivalence import random_array
from test_keras_equivalence import run_with_gradients

BATCH, STEPS, FEATURES, UNITS = 3, 5, 4, 6
# Keras's cuDNN code (the package exports a function of the same name).
keras_tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")
RIGHT = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], bool)

CASES = {
    "plain": (dict(return_sequences=True), {}),
    "right_padded": (dict(return_sequences=True), dict(mask=RIGHT)),
    "right_padded_last_output": ({}, dict(mask=RIGHT)),
    "go_backwards": (dict(return_sequences=True, go_backwards=True), {}),
    "go_backwards_right_padded": (
        dict(return_sequences=True, go_backwards=True), dict(mask=RIGHT)),
    "return_state_initial_state": (
        dict(return_state=True), dict(initial_state=True)),
}


@pytest.fixture
def gpu(monkeypatch):
    """GPU detection on for Keras and keras_lstm; CudnnRNNV3 recorded."""
    monkeypatch.setattr(keras_tf_rnn, "_is_gpu_available", lambda: True)
    monkeypatch.setattr(cudnn, "gpu_available", lambda: True)
    monkeypatch.setattr(devices, "gpu_available", lambda: True)
    return cudnn_emulator.install(monkeypatch)


def twins(wrap=lambda layer: layer, **kwargs):
    """keras_lstm's layer, Keras's (cuDNN) and Keras's step loop, same weights."""
    ours = wrap(keras_lstm.LSTM(UNITS, **kwargs))
    theirs = wrap(keras.layers.LSTM(UNITS, **kwargs))
    loop = wrap(keras.layers.LSTM(UNITS, use_cudnn=False, **kwargs))
    shape = (BATCH, STEPS, FEATURES)
    for layer in (ours, theirs, loop):
        layer.build(shape)
    theirs.set_weights(random_weights(theirs))
    for layer in (ours, loop):
        layer.set_weights(theirs.get_weights())
    return ours, theirs, loop


def call_arguments(call):
    states = None
    if call.get("initial_state"):
        states = [random_array(BATCH, UNITS, seed=s) for s in (5, 6)]
    return states, call.get("mask")


def recorded_run(recorder, layer, x, states, mask):
    """Outputs and gradients of one call, and the CudnnRNNV3 calls it made."""
    start = len(recorder.calls)
    results = run_with_gradients(layer, x, states, mask)
    return results, recorder.calls[start:]


def read_steps(call):
    """The call's input where cuDNN reads it (before each sequence's end);
    keras_lstm zeroes masked steps, which cuDNN never reads."""
    steps = np.arange(call["input"].shape[1])
    valid = steps[None, :] < np.asarray(call["sequence_lengths"])[:, None]
    return np.where(valid[:, :, None], call["input"], 0.0)


def assert_same_calls(ours, theirs):
    assert len(ours) == len(theirs) > 0
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert a["attributes"] == b["attributes"], f"call {k}"
        for name in ("input", "input_h", "input_c", "params",
                     "sequence_lengths"):
            assert a[name].shape == b[name].shape, f"call {k}: {name}"
            assert a[name].dtype == b[name].dtype, f"call {k}: {name}"
        for name in ("input_h", "input_c", "params", "sequence_lengths"):
            np.testing.assert_array_equal(a[name], b[name],
                                          err_msg=f"call {k}: {name}")
        np.testing.assert_array_equal(read_steps(a), read_steps(b),
                                      err_msg=f"call {k}: input")


@pytest.mark.parametrize("case", sorted(CASES))
def test_cudnn_calls_and_results_match_keras(case, gpu):
    layer_kwargs, call = CASES[case]
    ours, theirs, loop = twins(**layer_kwargs)
    x = random_array(BATCH, STEPS, FEATURES)
    states, mask = call_arguments(call)

    (our_out, our_grads), our_calls = recorded_run(gpu, ours, x, states, mask)
    (their_out, their_grads), their_calls = recorded_run(
        gpu, theirs, x, states, mask)
    loop_out, loop_grads = run_with_gradients(loop, x, states, mask)

    assert_same_calls(our_calls, their_calls)
    assert our_calls[0]["attributes"]["time_major"] is False
    assert our_calls[0]["input_h"].shape == (BATCH, 1, UNITS)
    # What we read back matches Keras's step loop, outputs and gradients.
    assert_all_close(our_out, loop_out, "outputs and states")
    assert_all_close(our_grads, loop_grads, "gradients")
    # Keras's cuDNN path reads the same states and gradients back; its
    # outputs differ only at padded steps of forward masked sequences,
    # where it writes zeros and its step loop repeats the last output.
    padded = mask is not None and layer_kwargs.get("return_sequences") and (
        not layer_kwargs.get("go_backwards"))
    if padded:
        their_out[0] = np.where(mask[:, :, None], their_out[0], loop_out[0])
        assert not np.allclose(their_out[0], np.asarray(
            run_with_gradients(theirs, x, states, mask)[0][0]))
    else:
        assert_all_close(their_grads, loop_grads, "keras cuDNN gradients")
    assert_all_close(their_out, loop_out, "keras cuDNN outputs")


def cudnn_nodes(concrete):
    """The CudnnRNNV3 NodeDefs of a traced function, branches included."""
    graph_def = concrete.graph.as_graph_def()
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes.extend(function.node_def)
    return [n for n in nodes if n.op == "CudnnRNNV3"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_traced_cudnn_nodes_match_keras(case, gpu):
    layer_kwargs, call = CASES[case]
    ours, theirs, _ = twins(**layer_kwargs)
    states, mask = call_arguments(call)
    kwargs = {}
    if mask is not None:
        kwargs["mask"] = tf.constant(mask)
    if states is not None:
        kwargs["initial_state"] = [tf.constant(s) for s in states]
    # A training graph: keras_lstm traces inference graphs that may be saved
    # with standard ops only (keras_lstm.tracing), on any device.
    kwargs["training"] = True
    spec = tf.TensorSpec((BATCH, STEPS, FEATURES), tf.float32)
    traced = {}
    for name, layer in (("ours", ours), ("keras", theirs)):
        start = len(gpu.calls)
        concrete = tf.function(
            lambda x, layer=layer: layer(x, **kwargs)).get_concrete_function(
                spec)
        traced[name] = (cudnn_nodes(concrete), gpu.calls[start:])

    (our_nodes, our_calls), (their_nodes, their_calls) = (
        traced["ours"], traced["keras"])
    assert len(our_nodes) == len(their_nodes) == 1
    assert dict(our_nodes[0].attr) == dict(their_nodes[0].attr)
    for name in ("input", "input_h", "input_c", "params", "sequence_lengths"):
        assert our_calls[0][name].shape.as_list() == (
            their_calls[0][name].shape.as_list()), name
        assert our_calls[0][name].dtype == their_calls[0][name].dtype


def test_stateful_matches_keras(gpu):
    ours, theirs, loop = twins(stateful=True, return_sequences=True)
    x = random_array(BATCH, STEPS, FEATURES)
    for step in range(2):  # The second batch starts from the first's states.
        (our_out, our_grads), our_calls = recorded_run(gpu, ours, x, None,
                                                       None)
        _, their_calls = recorded_run(gpu, theirs, x, None, None)
        loop_out, loop_grads = run_with_gradients(loop, x)
        assert_same_calls(our_calls, their_calls)
        assert_all_close(our_out, loop_out, f"outputs, batch {step}")
        assert_all_close(our_grads, loop_grads, f"gradients, batch {step}")
        x = x[:, ::-1] * 0.5
    assert np.abs(np.asarray(our_calls[0]["input_h"])).max() > 0


@pytest.mark.parametrize("masked", [False, True])
def test_bidirectional_matches_keras(masked, gpu):
    ours, theirs, loop = twins(
        wrap=keras.layers.Bidirectional, return_sequences=True)
    x = random_array(BATCH, STEPS, FEATURES)
    mask = RIGHT if masked else None

    (our_out, our_grads), our_calls = recorded_run(gpu, ours, x, None, mask)
    _, their_calls = recorded_run(gpu, theirs, x, None, mask)
    loop_out, loop_grads = run_with_gradients(loop, x, None, mask)

    assert len(our_calls) == 2  # Both directions ran cuDNN.
    assert_same_calls(our_calls, their_calls)
    assert_all_close(our_out, loop_out, "outputs")
    assert_all_close(our_grads, loop_grads, "gradients")


def test_other_masks_and_second_order_leave_cudnn(gpu):
    ours, _, loop = twins(return_sequences=True)
    x = tf.constant(random_array(BATCH, STEPS, FEATURES))
    left = RIGHT[:, ::-1].copy()
    (our_out, our_grads), calls = recorded_run(gpu, ours, x, None, left)
    assert not calls
    loop_out, loop_grads = run_with_gradients(loop, x, None, left)
    assert_all_close(our_out + our_grads, loop_out + loop_grads, "left mask")

    def penalty_gradients(layer):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = layer(x)
                loss = tf.reduce_sum(y * y)
            g = inner.gradient(loss, x)
            penalty = tf.reduce_sum(g * g)
        return outer.gradient(penalty, layer.trainable_weights)

    start = len(gpu.calls)
    got = penalty_gradients(ours)
    assert len(gpu.calls) == start  # cuDNN's backward has no gradient.
    assert_all_close(got, penalty_gradients(loop), "second order")


def test_emulator_rejects_states_laid_out_time_major():
    """What the GPU kernel says to (1, batch, units) states, batch-major."""
    recorder = cudnn_emulator.CudnnRNNV3Recorder()
    x = tf.zeros((BATCH, STEPS, FEATURES))
    state = tf.zeros((1, BATCH, UNITS))
    params = tf.zeros([4 * UNITS * (FEATURES + UNITS) + 8 * UNITS])
    with pytest.raises(AssertionError, match="Invalid input_h shape"):
        recorder(input=x, input_h=state, input_c=state, params=params,
                 sequence_lengths=tf.fill([BATCH], STEPS), time_major=False)


@pytest.mark.parametrize(
    "kwargs, jit",
    [({}, False), (dict(use_cudnn=False), True),
     (dict(implementation="fused"), True), (dict(activation="relu"), True)],
)
def test_no_xla_where_cudnn_may_run(kwargs, jit, gpu):
    """As keras.layers.LSTM: where cuDNN may run, compile(jit_compile="auto")
    on a GPU machine leaves XLA out (Keras asks `model_supports_jit`)."""
    for cls in (keras_lstm.LSTM, keras.layers.LSTM):
        if cls is keras.layers.LSTM and "implementation" in kwargs:
            continue
        layer = cls(UNITS, **kwargs)
        model = keras.Sequential([keras.Input((STEPS, FEATURES)), layer])
        assert layer.supports_jit is jit, cls
        assert model_supports_jit(model) is jit, cls


def test_xla_allowed_without_gpu():
    model = keras.Sequential([keras.Input((STEPS, FEATURES)),
                              keras_lstm.LSTM(UNITS)])
    assert model.layers[0].supports_jit and model_supports_jit(model)
