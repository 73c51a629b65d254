"""tf.data pipelines of token ids for training, validation and test.

Reviews are vectorized once (TextVectorization on batches of strings), cut to
`max_len` tokens, cached, shuffled (training only; each epoch's order is
fixed by the seed and the epoch's number, so a resumed run sees the same
batches) and batched either by length buckets, so that a batch of short
reviews is not padded to the longest review, or padded to `max_len`. Each dataset states how many batches it
yields (`cardinality()`), so that `model.fit`'s progress bar shows the total and
an ETA from the first epoch on.
"""

import numpy as np
import tensorflow as tf

from recipes.common.errors import UsageError

_VECTORIZE_BATCH = 1024
# Number of length buckets between 0 and max_len.
_NUM_BUCKETS = 16
# Largest share of the training reviews that dropping partial batches may skip.
_MAX_DROPPED_SHARE = 0.1


def split_validation(train, fraction, seed):
    """Holds out round(fraction * len(train)) reviews, chosen by a seeded permutation.

    Returns:
        (train, validation) `Reviews`.
    """
    order = np.random.default_rng(seed).permutation(len(train))
    held_out = int(round(fraction * len(train)))
    return train.take(order[held_out:]), train.take(order[:held_out])


def split_validation_by_movie(train, fraction, seed):
    """Holds out whole movies, about fraction * len(train) reviews in all.

    The movies (`train.movies`) are taken in a seeded random order until the
    held-out count is as close as it gets to round(fraction * len(train)), so
    no movie has reviews on both sides (aclImdb's test movies are likewise
    disjoint from its training movies). Both sides keep a seeded random order.

    Returns:
        (train, validation) `Reviews`.
    """
    rng = np.random.default_rng(seed)
    movies, sizes = np.unique(train.movies.astype(str), return_counts=True)
    order = rng.permutation(len(movies))
    target = int(round(fraction * len(train)))
    ends = np.cumsum(sizes[order])
    # Smallest prefix of movies that reaches the target, or one fewer if closer.
    taken = int(np.searchsorted(ends, target))
    if target and taken < len(ends) and (
            taken == 0 or ends[taken] - target <= target - ends[taken - 1]):
        taken += 1
    held_out = np.isin(train.movies.astype(str), movies[order[:taken]])
    shuffled = rng.permutation(len(train))
    return (train.take(shuffled[~held_out[shuffled]]),
            train.take(shuffled[held_out[shuffled]]))


def check_not_empty(splits):
    """Raises UsageError naming every split without any review."""
    empty = [name for name, reviews in splits.items() if len(reviews) == 0]
    if empty:
        raise UsageError(
            f"the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} "
            "empty; every split needs at least one review (validation is "
            "carved from train by --validation_fraction). Received: "
            + ", ".join(f"{n}={len(r)}" for n, r in splits.items())
        )


def adapt_vocabulary(vectorizer, texts):
    """Learns the vectorizer's vocabulary from `texts`; returns its words."""
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(_VECTORIZE_BATCH))
    # Ids 0 and 1 are padding and [UNK]; the layer adds them back itself.
    return vectorizer.get_vocabulary()[2:]


