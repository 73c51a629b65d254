"""LSTM variants: small subclasses of `keras_lstm.LSTMCell` and their layers.

Each cell overrides only the step it changes (see `LSTMCell.preactivations`
and `LSTMCell.step`) and cites its paper; each layer is a thin
`keras.layers.RNN` with a flat config.
"""

from keras_lstm.variants.cifg import CIFGLSTMCell
from keras_lstm.variants.layer_norm import LayerNormLSTMCell
from keras_lstm.variants.layers import CIFGLSTM
from keras_lstm.variants.layers import LayerNormLSTM
from keras_lstm.variants.layers import PeepholeLSTM
from keras_lstm.variants.layers import ProjectionLSTM
from keras_lstm.variants.layers import VariantLSTM
from keras_lstm.variants.layers import ZoneoutLSTM
from keras_lstm.variants.peephole import PeepholeLSTMCell
from keras_lstm.variants.projection import ProjectionLSTMCell
from keras_lstm.variants.zoneout import ZoneoutLSTMCell

__all__ = [
    "CIFGLSTM",
    "CIFGLSTMCell",
    "LayerNormLSTM",
    "LayerNormLSTMCell",
    "PeepholeLSTM",
    "PeepholeLSTMCell",
    "ProjectionLSTM",
    "ProjectionLSTMCell",
    "VariantLSTM",
    "ZoneoutLSTM",
    "ZoneoutLSTMCell",
]
