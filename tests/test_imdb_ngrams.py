"""The IMDB classifier's bag-of-words-and-pairs score (recipes/imdb_sentiment/ngrams.py):
against a NumPy reference, padding left out, dropout only in training, saved and
loaded, and its place in the classifier's logit."""

import math
import os

import keras
import numpy as np
import pytest

from recipes.imdb_sentiment import config as config_lib
from recipes.imdb_sentiment import model as model_lib
from recipes.imdb_sentiment import ngrams

VOCAB, BUCKETS = 11, 7


def reference_score(token_ids, weights, vocab_size, buckets):
    """sum of the weights of each word and each hashed pair of consecutive
    words (padding = 0 excluded), over sqrt(their count), row by row."""
    scores = []
    for row in np.asarray(token_ids):
        chosen = [int(t) for t in row if t > 0]
        for first, second in zip(row[:-1], row[1:]):
            if first > 0 and second > 0:
                chosen.append(vocab_size + (int(first) * 1_000_003 + int(second)) % buckets)
        total = sum(weights[i] for i in chosen)
        scores.append([total / math.sqrt(max(len(chosen), 1))])
    return np.array(scores)


def layer_with_random_weights(dropout=0.0, seed=3):
    layer = ngrams.NgramScore(VOCAB, BUCKETS, dropout=dropout, seed=seed)
    layer.build((None, None))
    weights = np.random.default_rng(0).normal(size=VOCAB + BUCKETS).astype("float32")
    layer.ngram_weights.assign(weights)
    return layer, weights


TOKENS = np.array([[3, 5, 5, 10, 0, 0], [1, 2, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0],
                   [7, 0, 9, 4, 8, 6]])


def test_score_matches_the_numpy_reference():
    layer, weights = layer_with_random_weights()
    np.testing.assert_allclose(
        layer(TOKENS), reference_score(TOKENS, weights, VOCAB, BUCKETS), rtol=1e-5, atol=1e-6)


def test_padding_and_empty_reviews_do_not_count():
    layer, _ = layer_with_random_weights()
    longer = np.pad(TOKENS, ((0, 0), (0, 5)))
    np.testing.assert_allclose(layer(longer), layer(TOKENS), rtol=1e-6)
    assert float(layer(TOKENS)[2, 0]) == 0.0  # all padding: score 0, no NaN


def test_dropout_only_in_training_and_seeded():
    layer, _ = layer_with_random_weights(dropout=0.5)
    np.testing.assert_allclose(layer(TOKENS, training=False), layer(TOKENS))
    tokens = np.random.default_rng(1).integers(1, VOCAB, size=(8, 40))
    dropped = np.asarray(layer(tokens, training=True))
    assert not np.allclose(dropped, np.asarray(layer(tokens)))
    again, _ = layer_with_random_weights(dropout=0.5)
    np.testing.assert_allclose(again(tokens, training=True), dropped)


@pytest.mark.parametrize("kwargs, message", [
    ({"vocab_size": 0, "buckets": 4}, "vocab_size >= 1"),
    ({"vocab_size": 4, "buckets": 0}, "buckets=0"),
    ({"vocab_size": 4, "buckets": 4, "dropout": 1.0}, r"\[0, 1\). Received: 1.0"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ngrams.NgramScore(**kwargs)


def classifier_with_ngrams():
    config = config_lib.debug_config()
    config.ngram_buckets = BUCKETS
    config.vocab_size = VOCAB
    return model_lib.build_classifier(config, VOCAB)


def test_classifier_adds_the_score_to_the_lstm_logit():
    classifier = classifier_with_ngrams()
    layer = classifier.get_layer("ngram_score")
    weights = np.random.default_rng(2).normal(size=VOCAB + BUCKETS).astype("float32")
    layer.ngram_weights.assign(weights)
    without = keras.Model(classifier.input, classifier.get_layer("lstm_logit").output)
    expected = 1 / (1 + np.exp(-(np.asarray(without(TOKENS))
                                 + reference_score(TOKENS, weights, VOCAB, BUCKETS))))
    np.testing.assert_allclose(classifier(TOKENS), expected, rtol=1e-5, atol=1e-6)


def test_classifier_with_ngrams_saves_and_loads(tmp_path):
    classifier = classifier_with_ngrams()
    classifier.get_layer("ngram_score").ngram_weights.assign(
        np.linspace(-1, 1, VOCAB + BUCKETS).astype("float32"))
    path = os.path.join(tmp_path, "classifier.keras")
    classifier.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(TOKENS), classifier(TOKENS), rtol=1e-6)
    assert loaded.get_layer("ngram_score").get_config()["buckets"] == BUCKETS


def test_without_buckets_the_classifier_is_unchanged():
    config = config_lib.debug_config()
    config.ngram_buckets = 0
    names = [layer.name for layer in model_lib.build_classifier(config, 50).layers]
    assert "ngram_score" not in names and names[-1] == "probability"
