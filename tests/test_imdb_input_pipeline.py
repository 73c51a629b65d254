"""The IMDB recipe's text standardization, validation split and tf.data batches."""

import numpy as np
import pytest
import tensorflow as tf

from recipes.common.errors import UsageError
from recipes.imdb_sentiment import input_pipeline
from recipes.imdb_sentiment import sources
from recipes.imdb_sentiment import text


def _reviews(texts, labels):
    return sources.Reviews(np.array(texts, dtype=object), np.array(labels, dtype=np.int32))


def test_standardize_strips_line_breaks_and_punctuation():
    raw = tf.constant(["Great!<br /><br />Don't MISS it.<br/>Ok<br>fine", "A-b,c"])
    got = [s.decode() for s in text.standardize_review(raw).numpy()]
    assert [g.split() for g in got] == [
        ["great", "dont", "miss", "it", "ok", "fine"],
        ["a", "b", "c"],
    ]


def test_keep_marks_makes_exclamation_and_question_marks_tokens():
    raw = tf.constant(["Great!!<br />Why? Don't-miss it."])
    got = text.standardize_review_keep_marks(raw).numpy()[0].decode().split()
    assert got == ["great", "!", "!", "why", "?", "dont", "miss", "it"]
    vectorizer = text.make_vectorizer(5, vocabulary=["!", "great"], keep_marks=True)
    np.testing.assert_array_equal(vectorizer(tf.constant(["great!"])).to_list(), [[3, 2]])


def test_vectorizer_ids_follow_word_frequency():
    vectorizer = text.make_vectorizer(vocab_size=4)
    words = input_pipeline.adapt_vocabulary(
        vectorizer, np.array(["bad bad bad good good meh"])
    )
    assert words == ["bad", "good"]  # 0 pads, 1 is [UNK]: two words fit.
    fixed = text.make_vectorizer(4, max_len=5, vocabulary=words)
    ids = fixed(tf.constant([["good<br />bad meh"]])).numpy()
    np.testing.assert_array_equal(ids, [[3, 2, 1, 0, 0]])


def test_split_validation_is_seeded_and_disjoint():
    train = _reviews([f"r{i}" for i in range(20)], [i % 2 for i in range(20)])
    rest, held_out = input_pipeline.split_validation(train, 0.25, seed=1)
    again, _ = input_pipeline.split_validation(train, 0.25, seed=1)
    other, _ = input_pipeline.split_validation(train, 0.25, seed=2)
    assert len(rest) == 15 and len(held_out) == 5
    assert sorted(list(rest.texts) + list(held_out.texts)) == sorted(train.texts)
    assert list(rest.texts) == list(again.texts)
    assert list(rest.texts) != list(other.texts)
    for t, label in zip(held_out.texts, held_out.labels):
        assert label == int(t[1:]) % 2


def test_empty_split_is_named():
    splits = {"train": _reviews(["a"], [1]), "validation": _reviews([], []),
              "test": _reviews(["b"], [0])}
    with pytest.raises(UsageError, match="the validation split is empty.*Received: train=1, validation=0, test=1"):
        input_pipeline.check_not_empty(splits)


def test_bucket_boundaries_cover_max_len():
    assert input_pipeline.bucket_boundaries(400) == list(range(26, 402, 25))
    assert input_pipeline.bucket_boundaries(3) == [2, 3, 4]


def _vectorizer_and_reviews():
    words = [f"w{i}" for i in range(8)]
    vectorizer = text.make_vectorizer(10, vocabulary=words)
    lengths = [1, 2, 3, 5, 8, 13, 20, 0]
    texts = [" ".join(words[j % 8] for j in range(n)) for n in lengths]
    return vectorizer, _reviews(texts, [i % 2 for i in range(len(lengths))]), lengths


def test_padded_batches_have_max_len_and_keep_every_review():
    vectorizer, reviews, lengths = _vectorizer_and_reviews()
    batches = list(input_pipeline.make_dataset(reviews, vectorizer, 10, 3, False))
    assert [tuple(ids.shape) for ids, _ in batches] == [(3, 10), (3, 10), (2, 10)]
    ids = np.concatenate([b[0].numpy() for b in batches])
    labels = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_array_equal((ids > 0).sum(axis=1), np.minimum(lengths, 10))
    np.testing.assert_array_equal(labels, reviews.labels)
    # The first tokens are kept: review 6 starts w0 w1 ... (ids 2, 3, ...).
    np.testing.assert_array_equal(ids[6], [2, 3, 4, 5, 6, 7, 8, 9, 2, 3])


