"""Config round trips, .keras save/load and SavedModel export."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lstm
from random_data import random_inputs

STEPS, FEATURES, UNITS = 5, 4, 6

NON_DEFAULT_CELL_ARGS = dict(
    activation="relu",
    recurrent_activation="hard_sigmoid",
    use_bias=False,
    kernel_initializer="he_normal",
    recurrent_initializer="glorot_normal",
    bias_initializer="ones",
    unit_forget_bias=False,
    kernel_regularizer="l2",
    recurrent_regularizer="l1",
    bias_regularizer=keras.regularizers.L1L2(0.01, 0.02),
    kernel_constraint="non_neg",
    recurrent_constraint="unit_norm",
    bias_constraint="max_norm",
    dropout=0.25,
    recurrent_dropout=0.125,
    seed=3,
)

NON_DEFAULT_LAYER_ARGS = dict(
    NON_DEFAULT_CELL_ARGS,
    activity_regularizer="l2",
    return_sequences=True,
    return_state=True,
    go_backwards=True,
    stateful=True,
    unroll=True,
    use_cudnn=False,
)


def comparable(config):
    """A config as plain JSON, without the auto-generated name."""
    config = dict(config)
    config.pop("name", None)
    return json.loads(json.dumps(config, default=str))


@pytest.mark.parametrize("args", [{}, NON_DEFAULT_CELL_ARGS],
                         ids=["defaults", "non_defaults"])
def test_cell_config_round_trip(args):
    cell = keras_lstm.LSTMCell(UNITS, **args)
    config = cell.get_config()
    for name, value in args.items():
        assert name in config, name
    restored = keras_lstm.LSTMCell.from_config(config)
    assert comparable(restored.get_config()) == comparable(config)
    if args:
        assert restored.activation is keras.activations.relu
        assert restored.dropout == 0.25 and restored.seed == 3
        assert isinstance(restored.kernel_constraint,
                          keras.constraints.NonNeg)


@pytest.mark.parametrize("args", [{}, NON_DEFAULT_LAYER_ARGS],
                         ids=["defaults", "non_defaults"])
def test_layer_config_round_trip(args):
    layer = keras_lstm.LSTM(UNITS, **args)
    config = layer.get_config()
    for name in args:
        assert name in config, name
    restored = keras_lstm.LSTM.from_config(config)
    assert comparable(restored.get_config()) == comparable(config)
    for name, value in args.items():
        if isinstance(value, (bool, int, float)):
            assert getattr(restored, name) == value, name
    if args:
        assert restored.activity_regularizer is not None


def test_layer_serializes_under_its_registered_name():
    layer = keras_lstm.LSTM(UNITS, return_sequences=True)
    serialized = keras.layers.serialize(layer)
    assert serialized["registered_name"] == "keras_lstm>LSTM"
    restored = keras.layers.deserialize(serialized)
    assert type(restored) is keras_lstm.LSTM
    assert restored.return_sequences


def test_config_is_interchangeable_with_keras_lstm():
    """Drop-in: each class can be built from the other's config."""
    ours = keras_lstm.LSTM(UNITS, return_sequences=True, dropout=0.1)
    theirs = keras.layers.LSTM.from_config(ours.get_config())
    assert theirs.return_sequences and theirs.dropout == 0.1
    back = keras_lstm.LSTM.from_config(
        keras.layers.LSTM(UNITS, go_backwards=True).get_config()
    )
    assert back.go_backwards and back.units == UNITS


def test_from_config_keeps_weights_semantics():
    x = random_inputs(2, STEPS, FEATURES)
    layer = keras_lstm.LSTM(UNITS, return_sequences=True)
    expected = layer(x)
    restored = keras_lstm.LSTM.from_config(layer.get_config())
    restored.build(x.shape)
    restored.set_weights(layer.get_weights())
    np.testing.assert_array_equal(restored(x), expected)


def _models():
    """The three kinds of model whose save/load is tested, by name."""
    plain = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(20, FEATURES, mask_zero=True),
            keras_lstm.LSTM(UNITS, return_sequences=True, dropout=0.2),
            keras_lstm.LSTM(UNITS, go_backwards=True),
            keras.layers.Dense(1),
        ]
    )
    bidirectional = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(20, FEATURES, mask_zero=True),
            keras.layers.Bidirectional(keras_lstm.LSTM(UNITS)),
        ]
    )
    inputs = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(20, FEATURES)(inputs)
    rnn = keras.Model(
        inputs,
        keras.layers.RNN(keras_lstm.LSTMCell(UNITS), return_sequences=True)(
            embedded
        ),
    )
    return {"plain": plain, "bidirectional": bidirectional, "rnn_cell": rnn}


TOKENS = np.array([[0, 0, 3, 4, 5], [1, 2, 3, 0, 0], [6, 0, 7, 8, 9]])


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """Saves each model as .keras; returns name -> (path, predictions)."""
    keras.utils.set_random_seed(5)
    directory = tmp_path_factory.mktemp("saved")
    saved = {}
    for name, model in _models().items():
        path = str(directory / f"{name}.keras")
        model.save(path)
        saved[name] = (path, np.asarray(model(TOKENS)))
    return saved


@pytest.mark.parametrize("name", ["plain", "bidirectional", "rnn_cell"])
def test_save_and_load_in_process(saved_models, name):
    path, expected = saved_models[name]
    keras.backend.clear_session()
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded(TOKENS), expected)
    np.testing.assert_array_equal(loaded.predict(TOKENS, verbose=0),
                                  expected)


def test_load_in_a_fresh_process_without_custom_objects(saved_models,
                                                        tmp_path):
    """A new Python that only imports keras_lstm loads every saved model."""
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        import keras
        import keras_lstm  # Registers the classes; no custom_objects.

        tokens = np.load(sys.argv[1])
        results = {}
        for name, path in zip(sys.argv[3::2], sys.argv[4::2]):
            model = keras.models.load_model(path)
            results[name] = np.asarray(model.predict(tokens, verbose=0))
        np.savez(sys.argv[2], **results)
        """
    )
    tokens_path = str(tmp_path / "tokens.npy")
    out_path = str(tmp_path / "predictions.npz")
    np.save(tokens_path, TOKENS)
    args = [sys.executable, "-c", script, tokens_path, out_path]
    for name, (path, _) in saved_models.items():
        args += [name, path]
    package_dir = os.path.dirname(os.path.abspath(keras_lstm.__file__))
    root = os.path.dirname(package_dir)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join(filter(None, [
                   root, os.environ.get("PYTHONPATH")])))
    done = subprocess.run(args, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    predictions = np.load(out_path)
    for name, (_, expected) in saved_models.items():
        np.testing.assert_array_equal(predictions[name], expected,
                                      err_msg=name)


def test_export_serves_the_same_predictions(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((STEPS, FEATURES)),
            keras_lstm.LSTM(UNITS, return_sequences=True),
            keras_lstm.LSTM(UNITS),
            keras.layers.Dense(2),
        ]
    )
    x = random_inputs(3, STEPS, FEATURES)
    export_dir = str(tmp_path / "exported")
    model.export(export_dir, verbose=False)
    reloaded = tf.saved_model.load(export_dir)  # Keep it: serve needs it.
    served = reloaded.serve(tf.constant(x))
    np.testing.assert_allclose(served, model(x), atol=1e-6)
