"""A naive-Bayes-weighted linear score of a review's words and word pairs, beside the LSTM.

Bag-of-n-gram models are strong on IMDB because phrases such as "not good" or
"waste of" carry the label by themselves. The strongest simple one is NBSVM
(Wang & Manning, 2012): a linear classifier on which n-grams a review holds,
each scaled by its naive-Bayes log-count ratio

    r_g = log((1 + positive reviews with g) / |p|) - log((1 + negative reviews with g) / |q|)

(|p|, |q|: the sums of those smoothed counts over all n-grams), so that the
n-grams that already separate the labels in the training counts start out
strong. `NgramScore` is that classifier's score: sum over the review's distinct
words and hashed word pairs of weight_g * r_g. `log_count_ratios` computes r
from the training batches once, before training; the weights start at zero
and learn under an L2 penalty with the rest of the classifier, whose LSTM
logit the score is added to. It reads the same token ids as the embedding, so
the saved model still takes raw strings.
"""

import keras
import numpy as np
from keras import ops

# Multiplier of the first id in a pair's hash; a prime larger than any
# vocabulary we use, so (first, second) -> first * P + second is one-to-one
# before the modulo.
_PAIR_MULTIPLIER = 1_000_003


@keras.saving.register_keras_serializable(package="imdb_sentiment")
class NgramScore(keras.layers.Layer):
    """Token ids (batch, time), 0 = padding -> a score (batch, 1).

    Args:
        vocab_size: Word ids are below this; each has its own weight.
        buckets: Pairs of consecutive non-padding ids are hashed into this
            many weights (collisions share one).
        l2: L2 penalty on the weights, added to the loss (per review).

    Weights: `ngram_weights` (trainable, from zero) and `log_count_ratios`
    (fixed; set them with `log_count_ratios` before training), one entry per
    word id, then one per pair bucket.
    """

    def __init__(self, vocab_size, buckets, l2=0.0, **kwargs):
        super().__init__(**kwargs)
        if vocab_size < 1 or buckets < 1:
            raise ValueError(
                "NgramScore needs vocab_size >= 1 and buckets >= 1. Received: "
                f"vocab_size={vocab_size}, buckets={buckets}"
            )
        if l2 < 0:
            raise ValueError(f"NgramScore's l2 must be >= 0. Received: l2={l2}")
        self.vocab_size = vocab_size
        self.buckets = buckets
        self.l2 = l2

    def build(self, input_shape):
        size = (self.vocab_size + self.buckets,)
        # Zeros: the branch starts silent and the LSTM's logit alone decides.
        self.ngram_weights = self.add_weight(
            shape=size, initializer="zeros", name="ngram_weights",
            regularizer=keras.regularizers.L2(self.l2) if self.l2 else None,
        )
        self.log_count_ratios = self.add_weight(
            shape=size, initializer="zeros", trainable=False,
            name="log_count_ratios",
        )

    def ngram_ids(self, token_ids):
        """(rows of the weight table (batch, 2 * time - 1), which are real n-grams)."""
        ids = ops.cast(token_ids, "int64")
        first, second = ids[:, :-1], ids[:, 1:]
        pairs = self.vocab_size + ops.mod(
            first * _PAIR_MULTIPLIER + second, self.buckets)
        rows = ops.concatenate([ids, pairs], axis=1)
        real = ops.concatenate(
            [ids > 0, ops.logical_and(first > 0, second > 0)], axis=1)
        return rows, real

    def distinct_rows(self, token_ids):
        """(rows, counted): each review's n-gram rows, sorted, with `counted`
        True once per distinct real n-gram (a phrase said twice counts once)."""
        rows, real = self.ngram_ids(token_ids)
        rows = ops.sort(ops.where(real, rows, -1), axis=1)
        new = ops.concatenate(
            [ops.ones_like(rows[:, :1], dtype="bool"), rows[:, 1:] != rows[:, :-1]],
            axis=1)
        return ops.maximum(rows, 0), ops.logical_and(new, rows >= 0)

    def call(self, token_ids):
        rows, counted = self.distinct_rows(token_ids)
        dtype = self.compute_dtype
        values = (ops.take(ops.cast(self.ngram_weights, dtype), rows)
                  * ops.take(ops.cast(self.log_count_ratios, dtype), rows))
        return ops.sum(values * ops.cast(counted, dtype), axis=1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, buckets=self.buckets, l2=self.l2)
        return config

    @classmethod
    def from_config(cls, config):
        # The first NgramScore (2026-12-06) had n-gram dropout and no
        # log-count ratios; its weights mean something else, so refuse it.
        if "dropout" in config:
            raise ValueError(
                "this model's NgramScore was saved by the earlier, plain "
                "words-and-pairs score (it has 'dropout', no log-count ratios), "
                "which this version cannot load; train it again. Received: "
                f"config keys {sorted(config)}"
            )
        return super().from_config(config)


def log_count_ratios(layer, batches):
    """Naive-Bayes log-count ratios of `layer`'s rows, from (token ids, labels) batches.

    Counts, per row, the positive (label > 0.5) and negative reviews that hold
    it, adds one to each count, and returns
    log(positive / sum(positive)) - log(negative / sum(negative)), float32.
    """
    size = layer.vocab_size + layer.buckets
    positive = np.ones(size)
    negative = np.ones(size)
    for token_ids, labels in batches:
        rows, counted = (np.asarray(t) for t in layer.distinct_rows(token_ids))
        is_positive = np.broadcast_to(np.asarray(labels)[:, None] > 0.5, rows.shape)
        positive += np.bincount(rows[counted & is_positive], minlength=size)
        negative += np.bincount(rows[counted & ~is_positive], minlength=size)
    return (np.log(positive / positive.sum())
            - np.log(negative / negative.sum())).astype("float32")
