"""Language-model pretraining of the classifier's encoder (Dai & Le 2015).

With --pretrain_epochs=N the embedding and the first Bidirectional LSTM first
learn to predict words of the training reviews (never validation or test
text): the forward LSTM the next word, the backward LSTM the previous one.
The classifier then starts from those weights (`transfer`) and fine-tunes.

A softmax over the whole vocabulary (20k words) at every token would cost
more than the LSTM itself on 2 cores, so training uses a sampled softmax:
each step scores the true word against `pretrain_sampled_words` words drawn
from a log-uniform (Zipf) distribution, which suits TextVectorization's ids
(sorted by frequency), with the usual correction for how often each is drawn.
The draws come from a Keras SeedGenerator saved with the model, so a resumed
run draws as the uninterrupted one would. Called with training=False the
layer computes the exact (full-softmax) loss instead.

Pretraining checkpoints per epoch like the classifier (checkpoints.py): in
model_dir/pretrain/checkpoints/epoch_NNN.keras, with pretrain/history.json;
TensorBoard curves go to logs/pretrain/.
"""

import math
import os

import keras
import tensorflow as tf

from recipes.common.signals import Stopped
from recipes.imdb_sentiment import callbacks as callbacks_lib
from recipes.imdb_sentiment import checkpoints
from recipes.imdb_sentiment import model as model_lib

PRETRAIN_DIR = "pretrain"
# The layers the language model and the classifier share, by name.
SHARED_LAYERS = ("embedding", "bidirectional_0")


@keras.saving.register_keras_serializable(package="imdb_sentiment")
class NextAndPreviousWordLoss(keras.layers.Layer):
    """Mean cross-entropy of the next word (forward outputs) and the previous word (backward).

    Inputs: [forward (batch, time, units), backward (batch, time, units),
    token ids (batch, time)], 0 = padding. Output: (batch,), every entry the
    batch's mean loss per predicted word, so that Keras's mean over the batch
    is that loss. A position counts when it and its target are words.
    """

    def __init__(self, vocab_size, sampled_words, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.sampled_words = sampled_words
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shapes):
        units = input_shapes[0][-1]
        self.kernels, self.biases = [], []
        for direction in ("forward", "backward"):
            self.kernels.append(self.add_weight(
                shape=(self.vocab_size, units), initializer="glorot_uniform",
                name=f"{direction}_kernel"))
            self.biases.append(self.add_weight(
                shape=(self.vocab_size,), initializer="zeros",
                name=f"{direction}_bias"))

    def _log_uniform_draw(self):
        """(candidates, expected count of every id) for one sampled softmax."""
        log_range = math.log(self.vocab_size + 1.0)
        uniform = keras.random.uniform((self.sampled_words,), seed=self.seed_generator)
        candidates = tf.cast(tf.exp(tf.cast(uniform, tf.float64) * log_range), tf.int64) - 1
        candidates = tf.clip_by_value(candidates, 0, self.vocab_size - 1)

        def expected(ids):
            ids = tf.cast(ids, tf.float64)
            probability = (tf.math.log(ids + 2.0) - tf.math.log(ids + 1.0)) / log_range
            return tf.cast(self.sampled_words * probability, tf.float32)

        return candidates, expected

    def _summed_loss(self, outputs, targets, valid, direction, training):
        """(sum of the losses, number of predicted words) of one direction."""
        hidden = tf.boolean_mask(tf.cast(outputs, tf.float32), valid)  # (words, units)
        labels = tf.boolean_mask(targets, valid)  # (words,)
        kernel, bias = self.kernels[direction], self.biases[direction]
        if training:
            candidates, expected = self._log_uniform_draw()
            losses = tf.nn.sampled_softmax_loss(
                weights=kernel, biases=bias, labels=labels[:, None], inputs=hidden,
                num_sampled=self.sampled_words, num_classes=self.vocab_size,
                sampled_values=(candidates, expected(labels)[:, None],
                                expected(candidates)),
                remove_accidental_hits=True)
        else:
            logits = tf.matmul(hidden, kernel, transpose_b=True) + bias
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        return tf.reduce_sum(losses), tf.size(labels)

    def call(self, inputs, training=None, mask=None):
        del mask  # Padding is recognised from the ids (0).
        forward, backward, ids = inputs
        ids = tf.cast(ids, tf.int64)
        next_ids = tf.pad(ids[:, 1:], [[0, 0], [0, 1]])
        previous_ids = tf.pad(ids[:, :-1], [[0, 0], [1, 0]])
        total, count = 0.0, 0
        for direction, (outputs, targets) in enumerate(
                ((forward, next_ids), (backward, previous_ids))):
            valid = (ids != 0) & (targets != 0)
            summed, words = self._summed_loss(outputs, targets, valid, direction,
                                              bool(training))
            total += summed
            count += words
        mean = total / tf.cast(tf.maximum(count, 1), tf.float32)
        return tf.fill(tf.shape(ids)[:1], mean)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shapes):
        return (input_shapes[2][0],)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "sampled_words": self.sampled_words, "seed": self.seed}


