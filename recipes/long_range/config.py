"""What a long_range run does: the default demo and a tiny debug config."""

import dataclasses

from recipes.common.errors import UsageError

MODELS = ("lstm", "simple_rnn", "keras_lstm")
"""lstm: keras_lstm.LSTM; simple_rnn: keras.layers.SimpleRNN; keras_lstm:
keras.layers.LSTM, Keras's own layer (for comparison)."""

LSTM_BIASES = ("chrono", "forget_one", "zeros")
"""How the LSTM bias starts: chrono (Tallec & Ollivier, 2018) spreads forget
biases as log U(1, length - 1); forget_one sets b_f = 1 (Jozefowicz et al.,
2015, the Keras default); zeros sets every bias to 0."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of one run; every (length, model) pair trains on its own."""

    # Sequence lengths of the adding problem, each trained separately.
    lengths: tuple = (50, 200)
    # Models compared at every length (see MODELS).
    models: tuple = ("lstm", "simple_rnn")
    # Size of the recurrent state, the same for every model.
    units: int = 32
    # Sequences per training step.
    batch_size: int = 32
    # Adam's learning rate.
    learning_rate: float = 1e-3
    # Gradients are clipped to this global norm (plain RNNs can explode).
    clipnorm: float = 1.0
    # Training steps per (length, model); the budget when max_minutes is 0.
    train_steps: int = 3000
    # Wall-clock cap in minutes per (length, model); 0 means no cap.
    max_minutes: float = 0.0
    # A model stops early once its validation MSE falls below this; 0 never.
    stop_mse: float = 0.0
    # How the LSTM bias starts (see LSTM_BIASES).
    lstm_bias: str = "chrono"
    # Held-out sequences for the validation and the test MSE.
    eval_examples: int = 1000
    # Sequences over which the gradient norms are averaged.
    gradient_examples: int = 100
    # Steps between validation, progress lines and checkpoints.
    eval_every: int = 250
    # Steps between training-loss summaries in TensorBoard.
    log_every: int = 25
    # Seeds the data streams and the initial weights.
    seed: int = 0
    # Compile the training step with XLA (about 2x faster on CPU).
    jit_compile: bool = True
    # Write LSTM gate heatmaps (f, i, o, c over time) of one test sequence to
    # TensorBoard at initialization and after training.
    gate_heatmaps: bool = True

    def settings(self):
        """The fields that define one (length, model) run's result."""
        skip = ("lengths", "models", "eval_every", "log_every", "gate_heatmaps")
        return {
            k: v for k, v in dataclasses.asdict(self).items() if k not in skip
        }


def debug_config():
    """A run of a few seconds on short sequences, for tests."""
    return Config(
        lengths=(4, 8),
        units=4,
        batch_size=8,
        train_steps=6,
        eval_examples=16,
        gradient_examples=4,
        eval_every=3,
        log_every=2,
        jit_compile=False,
    )


def validate(config):
    """Raises UsageError naming the first setting that cannot work."""
    checks = [
        (bool(config.lengths), "lengths", "at least one length"),
        (all(_is_int(n) and n >= 2 for n in config.lengths), "lengths",
         "integers >= 2 (one marker in each half)"),
        (len(set(config.lengths)) == len(config.lengths), "lengths",
         "distinct"),
        (bool(config.models), "models", "at least one model"),
        (all(m in MODELS for m in config.models), "models",
         f"names from {', '.join(MODELS)}"),
        (len(set(config.models)) == len(config.models), "models", "distinct"),
        (_is_int(config.units) and config.units >= 1, "units", "an integer >= 1"),
        (_is_int(config.batch_size) and config.batch_size >= 1, "batch_size",
         "an integer >= 1"),
        (config.learning_rate > 0, "learning_rate", "> 0"),
        (config.clipnorm > 0, "clipnorm", "> 0"),
        (_is_int(config.train_steps) and config.train_steps >= 1, "train_steps",
         "an integer >= 1"),
        (config.max_minutes >= 0, "max_minutes", ">= 0 (0: no cap)"),
        (config.stop_mse >= 0, "stop_mse", ">= 0 (0: never stop early)"),
        (config.lstm_bias in LSTM_BIASES, "lstm_bias",
         f"one of {', '.join(LSTM_BIASES)}"),
        (_is_int(config.eval_examples) and config.eval_examples >= 1,
         "eval_examples", "an integer >= 1"),
        (_is_int(config.gradient_examples) and config.gradient_examples >= 1,
         "gradient_examples", "an integer >= 1"),
        (_is_int(config.eval_every) and config.eval_every >= 1, "eval_every",
         "an integer >= 1"),
        (_is_int(config.log_every) and config.log_every >= 1, "log_every",
         "an integer >= 1"),
    ]
    for ok, name, expected in checks:
        if not ok:
            raise UsageError(
                f"{name} must be {expected}. "
                f"Received: {name}={getattr(config, name)!r}"
            )


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)
