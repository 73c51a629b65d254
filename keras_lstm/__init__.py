"""keras_lstm: a readable, fast, drop-in LSTM for Keras 3 (TensorFlow backend)."""

from keras_lstm.cell import GATE_ORDER
from keras_lstm.cell import GateValues
from keras_lstm.cell import LSTMCell
from keras_lstm.cell import lstm_equations
from keras_lstm.layer import LSTM

__version__ = "0.1.0"

__all__ = [
    "GATE_ORDER",
    "GateValues",
    "LSTM",
    "LSTMCell",
    "lstm_equations",
    "__version__",
]
