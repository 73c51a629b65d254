"""The IMDB classifier: padding is ignored, and both cells compute the same thing."""

import dataclasses

import keras
import numpy as np
import pytest

import keras_lstm
from recipes.common.errors import UsageError
from recipes.imdb_sentiment import callbacks
from recipes.imdb_sentiment import config as config_lib
from recipes.imdb_sentiment import model as model_lib


def _config(**changes):
    return dataclasses.replace(config_lib.debug_config(), **changes)


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("lstm_layers", [1, 2])
def test_padding_does_not_change_the_prediction(pooling, lstm_layers):
    classifier = model_lib.build_classifier(_config(pooling=pooling, lstm_layers=lstm_layers), 30)
    trimmed = classifier.predict(np.array([[5, 6, 7], [9, 3, 2]]), verbose=0)
    padded = classifier.predict(np.array([[5, 6, 7, 0, 0], [9, 3, 2, 0, 0]]), verbose=0)
    np.testing.assert_allclose(padded, trimmed, atol=1e-6)


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
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
    with pytest.raises(UsageError, match="--pooling must be one of last, mean, max. Received: pooling='median'"):
        model_lib.check_pooling("median")


def test_histogram_tensor_follows_tensorboards_layout():
    values = np.array([0.0, 0.0, 1.0, 3.0])
    table = callbacks.histogram_tensor(values, buckets=3)
    np.testing.assert_allclose(table, [[0, 1, 2], [1, 2, 1], [2, 3, 1]])
