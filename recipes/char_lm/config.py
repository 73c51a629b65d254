"""Configuration of the character-level language model recipe.

`Config()` holds the defaults documented in docs/recipes/char_lm.md: the Tiny Shakespeare
run that reached 1.435 nats/char in 27.5 minutes on 2 CPU cores (stateful
truncated BPTT, dropout 0.3, 1,900 steps). `debug_config()` is a tiny model
that trains in seconds, for tests.
"""

import dataclasses

CELLS = ("keras_lstm", "keras")

# Settings a resumed run may change (recorded in config_changes.json): how
# long to train (never less than before), how often to log, evaluate and
# save, where the text file or TFDS's data now lie (a text with other
# characters is still refused by the vocabulary check), and the devices.
# Every other setting
# shapes the model, the data order or the optimisation, so the checkpoint
# only continues the same run with the same values.
RESUMABLE_CHANGES = ("train_steps", "stop_after_steps", "text_file", "data_dir",
                     "eval_every", "checkpoint_every", "max_checkpoints",
                     "log_every", "sample_length", "gate_heatmap", "progress",
                     "strategy", "tpu_address")


@dataclasses.dataclass
class Config:
    """Everything `train.train_and_evaluate` needs; the flags fill it in."""

    # --- data ---
    # A UTF-8 text file to train on; empty means TFDS `tfds_name`.
    text_file: str = ""
    # TFDS dataset used when no text_file is given (its train+validation+test
    # text is joined and split like a file, so both sources behave the same).
    tfds_name: str = "tiny_shakespeare"
    # Where TFDS keeps its data; empty means the TFDS default (~/tensorflow_datasets).
    data_dir: str = ""
    # Fraction of the text, taken from its end, held out for validation.
    validation_fraction: float = 0.1
    # Characters per training window (the unrolled length of truncated BPTT).
    seq_len: int = 100
    # Windows per step over all replicas (divisible by the number of replicas).
    batch_size: int = 64

    # --- model ---
    # Which LSTM layer to stack: "keras_lstm" (keras_lstm.LSTM) or "keras"
    # (keras.layers.LSTM, for comparison).
    cell: str = "keras_lstm"
    # Size of the character embedding.
    embedding_dim: int = 64
    # Number of stacked LSTM layers.
    layers: int = 2
    # Units of each LSTM layer.
    units: int = 512
    # Dropout on the embedding output and on each LSTM layer's output.
    dropout: float = 0.3
    # Draw that dropout mask once per window and share it across the
    # window's time steps (AWD-LSTM's locked, or variational, dropout), in
    # place of a new mask at every time step.
    locked_dropout: bool = False
    # DropConnect on each LSTM layer's recurrent kernel (AWD-LSTM's weight
    # drop: one mask per step's batch, the fast path kept); keras_lstm only.
    weight_dropout: float = 0.0

    # --- optimisation ---
    # Training steps of the whole run (the learning-rate schedule ends here).
    train_steps: int = 1900
    # Stop after this many steps of this invocation's schedule and save, as if
    # interrupted (0 = no early stop). Rerunning resumes from there.
    stop_after_steps: int = 0
    # Peak learning rate of Adam.
    learning_rate: float = 3e-3
    # Steps of linear warmup from 0 to learning_rate.
    warmup_steps: int = 200
    # Final learning rate as a fraction of the peak (cosine decay after warmup).
    final_lr_fraction: float = 0.05
    # Global-norm gradient clipping threshold.
    clip_norm: float = 1.0
    # Adam's decoupled weight decay (AdamW); 0 means plain Adam.
    weight_decay: float = 0.0
    # Evaluate, sample and save an exponential moving average of the weights
    # (Polyak averaging), updated every step with this decay; training and
    # the checkpoints keep the raw weights too. 0 means the raw weights.
    ema_decay: float = 0.0
    # Carry the LSTM state across consecutive windows (truncated BPTT): each
    # batch row reads its own contiguous stretch of the text.
    stateful: bool = True
    # Compute in bfloat16 (float16 on GPU) with float32 variables.
    mixed_precision: bool = False
    # tf.distribute strategy: default | mirrored | multi_worker | tpu.
    strategy: str = "default"
    # TPU address for strategy=tpu (empty = the local/default TPU).
    tpu_address: str = ""
    # Seed of weights, dropout and data order; same seed -> same run.
    seed: int = 0

    # --- evaluation, logging, checkpoints ---
    # Evaluate on the whole validation split every this many steps.
    eval_every: int = 250
    # Save a checkpoint every this many steps (and at every evaluation).
    checkpoint_every: int = 250
    # Checkpoints kept by the CheckpointManager.
    max_checkpoints: int = 3
    # Log training loss, learning rate and gradient norm every this many steps.
    log_every: int = 50
    # Characters generated per temperature for the TensorBoard samples.
    sample_length: int = 200
    # Also log a gate-activation heatmap image at every evaluation
    # (keras_lstm.introspect, when available; keras_lstm cell only).
    gate_heatmap: bool = False
    # Show a progress bar on stdout.
    progress: bool = True

    def as_dict(self):
        """Returns the fields as a plain dict (for TensorBoard and JSON)."""
        return dataclasses.asdict(self)


def debug_config(**overrides):
    """A tiny model and run for tests: trains in a few seconds on a CPU."""
    config = Config(
        seq_len=16,
        batch_size=4,
        embedding_dim=8,
        layers=1,
        units=16,
        dropout=0.0,
        train_steps=4,
        learning_rate=1e-2,
        warmup_steps=1,
        eval_every=2,
        checkpoint_every=2,
        log_every=1,
        sample_length=20,
        progress=False,
        stateful=False,
    )
    return dataclasses.replace(config, **overrides)