def bucket_boundaries(max_len):
    """Bucket limits for `bucket_by_sequence_length`, the last one max_len + 1.

    A bucket with limit b holds reviews shorter than b and pads them to b - 1
    tokens, so batches come in only a few lengths (multiples of max_len / 16,
    and max_len): XLA-compiled layers then compile once per length, not once
    per batch.
    """
    step = max(1, max_len // _NUM_BUCKETS)
    lengths = list(range(step, max_len, step)) + [max_len]
    return [length + 1 for length in lengths]


def num_batches(lengths, max_len, batch_size, bucket_by_length, drop_remainder):
    """Batches an epoch yields for reviews of these token counts (each <= max_len).

    Bucketing batches each bucket on its own, so each bucket's last batch is
    partial (or dropped); the order of the reviews does not change the count.
    """
    lengths = np.asarray(lengths)
    if bucket_by_length:
        buckets = np.searchsorted(bucket_boundaries(max_len), lengths, side="right")
        sizes = np.bincount(buckets)
    else:
        sizes = np.array([len(lengths)])
    whole, partial = np.divmod(sizes, batch_size)
    return int(whole.sum() + (0 if drop_remainder else np.count_nonzero(partial)))


def epoch_seed(shuffle_seed, epoch):
    """The shuffle seed of pass `epoch` (0-based): a function of both, nothing else.

    Each epoch's order depends only on the seed and the epoch's number, not on
    how many times the data was iterated before, so a resumed run (which
    starts with a fresh pipeline) sees the same order as one never stopped.
    """
    state = np.random.SeedSequence([abs(shuffle_seed), shuffle_seed < 0, epoch])
    return int(state.generate_state(1)[0])


class Batches:
    """The batches of one split, vectorized and cached once; `epoch(n)` serves a pass.

    Args:
        reviews: `Reviews` to serve.
        vectorizer: TextVectorization with ragged output (no fixed length).
        max_len: Reviews are cut to their first max_len tokens.
        batch_size: Reviews per batch.
        bucket_by_length: Batch reviews of similar length (padded to their
            bucket's length); otherwise pad every review to max_len.
        shuffle_seed: Shuffle each epoch (seeded by this and the epoch's
            number) and drop partial batches if that loses < 10% (training);
            None keeps the order and every review.

    `num_batches` is how many batches an epoch yields.
    """

    def __init__(self, reviews, vectorizer, max_len, batch_size,
                 bucket_by_length, shuffle_seed=None):
        texts = tf.constant(reviews.texts.astype(str))
        labels = tf.constant(reviews.labels.astype(np.float32))

        def vectorize(batch_texts, batch_labels):
            ids = vectorizer(batch_texts)[:, :max_len]  # ragged (batch, <= max_len)
            return ids, batch_labels

        def at_least_one_token(ids, label):
            # An empty review becomes one padding token, which the mask hides.
            return tf.pad(ids, [[0, tf.maximum(0, 1 - tf.size(ids))]]), label

        self._ids = (
            tf.data.Dataset.from_tensor_slices((texts, labels))
            .batch(_VECTORIZE_BATCH)
            .map(vectorize, num_parallel_calls=tf.data.AUTOTUNE)
            .unbatch()
            .map(at_least_one_token)
            .cache()
        )
        # One pass over the cached ids fills the cache (later epochs read from
        # it) and gives the lengths that fix the number of batches.
        lengths = np.concatenate([np.zeros([0], np.int32)] + [
            batch for batch in self._ids.map(lambda ids, label: tf.shape(ids)[0])
            .batch(_VECTORIZE_BATCH).as_numpy_iterator()
        ])
        # Training drops each epoch's last, partial batch of every bucket: with
        # shuffling their sizes change every epoch, and every new shape means a
        # new compilation. Only done when it costs under a tenth of the reviews.
        num_batch_shapes = len(bucket_boundaries(max_len)) if bucket_by_length else 1
        self._drop_remainder = (
            shuffle_seed is not None
            and num_batch_shapes * batch_size <= _MAX_DROPPED_SHARE * len(reviews)
        )
        self._num_reviews = len(reviews)
        self._max_len = max_len
        self._batch_size = batch_size
        self._bucket_by_length = bucket_by_length
        self._shuffle_seed = shuffle_seed
        self.num_batches = num_batches(lengths, max_len, batch_size,
                                       bucket_by_length, self._drop_remainder)

    def epoch(self, epoch=0, skip=0):
        """Pass `epoch` (0-based) over the reviews, without its first `skip` batches.

        Every iteration of the returned dataset yields the same batches.
        """
        dataset = self._ids
        if self._shuffle_seed is not None:
            dataset = dataset.shuffle(
                self._num_reviews, seed=epoch_seed(self._shuffle_seed, epoch),
                reshuffle_each_iteration=False,
            )
        if self._bucket_by_length:
            boundaries = bucket_boundaries(self._max_len)
            dataset = dataset.bucket_by_sequence_length(
                element_length_func=lambda ids, label: tf.shape(ids)[0],
                bucket_boundaries=boundaries,
                bucket_batch_sizes=[self._batch_size] * (len(boundaries) + 1),
                pad_to_bucket_boundary=True,
                drop_remainder=self._drop_remainder,
            )
        else:
            dataset = dataset.padded_batch(
                self._batch_size, padded_shapes=([self._max_len], []),
                drop_remainder=self._drop_remainder,
            )
        dataset = dataset.apply(
            tf.data.experimental.assert_cardinality(self.num_batches))
        if skip:
            dataset = dataset.skip(skip)
        return dataset.prefetch(tf.data.AUTOTUNE)


def make_dataset(reviews, vectorizer, max_len, batch_size, bucket_by_length,
                 shuffle_seed=None):
    """The first epoch of `Batches(...)`: (token ids (batch, time), labels (batch,))."""
    return Batches(reviews, vectorizer, max_len, batch_size, bucket_by_length,
                   shuffle_seed).epoch(0)
