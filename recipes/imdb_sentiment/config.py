"""Settings of the IMDB sentiment recipe: one dataclass, defaults tuned for 2 CPU cores.

The defaults ("!" and "?" kept as tokens, max pooling, word dropout and
dropout 0.5, 6 epochs under a cosine learning-rate decay, NBSVM's
words-and-pairs score beside the LSTM) are the best of the runs
docs/recipes/imdb.md lists. `debug_config()` shrinks the data and the model
so that a test trains for a step or two in seconds.
"""

import dataclasses

CELLS = ("keras_lstm", "keras")
POOLINGS = ("last", "mean", "max", "mean_max")
LEARNING_RATE_SCHEDULES = ("constant", "cosine")

# Settings that may differ between a run and its resumption; every other
# setting shapes the data or the model, so a checkpoint only fits the same.
RESUMABLE_CHANGES = ("epochs", "strategy", "cpu_devices", "tpu_address")


@dataclasses.dataclass
class Config:
    """Everything a run depends on; flags map onto these fields one to one."""

    # Where the reviews come from: TFDS `imdb_reviews` unless one of these is
    # set. `data_dir` is the Stanford aclImdb folder (train/{pos,neg},
    # test/{pos,neg}); `csv_file` the 50k CSV with `review,sentiment` columns.
    data_dir: str = ""
    csv_file: str = ""
    # Where TFDS keeps its prepared datasets ("" means TFDS's default).
    tfds_data_dir: str = ""
    # Share of the training reviews held out (seeded) for validation.
    validation_fraction: float = 0.1
    # Seed of the validation split, the CSV split, shuffling and initializers.
    seed: int = 0

    # Vocabulary size of TextVectorization, including padding and [UNK].
    vocab_size: int = 20000
    # Keep "!" and "?" as tokens of their own (other punctuation is dropped).
    keep_marks: bool = True
    # Reviews are cut to their first `max_len` tokens (95% of the reviews
    # are shorter than 600; length buckets keep long ones from slowing short ones).
    max_len: int = 800
    # Batch reviews of similar length together (less padding, faster) instead
    # of padding every review to `max_len`.
    bucket_by_length: bool = True

    # Width of the learned word vectors.
    embedding_dim: int = 128
    # "keras_lstm" (this package's LSTM) or "keras" (keras.layers.LSTM).
    cell: str = "keras_lstm"
    # Number of stacked Bidirectional LSTM layers and units per direction.
    lstm_layers: int = 1
    lstm_units: int = 64
    # What the classifier reads from the top LSTM layer: "last" (each
    # direction's final output), "mean" or "max" (over the review's tokens),
    # or "mean_max" (both, concatenated).
    pooling: str = "max"
    # Share of the tokens whose whole word vector is dropped in training.
    word_dropout: float = 0.5
    # Dropout rate on the pooled LSTM output.
    dropout: float = 0.5
    # Weights for hashed pairs of consecutive words in a naive-Bayes-weighted
    # linear score of the review's words and pairs (NBSVM), added to the
    # LSTM's logit (0: no such score, the LSTM alone decides).
    ngram_buckets: int = 4_194_304
    # L2 penalty on that score's weights (per review; 1 / (2 * C * reviews)
    # for NBSVM's C = 0.1 on the 22.5k training reviews).
    ngram_l2: float = 2.2e-4

    # Reviews per optimizer step (global batch across replicas).
    batch_size: int = 64
    # Maximum number of passes over the training reviews.
    epochs: int = 6
    # Adam's step size; gradients are clipped to this global norm.
    learning_rate: float = 2e-3
    clipnorm: float = 1.0
    # "constant", or "cosine": from learning_rate down to zero at the end of
    # the last of `epochs` epochs (fixed when the run starts).
    learning_rate_schedule: str = "cosine"
    # Epochs of language-model pretraining of the embedding and the first
    # Bidirectional LSTM on the training reviews' text (next word forward,
    # previous word backward) before the classifier trains (0: none).
    pretrain_epochs: int = 0
    # Words drawn per step for the pretraining's sampled softmax (a full
    # softmax over vocab_size words would cost more than the LSTM).
    pretrain_sampled_words: int = 256
    # Adam's (constant) step size during pretraining.
    pretrain_learning_rate: float = 2e-3

    # Stop after this many epochs without a better validation accuracy
    # (0: never stop early). The best epoch's weights are used in the end.
    early_stopping_patience: int = 0

    # tf.distribute strategy: default, mirrored, multi_worker or tpu.
    strategy: str = "default"
    # Split the CPU into this many logical devices (0: leave it alone), so
    # that --strategy=mirrored can be tried on a machine without GPUs.
    cpu_devices: int = 0
    # Address of the TPU for --strategy=tpu ("" means the local one).
    tpu_address: str = ""
    # Compute in bfloat16 (CPU, TPU) or float16 (GPU), keep float32 weights.
    mixed_precision: bool = False
    # Log gate-activation heatmaps of a few validation reviews each epoch.
    gate_heatmaps: bool = False


def default_config():
    """The settings used when no flag is given."""
    return Config()


def debug_config():
    """A tiny model and vocabulary that train for a step in seconds (tests)."""
    return Config(
        validation_fraction=0.25,
        vocab_size=50,
        max_len=12,
        embedding_dim=8,
        lstm_units=4,
        batch_size=4,
        epochs=1,
        learning_rate=1e-2,
        ngram_buckets=64,
    )
