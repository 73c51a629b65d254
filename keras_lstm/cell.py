"""LSTMCell: one time step of the LSTM, the seed article's six equations.

The weights are packed as in `keras.layers.LSTMCell`, gate order i, f, c, o:

    kernel            (input_dim, 4 * units)   the x_t part of W_i, W_f, W_c, W_o
    recurrent_kernel  (units, 4 * units)       the h_{t-1} part of the same
    bias              (4 * units,)             b_i, b_f, b_c, b_o

so that ``W_g·[h_{t-1}, x_t] + b_g == x_t·kernel_g + h_{t-1}·recurrent_kernel_g
+ bias_g``, and weights move to and from `keras.layers.LSTM` unchanged.
"""

import collections

import keras
from keras import activations
from keras import constraints
from keras import initializers
from keras import ops
from keras import regularizers

# Keras's RNN layer creates and resets per-sequence dropout masks only for
# cells of this type, so inheriting it is what keeps one mask per sequence.
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

from keras_lstm import validation

GATE_ORDER = ("i", "f", "c", "o")
"""Order of the four gate blocks in kernel, recurrent_kernel and bias."""

GateValues = collections.namedtuple(
    "GateValues", ["i", "f", "c_hat", "o", "c", "h"]
)
GateValues.__doc__ = "Everything one LSTM step computes, each (batch, units)."


def lstm_equations(z, c_tm1, activation=ops.tanh, recurrent_activation=ops.sigmoid):
    """The seed's six equations, given the gate pre-activations.

    Args:
        z: (batch, 4 * units), ``W·[h_{t-1}, x_t] + b`` for the gates i, f, c, o.
        c_tm1: (batch, units), the previous cell state c_{t-1}.
        activation: tanh in the seed; the candidate's and the output's squash.
        recurrent_activation: σ (sigmoid) in the seed; the gates' squash.

    Returns:
        A `GateValues` with the gates and the new states c_t and h_t.
    """
    z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
    f = recurrent_activation(z_f)  # forget gate   f_t = σ(W_f·[h_{t-1}, x_t] + b_f)
    i = recurrent_activation(z_i)  # input gate    i_t = σ(W_i·[h_{t-1}, x_t] + b_i)
    c_hat = activation(z_c)        # candidate     ĉ_t = tanh(W_c·[h_{t-1}, x_t] + b_c)
    c = f * c_tm1 + i * c_hat      # cell state    c_t = f_t ⊙ c_{t-1} + i_t ⊙ ĉ_t
    o = recurrent_activation(z_o)  # output gate   o_t = σ(W_o·[h_{t-1}, x_t] + b_o)
    h = o * activation(c)          # hidden state  h_t = o_t ⊙ tanh(c_t)
    return GateValues(i=i, f=f, c_hat=c_hat, o=o, c=c, h=h)


