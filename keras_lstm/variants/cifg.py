"""CIFGLSTMCell: the input gate is one minus the forget gate."""

import keras
from keras import ops

from keras_lstm.cell import GateValues
from keras_lstm.cell import LSTMCell


@keras.saving.register_keras_serializable(package="keras_lstm")
class CIFGLSTMCell(LSTMCell):
    """LSTM cell with coupled input and forget gates (Greff et al., 2017).

    "LSTM: A search space odyssey" (IEEE TNNLS 2017) found that coupling the
    gates, i_t = 1 - f_t, costs little accuracy and saves a quarter of the
    weights: the cell writes exactly as much as it forgets.

        f_t = σ(z_f),   i_t = 1 - f_t
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ tanh(z_c)
        h_t = σ(z_o) ⊙ tanh(c_t)

    Weight layout: there is no input-gate block. The weights pack three blocks
    in the order `gate_order` = (f, c, o): kernel (input_dim, 3 * units),
    recurrent_kernel (units, 3 * units), bias (3 * units,). With
    ``unit_forget_bias`` the first block of the bias starts at 1.

    Args:
        units: Positive int, size of the hidden and cell states.
        **kwargs: The arguments of `keras_lstm.LSTMCell`.

    Example:

    >>> layer = keras.layers.RNN(keras_lstm.CIFGLSTMCell(16))
    """

    per_gate_dropout = False  # One dropout mask shared by all gates.

    gate_order = ("f", "c", "o")

    def step(self, z, c_tm1, h_tm1, training=False):
        del h_tm1, training
        z_f, z_c, z_o = ops.split(z, 3, axis=-1)
        f = self.recurrent_activation(z_f)
        i = 1.0 - f
        c_hat = self.activation(z_c)
        c = f * c_tm1 + i * c_hat
        o = self.recurrent_activation(z_o)
        h = o * self.activation(c)
        return GateValues(i=i, f=f, c_hat=c_hat, o=o, c=c, h=h)
