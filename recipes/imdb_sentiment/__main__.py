"""Trains the IMDB sentiment classifier: flags in, train.train_and_evaluate out.

    python -m recipes.imdb_sentiment --model_dir=/tmp/imdb \\
        --data_dir=../shared/data/imdb/aclImdb
    tensorboard --logdir=/tmp/imdb/logs

Without --data_dir or --csv_file the reviews come from TFDS imdb_reviews.
Rerunning the same command after an interruption resumes after the last
completed epoch.
"""

import dataclasses

from absl import app
from absl import flags

from recipes.common import validators
from recipes.common.errors import run_and_report
from recipes.common.errors import stop_statuses
from recipes.common.strategy import STRATEGIES
from recipes.imdb_sentiment.config import CELLS
from recipes.imdb_sentiment.config import Config
from recipes.imdb_sentiment.config import LEARNING_RATE_SCHEDULES
from recipes.imdb_sentiment.config import POOLINGS

_DEFAULTS = Config()

flags.DEFINE_string("model_dir", None, "Where logs, checkpoints, model.keras and metrics.json go.")
flags.mark_flag_as_required("model_dir")
flags.DEFINE_string("data_dir", _DEFAULTS.data_dir, "aclImdb folder with train/{pos,neg} and test/{pos,neg}; replaces TFDS.")
flags.DEFINE_string("csv_file", _DEFAULTS.csv_file, "CSV with review,sentiment (and optional split) columns; replaces TFDS.")
flags.DEFINE_string("tfds_data_dir", _DEFAULTS.tfds_data_dir, "Where TFDS keeps its datasets (default: TFDS's own).")
flags.DEFINE_float("validation_fraction", _DEFAULTS.validation_fraction, "Share of the training reviews held out for validation.")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seed of data splits, shuffling and initialization.")
flags.DEFINE_integer("vocab_size", _DEFAULTS.vocab_size, "Vocabulary size, padding and [UNK] included.")
flags.DEFINE_bool("keep_marks", _DEFAULTS.keep_marks, "Keep ! and ? as tokens of their own (other punctuation is dropped); --nokeep_marks drops them too.")
flags.DEFINE_integer("max_len", _DEFAULTS.max_len, "Reviews are cut to their first max_len tokens.")
flags.DEFINE_bool("bucket_by_length", _DEFAULTS.bucket_by_length, "Batch reviews of similar length; --nobucket_by_length pads all to max_len.")
flags.DEFINE_integer("embedding_dim", _DEFAULTS.embedding_dim, "Width of the word vectors.")
flags.DEFINE_enum("cell", _DEFAULTS.cell, CELLS, "keras_lstm.LSTM or keras.layers.LSTM (for comparison).")
flags.DEFINE_integer("lstm_layers", _DEFAULTS.lstm_layers, "Number of stacked Bidirectional LSTM layers.")
flags.DEFINE_integer("lstm_units", _DEFAULTS.lstm_units, "Units of each LSTM direction.")
flags.DEFINE_enum("pooling", _DEFAULTS.pooling, POOLINGS, "What the classifier reads from the top LSTM: its final outputs (last), their mean or max over the tokens, or mean and max concatenated (mean_max).")
flags.DEFINE_float("word_dropout", _DEFAULTS.word_dropout, "Share of tokens whose whole word vector is dropped in training.")
flags.DEFINE_float("dropout", _DEFAULTS.dropout, "Dropout rate on the pooled LSTM output.")
flags.DEFINE_integer("ngram_buckets", _DEFAULTS.ngram_buckets, "Hashed word-pair weights of a naive-Bayes-weighted linear score of the review's words and word pairs (NBSVM), added to the LSTM's logit (0: no such score, the LSTM alone).")
flags.DEFINE_float("ngram_l2", _DEFAULTS.ngram_l2, "L2 penalty on the word-and-pair score's weights.")
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Reviews per step (global, across replicas).")
flags.DEFINE_integer("epochs", _DEFAULTS.epochs, "Maximum number of epochs.")
flags.DEFINE_float("learning_rate", _DEFAULTS.learning_rate, "Adam learning rate.")
flags.DEFINE_enum("learning_rate_schedule", _DEFAULTS.learning_rate_schedule, LEARNING_RATE_SCHEDULES, "constant, or cosine: decay from --learning_rate to zero at the end of --epochs (fixed when the run starts).")
flags.DEFINE_float("clipnorm", _DEFAULTS.clipnorm, "Clip each gradient to this norm (0: no clipping).")
flags.DEFINE_integer("pretrain_epochs", _DEFAULTS.pretrain_epochs, "Epochs of language-model pretraining (next word forward, previous word backward) of the embedding and first BiLSTM on the training reviews before the classifier trains (0: none).")
flags.DEFINE_integer("pretrain_sampled_words", _DEFAULTS.pretrain_sampled_words, "Words sampled per step for the pretraining's sampled softmax.")
flags.DEFINE_float("pretrain_learning_rate", _DEFAULTS.pretrain_learning_rate, "Adam learning rate of the pretraining (constant).")
flags.DEFINE_integer("early_stopping_patience", _DEFAULTS.early_stopping_patience, "Stop after this many epochs without better validation accuracy (0: never).")
flags.DEFINE_enum("strategy", _DEFAULTS.strategy, STRATEGIES, "tf.distribute strategy.")
flags.DEFINE_integer("cpu_devices", _DEFAULTS.cpu_devices, "Split the CPU into this many logical devices (to try --strategy=mirrored without GPUs); 0 leaves it alone.")
flags.DEFINE_string("tpu_address", _DEFAULTS.tpu_address, "TPU address for --strategy=tpu.")
flags.DEFINE_bool("mixed_precision", _DEFAULTS.mixed_precision, "Compute in bfloat16 (CPU/TPU) or float16 (GPU) with float32 weights.")
flags.DEFINE_bool("gate_heatmaps", _DEFAULTS.gate_heatmaps, "Log gate heatmaps of two validation reviews to TensorBoard every epoch.")

for _name in ("vocab_size", "max_len", "embedding_dim", "lstm_layers", "lstm_units", "batch_size", "epochs"):
    validators.require_at_least(_name, 1)
validators.require_at_least("vocab_size", 3)
validators.require_at_least("early_stopping_patience", 0)
validators.require_at_least("ngram_buckets", 0)
validators.require_at_least("pretrain_epochs", 0)
validators.require_at_least("pretrain_sampled_words", 1)
validators.require_above("pretrain_learning_rate", 0.0)
validators.require_at_least("cpu_devices", 0)
validators.require_at_least("clipnorm", 0.0)
validators.require_above("learning_rate", 0.0)
validators.require_fraction("dropout")
validators.require_fraction("word_dropout")
validators.require_at_least("ngram_l2", 0.0)
validators.require_fraction("validation_fraction")
validators.require_above("validation_fraction", 0.0)
flags.register_multi_flags_validator(
    ["data_dir", "csv_file"],
    lambda values: not (values["data_dir"] and values["csv_file"]),
    message="give at most one of --data_dir and --csv_file",
)

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.cpu_devices:
        # Logical devices must be set before TensorFlow starts its runtime.
        from recipes.common.strategy import split_cpu

        split_cpu(FLAGS.cpu_devices)
    # Imported after the device setup: train pulls in Keras and TensorFlow.
    from recipes.imdb_sentiment import train

    config = Config(**{f.name: FLAGS[f.name].value for f in dataclasses.fields(Config)})
    with stop_statuses():
        train.train_and_evaluate(config, FLAGS.model_dir)


if __name__ == "__main__":
    app.run(lambda argv: run_and_report(main, argv))