def test_buckets_pad_to_their_boundary_and_lose_no_review():
    vectorizer, reviews, lengths = _vectorizer_and_reviews()
    dataset = input_pipeline.make_dataset(reviews, vectorizer, 10, 2, True, shuffle_seed=0)
    allowed = {b - 1 for b in input_pipeline.bucket_boundaries(10)}
    seen = []
    for ids, labels in dataset:
        assert ids.shape[1] in allowed
        assert ids.shape[0] == labels.shape[0] <= 2
        tokens = (ids.numpy() > 0).sum(axis=1)
        seen += list(tokens)
        # Every review of a batch fits its bucket.
        assert max(tokens) <= ids.shape[1]
    assert sorted(seen) == sorted(np.minimum(lengths, 10))


def test_training_drops_partial_batches_only_when_cheap():
    words = ["a"]
    vectorizer = text.make_vectorizer(3, vocabulary=words)
    reviews = _reviews(["a a"] * 105, [1] * 105)
    batches = list(input_pipeline.make_dataset(reviews, vectorizer, 4, 10, False, shuffle_seed=0))
    assert [b[0].shape[0] for b in batches] == [10] * 10  # 5 of 105 dropped.
    small = _reviews(["a a"] * 15, [1] * 15)
    batches = list(input_pipeline.make_dataset(small, vectorizer, 4, 10, False, shuffle_seed=0))
    assert [b[0].shape[0] for b in batches] == [10, 5]  # Dropping would lose a third.


@pytest.mark.parametrize("bucket_by_length, batch_size, expected", [
    (False, 3, 3),  # ceil(8 / 3)
    # Token counts 1 2 3 5 8 10 10 1 (max_len 10; the empty review keeps one
    # padding token) fall in buckets holding 2, 1, 1, 1, 1 and 2 reviews.
    (True, 2, 6),
    (True, 1, 8),
])
def test_datasets_know_how_many_batches_they_yield(bucket_by_length, batch_size, expected):
    vectorizer, reviews, _ = _vectorizer_and_reviews()
    dataset = input_pipeline.make_dataset(reviews, vectorizer, 10, batch_size, bucket_by_length)
    assert dataset.cardinality().numpy() == expected
    assert len(list(dataset)) == expected


def test_training_cardinality_counts_dropped_partial_batches():
    vectorizer = text.make_vectorizer(3, vocabulary=["a"])
    reviews = _reviews(["a a"] * 105, [1] * 105)
    dataset = input_pipeline.make_dataset(reviews, vectorizer, 4, 10, False, shuffle_seed=0)
    assert dataset.cardinality().numpy() == 10 == len(list(dataset))  # 5 dropped.
    bucketed = input_pipeline.make_dataset(reviews, vectorizer, 4, 10, True, shuffle_seed=0)
    assert bucketed.cardinality().numpy() == 11 == len(list(bucketed))  # 10 + the partial one.


def test_num_batches_per_bucket():
    # max_len 10: one bucket per token count 1..10.
    lengths = [1, 1, 1, 2, 10, 10, 10, 10, 10]
    assert input_pipeline.num_batches(lengths, 10, 2, True, False) == 2 + 1 + 3
    assert input_pipeline.num_batches(lengths, 10, 2, True, True) == 1 + 0 + 2
    assert input_pipeline.num_batches(lengths, 10, 2, False, False) == 5
    assert input_pipeline.num_batches(lengths, 10, 2, False, True) == 4
    assert input_pipeline.num_batches([], 10, 2, True, False) == 0


def test_fit_progress_bar_shows_the_total_in_the_first_epoch(capsys):
    import keras

    vectorizer, reviews, _ = _vectorizer_and_reviews()
    dataset = input_pipeline.make_dataset(reviews, vectorizer, 10, 2, True, shuffle_seed=0)
    model = keras.Sequential([
        keras.layers.Embedding(10, 2), keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy")
    model.fit(dataset, epochs=1, verbose=1, shuffle=False)
    out = capsys.readouterr().out
    assert "6/6" in out and "Unknown" not in out, out
