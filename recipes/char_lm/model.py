"""The character language model: Embedding -> layers x LSTM -> Dense.

The model takes the LSTM states as inputs and returns the final ones, so one
model serves training from zero states, truncated BPTT with carried states
(--stateful) and step-by-step sampling.
"""

import keras

import keras_lstm

MODEL_FILENAME = "model.keras"


def _lstm_layer(config, name, seed):
    """One LSTM layer of the chosen implementation, returning all steps."""
    if config.cell == "keras":
        return keras.layers.LSTM(
            config.units, return_sequences=True, return_state=True, name=name)
    return keras_lstm.LSTM(
        config.units, return_sequences=True, return_state=True, name=name,
        recurrent_weight_dropout=config.weight_dropout, seed=seed)


def build_model(vocab_size, config):
    """Builds the model.

    Args:
        vocab_size: Number of ids, OOV id included.
        config: A `Config`; uses cell, embedding_dim, layers, units, dropout,
            locked_dropout, weight_dropout and seed.

    Returns:
        A functional `keras.Model` called as
        `model([ids, h_1, c_1, ..., h_L, c_L])` with ids (batch, time) int32
        and states (batch, units), returning
        `[logits (batch, time, vocab_size), h_1', c_1', ..., h_L', c_L']`.
    """
    ids = keras.Input((None,), dtype="int32", name="ids")
    states = []
    for layer in range(config.layers):
        states += [
            keras.Input((config.units,), name=f"h_{layer + 1}"),
            keras.Input((config.units,), name=f"c_{layer + 1}"),
        ]
    x = keras.layers.Embedding(vocab_size, config.embedding_dim, name="embedding")(ids)
    # Locked dropout: a (B, 1, features) mask, broadcast over time.
    noise_shape = (None, 1, None) if config.locked_dropout else None
    x = keras.layers.Dropout(
        config.dropout, noise_shape=noise_shape, seed=config.seed,
        name="embedding_dropout")(x)  # (B, T, E)
    final_states = []
    for layer in range(config.layers):
        lstm = _lstm_layer(config, f"lstm_{layer + 1}", seed=config.seed + 100 + layer)
        x, h, c = lstm(
            x, initial_state=states[2 * layer : 2 * layer + 2]
        )
        x = keras.layers.Dropout(
            config.dropout, noise_shape=noise_shape, seed=config.seed + layer + 1,
            name=f"lstm_{layer + 1}_dropout")(x)
        final_states += [h, c]  # each (B, U)
    # Logits in float32 even under mixed precision: the softmax needs it.
    logits = keras.layers.Dense(vocab_size, dtype="float32", name="logits")(x)
    return keras.Model([ids] + states, [logits] + final_states, name="char_lm")


def zero_states(config, batch_size):
    """The all-zero initial states for `batch_size` rows."""
    return [
        keras.ops.zeros((batch_size, config.units))
        for _ in range(2 * config.layers)
    ]
