"""The two models compared: a recurrent layer of `units` and a linear readout.

    inputs (batch, length, 2) -> recurrent layer -> h_T (batch, units)
                              -> Dense(1) -> predicted sum (batch, 1)

Both models get the same number of units; the LSTM has four times the
recurrent weights of the SimpleRNN (one block per gate), as is usual when
comparing them.
"""

import keras

import keras_lstm
from keras_lstm.initializers import ChronoInitializer
from recipes.long_range.config import LSTM_BIASES
from recipes.long_range.config import MODELS


def lstm_bias_arguments(lstm_bias, length, seed):
    """The LSTM's bias_initializer and unit_forget_bias for `lstm_bias`.

    Chrono initialization sizes its longest memory span to the sequence
    length, the longest dependency the adding problem asks for.
    """
    if lstm_bias == "chrono":
        return {
            "bias_initializer": ChronoInitializer(max(length, 3), seed=seed),
            "unit_forget_bias": False,
        }
    if lstm_bias == "forget_one":
        return {"bias_initializer": "zeros", "unit_forget_bias": True}
    if lstm_bias == "zeros":
        return {"bias_initializer": "zeros", "unit_forget_bias": False}
    raise ValueError(
        f"lstm_bias must be one of {', '.join(LSTM_BIASES)}. "
        f"Received: lstm_bias={lstm_bias!r}"
    )


def build_model(name, length, features, units, lstm_bias="chrono", seed=0):
    """Builds model `name` (see MODELS) for sequences of `length` steps.

    Args:
        name: One of MODELS.
        length: Int, time steps per sequence.
        features: Int, input channels per step.
        units: Positive int, size of the recurrent state.
        lstm_bias: One of LSTM_BIASES; ignored by simple_rnn.
        seed: Int seed of the initializers.

    Returns:
        An uncompiled `keras.Sequential` mapping (batch, length, features) to
        (batch, 1).
    """
    if name not in MODELS:
        raise ValueError(
            f"model must be one of {', '.join(MODELS)}. Received: model={name!r}"
        )
    kernels = {
        "kernel_initializer": keras.initializers.GlorotUniform(seed),
        "recurrent_initializer": keras.initializers.Orthogonal(seed=seed + 1),
    }
    if name == "simple_rnn":
        recurrent = keras.layers.SimpleRNN(units, name="simple_rnn", **kernels)
    else:
        layer_class = keras_lstm.LSTM if name == "lstm" else keras.layers.LSTM
        bias = lstm_bias_arguments(lstm_bias, length, seed + 2)
        recurrent = layer_class(units, name=name, **kernels, **bias)
    readout = keras.layers.Dense(
        1, kernel_initializer=keras.initializers.GlorotUniform(seed + 3)
    )
    return keras.Sequential(
        [keras.Input((length, features)), recurrent, readout], name=name
    )
