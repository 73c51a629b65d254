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
class LSTMCell(keras.layers.LSTMCell):
    """One LSTM time step, a drop-in for `keras.layers.LSTMCell`.

    A subclass of it, so type checks on Keras's cell hold for this one; it
    replaces the step's math (`preactivations`, `step`) and the checks.

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
            mask per gate (Keras's implementation=1) for all time steps of
            a sequence.
        recurrent_weight_dropout: Float in [0, 1), fraction of the entries
            of `recurrent_kernel` dropped (DropConnect, as in AWD-LSTM, Merity
            et al., 2017): one mask per call, drawn before the sequence runs,
            kept weights scaled by 1 / (1 - rate) in training, the plain
            weights at inference. Unlike `recurrent_dropout` it keeps
            `keras_lstm.LSTM` on its fused and cuDNN paths.
        seed: Seed of the dropout masks.
        implementation: 0, 1 or 2, as in Keras 3: 1 (which Keras also sets
            whenever recurrent_dropout > 0) draws separate dropout masks for
            each gate's copy of x_t and of h_{t-1}, as Keras does; 0 and 2
            share one mask. The math is otherwise the same.

    Call arguments:
        inputs: (batch, features) input x_t of this step; integer and bool
            inputs are cast to the compute dtype.
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

    per_gate_dropout = True
    """Whether implementation=1 draws one dropout mask per gate (Keras's
    rule); variants share one mask between their gates."""

    def __init__(
        self,
        units,
        dropout=0.0,
        recurrent_dropout=0.0,
        implementation=2,
        recurrent_weight_dropout=0.0,
        **kwargs,
    ):
        # The other arguments (listed above) are keras.layers.LSTMCell's.
        self.recurrent_weight_dropout = validation.check_rate(
            recurrent_weight_dropout, "recurrent_weight_dropout"
        )
        super().__init__(
            validation.check_units(units),
            dropout=validation.check_rate(dropout, "dropout"),
            recurrent_dropout=validation.check_rate(
                recurrent_dropout, "recurrent_dropout"
            ),
            implementation=validation.check_cell_implementation(
                implementation
            ),
            **kwargs,
        )
        if not self.per_gate_dropout and hasattr(self, "dropout_mask_count"):
            del self.dropout_mask_count  # One mask for every gate.
        # An initializer that lays out every gate block itself (such as
        # keras_lstm.ChronoInitializer) names the blocks in `gate_order`.
        bias_layout = getattr(self.bias_initializer, "gate_order", None)
        if bias_layout is not None and (
            self.unit_forget_bias or tuple(bias_layout) != self.gate_order
        ):
            raise ValueError(
                f"{type(self).__name__} packs its bias as {self.gate_order} "
                "and bias_initializer sets every block itself, so it needs "
                "unit_forget_bias=False and the same gate order. Received: "
                f"unit_forget_bias={self.unit_forget_bias}, bias_initializer "
                f"gate_order={tuple(bias_layout)}"
            )

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
        x_mask = h_mask = None
        if training and self.dropout > 0:
            x_mask = self.get_dropout_mask(inputs)
        if training and self.recurrent_dropout > 0:
            h_mask = self.get_recurrent_dropout_mask(h_tm1)
        if isinstance(x_mask, list) or isinstance(h_mask, list):
            z = self._per_gate_products(inputs, h_tm1, x_mask, h_mask)
        else:
            if x_mask is not None:
                inputs = inputs * x_mask
            if h_mask is not None:
                h_tm1 = h_tm1 * h_mask
            z = ops.matmul(inputs, self.kernel)
            z = z + ops.matmul(h_tm1, self.recurrent_kernel_for_call(training))
        if self.use_bias:
            # ops.add, as Keras's cell does: TensorFlow's BiasAdd, not a
            # broadcasting AddV2 (the step path is Keras's own algorithm).
            z = ops.add(z, self.bias)
        return z

    def _per_gate_products(self, inputs, h_tm1, x_masks, h_masks):
        """Keras's implementation=1: each gate's block sees its own masks."""
        blocks = len(self.gate_order)
        kernels = ops.split(self.kernel, blocks, axis=1)
        recurrent_kernels = ops.split(
            self.recurrent_kernel_for_call(True), blocks, axis=1
        )
        z = []
        for g in range(blocks):
            x = inputs if x_masks is None else inputs * x_masks[g]
            h = h_tm1 if h_masks is None else h_tm1 * h_masks[g]
            z.append(
                ops.matmul(x, kernels[g]) + ops.matmul(h, recurrent_kernels[g])
            )
        return ops.concatenate(z, axis=-1)

    def get_recurrent_weight_mask(self):
        """This call's DropConnect mask of `recurrent_kernel` (None at rate 0).

        Entries are 0 or 1 / (1 - rate). Drawn once per call from the cell's
        seed generator, after the other dropout masks (`keras.layers.RNN`
        draws them all before the loop), and cached until the call ends, so
        every step and every path of a call use the same mask.
        """
        if getattr(self, "_recurrent_weight_mask", None) is None:
            self._recurrent_weight_mask = None
            if self.recurrent_weight_dropout > 0:
                ones = ops.ones(self.recurrent_kernel.shape, self.variable_dtype)
                self._recurrent_weight_mask = keras.random.dropout(
                    ones, self.recurrent_weight_dropout,
                    seed=self.seed_generator,
                )
        return self._recurrent_weight_mask

    def get_recurrent_dropout_mask(self, step_input):
        # keras.layers.RNN calls this before the loop: draw the weight mask
        # there too, outside the loop's body.
        self.get_recurrent_weight_mask()
        return super().get_recurrent_dropout_mask(step_input)

    def reset_recurrent_dropout_mask(self):
        super().reset_recurrent_dropout_mask()
        self._recurrent_weight_mask = None

    def recurrent_kernel_for_call(self, training):
        """`recurrent_kernel` times this call's weight mask in training."""
        if not self.recurrent_weight_dropout or not training:
            return self.recurrent_kernel
        # The product is differentiable: the gradient reaches the variable
        # through the mask, whichever path consumes the dropped kernel.
        kernel = ops.convert_to_tensor(self.recurrent_kernel)
        return kernel * ops.cast(self.get_recurrent_weight_mask(), kernel.dtype)

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
            "implementation": self.implementation,
        }
        if self.recurrent_weight_dropout:
            # Only then: keras.layers.LSTMCell still loads every other config.
            config["recurrent_weight_dropout"] = self.recurrent_weight_dropout
        return {**super().get_config(), **config}
