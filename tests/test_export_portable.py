"""Saved graphs hold standard TensorFlow ops only (`keras_lstm.tracing`).

A SavedModel of a model with keras_lstm layers must load where keras_lstm's
C++ ops do not exist: TF Serving, other languages, a process that never
imports keras_lstm. Each way of saving is checked twice: the saved function
library holds no KerasLstm* op and no XLA-compiled function, and a fresh
process in which ``import keras_lstm`` fails loads it and reproduces the
model's outputs to 1e-5. Graphs that are never saved (training steps,
Keras's predict loop) keep the C++ ops.
"""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import keras_lstm
from keras_lstm import fused
from keras_lstm import native
from native_ops import native_ops_or_skip


def stacked_masked_model():
    """Embedding (mask) -> Bidirectional LSTM -> LSTM -> Dense."""
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(50, 8, mask_zero=True)(inputs)
    x = keras.layers.Bidirectional(
        keras_lstm.LSTM(6, return_sequences=True))(x)
    x = keras_lstm.LSTM(5)(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def token_batch():
    tokens = np.random.default_rng(0).integers(1, 50, (4, 9)).astype("int32")
    tokens[1, 6:] = 0  # right padding
    tokens[3, 2:] = 0
    return tokens


def saved_op_types(directory):
    """Op types in the SavedModel's graph and function library, and whether
    any function carries XLA's must-compile attribute."""
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(directory, "saved_model.pb"), "rb") as file:
        proto.ParseFromString(file.read())
    graph = proto.meta_graphs[0].graph_def
    types = {node.op for node in graph.node}
    xla = False
    for function in graph.library.function:
        types.update(node.op for node in function.node_def)
        xla |= "_XlaMustCompile" in function.attr
    return types, xla


class ServingModule(tf.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model
        self.serve = tf.function(lambda tokens: model(tokens))


def save_every_way(model, tokens, root):
    """model.export, tf.saved_model.save, and a user's already-traced function."""
    model.export(os.path.join(root, "export"), verbose=False)
    tf.saved_model.save(model, os.path.join(root, "saved_model"))
    module = ServingModule(model)
    module.serve(tf.constant(tokens))  # Traced here, before saving.
    tf.saved_model.save(module, os.path.join(root, "module"))
    return {"export": "serve", "saved_model": "serving_default",
            "module": "serve"}


LOAD_WITHOUT_KERAS_LSTM = textwrap.dedent("""\
    import sys
    sys.modules["keras_lstm"] = None  # any import of keras_lstm now fails
    import numpy as np, tensorflow as tf
    root, endpoints = sys.argv[1], sys.argv[2:]
    tokens = tf.constant(np.load(root + "/tokens.npy"))
    want = np.load(root + "/outputs.npy")
    for entry in endpoints:
        name, endpoint = entry.split("=")
        loaded = tf.saved_model.load(root + "/" + name)
        if endpoint == "serving_default":
            function = loaded.signatures[endpoint]
            got = list(function(tf.cast(tokens, tf.int32)).values())[0]
        else:
            got = getattr(loaded, endpoint)(tokens)
        print(name, float(np.abs(np.asarray(got) - want).max()))
""")


def test_saved_models_load_without_keras_lstm(tmp_path):
    model = stacked_masked_model()
    tokens = token_batch()
    want = model.predict(tokens, verbose=0)
    endpoints = save_every_way(model, tokens, str(tmp_path))
    for name in endpoints:
        types, xla = saved_op_types(str(tmp_path / name))
        assert not [t for t in types if t.startswith("KerasLstm")], name
        assert not xla, f"{name} holds an XLA-compiled function"
    np.save(tmp_path / "tokens.npy", tokens)
    np.save(tmp_path / "outputs.npy", want)
    env = dict(os.environ, PYTHONPATH="")
    result = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_KERAS_LSTM, str(tmp_path)]
        + [f"{name}={endpoint}" for name, endpoint in endpoints.items()],
        capture_output=True, text=True, timeout=300, cwd=str(tmp_path), env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    differences = dict(line.split() for line in result.stdout.splitlines())
    assert sorted(differences) == sorted(endpoints)
    for name, difference in differences.items():
        assert float(difference) < 1e-5, (name, difference)


@pytest.fixture
def counted_native_calls(monkeypatch):
    native_ops_or_skip()
    calls = []
    original = native.recurrence

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(native, "recurrence", counting)
    return calls


def test_training_and_keras_loops_keep_the_cpp_ops(counted_native_calls):
    layer = keras_lstm.LSTM(4, return_sequences=True)
    x = tf.random.normal([2, 5, 3])

    @tf.function
    def train_step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, training=True))
        return tape.gradient(loss, layer.trainable_variables)

    for run in (
        lambda: train_step(x),
        lambda: keras.Sequential([keras.Input((5, 3)), keras_lstm.LSTM(4)])
        .predict(np.zeros((2, 5, 3), "float32"), verbose=0),
        lambda: layer(x),  # eager inference
    ):
        calls = len(counted_native_calls)
        run()
        assert len(counted_native_calls) > calls


def test_inference_graphs_outside_keras_loops_are_portable(counted_native_calls):
    layer = keras_lstm.LSTM(4)
    x = tf.random.normal([2, 5, 3])
    want = layer(x)
    calls = len(counted_native_calls)
    got = tf.function(lambda x: layer(x))(x)
    np.testing.assert_allclose(got, want, atol=1e-6)
    with keras_lstm.portable_graphs():
        tf.function(lambda x: layer(x, training=True))(x)
    assert len(counted_native_calls) == calls
    with keras_lstm.portable_graphs(False):  # "never saved": C++ ops allowed
        got = tf.function(lambda x: layer(x))(x)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert len(counted_native_calls) > calls


def test_auto_loops_in_a_graph_that_may_be_saved_are_the_plain_ones():
    args = [tf.random.normal(s) for s in
            [(2, 7, 3), (2, 4), (2, 4), (3, 16), (4, 16), (16,)]]
    with keras_lstm.portable_graphs():
        graph = tf.function(
            lambda: fused.fused_lstm(*args, training=False)[1]
        ).get_concrete_function().graph
    types = {op.type for op in graph.get_operations()}
    assert "While" in types or "StatelessWhile" in types
    assert not [t for t in types if t.startswith("KerasLstm")]