@keras.saving.register_keras_serializable(package="imdb_sentiment")
def model_output_is_the_loss(y_true, y_pred):
    """The language model outputs its own loss; Keras averages it over the batch."""
    del y_true
    return y_pred


def build_language_model(config, vocab_size):
    """Token ids (batch, time) -> the batch's mean LM loss, repeated (batch,).

    Embedding -> Bidirectional(LSTM(lstm_units)) named as in the classifier,
    so `transfer` can copy them, then the next/previous-word loss.
    """
    lstm = model_lib.lstm_class(config.cell)
    token_ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    x = keras.layers.Embedding(
        vocab_size, config.embedding_dim, mask_zero=True, name="embedding"
    )(token_ids)
    forward, backward = keras.layers.Bidirectional(
        lstm(config.lstm_units, return_sequences=True, seed=config.seed),
        merge_mode=None, name="bidirectional_0",
    )(x)
    loss = NextAndPreviousWordLoss(
        vocab_size, config.pretrain_sampled_words, seed=config.seed,
        name="next_and_previous_word",
    )([forward, backward, token_ids])
    language_model = keras.Model(token_ids, loss, name="imdb_language_model")
    language_model.compile(
        optimizer=keras.optimizers.Adam(
            config.pretrain_learning_rate, clipnorm=config.clipnorm or None),
        loss=model_output_is_the_loss,
    )
    return language_model


def transfer(language_model, classifier):
    """Copies the embedding and the first Bidirectional LSTM into the classifier."""
    for name in SHARED_LAYERS:
        classifier.get_layer(name).set_weights(
            language_model.get_layer(name).get_weights())


def language_model_data(train_dataset):
    """The classifier's training batches with the labels replaced by dummies."""
    return train_dataset.map(lambda ids, labels: (ids, tf.zeros_like(labels)))


def seconds(model_dir):
    """Training seconds of the completed pretraining epochs in model_dir."""
    history, _ = checkpoints.resume_point(os.path.join(model_dir, PRETRAIN_DIR))
    return sum(entry["train_seconds"] for entry in history)


def _raise_if_cut_short(epoch_checkpoint, lm_dir, history, stop):
    saved = (f"pretraining epochs 1-{len(history)} are saved in "
             f"{os.path.join(lm_dir, checkpoints.CHECKPOINT_DIR)}"
             if history else "no pretraining epoch had been saved yet")
    if epoch_checkpoint.diverged:
        raise FloatingPointError(
            f"pretraining: {epoch_checkpoint.diverged}; stopped without saving "
            f"it ({saved}). Lower --pretrain_learning_rate or --clipnorm and "
            "train in a new --model_dir")
    if stop:
        raise Stopped(
            f"{stop.name}: stopped during pretraining epoch {len(history) + 1} "
            f"({saved}); rerun the same command to resume from it",
            stop.exit_status)


def pretrain(config, model_dir, out_dir, train_batches, strategy, vocab_size,
             stop=None):
    """Trains (or resumes) the language model for config.pretrain_epochs epochs.

    `train_batches` is the classifier's `input_pipeline.Batches` of the
    training reviews; their labels are not used.

    Returns:
        The language model after its last epoch.

    Raises:
        FloatingPointError: the loss or the weights became non-finite.
        Stopped: SIGINT or SIGTERM arrived; the completed epochs are saved.
    """
    lm_dir = os.path.join(model_dir, PRETRAIN_DIR)
    history, _ = checkpoints.resume_point(lm_dir)
    with strategy.scope():
        language_model, history = checkpoints.load_newest_intact(lm_dir, history)
        if language_model is None:
            language_model = build_language_model(config, vocab_size)
        else:
            print(f"Resuming pretraining after epoch {len(history)} from "
                  f"{lm_dir}.", flush=True)
    if len(history) < config.pretrain_epochs:
        epoch_checkpoint = checkpoints.EpochCheckpoint(
            os.path.join(out_dir, PRETRAIN_DIR), history, 0, stop)
        callbacks = [
            callbacks_lib.EpochSummaries(os.path.join(out_dir, "logs", PRETRAIN_DIR)),
            epoch_checkpoint,
        ]
        # One fit per epoch on that epoch's own batches, as the classifier does.
        for epoch in range(len(history), config.pretrain_epochs):
            language_model.fit(
                language_model_data(train_batches.epoch(epoch)),
                epochs=epoch + 1, initial_epoch=epoch, callbacks=callbacks)
            if language_model.stop_training:
                break
        _raise_if_cut_short(epoch_checkpoint, lm_dir, history, stop)
    return language_model
