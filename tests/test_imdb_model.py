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


@pytest.mark.parametrize("pooling", ["last", "mean"])
@pytest.mark.parametrize("lstm_layers", [1, 2])
def test_padding_does_not_change_the_prediction(pooling, lstm_layers):
    classifier = model_lib.build_classifier(_config(pooling=pooling, lstm_layers=lstm_layers), 30)
    trimmed = classifier.predict(np.array([[5, 6, 7], [9, 3, 2]]), verbose=0)
    padded = classifier.predict(np.array([[5, 6, 7, 0, 0], [9, 3, 2, 0, 0]]), verbose=0)
    np.testing.assert_allclose(padded, trimmed, atol=1e-6)


@pytest.mark.parametrize("pooling", ["last", "mean"])
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


def test_unknown_cell_and_pooling_are_refused():
    with pytest.raises(UsageError, match="--cell must be one of keras_lstm, keras. Received: cell='gru'"):
        model_lib.lstm_class("gru")
    with pytest.raises(UsageError, match="--pooling must be one of last, mean. Received: pooling='max'"):
        model_lib.check_pooling("max")


def test_histogram_tensor_follows_tensorboards_layout():
    values = np.array([0.0, 0.0, 1.0, 3.0])
    table = callbacks.histogram_tensor(values, buckets=3)
    np.testing.assert_allclose(table, [[0, 1, 2], [1, 2, 1], [2, 3, 1]])
