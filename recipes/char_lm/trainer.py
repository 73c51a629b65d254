"""The trainer: model, optimizer, distributed steps and checkpointed progress.

Everything a run must restore to continue exactly where it stopped lives in
one `tf.train.Checkpoint`: the model, the optimizer (with its iteration
count, which drives the learning-rate schedule), the step (which is also the
data position, see `input_pipeline.TrainingStream`), dropout's seed-generator
states, the carried LSTM states (--stateful) and the best figures so far.
"""

import contextlib
import os

import keras
import numpy as np
import tensorflow as tf

from recipes.char_lm import model as model_lib
from recipes.char_lm import steps
from recipes.common.checkpoints import newest_intact
from recipes.common.checkpoints import restore_newest_intact
from recipes.common.finite import non_finite_weights


def make_optimizer(config):
    """Adam(W) with linear warmup then cosine decay to final_lr_fraction,
    keeping a moving average of the weights if config.ema_decay."""
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        warmup_target=config.learning_rate,
        warmup_steps=config.warmup_steps,
        decay_steps=max(1, config.train_steps - config.warmup_steps),
        alpha=config.final_lr_fraction,
    )
    # Keras checks ema_momentum only when use_ema is on.
    average = dict(use_ema=config.ema_decay > 0, ema_momentum=config.ema_decay)
    if config.weight_decay:
        return keras.optimizers.AdamW(
            schedule, weight_decay=config.weight_decay, **average)
    return keras.optimizers.Adam(schedule, **average)


class Trainer:
    """The model, optimizer, steps and checkpointed progress of one run.

    Building it restores the newest intact checkpoint in
    model_dir/checkpoints, if any, so `step` tells where the run stands.

    Args:
        config: The run's `Config`.
        model_dir: The run's directory (the checkpoint is restored from here).
        out_dir: Where checkpoints are saved: model_dir, or a multi-worker
            non-chief's temporary directory (see `recipes.common.workers`).
        vocab: Its `Vocabulary` (sizes the model).
        strategy: The tf.distribute strategy to build and train under.
        policy: The dtype policy name in force (float16 needs a loss scale).

    Attributes:
        model, optimizer: Keras objects, built under `strategy`.
        step: int64 variable, steps done (the data position).
        states: Per-replica carried LSTM states (zeros unless --stateful).
        train_step, eval_step: The `steps` functions bound to this run.
        best_val, best_step, train_seconds, chars_trained: Progress variables.
        manager: The `tf.train.CheckpointManager`.
    """

    def __init__(self, config, model_dir, out_dir, vocab, strategy, policy):
        self.config = config
        self.strategy = strategy
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            self.model = model_lib.build_model(vocab.size, config)
            self.optimizer = make_optimizer(config)
            self.optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        # Host-side progress, checkpointed with the model.
        self.carried_states = tf.Variable(
            tf.zeros((2 * config.layers, config.batch_size, config.units)))
        self.best_val = tf.Variable(np.inf, dtype=tf.float64)
        self.best_step = tf.Variable(0, dtype=tf.int64)
        self.train_seconds = tf.Variable(0.0, dtype=tf.float64)
        self.chars_trained = tf.Variable(0, dtype=tf.int64)
        # Dropout's seed-generator states are not tracked by the model's
        # checkpoint; saving them makes a resumed run draw the same masks.
        seed_states = [v.value for v in self.model.non_trainable_variables
                       if "seed_generator" in v.path]
        checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, step=self.step,
            seed_states=seed_states,
            carried_states=self.carried_states, best_val=self.best_val,
            best_step=self.best_step, train_seconds=self.train_seconds,
            chars_trained=self.chars_trained)
        if out_dir == model_dir:
            self.manager, _ = restore_newest_intact(
                checkpoint, os.path.join(model_dir, "checkpoints"),
                config.max_checkpoints)
        else:  # A multi-worker non-chief: reads the chief's, saves its own.
            newest = newest_intact(os.path.join(model_dir, "checkpoints"))
            checkpoint.restore(newest).expect_partial()
            self.manager = tf.train.CheckpointManager(
                checkpoint, os.path.join(out_dir, "checkpoints"), max_to_keep=1)
        loss_scale = steps.FLOAT16_LOSS_SCALE if policy == "mixed_float16" else 1.0
        self.train_step = steps.make_train_step(
            strategy, self.model, self.optimizer, self.step, config, loss_scale)
        self.eval_step = steps.make_eval_step(strategy, self.model, config)
        self.states = steps.scatter_states(strategy, self.carried_states)
        # One traced function: eager collectives would be retraced every save.
        self._gather_states = tf.function(
            lambda states: steps.gather_states(strategy, states))

    def divergence(self, what):
        """A FloatingPointError for `what` went non-finite, naming the way out."""
        latest = self.manager.latest_checkpoint
        kept = (f"the latest checkpoint, {latest}, holds the last finite weights"
                if latest else "no checkpoint had been saved yet")
        return FloatingPointError(
            f"{what}; stopped without saving ({kept}). Lower --learning_rate "
            "or --clip_norm and train in a new --model_dir")

    def save(self):
        """Checkpoints the current step, with the carried states.

        Raises:
            FloatingPointError: a weight or optimizer slot is NaN or
                infinite; nothing is saved, the latest checkpoint stays.
        """
        step = int(self.step.numpy())
        bad = non_finite_weights(self.model.weights + self.optimizer.variables)
        if bad:
            raise self.divergence(
                f"the weights became NaN or infinite by step {step} ({bad[0]})")
        self.carried_states.assign(self._gather_states(self.states))
        self.manager.save(checkpoint_number=step)

    @contextlib.contextmanager
    def evaluated_weights(self):
        """Within the block the model holds the weights that are evaluated,
        sampled and saved: the moving average with --ema_decay, else the raw
        weights. The raw weights are back after it."""
        if not self.optimizer.use_ema:
            yield
            return
        variables = self.model.trainable_variables
        raw = [tf.identity(v.value) for v in variables]
        self.optimizer.finalize_variable_values(variables)
        try:
            yield
        finally:
            for variable, value in zip(variables, raw):
                variable.assign(value)

    def evaluate(self, dataset):
        """Mean validation loss in nats/char over the whole split."""
        states = steps.zero_states(self.strategy, self.config)
        nats = chars = 0.0
        for batch in dataset:
            batch_nats, batch_chars, states = self.eval_step(batch, states)
            nats += float(batch_nats)
            chars += float(batch_chars)
        return nats / chars
