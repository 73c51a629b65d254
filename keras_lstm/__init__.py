"""keras_lstm: a readable, fast, drop-in LSTM for Keras 3 (TensorFlow backend)."""

from keras_lstm.cell import GATE_ORDER
from keras_lstm.cell import GateValues
from keras_lstm.cell import LSTMCell
from keras_lstm.cell import lstm_equations
from keras_lstm.layer import LSTM
from keras_lstm.convert import from_torch_lstm
from keras_lstm.convert import to_torch_lstm
from keras_lstm.convert_tfa import from_tfa_layer_norm_lstm
from keras_lstm.convert_tfa import from_tfa_peephole_lstm
from keras_lstm.initializers import ChronoInitializer
from keras_lstm.introspect import GateHeatmapCallback
from keras_lstm.introspect import GateTrace
from keras_lstm.introspect import gate_trace
from keras_lstm.tracing import portable_graphs
from keras_lstm.variants import CIFGLSTM
from keras_lstm.variants import CIFGLSTMCell
from keras_lstm.variants import LayerNormLSTM
from keras_lstm.variants import LayerNormLSTMCell
from keras_lstm.variants import PeepholeLSTM
from keras_lstm.variants import PeepholeLSTMCell
from keras_lstm.variants import ProjectionLSTM
from keras_lstm.variants import ProjectionLSTMCell
from keras_lstm.variants import ZoneoutLSTM
from keras_lstm.variants import ZoneoutLSTMCell

__version__ = "0.1.0"

__all__ = [
    "CIFGLSTM",
    "CIFGLSTMCell",
    "ChronoInitializer",
    "GATE_ORDER",
    "GateHeatmapCallback",
    "GateTrace",
    "GateValues",
    "LSTM",
    "LSTMCell",
    "LayerNormLSTM",
    "LayerNormLSTMCell",
    "PeepholeLSTM",
    "PeepholeLSTMCell",
    "ProjectionLSTM",
    "ProjectionLSTMCell",
    "ZoneoutLSTM",
    "ZoneoutLSTMCell",
    "from_tfa_layer_norm_lstm",
    "from_tfa_peephole_lstm",
    "from_torch_lstm",
    "gate_trace",
    "lstm_equations",
    "portable_graphs",
    "to_torch_lstm",
    "__version__",
]