@keras.saving.register_keras_serializable(package="keras_lstm")
class LSTMCell(keras.layers.Layer, DropoutRNNCell):
    """One LSTM time step, a drop-in for `keras.layers.LSTMCell`.

    Args:
        units: Positive int, size of the hidden and cell states.
        activation: Squash of the candidate and of the output (default tanh).
        recurrent_activation: Squash of the three gates (default sigmoid).
        use_bias: Whether the gates have a bias.
        kernel_initializer: Initializer of `kernel` (default glorot_uniform).
        recurrent_initializer: Initializer of `recurrent_kernel`
            (default orthogonal).
        bias_initializer: Initializer of `bias` (default zeros).
        unit_forget_bias: If True, the forget-gate bias starts at 1 so that the
            cell remembers by default (Jozefowicz et al., 2015).
        kernel_regularizer, recurrent_regularizer, bias_regularizer:
            Regularizers of the three weights.
        kernel_constraint, recurrent_constraint, bias_constraint:
            Constraints of the three weights.
        dropout: Float in [0, 1), fraction of the inputs dropped; one mask for
            all time steps of a sequence.
        recurrent_dropout: Float in [0, 1), fraction of h_{t-1} dropped; one
            mask for all time steps of a sequence.
        seed: Seed of the dropout masks.

    Call arguments:
        inputs: (batch, features) input x_t of this step.
        states: [h_tm1, c_tm1], each (batch, units).
        training: Whether dropout applies.

    Returns:
        ``(h, [h, c])``: the output and the new states.

    Example:

    >>> layer = keras.layers.RNN(keras_lstm.LSTMCell(8), return_sequences=True)
    >>> layer(np.zeros((2, 5, 3), "float32")).shape
    (2, 5, 8)
    """

    gate_order = GATE_ORDER
    """Gate blocks packed in this cell's weights; a variant may have fewer."""

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = validation.check_units(units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.unit_forget_bias = unit_forget_bias
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = validation.check_rate(dropout, "dropout")
        self.recurrent_dropout = validation.check_rate(
            recurrent_dropout, "recurrent_dropout"
        )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        # An initializer that lays out every gate block itself (such as
        # keras_lstm.ChronoInitializer) names the blocks in `gate_order`.
        bias_layout = getattr(self.bias_initializer, "gate_order", None)
        if bias_layout is not None and (
            unit_forget_bias or tuple(bias_layout) != self.gate_order
        ):
            raise ValueError(
                f"{type(self).__name__} packs its bias as {self.gate_order} "
                "and bias_initializer sets every block itself, so it needs "
                "unit_forget_bias=False and the same gate order. Received: "
                f"unit_forget_bias={unit_forget_bias}, bias_initializer "
                f"gate_order={tuple(bias_layout)}"
            )
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                "LSTMCell needs a known number of input features (the last "
                f"axis). Received: input_shape={tuple(input_shape)}"
            )
        gate_units = len(self.gate_order) * self.units
        self.kernel = self.add_weight(
            shape=(input_dim, gate_units),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            # Rows: the size of h_{t-1}, smaller than units with a projection.
            shape=(self.state_size[0], gate_units),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(gate_units,),
                name="bias",
                initializer=self._initial_bias,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        self.built = True

    def _initial_bias(self, shape, dtype=None):
        """bias_initializer for each gate block, forget block 1 if asked."""
        if not self.unit_forget_bias:
            return self.bias_initializer(shape, dtype=dtype)
        u = self.units
        before = self.gate_order.index("f") * u
        after = shape[0] - before - u
        blocks = [ops.ones((u,), dtype=dtype)]
        if before:
            blocks.insert(0, self.bias_initializer((before,), dtype=dtype))
        if after:
            blocks.append(self.bias_initializer((after,), dtype=dtype))
        return ops.concatenate(blocks)

    def preactivations(self, inputs, h_tm1, training=False):
        """z = x_t·kernel + h_{t-1}·recurrent_kernel + bias, with dropout."""
        if training and self.dropout > 0:
            inputs = inputs * self.get_dropout_mask(inputs)
        if training and self.recurrent_dropout > 0:
            h_tm1 = h_tm1 * self.get_recurrent_dropout_mask(h_tm1)
        z = ops.matmul(inputs, self.kernel)
        z = z + ops.matmul(h_tm1, self.recurrent_kernel)
        if self.use_bias:
            z = z + self.bias
        return z

    def step(self, z, c_tm1, h_tm1, training=False):
        """Gate math of one step; variants override this. Returns GateValues."""
        del h_tm1, training  # The plain cell needs only z and c_{t-1}.
        return lstm_equations(
            z, c_tm1, self.activation, self.recurrent_activation
        )

    def call(self, inputs, states, training=False):
        # Static shape and dtype only: costs nothing per step once traced.
        validation.check_step_input(inputs, self.name)
        inputs = validation.as_float(inputs, self.compute_dtype)
        h_tm1, c_tm1 = states[0], states[1]
        z = self.preactivations(inputs, h_tm1, training=training)
        gates = self.step(z, c_tm1, h_tm1, training=training)
        return gates.h, [gates.h, gates.c]

    def get_initial_state(self, batch_size=None):
        return [
            ops.zeros((batch_size, size), dtype=self.compute_dtype)
            for size in self.state_size
        ]

    def get_config(self):
        config = {
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(
                self.recurrent_activation
            ),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(
                self.kernel_initializer
            ),
            "recurrent_initializer": initializers.serialize(
                self.recurrent_initializer
            ),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_regularizer": regularizers.serialize(
                self.kernel_regularizer
            ),
            "recurrent_regularizer": regularizers.serialize(
                self.recurrent_regularizer
            ),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(
                self.recurrent_constraint
            ),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}
