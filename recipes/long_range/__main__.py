"""Entry point: LSTM against SimpleRNN on the adding problem (flags only).

    python -m recipes.long_range --model_dir=/tmp/long_range
    python -m recipes.long_range --model_dir=/tmp/long_range_1000 \\
        --lengths=1000 --train_steps=40000 --max_minutes=20 --stop_mse=0.002 \\
        --eval_every=500

A rerun with the same --model_dir skips finished (length, model) pairs and
resumes unfinished ones from their checkpoints.
"""

from absl import app
from absl import flags
from absl import logging

from recipes.common.errors import run_and_report
from recipes.common.errors import stop_statuses
from recipes.common.validators import require_above
from recipes.common.validators import require_at_least
from recipes.long_range import config as config_lib

_DEFAULT = config_lib.Config()

flags.DEFINE_string(
    "model_dir", None,
    "Directory for results.json, metrics.json, the PNG plots, TensorBoard "
    "logs and checkpoints (a rerun resumes from them).",
)
flags.DEFINE_list(
    "lengths", [str(n) for n in _DEFAULT.lengths],
    "Comma-separated sequence lengths of the adding problem, each >= 2; each "
    "length trains every model from scratch.",
)
flags.DEFINE_list(
    "models", list(_DEFAULT.models),
    "Comma-separated models to compare, from: "
    f"{', '.join(config_lib.MODELS)} (keras_lstm is keras.layers.LSTM).",
)
flags.DEFINE_integer("units", _DEFAULT.units, "Recurrent units of every model.")
flags.DEFINE_integer("batch_size", _DEFAULT.batch_size, "Sequences per step.")
flags.DEFINE_float("learning_rate", _DEFAULT.learning_rate, "Adam learning rate.")
flags.DEFINE_float(
    "clipnorm", _DEFAULT.clipnorm, "Clip each step's gradients to this global norm."
)
flags.DEFINE_integer(
    "train_steps", _DEFAULT.train_steps,
    "Training steps per (length, model), unless --max_minutes or --stop_mse "
    "ends it sooner.",
)
flags.DEFINE_float(
    "max_minutes", _DEFAULT.max_minutes,
    "Wall-clock cap in minutes per (length, model), resumed runs included; "
    "0 means no cap.",
)
flags.DEFINE_float(
    "stop_mse", _DEFAULT.stop_mse,
    "Stop a model early once its validation MSE is below this; 0 never does.",
)
flags.DEFINE_enum(
    "lstm_bias", _DEFAULT.lstm_bias, config_lib.LSTM_BIASES,
    "Initial LSTM bias: chrono (Tallec & Ollivier, 2018: forget biases "
    "log U(1, T - 1), input biases their negatives), forget_one (b_f = 1, "
    "the Keras default) or zeros.",
)
flags.DEFINE_integer(
    "eval_examples", _DEFAULT.eval_examples,
    "Sequences in the validation and in the test set.",
)
flags.DEFINE_integer(
    "gradient_examples", _DEFAULT.gradient_examples,
    "Sequences the gradient norms are averaged over.",
)
flags.DEFINE_integer(
    "eval_every", _DEFAULT.eval_every,
    "Steps between validation, progress lines and checkpoints.",
)
flags.DEFINE_integer(
    "log_every", _DEFAULT.log_every, "Steps between training-loss summaries."
)
flags.DEFINE_integer("seed", _DEFAULT.seed, "Seed of the data and the weights.")
flags.DEFINE_bool(
    "jit_compile", _DEFAULT.jit_compile,
    "Compile the training step with XLA (about 2x faster on CPU).",
)
flags.DEFINE_bool(
    "gate_heatmaps", _DEFAULT.gate_heatmaps,
    "Write heatmaps of the LSTM gates and cell state over one test sequence "
    "to TensorBoard (Images tab), at initialization and after training.",
)

flags.mark_flag_as_required("model_dir")
for _name in ("units", "batch_size", "train_steps", "eval_examples",
              "gradient_examples", "eval_every", "log_every"):
    require_at_least(_name, 1)
for _name in ("learning_rate", "clipnorm"):
    require_above(_name, 0)
for _name in ("max_minutes", "stop_mse"):
    require_at_least(_name, 0)


def _lengths_are_valid(values):
    try:
        return all(int(v) >= 2 for v in values) and len(values) > 0
    except ValueError:
        return False


flags.register_validator(
    "lengths", _lengths_are_valid,
    message="--lengths must be comma-separated integers >= 2, e.g. 50,200,1000",
)
flags.register_validator(
    "models", lambda values: bool(values) and set(values) <= set(config_lib.MODELS),
    message=f"--models must be comma-separated names from "
    f"{', '.join(config_lib.MODELS)}",
)

FLAGS = flags.FLAGS


def config_from_flags():
    """The Config the flags describe."""
    return config_lib.Config(
        lengths=tuple(int(v) for v in FLAGS.lengths),
        models=tuple(FLAGS.models),
        units=FLAGS.units,
        batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.learning_rate,
        clipnorm=FLAGS.clipnorm,
        train_steps=FLAGS.train_steps,
        max_minutes=FLAGS.max_minutes,
        stop_mse=FLAGS.stop_mse,
        lstm_bias=FLAGS.lstm_bias,
        eval_examples=FLAGS.eval_examples,
        gradient_examples=FLAGS.gradient_examples,
        eval_every=FLAGS.eval_every,
        log_every=FLAGS.log_every,
        seed=FLAGS.seed,
        jit_compile=FLAGS.jit_compile,
        gate_heatmaps=FLAGS.gate_heatmaps,
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    config = config_from_flags()
    config_lib.validate(config)  # Before TensorFlow loads.
    logging.set_verbosity(logging.WARNING)  # Not one line per checkpoint.
    from recipes.long_range import train  # Imports TensorFlow.

    with stop_statuses():
        metrics = train.train_and_evaluate(config, FLAGS.model_dir)
    print(f"test MSE by length: {metrics['test_mse']} "
          f"(baseline {metrics['baseline_mse']:.3f}); "
          f"wall time {metrics['wall_seconds_this_invocation']:.0f}s; "
          f"figures in {FLAGS.model_dir}")


if __name__ == "__main__":
    app.run(lambda argv: run_and_report(main, argv))
