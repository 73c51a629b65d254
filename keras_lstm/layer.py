"""LSTM: the sequence layer, a drop-in for `keras.layers.LSTM`.

Runs `LSTMCell` over time through `keras.layers.RNN`, which provides masking,
go_backwards, stateful, return_state, initial_state, unroll and works inside
`keras.layers.Bidirectional`. The arguments, the weights and the config are
those of `keras.layers.LSTM`, so either layer loads the other's weights.
"""

import keras
import tensorflow as tf

from keras_lstm import cudnn
from keras_lstm import dispatch
from keras_lstm import export_graph
from keras_lstm import fused
from keras_lstm import native
from keras_lstm import second_order
from keras_lstm import tracing
from keras_lstm import validation
from keras_lstm.cell import LSTMCell

_CELL_ARGS = (
    "units",
    "activation",
    "recurrent_activation",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "unit_forget_bias",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
    "dropout",
    "recurrent_dropout",
    "recurrent_weight_dropout",
    "seed",
)


@keras.saving.register_keras_serializable(package="keras_lstm")
class LSTM(keras.layers.LSTM):
    """Long Short-Term Memory layer (Hochreiter & Schmidhuber, 1997).

    Same arguments, weights and outputs as `keras.layers.LSTM`, and a
    subclass of it (so type checks on Keras's layer hold), whose cell is a
    `keras_lstm.LSTMCell` and whose sequence loop is `inner_loop` below.

    Args:
        units: Positive int, size of the hidden and cell states.
        return_sequences: Return h_t for every step (batch, time, units)
            instead of the last one (batch, units).
        return_state: Also return the final states h_T and c_T.
        go_backwards: Process the sequence in reverse (and return the
            outputs reversed, as Keras does).
        stateful: Carry the final states of batch k over as the initial states
            of batch k+1; needs a fixed batch size.
        unroll: Unroll the time loop (short sequences only).
        use_cudnn: "auto" uses cuDNN when a GPU is visible and the
            configuration allows it; True insists (ValueError otherwise);
            False never uses it. As in `keras.layers.LSTM`.
        implementation: Which path runs the sequence (see
            `implementation_path`): "auto" picks the fastest one the
            configuration allows; "fused" insists on `keras_lstm.fused`
            (ValueError if it cannot run); "step" always runs the cell step by
            step through `keras.layers.RNN`. Keras 2's 1 and 2 mean "auto".
        **kwargs: The cell's arguments (activation, initializers, dropout,
            recurrent_weight_dropout, ...) and the base layer's (name, dtype,
            ...). `recurrent_weight_dropout` (DropConnect on the recurrent
            kernel, see `keras_lstm.LSTMCell`) keeps every path.

    Call arguments:
        sequences: tensor (batch, timesteps, features); integer and bool
            inputs are cast to the layer's compute dtype, as Keras does.
        initial_state: optional [h_0, c_0], each (batch, units).
        mask: optional bool tensor (batch, timesteps); a masked step keeps the
            previous states and repeats the previous output.
        training: whether dropout applies.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((None,), dtype="int32"),
    ...     keras.layers.Embedding(1000, 32, mask_zero=True),
    ...     keras_lstm.LSTM(64),
    ...     keras.layers.Dense(1, activation="sigmoid"),
    ... ])
    """

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
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        use_cudnn="auto",
        **kwargs,
    ):
        implementation = kwargs.pop("implementation", "auto")
        # DropConnect on recurrent_kernel; see keras_lstm.LSTMCell.
        recurrent_weight_dropout = kwargs.pop("recurrent_weight_dropout", 0.0)
        dispatch.check_implementation(implementation)
        if use_cudnn not in ("auto", True, False):
            raise ValueError(
                "`use_cudnn` must be one of 'auto', True or False. "
                f"Received: use_cudnn={use_cudnn!r}"
            )
        cell = LSTMCell(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            recurrent_weight_dropout=recurrent_weight_dropout,
            seed=seed,
            implementation=(
                implementation if isinstance(implementation, int) else 2
            ),
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="lstm_cell",
        )
        # keras.layers.LSTM.__init__ would build Keras's own cell.
        keras.layers.RNN.__init__(
            self,
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )
        self.use_cudnn = use_cudnn
        self.implementation = implementation
        # Raise now if the configuration rules out a path the user insisted
        # on; whether a GPU exists is checked at call time (asking now would
        # start TensorFlow's runtime before the user configures devices).
        dispatch.select_path(self._path_options(), gpu_available=True)

    def __call__(self, sequences, initial_state=None, mask=None, **kwargs):
        # Check everything the user gave before Keras builds or computes.
        shape = validation.check_sequence_input(sequences, self.name)
        validation.check_mask(mask, shape, self.name)
        validation.check_initial_state(
            initial_state, shape, self.units, self.name
        )
        if self.stateful and shape[0] is None and not self.built:
            raise ValueError(
                f"Layer '{self.name}' is stateful, so it needs a fixed batch "
                "size: give the model `keras.Input(batch_shape=(batch, "
                "timesteps, features))`. Received: inputs.shape="
                f"{shape}"
            )
        if initial_state is not None:
            kwargs["initial_state"] = initial_state
        if mask is not None:
            kwargs["mask"] = mask
        return super().__call__(sequences, **kwargs)

    @property
    def supports_jit(self):
        """False where cuDNN may run (it has no XLA kernel), as in Keras.

        `compile(jit_compile="auto")` then does not XLA-compile the model.
        """
        if not self._supports_jit:
            return False
        return bool(
            dispatch.cudnn_blockers(self._path_options(), cudnn.gpu_available())
        )

    @supports_jit.setter
    def supports_jit(self, value):
        self._supports_jit = value

    def call(self, sequences, initial_state=None, mask=None, training=False):
        sequences = validation.as_float(sequences, self.compute_dtype)
        zero_states = initial_state is None and not self.stateful
        with export_graph.zero_initial_state(zero_states):
            return super().call(
                sequences,
                initial_state=initial_state,
                mask=mask,
                training=training,
            )

    @property
    def implementation_path(self):
        """The path this layer runs: "cudnn", "fused" or "step".

        - "cudnn" when a GPU is visible, the activations are tanh/sigmoid,
          recurrent_dropout is 0, unroll is False, use_bias is True and
          use_cudnn is not False. Masks must be right-padded (sequence
          lengths); other masked batches run "fused" instead, decided per
          batch at run time, as do calls under nested gradient tapes
          (cuDNN's backward op has no gradient).
        - "fused" (`keras_lstm.fused`: whole-sequence loop and hand-written
          backward, see `fused_loops`) for the same activations without
          recurrent_dropout or unroll, with any mask, go_backwards,
          return_sequences/return_state, initial_state, stateful, dropout,
          use_bias, mixed precision (the input projection in the low
          precision, the recurrence in float32).
        - "step" (the cell one step at a time) otherwise, or when
          implementation="step". With implementation="auto", calls for
          which the fused path would run without the C++ ops and measured
          slower than Keras's own loop also run step by step: with the XLA
          loops, steps whose recurrent matmul is large, and inference with
          more input features than units (see
          `keras_lstm.dispatch.auto_prefers_step`); and so do calls whose
          gradient may be differentiated again (nested gradient tapes, see
          `keras_lstm.second_order`).
        """
        return dispatch.select_path(
            self._path_options(), cudnn.gpu_available()
        )

    @property
    def fused_loops(self):
        """How the "fused" path runs its time loops here: "native" or "xla".

        "native" (the compiled C++ ops of `keras_lstm.native`) when the
        recurrence runs in float32 (float32 layers and mixed precision) on a
        machine without GPU and the ops could be built; "xla" (the loops
        compiled by XLA, same results) for float64, with a GPU, without a
        C++ compiler, or with ``KERAS_LSTM_NATIVE=0``. Code compiled with
        ``jit_compile=True`` also runs the XLA loops, which XLA can compile.
        """
        float64 = keras.backend.standardize_dtype(self.compute_dtype) == "float64"
        return fused.choose_loops(
            tf.float64 if float64 else tf.float32,
            cudnn.gpu_available(),
            inside_xla=False,
            native_available=native.available,
        )

    def _auto_loops(self, training):
        """The loops "auto" runs for this call: `fused_loops`, or "python"
        (standard ops) in a graph that may be saved (`keras_lstm.tracing`)."""
        if tracing.graph_may_be_saved(training):
            return "python"
        return self.fused_loops

    def _path_options(self):
        cell = self.cell
        return dispatch.LayerOptions(
            plain_cell=type(cell) is LSTMCell,
            activation=keras.activations.serialize(cell.activation),
            recurrent_activation=keras.activations.serialize(
                cell.recurrent_activation
            ),
            recurrent_dropout=cell.recurrent_dropout,
            unroll=self.unroll,
            use_bias=cell.use_bias,
            implementation=dispatch.check_implementation(self.implementation),
            use_cudnn=self.use_cudnn,
            per_gate_dropout=bool(cell.dropout)
            and hasattr(cell, "dropout_mask_count"),
        )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        """Runs the sequence on `implementation_path`; see `keras.layers.RNN`."""
        sequences = zero_masked_steps(sequences, mask)
        if export_graph.applies(self, mask, training):
            # Standard ops TFLite fuses; see keras_lstm.export_graph.
            return export_graph.lstm_sequence(
                self, sequences, initial_state, mask
            )
        path = self.implementation_path
        auto = dispatch.check_implementation(self.implementation) == "auto"
        # Any training value but False/None (a tensor, say) is a training
        # call: it keeps the gates for the backward pass.
        keep_gates = training is not None and training is not False
        if (
            path == "fused"
            and auto
            and dispatch.auto_prefers_step(
                sequences.shape[-1], self.units, sequences.shape[0],
                self._auto_loops(training), keep_gates,
            )
        ):
            path = "step"
        cell = self.cell
        if (
            path != "step"
            and auto
            and second_order.higher_order_possible(
                [sequences, *initial_state, cell.kernel,
                 cell.recurrent_kernel, cell.bias]
            )
        ):
            # A gradient of this call may be differentiated again (nested
            # tapes): Keras's step loop does that at Keras's speed; the fast
            # paths' own fallback (autodiff of their plain loop in the
            # backward pass) measured 3-4x slower (docs/design.md).
            path = "step"
        if path == "step":
            return keras.layers.RNN.inner_loop(
                self,
                sequences, initial_state, mask=mask, training=training
            )
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if training and cell.dropout > 0:
            # The cell's own per-sequence mask, so both paths drop the same.
            dropout_mask = cell.get_dropout_mask(sequences[:, 0, :])
            sequences = sequences * dropout_mask[:, None, :]
        args = dict(
            inputs=sequences,
            h0=initial_state[0],
            c0=initial_state[1],
            kernel=cell.kernel,
            # With recurrent_weight_dropout: the call's dropped kernel.
            recurrent_kernel=cell.recurrent_kernel_for_call(training),
            bias=cell.bias,
            mask=mask,
            go_backwards=self.go_backwards,
            return_sequences=self.return_sequences,
            zero_output_for_mask=self.zero_output_for_mask,
        )
        if path == "cudnn":
            return cudnn.cudnn_lstm_or_fused(**args)
        return fused.fused_lstm(**args, training=keep_gates)

    def get_config(self):
        config = super().get_config()  # Keras's: the cell's args, flat.
        config["use_cudnn"] = self.use_cudnn
        config["implementation"] = self.implementation
        if self.recurrent_weight_dropout:
            # Only then: keras.layers.LSTM still loads every other config.
            config["recurrent_weight_dropout"] = self.recurrent_weight_dropout
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def zero_masked_steps(sequences, mask):
    """`sequences` with zeros at masked steps (mask None: unchanged).

    Every path reads these: NaN or inf at a masked step would otherwise
    reach the weights' gradients as 0 * NaN, as it does in
    `keras.layers.LSTM`. Outputs and states do not change: masked steps'
    results are discarded, and their inputs get zero gradients.
    """
    if mask is None:
        return sequences
    if isinstance(mask, (list, tuple)):
        mask = mask[0]
    keep = tf.cast(mask, tf.bool)[:, :, None]
    return tf.where(keep, sequences, tf.zeros_like(sequences))


def _forward_to_cell(name):
    return property(
        lambda self: getattr(self.cell, name),
        doc=f"The cell's `{name}`.",
    )


for _name in _CELL_ARGS:
    setattr(LSTM, _name, _forward_to_cell(_name))
del _name
