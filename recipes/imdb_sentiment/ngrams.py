"""A linear score of a review's words and hashed word pairs, beside the LSTM.

Bag-of-n-gram models (NBSVM, fastText) are strong on IMDB because phrases such
as "not good" or "waste of" carry the label by themselves. `NgramScore` gives
the classifier that evidence directly: one learned weight per word id and per
hashed pair of consecutive word ids, summed over the review and divided by the
square root of the number of n-grams. Its score is added to the LSTM's logit,
so both are trained together by the one loss. It reads the same token ids as
the embedding, so the saved model still takes raw strings.
"""

import keras
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
        dropout: Share of a review's n-grams left out in training (each
            n-gram independently), so no single phrase decides alone.
        seed: Seed of that dropout.
    """

    def __init__(self, vocab_size, buckets, dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if vocab_size < 1 or buckets < 1:
            raise ValueError(
                "NgramScore needs vocab_size >= 1 and buckets >= 1. Received: "
                f"vocab_size={vocab_size}, buckets={buckets}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"NgramScore's dropout must be in [0, 1). Received: {dropout}")
        self.vocab_size = vocab_size
        self.buckets = buckets
        self.dropout = dropout
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        # Zeros: the branch starts silent and the LSTM's logit alone decides.
        self.ngram_weights = self.add_weight(
            shape=(self.vocab_size + self.buckets,), initializer="zeros",
            name="ngram_weights",
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

    def call(self, token_ids, training=False):
        rows, real = self.ngram_ids(token_ids)
        if training and self.dropout > 0:
            kept = keras.random.uniform(
                ops.shape(real), seed=self.seed_generator) >= self.dropout
            real = ops.logical_and(real, kept)
        real = ops.cast(real, self.compute_dtype)
        values = ops.take(ops.cast(self.ngram_weights, self.compute_dtype), rows)
        count = ops.sum(real, axis=1, keepdims=True)
        total = ops.sum(values * real, axis=1, keepdims=True)
        return total / ops.sqrt(ops.maximum(count, 1.0))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, buckets=self.buckets,
                      dropout=self.dropout, seed=self.seed)
        return config
