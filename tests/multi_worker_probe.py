"""Run by tests/test_multi_worker.py in every worker of a launch: records
which examples this worker's replicas get from both recipes' input pipelines.

    python tests/multi_worker_probe.py OUT_DIR --strategy=multi_worker

Char LM: `steps.distribute` over a `TrainingStream` of the ids 0..N-1, so a
window's first id is its start position. IMDB: the recipe's training and
test datasets of reviews that are each a unique run of words, distributed as
`model.fit` distributes them (`experimental_distribute_dataset`). Writes
OUT_DIR/<task>.json: per epoch and step, the examples of each local replica.
"""

import json
import os
import sys

import tensorflow as tf

STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()

import numpy as np  # noqa: E402

from recipes.char_lm import input_pipeline as char_pipeline  # noqa: E402
from recipes.char_lm import steps  # noqa: E402
from recipes.common import workers  # noqa: E402
from recipes.imdb_sentiment import config as imdb_config  # noqa: E402
from recipes.imdb_sentiment import input_pipeline as imdb_pipeline  # noqa: E402
from recipes.imdb_sentiment import text  # noqa: E402
from recipes.imdb_sentiment import train as imdb_train  # noqa: E402
from recipes.imdb_sentiment.sources import Reviews  # noqa: E402

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
CHAR_IDS = 203  # 202 positions with a next-character target.
CHAR_SEQ_LEN, CHAR_BATCH = 5, 8  # 40 windows: 5 steps per epoch.
REVIEWS = 30  # 30 training reviews of different lengths, batches of 4.


def local_rows(per_replica, pick):
    return [pick(v.numpy()) for v in STRATEGY.experimental_local_results(per_replica)]


def char_lm_windows():
    """[[starts of replica 0, ...], ...] for the steps of two epochs."""
    stream = char_pipeline.TrainingStream(
        np.arange(CHAR_IDS, dtype=np.int32), CHAR_SEQ_LEN, CHAR_BATCH, seed=3,
        stateful=False)
    data = steps.distribute(STRATEGY, lambda: stream.dataset(0, 2 * stream.steps_per_epoch))
    return [local_rows(batch["inputs"], lambda a: a[:, 0].tolist()) for batch in data]


def review(index):
    """A review no other has: `index` written in base 6, one word per digit."""
    digits = []
    while True:
        index, digit = divmod(index, len(WORDS))
        digits.append(WORDS[digit])
        if not index:
            return " ".join(digits)


def imdb_batches(bucket_by_length):
    """{"train": [epoch 1 steps, epoch 2 steps], "test": [steps]}, each step
    [[review ids of replica 0], ...]; ids = the text's token ids joined."""
    texts = np.array([review(i) + " zulu" * (i % 5) for i in range(REVIEWS)], object)
    reviews = Reviews(texts, np.arange(REVIEWS) % 2)
    config = imdb_config.Config(vocab_size=20, max_len=8, batch_size=4,
                                bucket_by_length=bucket_by_length, seed=5)
    vectorizer = text.make_vectorizer(config.vocab_size)
    words = imdb_pipeline.adapt_vocabulary(vectorizer, texts.astype(str))
    vectorizer = text.make_vectorizer(config.vocab_size, vocabulary=words)
    batches = imdb_train._make_batches(
        config, {"train": reviews, "test": reviews}, vectorizer)

    def ids(batch):
        return [" ".join(str(t) for t in row if t) for row in batch]

    train = [STRATEGY.experimental_distribute_dataset(batches["train"].epoch(epoch))
             for epoch in range(2)]
    test = STRATEGY.experimental_distribute_dataset(batches["test"].epoch())
    return {
        "train": [[local_rows(x, ids) for x, _ in epoch] for epoch in train],
        "test": [local_rows(x, ids) for x, _ in test],
    }


def main(out_dir):
    record = {
        "char_lm_shape": [CHAR_IDS, CHAR_SEQ_LEN, CHAR_BATCH],
        "char_lm": char_lm_windows(),
        "imdb_padded": imdb_batches(bucket_by_length=False),
        "imdb_buckets": imdb_batches(bucket_by_length=True),
    }
    path = os.path.join(out_dir, f"{workers.task_name(STRATEGY)}.json")
    with open(path, "w") as f:
        json.dump(record, f)


if __name__ == "__main__":
    main(sys.argv[1])
