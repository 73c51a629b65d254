"""The IMDB classifier's naive-Bayes-weighted words-and-pairs score
(recipes/imdb_sentiment/ngrams.py): score and log-count ratios against NumPy
references of their definitions, padding and repeats, the L2 penalty, saved and
loaded, and its place in the classifier's logit."""

import os

import keras
import numpy as np
import pytest

from recipes.imdb_sentiment import config as config_lib
from recipes.imdb_sentiment import model as model_lib
from recipes.imdb_sentiment import ngrams

VOCAB, BUCKETS = 11, 7


def reference_rows(row, vocab_size, buckets):
    """The distinct weight rows of one review: its words (padding = 0 left
    out) and its hashed pairs of consecutive non-padding words."""
    chosen = {int(t) for t in row if t > 0}
    for first, second in zip(row[:-1], row[1:]):
        if first > 0 and second > 0:
            chosen.add(vocab_size + (int(first) * 1_000_003 + int(second)) % buckets)
    return chosen


def reference_score(token_ids, weights, ratios, vocab_size, buckets):
    """sum of weight * log-count ratio over each review's distinct n-grams."""
    return np.array([[sum(weights[i] * ratios[i]
                          for i in reference_rows(row, vocab_size, buckets))]
                     for row in np.asarray(token_ids)])


def reference_ratios(token_ids, labels, vocab_size, buckets):
    """Naive-Bayes log-count ratios, written out from their definition."""
    positive = np.ones(vocab_size + buckets)
    negative = np.ones(vocab_size + buckets)
    for row, label in zip(np.asarray(token_ids), labels):
        for i in reference_rows(row, vocab_size, buckets):
            (positive if label > 0.5 else negative)[i] += 1
    return np.log(positive / positive.sum()) - np.log(negative / negative.sum())


def layer_with_random_weights(l2=0.0):
    layer = ngrams.NgramScore(VOCAB, BUCKETS, l2=l2)
    layer.build((None, None))
    rng = np.random.default_rng(0)
    weights = rng.normal(size=VOCAB + BUCKETS).astype("float32")
    ratios = rng.normal(size=VOCAB + BUCKETS).astype("float32")
    layer.ngram_weights.assign(weights)
    layer.log_count_ratios.assign(ratios)
    return layer, weights, ratios


TOKENS = np.array([[3, 5, 5, 10, 0, 0], [1, 2, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0],
                   [7, 0, 9, 4, 8, 6]])


def test_score_matches_the_numpy_reference():
    layer, weights, ratios = layer_with_random_weights()
    np.testing.assert_allclose(
        layer(TOKENS), reference_score(TOKENS, weights, ratios, VOCAB, BUCKETS),
        rtol=1e-5, atol=1e-6)


def test_a_repeated_phrase_counts_once():
    layer, _, _ = layer_with_random_weights()
    once = np.array([[4, 6, 0, 0, 0, 0]])
    twice = np.array([[4, 6, 4, 6, 0, 0]])
    # twice adds only the pair (6, 4), which `once` lacks.
    pair = VOCAB + (6 * 1_000_003 + 4) % BUCKETS
    extra = layer.ngram_weights.numpy()[pair] * layer.log_count_ratios.numpy()[pair]
    np.testing.assert_allclose(layer(twice), layer(once) + extra, rtol=1e-5, atol=1e-6)


def test_padding_and_empty_reviews_do_not_count():
    layer, _, _ = layer_with_random_weights()
    longer = np.pad(TOKENS, ((0, 0), (0, 5)))
    np.testing.assert_allclose(layer(longer), layer(TOKENS), rtol=1e-6)
    assert float(layer(TOKENS)[2, 0]) == 0.0  # all padding: score 0, no NaN


