"""LayerNormLSTMCell: layer normalization inside the recurrence."""

import numbers

import keras
from keras import initializers
from keras import ops

from keras_lstm.cell import LSTMCell


def _normalize(x, epsilon):
    """(x - mean) / sqrt(var + epsilon) over the last axis."""
    mean = ops.mean(x, axis=-1, keepdims=True)
    variance = ops.var(x, axis=-1, keepdims=True)
    return (x - mean) * ops.rsqrt(variance + epsilon)


@keras.saving.register_keras_serializable(package="keras_lstm")
class LayerNormLSTMCell(LSTMCell):
    """LSTM cell with layer normalization (Ba et al., 2016).

    "Layer normalization" (arXiv:1607.06450), equations 20-22: the input and
    recurrent contributions to the gates are normalized separately over all
    4 * units gate pre-activations of a sample, and the cell state is
    normalized before the output squash:

        z_t = LN(x_t·kernel; g_x) + LN(h_{t-1}·recurrent_kernel; g_h) + bias
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ ĉ_t          (gates from z_t as usual)
        h_t = o_t ⊙ tanh(LN(c_t; g_c, b_c))

    with ``LN(a; g, b) = g ⊙ (a - mean(a)) / sqrt(var(a) + epsilon) + b``.
    The paper's two gate shifts and its bias add up to a single shift, which
    is the cell's `bias` (so `unit_forget_bias` still works); the gate norms
    have gains only. The carried state c_t is the unnormalized one.

    With ``carry_normalized_state=True`` the cell computes TF Addons'
    `tfa.rnn.LayerNormLSTMCell` instead: the gate norms get shifts of their
    own (b_x, b_h besides the bias) and the *normalized* state is carried,
    ``c_t = LN(f_t ⊙ c_{t-1} + i_t ⊙ ĉ_t; g_c, b_c)``, ``h_t = o_t ⊙
    tanh(c_t)``. Its 9 weights are in TF Addons' order, so
    ``set_weights(tfa_cell.get_weights())`` loads them (see
    `keras_lstm.from_tfa_layer_norm_lstm`): kernel, recurrent_kernel, bias,
    kernel_norm_gamma, kernel_norm_beta, recurrent_norm_gamma,
    recurrent_norm_beta, state_norm_gamma, state_norm_beta.

    Args:
        units: Positive int, size of the hidden and cell states.
        norm_gamma_initializer: Initializer of the gains (default ones).
        norm_beta_initializer: Initializer of the cell-state shift
            (default zeros).
        norm_epsilon: Small float added to the variance.
        carry_normalized_state: Carry LN(c_t) to the next step, with shifts
            on the gate norms: TF Addons' equations and weights.
        **kwargs: The arguments of `keras_lstm.LSTMCell`.

    Example:

    >>> layer = keras.layers.RNN(keras_lstm.LayerNormLSTMCell(32))
    """

    per_gate_dropout = False  # One dropout mask shared by all gates.

    def __init__(
        self,
        units,
        norm_gamma_initializer="ones",
        norm_beta_initializer="zeros",
        norm_epsilon=1e-3,
        carry_normalized_state=False,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        if not isinstance(carry_normalized_state, bool):
            raise TypeError(
                "`carry_normalized_state` must be True or False. Received: "
                f"carry_normalized_state={carry_normalized_state!r}"
            )
        self.carry_normalized_state = carry_normalized_state
        self.norm_gamma_initializer = initializers.get(norm_gamma_initializer)
        self.norm_beta_initializer = initializers.get(norm_beta_initializer)
        if (
            isinstance(norm_epsilon, bool)
            or not isinstance(norm_epsilon, numbers.Real)
            or not norm_epsilon > 0
        ):
            raise ValueError(
                "`norm_epsilon` must be a positive float. "
                f"Received: norm_epsilon={norm_epsilon!r}"
            )
        self.norm_epsilon = float(norm_epsilon)

    def build(self, input_shape):
        super().build(input_shape)
        gate_units = len(self.gate_order) * self.units
        # Creation order is get_weights order; TF Addons' with the option.
        norms = [("kernel_norm", gate_units), ("recurrent_norm", gate_units),
                 ("state_norm", self.units)]
        for norm, size in norms:
            setattr(self, f"{norm}_gamma", self._norm_weight(
                f"{norm}_gamma", size, self.norm_gamma_initializer))
            if self.carry_normalized_state or norm == "state_norm":
                setattr(self, f"{norm}_beta", self._norm_weight(
                    f"{norm}_beta", size, self.norm_beta_initializer))
            else:
                setattr(self, f"{norm}_beta", None)  # Part of the bias.

    def _norm_weight(self, name, size, initializer):
        return self.add_weight(shape=(size,), name=name, initializer=initializer)

    def preactivations(self, inputs, h_tm1, training=False):
        # The same per-sequence dropout masks as the plain cell.
        if training and self.dropout > 0:
            inputs = inputs * self.get_dropout_mask(inputs)
        if training and self.recurrent_dropout > 0:
            h_tm1 = h_tm1 * self.get_recurrent_dropout_mask(h_tm1)
        eps = self.norm_epsilon
        zx = _normalize(ops.matmul(inputs, self.kernel), eps)
        zh = ops.matmul(h_tm1, self.recurrent_kernel_for_call(training))
        zh = _normalize(zh, eps)
        z = self.kernel_norm_gamma * zx + self.recurrent_norm_gamma * zh
        if self.carry_normalized_state:
            z = z + self.kernel_norm_beta + self.recurrent_norm_beta
        if self.use_bias:
            z = z + self.bias
        return z

    def step(self, z, c_tm1, h_tm1, training=False):
        gates = super().step(z, c_tm1, h_tm1, training=training)
        c_norm = _normalize(gates.c, self.norm_epsilon)
        c_norm = self.state_norm_gamma * c_norm + self.state_norm_beta
        h = gates.o * self.activation(c_norm)
        if self.carry_normalized_state:
            return gates._replace(c=c_norm, h=h)
        return gates._replace(h=h)

    def get_config(self):
        config = {
            "norm_gamma_initializer": initializers.serialize(
                self.norm_gamma_initializer
            ),
            "norm_beta_initializer": initializers.serialize(
                self.norm_beta_initializer
            ),
            "norm_epsilon": self.norm_epsilon,
            "carry_normalized_state": self.carry_normalized_state,
        }
        return {**super().get_config(), **config}
