"""ProjectionLSTMCell: a hidden state projected to fewer units."""

import keras
from keras import constraints
from keras import initializers
from keras import ops
from keras import regularizers

from keras_lstm import validation
from keras_lstm.cell import LSTMCell


@keras.saving.register_keras_serializable(package="keras_lstm")
class ProjectionLSTMCell(LSTMCell):
    """LSTM cell with a recurrent projection layer (Sak et al., 2014).

    "Long short-term memory recurrent neural network architectures for large
    scale acoustic modeling" (Interspeech 2014), the LSTMP, and PyTorch's
    ``nn.LSTM(proj_size=...)``: the hidden state is projected down before it
    is output and fed back, which cuts the recurrent weights from
    (units, 4 * units) to (projection_units, 4 * units).

        c_t = as in the plain cell
        h_t = (o_t ⊙ tanh(c_t))·projection_kernel

    Weights: kernel (input_dim, 4 * units), recurrent_kernel
    (projection_units, 4 * units), bias (4 * units,), projection_kernel
    (units, projection_units) (PyTorch's ``weight_hr`` transposed).
    States: [h (batch, projection_units), c (batch, units)]; the output is h.

    Args:
        units: Positive int, size of the cell state.
        projection_units: Positive int, size of the hidden state h.
        projection_initializer: Initializer of `projection_kernel`
            (default glorot_uniform).
        projection_regularizer: Regularizer of `projection_kernel`.
        projection_constraint: Constraint of `projection_kernel`.
        **kwargs: The arguments of `keras_lstm.LSTMCell`.

    Example:

    >>> layer = keras.layers.RNN(keras_lstm.ProjectionLSTMCell(64, 16))
    """

    per_gate_dropout = False  # One dropout mask shared by all gates.

    def __init__(
        self,
        units,
        projection_units,
        projection_initializer="glorot_uniform",
        projection_regularizer=None,
        projection_constraint=None,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.projection_units = validation.check_units(
            projection_units, "projection_units"
        )
        self.projection_initializer = initializers.get(projection_initializer)
        self.projection_regularizer = regularizers.get(projection_regularizer)
        self.projection_constraint = constraints.get(projection_constraint)
        self.state_size = [self.projection_units, self.units]
        self.output_size = self.projection_units

    def build(self, input_shape):
        super().build(input_shape)
        self.projection_kernel = self.add_weight(
            shape=(self.units, self.projection_units),
            name="projection_kernel",
            initializer=self.projection_initializer,
            regularizer=self.projection_regularizer,
            constraint=self.projection_constraint,
        )

    def step(self, z, c_tm1, h_tm1, training=False):
        gates = super().step(z, c_tm1, h_tm1, training=training)
        return gates._replace(h=ops.matmul(gates.h, self.projection_kernel))

    def get_config(self):
        config = {
            "projection_units": self.projection_units,
            "projection_initializer": initializers.serialize(
                self.projection_initializer
            ),
            "projection_regularizer": regularizers.serialize(
                self.projection_regularizer
            ),
            "projection_constraint": constraints.serialize(
                self.projection_constraint
            ),
        }
        return {**super().get_config(), **config}