def test_log_count_ratios_match_the_definition():
    layer = ngrams.NgramScore(VOCAB, BUCKETS)
    rng = np.random.default_rng(4)
    tokens = rng.integers(0, VOCAB, size=(10, 9))
    labels = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 1], "float32")
    batches = [(tokens[:4], labels[:4]), (tokens[4:], labels[4:])]
    np.testing.assert_allclose(
        ngrams.log_count_ratios(layer, batches),
        reference_ratios(tokens, labels, VOCAB, BUCKETS), rtol=1e-5, atol=1e-6)


def test_ratios_point_the_way_of_the_label():
    """A word only in positive reviews gets r > 0; only in negative, r < 0;
    in both equally, r = log(|q| / |p|) like a word in neither."""
    layer = ngrams.NgramScore(VOCAB, BUCKETS)
    tokens = np.array([[2, 3], [2, 3], [4, 3], [4, 3]])
    labels = np.array([1, 1, 0, 0], "float32")
    ratios = ngrams.log_count_ratios(layer, [(tokens, labels)])
    assert ratios[2] > 0 > ratios[4]
    assert ratios[3] == pytest.approx(ratios[5])


def test_l2_penalty_is_added_to_the_losses():
    layer, weights, _ = layer_with_random_weights(l2=0.01)
    layer(TOKENS)
    assert float(sum(layer.losses)) == pytest.approx(0.01 * float(np.sum(weights ** 2)), rel=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"vocab_size": 0, "buckets": 4}, "vocab_size >= 1"),
    ({"vocab_size": 4, "buckets": 0}, "buckets=0"),
    ({"vocab_size": 4, "buckets": 4, "l2": -1.0}, r">= 0. Received: l2=-1.0"),
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
    weights, ratios = np.random.default_rng(2).normal(
        size=(2, VOCAB + BUCKETS)).astype("float32")
    layer.ngram_weights.assign(weights)
    layer.log_count_ratios.assign(ratios)
    without = keras.Model(classifier.input, classifier.get_layer("lstm_logit").output)
    expected = 1 / (1 + np.exp(-(np.asarray(without(TOKENS)) + reference_score(
        TOKENS, weights, ratios, VOCAB, BUCKETS))))
    np.testing.assert_allclose(classifier(TOKENS), expected, rtol=1e-5, atol=1e-6)


def test_classifier_with_ngrams_saves_and_loads(tmp_path):
    classifier = classifier_with_ngrams()
    layer = classifier.get_layer("ngram_score")
    layer.ngram_weights.assign(np.linspace(-1, 1, VOCAB + BUCKETS).astype("float32"))
    layer.log_count_ratios.assign(np.linspace(2, -1, VOCAB + BUCKETS).astype("float32"))
    path = os.path.join(tmp_path, "classifier.keras")
    classifier.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(TOKENS), classifier(TOKENS), rtol=1e-6)
    assert loaded.get_layer("ngram_score").get_config()["buckets"] == BUCKETS
    np.testing.assert_array_equal(
        loaded.get_layer("ngram_score").log_count_ratios.numpy(),
        layer.log_count_ratios.numpy())


def test_without_buckets_the_classifier_is_unchanged():
    config = config_lib.debug_config()
    config.ngram_buckets = 0
    names = [layer.name for layer in model_lib.build_classifier(config, 50).layers]
    assert "ngram_score" not in names and names[-1] == "probability"


def test_a_score_saved_by_the_earlier_plain_layer_is_refused_clearly():
    old_config = {"name": "ngram_score", "vocab_size": VOCAB, "buckets": BUCKETS,
                  "dropout": 0.5, "seed": 0}
    with pytest.raises(ValueError, match="earlier, plain words-and-pairs score"):
        ngrams.NgramScore.from_config(old_config)
    fresh = ngrams.NgramScore.from_config(ngrams.NgramScore(VOCAB, BUCKETS, l2=0.1).get_config())
    assert (fresh.vocab_size, fresh.buckets, fresh.l2) == (VOCAB, BUCKETS, 0.1)
