"""The IMDB classifier: padding is ignored, and both cells compute the same thing."""

import dataclasses
import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lstm
from recipes.common.errors import UsageError
from recipes.imdb_sentiment import callbacks
from recipes.imdb_sentiment import config as config_lib
from recipes.imdb_sentiment import model as model_lib


def _config(**changes):
    return dataclasses.replace(config_lib.debug_config(), **changes)


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "mean_max"])
@pytest.mark.parametrize("lstm_layers", [1, 2])
def test_padding_does_not_change_the_prediction(pooling, lstm_layers):
    classifier = model_lib.build_classifier(_config(pooling=pooling, lstm_layers=lstm_layers), 30)
    trimmed = classifier.predict(np.array([[5, 6, 7], [9, 3, 2]]), verbose=0)
    padded = classifier.predict(np.array([[5, 6, 7, 0, 0], [9, 3, 2, 0, 0]]), verbose=0)
    np.testing.assert_allclose(padded, trimmed, atol=1e-6)


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "mean_max"])
def test_keras_lstm_and_keras_cells_agree_with_the_same_weights(pooling):
    ours = model_lib.build_classifier(_config(pooling=pooling, lstm_layers=2), 30)
    theirs = model_lib.build_classifier(_config(pooling=pooling, lstm_layers=2, cell="keras"), 30)
    theirs.set_weights(ours.get_weights())
    token_ids = np.array([[5, 6, 7, 8, 0, 0], [9, 3, 2, 4, 4, 1]])
    np.testing.assert_allclose(
        ours.predict(token_ids, verbose=0), theirs.predict(token_ids, verbose=0), atol=1e-5
    )
    assert [type(layer) for _, layer in callbacks.named_lstm_layers(ours)] == [keras_lstm.LSTM] * 4
    assert [type(layer) for _, layer in callbacks.named_lstm_layers(theirs)] == [keras.layers.LSTM] * 4


def test_masked_max_pooling_ignores_masked_steps():
    values = np.array([[[1.0, -2.0], [3.0, -5.0], [9.0, 9.0]],
                       [[-1.0, -4.0], [-3.0, -0.5], [-2.0, -6.0]]], dtype="float32")
    mask = np.array([[True, True, False], [False, True, True]])
    pooled = model_lib.MaskedGlobalMaxPooling1D()(values, mask=mask)
    expected = np.where(mask[..., None], values, -np.inf).max(axis=1)
    np.testing.assert_allclose(pooled, expected)
    np.testing.assert_allclose(model_lib.MaskedGlobalMaxPooling1D()(values), values.max(axis=1))


def test_word_dropout_drops_whole_words_in_training_only():
    classifier = model_lib.build_classifier(_config(word_dropout=0.5), 30)
    layer = classifier.get_layer("word_dropout")
    vectors = np.ones((4, 50, 8), dtype="float32")
    dropped = keras.ops.convert_to_numpy(layer(vectors, training=True))
    per_word = dropped.max(axis=2)
    # Each word's vector is kept whole (scaled by 2) or zeroed whole.
    np.testing.assert_array_equal(dropped, np.repeat(per_word[..., None], 8, axis=2))
    assert set(np.unique(per_word)) == {0.0, 2.0}
    np.testing.assert_array_equal(layer(vectors, training=False), vectors)


def test_unknown_cell_and_pooling_are_refused():
    with pytest.raises(UsageError, match="--cell must be one of keras_lstm, keras. Received: cell='gru'"):
        model_lib.lstm_class("gru")
    with pytest.raises(UsageError, match="--pooling must be one of last, mean, max, mean_max. Received: pooling='median'"):
        model_lib.check_pooling("median")


def test_constant_learning_rate_is_the_flag_value():
    config = _config(learning_rate=0.01, learning_rate_schedule="constant")
    assert model_lib.learning_rate_schedule(config, 100) == 0.01


def test_cosine_schedule_decays_to_zero_after_the_last_epoch():
    config = _config(learning_rate=0.01, learning_rate_schedule="cosine", epochs=3, batch_size=4)
    schedule = model_lib.learning_rate_schedule(config, train_examples=10)  # 3 steps/epoch
    rates = [float(schedule(step)) for step in (0, 4, 9)]
    assert rates[0] == pytest.approx(0.01)
    assert 0.0 < rates[1] < 0.01
    assert rates[2] == pytest.approx(0.0, abs=1e-9)


def test_unknown_learning_rate_schedule_is_refused():
    with pytest.raises(UsageError, match="--learning_rate_schedule must be one of constant, cosine. Received: learning_rate_schedule='step'"):
        model_lib.learning_rate_schedule(_config(learning_rate_schedule="step"), 10)


def _records(log_dir):
    """{tag: (plugin name, step, value)} of the summaries in log_dir."""
    found = {}
    for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found[value.tag] = (value.metadata.plugin_data.plugin_name, event.step,
                                    tf.make_ndarray(value.tensor))
    return found


def test_epoch_summaries_write_curves_and_weight_histograms(tmp_path):
    classifier = model_lib.build_classifier(_config(), 30)
    model_lib.compile_classifier(classifier, learning_rate=0.01, clipnorm=0.0)
    writer = callbacks.EpochSummaries(str(tmp_path))
    writer.set_model(classifier)
    writer.on_epoch_end(2, {"loss": 0.5, "accuracy": 0.75, "val_loss": 0.625, "val_accuracy": 0.5})
    writer.on_train_end()
    train = _records(str(tmp_path / "train"))
    assert {tag: (plugin, step, float(value)) for tag, (plugin, step, value) in train.items()} == {
        "epoch_loss": ("scalars", 2, 0.5),
        "epoch_accuracy": ("scalars", 2, 0.75),
        "epoch_learning_rate": ("scalars", 2, pytest.approx(0.01)),
    }
    validation = _records(str(tmp_path / "validation"))
    assert {tag: float(value) for tag, (_, _, value) in validation.items()} == {
        "epoch_loss": 0.625, "epoch_accuracy": 0.5}
    weights = _records(str(tmp_path / "weights"))
    for weight in classifier.weights:
        plugin, step, table = weights[weight.path]
        values = keras.ops.convert_to_numpy(weight)
        # Rows [left edge, right edge, count] spanning the values, counting each once.
        assert (plugin, step, table.shape) == ("histograms", 2, (callbacks.HISTOGRAM_BUCKETS, 3))
        assert table[:, 2].sum() == values.size
        np.testing.assert_allclose([table[0, 0], table[-1, 1]], [values.min(), values.max()], rtol=1e-6)
    layers = dict(callbacks.named_lstm_layers(classifier))
    assert layers
    for name, layer in layers.items():
        bias = np.split(keras.ops.convert_to_numpy(layer.cell.bias), 4)
        for gate, values in zip("ifco", bias):
            table = weights[f"gate_bias/{name}/{gate}"][2]
            assert table[:, 2].sum() == layer.units
            np.testing.assert_allclose([table[0, 0], table[-1, 1]], [values.min(), values.max()])
        # Keras starts the forget gate's bias at 1, the others at 0.
        assert weights[f"gate_bias/{name}/f"][2][0, 0] == 1.0
