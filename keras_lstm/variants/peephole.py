"""PeepholeLSTMCell: gates that also look at the cell state."""

import keras
from keras import constraints
from keras import initializers
from keras import ops
from keras import regularizers

from keras_lstm.cell import GateValues
from keras_lstm.cell import LSTMCell

_PEEPHOLES = ("input_peephole", "forget_peephole", "output_peephole")


@keras.saving.register_keras_serializable(package="keras_lstm")
class PeepholeLSTMCell(LSTMCell):
    """LSTM cell with peephole connections (Gers & Schmidhuber, 2000).

    "Recurrent nets that time and count" (IJCNN 2000) let the gates see the
    cell state through diagonal weights p_i, p_f, p_o, each (units,):

        i_t = σ(z_i + p_i ⊙ c_{t-1})
        f_t = σ(z_f + p_f ⊙ c_{t-1})
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ tanh(z_c)
        o_t = σ(z_o + p_o ⊙ c_t)          (the new cell state)
        h_t = o_t ⊙ tanh(c_t)

    where z are the plain cell's pre-activations. The peepholes start at zero
    by default, so a fresh cell computes exactly the plain `LSTMCell`.

    Args:
        units: Positive int, size of the hidden and cell states.
        peephole_initializer: Initializer of the three peephole vectors
            (default zeros).
        peephole_regularizer: Regularizer of the peephole vectors.
        peephole_constraint: Constraint of the peephole vectors.
        **kwargs: The arguments of `keras_lstm.LSTMCell`.

    Example:

    >>> layer = keras.layers.RNN(keras_lstm.PeepholeLSTMCell(16))
    """

    per_gate_dropout = False  # One dropout mask shared by all gates.

    def __init__(
        self,
        units,
        peephole_initializer="zeros",
        peephole_regularizer=None,
        peephole_constraint=None,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.peephole_initializer = initializers.get(peephole_initializer)
        self.peephole_regularizer = regularizers.get(peephole_regularizer)
        self.peephole_constraint = constraints.get(peephole_constraint)

    def build(self, input_shape):
        super().build(input_shape)
        for name in _PEEPHOLES:
            weight = self.add_weight(
                shape=(self.units,),
                name=name,
                initializer=self.peephole_initializer,
                regularizer=self.peephole_regularizer,
                constraint=self.peephole_constraint,
            )
            setattr(self, name, weight)

    def step(self, z, c_tm1, h_tm1, training=False):
        del h_tm1, training
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        sigma, tanh = self.recurrent_activation, self.activation
        i = sigma(z_i + self.input_peephole * c_tm1)
        f = sigma(z_f + self.forget_peephole * c_tm1)
        c_hat = tanh(z_c)
        c = f * c_tm1 + i * c_hat
        o = sigma(z_o + self.output_peephole * c)
        h = o * tanh(c)
        return GateValues(i=i, f=f, c_hat=c_hat, o=o, c=c, h=h)

    def get_config(self):
        config = {
            "peephole_initializer": initializers.serialize(
                self.peephole_initializer
            ),
            "peephole_regularizer": regularizers.serialize(
                self.peephole_regularizer
            ),
            "peephole_constraint": constraints.serialize(
                self.peephole_constraint
            ),
        }
        return {**super().get_config(), **config}
