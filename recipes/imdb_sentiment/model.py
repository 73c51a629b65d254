"""The sentiment classifier: word vectors, Bidirectional LSTMs, a sigmoid.

`build_classifier` maps token ids to P(positive) and is what trains;
`build_end_to_end` puts the vectorizer in front so the saved model takes raw
review strings.
"""

import math

import keras

import keras_lstm

from recipes.common.errors import UsageError
from recipes.imdb_sentiment import ngrams
from recipes.imdb_sentiment.config import CELLS
from recipes.imdb_sentiment.config import LEARNING_RATE_SCHEDULES
from recipes.imdb_sentiment.config import POOLINGS


def lstm_class(cell):
    """The LSTM layer class for --cell: keras_lstm.LSTM or keras.layers.LSTM."""
    if cell == "keras_lstm":
        return keras_lstm.LSTM
    if cell == "keras":
        return keras.layers.LSTM
    raise UsageError(
        f"--cell must be one of {', '.join(CELLS)}. Received: cell={cell!r}"
    )


@keras.saving.register_keras_serializable(package="imdb_sentiment")
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """Max over the time steps the mask keeps: (batch, time, features) -> (batch, features).

    `keras.layers.GlobalMaxPooling1D` ignores masks, so padding would take
    part in the max (a backward LSTM emits zeros at padded steps).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return keras.ops.max(inputs, axis=1)
        # Padded steps take each feature's smallest value, so they never win.
        floor = keras.ops.min(inputs, axis=1, keepdims=True)
        kept = keras.ops.expand_dims(keras.ops.cast(mask, "bool"), -1)
        return keras.ops.max(keras.ops.where(kept, inputs, floor), axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


def check_pooling(pooling):
    """Raises UsageError unless `pooling` is one of POOLINGS."""
    if pooling not in POOLINGS:
        raise UsageError(
            f"--pooling must be one of {', '.join(POOLINGS)}. "
            f"Received: pooling={pooling!r}"
        )


def build_classifier(config, vocab_size):
    """Token ids (batch, time), 0 = padding -> P(positive) (batch, 1).

    Embedding (masking padding) -> dropout -> lstm_layers x
    Bidirectional(LSTM(lstm_units)) -> pooling -> dropout -> Dense(1, sigmoid).
    With pooling="last" the classifier sees each direction's final output;
    with "mean" or "max" the average or maximum of the top layer's outputs
    over the review's tokens (padding excluded by the mask), or with
    "mean_max" both side by side. Pooling lets every position pass its
    evidence straight to the loss instead of through hundreds of steps.
    Word dropout drops whole word vectors (training only). With
    ngram_buckets > 0, a naive-Bayes-weighted linear score of the review's
    words and word pairs (`ngrams.NgramScore`, NBSVM) is added to the LSTM's
    logit before the sigmoid; its log-count ratios are zero until
    `ngrams.log_count_ratios` sets them.
    """
    lstm = lstm_class(config.cell)
    seed = config.seed
    token_ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    x = keras.layers.Embedding(
        vocab_size, config.embedding_dim, mask_zero=True, name="embedding"
    )(token_ids)  # (batch, time, embedding_dim)
    # Whole words: one draw per token, shared by its embedding_dim features.
    x = keras.layers.Dropout(
        config.word_dropout, noise_shape=(None, None, 1), seed=seed, name="word_dropout"
    )(x)
    for index in range(config.lstm_layers):
        keep_sequence = index < config.lstm_layers - 1 or config.pooling != "last"
        x = keras.layers.Bidirectional(
            lstm(config.lstm_units, return_sequences=keep_sequence, seed=seed + index),
            name=f"bidirectional_{index}",
        )(x)  # (batch, time, 2 * units) if keep_sequence, else (batch, 2 * units)
    if config.pooling == "mean":
        x = keras.layers.GlobalAveragePooling1D(name="mean_over_tokens")(x)
    elif config.pooling == "max":
        x = MaskedGlobalMaxPooling1D(name="max_over_tokens")(x)
    elif config.pooling == "mean_max":
        x = keras.layers.Concatenate(name="mean_and_max")([
            keras.layers.GlobalAveragePooling1D(name="mean_over_tokens")(x),
            MaskedGlobalMaxPooling1D(name="max_over_tokens")(x),
        ])
    x = keras.layers.Dropout(config.dropout, seed=seed, name="output_dropout")(x)
    # float32 output keeps the loss accurate under mixed precision.
    if config.ngram_buckets:
        lstm_logit = keras.layers.Dense(1, dtype="float32", name="lstm_logit")(x)
        ngram_logit = ngrams.NgramScore(
            vocab_size, config.ngram_buckets, l2=config.ngram_l2,
            dtype="float32", name="ngram_score",
        )(token_ids)
        logit = keras.layers.Add(dtype="float32", name="logit")([lstm_logit, ngram_logit])
        probability = keras.layers.Activation(
            "sigmoid", dtype="float32", name="probability")(logit)
    else:
        probability = keras.layers.Dense(
            1, activation="sigmoid", dtype="float32", name="probability"
        )(x)
    return keras.Model(token_ids, probability, name="imdb_classifier")


def build_end_to_end(vectorizer, classifier):
    """Raw review strings (batch,) -> P(positive) (batch, 1)."""
    reviews = keras.Input(shape=(1,), dtype="string", name="review")
    probability = classifier(vectorizer(reviews))
    return keras.Model(reviews, probability, name="imdb_sentiment")


def check_learning_rate_schedule(schedule):
    """Raises UsageError unless `schedule` is one of LEARNING_RATE_SCHEDULES."""
    if schedule not in LEARNING_RATE_SCHEDULES:
        raise UsageError(
            "--learning_rate_schedule must be one of "
            f"{', '.join(LEARNING_RATE_SCHEDULES)}. Received: "
            f"learning_rate_schedule={schedule!r}"
        )


def learning_rate_schedule(config, train_examples):
    """Adam's step size: constant, or a cosine decay to zero over all epochs."""
    check_learning_rate_schedule(config.learning_rate_schedule)
    if config.learning_rate_schedule == "constant":
        return config.learning_rate
    steps_per_epoch = math.ceil(train_examples / config.batch_size)
    return keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.epochs * steps_per_epoch
    )


def compile_classifier(model, learning_rate, clipnorm):
    """Adam on binary cross-entropy, reporting accuracy.

    `learning_rate` is a float or a `keras.optimizers.schedules` schedule.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm or None),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )

