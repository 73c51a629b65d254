"""Command line of the character LM recipe: flags -> Config -> train_and_evaluate.

    python -m recipes.char_lm --model_dir=/tmp/char_lm \
        --text_file=../shared/data/tinyshakespeare.txt

Rerun the same command to resume from the latest checkpoint in --model_dir.
"""

import dataclasses

from absl import app
from absl import flags
from absl import logging

from recipes.char_lm import config as config_lib
from recipes.common import validators
from recipes.common.errors import run_and_report
from recipes.common.errors import stop_statuses
from recipes.common.strategy import STRATEGIES

_DEFAULTS = config_lib.Config()
_HELP = {
    "text_file": "UTF-8 text file to train on; empty = TFDS --tfds_name.",
    "tfds_name": "TFDS dataset with a 'text' feature, used without --text_file.",
    "data_dir": "TFDS data directory (where the dataset is prepared).",
    "validation_fraction": "Fraction of the text, from its end, for validation.",
    "seq_len": "Characters per training window (truncated BPTT length).",
    "batch_size": "Windows per step over all replicas.",
    "embedding_dim": "Size of the character embedding.",
    "layers": "Number of stacked LSTM layers.",
    "units": "Units per LSTM layer.",
    "dropout": "Dropout after the embedding and after each LSTM layer.",
    "locked_dropout": "One --dropout mask per window, shared by its time steps "
                      "(AWD-LSTM's locked dropout), not one per step.",
    "weight_dropout": "DropConnect on each LSTM layer's recurrent kernel "
                      "(keras_lstm only; keeps the fast path).",
    "train_steps": "Training steps of the whole run (the schedule ends here).",
    "stop_after_steps": "Stop after this many steps of this invocation and save "
                        "(0 = run to --train_steps); rerun to resume.",
    "learning_rate": "Peak Adam learning rate.",
    "warmup_steps": "Linear warmup steps.",
    "final_lr_fraction": "Final learning rate as a fraction of the peak (cosine).",
    "clip_norm": "Global gradient-norm clipping threshold.",
    "weight_decay": "Decoupled weight decay (AdamW); 0 = Adam.",
    "ema_decay": "Evaluate, sample and save the moving average of the weights "
                 "with this decay per step (0 = the raw weights).",
    "stateful": "Carry LSTM states across consecutive windows (truncated BPTT).",
    "mixed_precision": "bfloat16 compute (float16 on GPU), float32 variables.",
    "tpu_address": "TPU address for --strategy=tpu.",
    "seed": "Seed of weights, dropout and data order.",
    "eval_every": "Evaluate on the whole validation split every N steps.",
    "checkpoint_every": "Save a checkpoint every N steps.",
    "max_checkpoints": "Checkpoints to keep.",
    "log_every": "Log training scalars every N steps.",
    "sample_length": "Characters per TensorBoard text sample.",
    "gate_heatmap": "Log gate heatmaps of the first LSTM layer at each evaluation.",
    "progress": "Show a progress bar.",
}

flags.DEFINE_string("model_dir", None, "Directory for checkpoints, logs, outputs.")
flags.mark_flag_as_required("model_dir")
flags.DEFINE_enum("cell", _DEFAULTS.cell, config_lib.CELLS,
                  "LSTM layer: keras_lstm.LSTM or keras.layers.LSTM.")
flags.DEFINE_enum("strategy", _DEFAULTS.strategy, STRATEGIES,
                  "tf.distribute strategy.")
flags.DEFINE_integer("cpu_devices", 0, "Split the CPU into N logical devices "
                     "first (to try --strategy=mirrored without GPUs).")
flags.DEFINE_bool("debug", False, "Start from the tiny debug config.")
for _field in dataclasses.fields(config_lib.Config):
    if _field.name in ("cell", "strategy"):
        continue
    _define = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer,
               float: flags.DEFINE_float, str: flags.DEFINE_string}[_field.type]
    _define(_field.name, None, f"{_HELP[_field.name]} (default {_field.default!r})")

for _name in ("seq_len", "batch_size", "layers", "units", "embedding_dim",
              "train_steps", "eval_every", "checkpoint_every", "log_every",
              "max_checkpoints"):
    validators.require_at_least(_name, 1)
for _name in ("stop_after_steps", "warmup_steps", "sample_length", "weight_decay",
              "cpu_devices"):
    validators.require_at_least(_name, 0)
validators.require_above("learning_rate", 0.0)
validators.require_above("clip_norm", 0.0)
validators.require_fraction("dropout")
validators.require_fraction("weight_dropout")
validators.require_fraction("final_lr_fraction")
validators.require_fraction("ema_decay")
flags.register_validator(
    "validation_fraction", lambda v: v is None or 0.0 < v < 1.0,
    message="--validation_fraction must be in (0, 1)")

FLAGS = flags.FLAGS


def config_from_flags():
    """The Config: defaults (or the debug config) overridden by the given flags."""
    base = config_lib.debug_config() if FLAGS.debug else config_lib.Config()
    given = {f.name: FLAGS[f.name].value for f in dataclasses.fields(base)
             if FLAGS[f.name].present}
    return dataclasses.replace(base, **given)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)  # Checkpoint saver chatter.
    if FLAGS.cpu_devices:
        # Must run before TensorFlow initializes its devices.
        from recipes.common.strategy import split_cpu

        split_cpu(FLAGS.cpu_devices)
    from recipes.char_lm import train  # Imports TensorFlow.

    with stop_statuses():
        metrics = train.train_and_evaluate(config_from_flags(), FLAGS.model_dir)
    print(f"final validation: {metrics['final_val_nats_per_char']:.4f} nats/char, "
          f"{metrics['final_val_bits_per_char']:.4f} bits/char; best "
          f"{metrics['best_val_nats_per_char']:.4f} nats/char at step "
          f"{metrics['best_step']}; {metrics['chars_per_second']:,.0f} chars/s")


if __name__ == "__main__":
    app.run(lambda argv: run_and_report(main, argv))
