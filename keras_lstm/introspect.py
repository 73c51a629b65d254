"""Looking inside a trained LSTM: gate traces and TensorBoard gate heatmaps.

`gate_trace` re-runs a layer's own cell (its `preactivations` and `step`, the
code the layer trains with) over a batch and keeps every gate at every step.
`GateHeatmapCallback` draws those traces for a fixed example each epoch, as
figures (`keras_lstm.gate_figures`) in TensorBoard.
"""

import collections

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_lstm import gate_figures
from keras_lstm import validation
from keras_lstm.cell import GateValues
from keras_lstm.cell import LSTMCell

GateTrace = collections.namedtuple("GateTrace", GateValues._fields)
GateTrace.__doc__ = """The gates and states of every step, NumPy arrays.

Fields i, f, c_hat, o, c, h, each (batch, time, size): size is `units`,
except h of a `ProjectionLSTMCell`, which is (batch, time, projection_units).
"""


def gate_trace(layer_or_cell, inputs, initial_state=None, mask=None):
    """Gate activations and states of an LSTM over a batch of sequences.

    Works with `keras_lstm.LSTM`, the variant layers, `keras.layers.RNN` of
    any `keras_lstm.LSTMCell`, a bare built cell, `keras.layers.LSTM` (its
    weights have the same layout) and `keras.layers.Bidirectional` of these.
    Dropout and zoneout noise are off (inference mode). The math runs in the
    layer's variable dtype (float32 under mixed precision).

    Time is aligned with `inputs`: ``trace.f[:, t]`` is the forget gate when
    the layer read ``inputs[:, t]``, also for ``go_backwards`` layers (which
    read the last step first). At a masked step, c and h are the states the
    layer carries over (unchanged); i, f, c_hat and o are the values the cell
    computed there and discarded.

    Args:
        layer_or_cell: A built LSTM layer or cell, see above.
        inputs: float array (batch, time, features), the layer's inputs.
        initial_state: Optional list of initial states (default zeros); for a
            Bidirectional layer the forward states then the backward ones.
        mask: Optional bool array (batch, time); False marks padding.

    Returns:
        A `GateTrace`; for a Bidirectional layer a dict
        ``{"forward": GateTrace, "backward": GateTrace}``.

    Example:

    >>> trace = keras_lstm.gate_trace(model.get_layer("lstm"), x)
    >>> trace.f.shape                     # (batch, time, units)
    """
    if isinstance(layer_or_cell, keras.layers.Bidirectional):
        states = [None, None]
        if initial_state is not None:
            half = len(initial_state) // 2
            states = [initial_state[:half], initial_state[half:]]
        return {
            "forward": gate_trace(
                layer_or_cell.forward_layer, inputs, states[0], mask
            ),
            "backward": gate_trace(
                layer_or_cell.backward_layer, inputs, states[1], mask
            ),
        }
    cell, go_backwards = _cell_of(layer_or_cell)
    name = getattr(layer_or_cell, "name", "cell")
    shape = validation.check_sequence_input(inputs, name)
    validation.check_mask(mask, shape, name)
    dtype = cell.variable_dtype
    x = ops.convert_to_tensor(inputs, dtype=dtype)
    h0, c0 = _initial_states(cell, initial_state, ops.shape(x)[0], dtype,
                             name)
    if mask is None:
        mask = ops.ones(ops.shape(x)[:2], dtype="bool")
    # Time-major for tf.scan, which walks the steps (last first when
    # go_backwards) and stacks what each returns at that step's index.
    steps = (ops.transpose(x, (1, 0, 2)),
             ops.transpose(ops.convert_to_tensor(mask, "bool"))[..., None])
    trace = _scan_cell(cell, steps, h0, c0, go_backwards)
    return GateTrace(
        *(np.swapaxes(ops.convert_to_numpy(v), 0, 1) for v in trace)
    )


def _scan_cell(cell, steps, h0, c0, reverse):
    """GateValues of every step, time-major, from the cell's own code."""

    def one_step(previous, step_inputs):
        x_t, keep = step_inputs
        z = cell.preactivations(x_t, previous.h, training=False)
        gates = cell.step(z, previous.c, previous.h, training=False)
        # A masked step carries the states over, as keras.layers.RNN does.
        return gates._replace(
            h=ops.where(keep, gates.h, previous.h),
            c=ops.where(keep, gates.c, previous.c),
        )

    zeros = ops.zeros_like(c0)
    start = GateValues(i=zeros, f=zeros, c_hat=zeros, o=zeros, c=c0, h=h0)
    run = tf.function(tf.scan, autograph=False)
    return run(one_step, steps, initializer=start, reverse=reverse)


def _cell_of(layer_or_cell):
    """(keras_lstm cell, go_backwards) of a supported layer or cell."""
    go_backwards = False
    cell = layer_or_cell
    if isinstance(layer_or_cell, keras.layers.RNN):
        cell = layer_or_cell.cell
        go_backwards = layer_or_cell.go_backwards
    supported = (LSTMCell, keras.layers.LSTMCell)
    if not isinstance(cell, supported):
        raise TypeError(
            "gate_trace needs a keras_lstm.LSTMCell (or a variant), a "
            "keras.layers.LSTMCell, or an RNN/LSTM layer or Bidirectional "
            "wrapper of one. Received: "
            f"{type(layer_or_cell).__name__} with cell {type(cell).__name__}"
        )
    if not cell.built:
        raise ValueError(
            "gate_trace needs a built layer (call it on data once, or load "
            f"trained weights first). Received: unbuilt {cell.name!r}"
        )
    if isinstance(cell, LSTMCell):
        return cell, go_backwards
    # keras.layers.LSTMCell packs its weights exactly as LSTMCell does.
    twin = LSTMCell(
        cell.units,
        activation=cell.activation,
        recurrent_activation=cell.recurrent_activation,
        use_bias=cell.use_bias,
        dtype=cell.dtype_policy,
    )
    twin.build((None, cell.kernel.shape[0]))
    twin.set_weights(cell.get_weights())
    return twin, go_backwards


def _initial_states(cell, initial_state, batch, dtype, name):
    if initial_state is None:
        return [ops.zeros((batch, size), dtype=dtype)
                for size in cell.state_size]
    states = [ops.convert_to_tensor(s, dtype=dtype) for s in initial_state]
    expected = [(batch, size) for size in cell.state_size]
    shapes = [tuple(s.shape) for s in states]
    if len(states) != len(expected) or any(
        got[1:] != (want[1],) for got, want in zip(shapes, expected)
    ):
        raise ValueError(
            f"gate_trace of '{name}' expects initial_state shaped "
            f"{[('batch', s) for s in cell.state_size]}. "
            f"Received: initial_state shapes={shapes}"
        )
    return states


class GateHeatmapCallback(keras.callbacks.Callback):
    """Writes gate heatmaps of fixed examples to TensorBoard every n epochs.

    Each write adds one figure per example and per name in `gates`, tagged
    ``gates/<layer>/<name>`` (``gates/<layer>/<forward|backward>/<name>`` for
    a Bidirectional layer): units down, time steps across, a colour bar (gates
    0..1), the gate, layer and training step in the title, and `time_marks`
    drawn on the time axis (see `keras_lstm.gate_figures.gate_figure`). The
    TensorBoard step is the epoch (from 0), or the step given to `write`.
    Needs matplotlib (checked here, before training starts).

    Args:
        layer: The traced layer, or its name in the trained model.
        example_inputs: Inputs of the *model* (what `model.predict` takes) for
            a few fixed examples, batch first; the callback computes the
            layer's own inputs (and mask, e.g. from `Embedding(mask_zero=True)`)
            with the trained model's layers below it.
        log_dir: Directory of the TensorBoard event file.
        every_n_epochs: Write after every n-th epoch.
        gates: Fields of `GateTrace` to draw (default f, i, o and c).
        time_marks: Optional time steps to mark, one sequence per example
            (e.g. the adding problem's two marked positions).

    Example:

    >>> model.fit(x, y, callbacks=[keras_lstm.GateHeatmapCallback(
    ...     "lstm", x[:2], log_dir="/tmp/run/gates")])
    """

    def __init__(
        self,
        layer,
        example_inputs,
        log_dir,
        every_n_epochs=1,
        gates=("f", "i", "o", "c"),
        time_marks=None,
    ):
        super().__init__()
        if (
            isinstance(every_n_epochs, bool)
            or not isinstance(every_n_epochs, int)
            or every_n_epochs < 1
        ):
            raise ValueError(
                "`every_n_epochs` must be a positive integer. "
                f"Received: every_n_epochs={every_n_epochs!r}"
            )
        unknown = [g for g in gates if g not in GateTrace._fields]
        if unknown:
            raise ValueError(
                f"`gates` must be fields of GateTrace {GateTrace._fields}. "
                f"Received: gates={tuple(gates)}"
            )
        if time_marks is not None:
            time_marks = [np.asarray(m, dtype=np.int64).ravel() for m in time_marks]
            if not isinstance(example_inputs, (list, tuple, dict)) and (
                    len(time_marks) != len(example_inputs)):
                raise ValueError(
                    "`time_marks` needs one sequence of time steps per example. "
                    f"Received: {len(time_marks)} for {len(example_inputs)} examples"
                )
        gate_figures.require_matplotlib()
        self.layer = layer
        self.example_inputs = example_inputs
        self.log_dir = log_dir
        self.every_n_epochs = every_n_epochs
        self.gates = tuple(gates)
        self.time_marks = time_marks
        self._writer = None

    def _traced_layer(self):
        if isinstance(self.layer, str):
            return self.model.get_layer(self.layer)
        return self.layer

    def layer_inputs(self, layer):
        """(inputs, mask) that `layer` receives for the fixed examples.

        The mask is the one Keras propagates to the layer (for instance
        from `Embedding(mask_zero=True)`); a mask passed explicitly to the
        layer in the model's code is not recovered.
        """
        sequences = layer.input
        if isinstance(sequences, (list, tuple)):  # (sequences, mask, ...)
            sequences = sequences[0]
        model_inputs = self.model.inputs
        if len(model_inputs) == 1:
            model_inputs = model_inputs[0]
        if sequences is model_inputs:
            return self.example_inputs, None
        x = keras.Model(model_inputs, sequences)(self.example_inputs)
        mask = getattr(x, "_keras_mask", None)
        return x, mask

    def figures(self, step_label):
        """{tag: [matplotlib Figure per example]} of the layer traced now."""
        layer = self._traced_layer()
        x, mask = self.layer_inputs(layer)
        traces = gate_trace(layer, x, mask=mask)
        if not isinstance(traces, dict):
            traces = {"": traces}
        found = {}
        for direction, trace in traces.items():
            prefix = "/".join(p for p in ("gates", layer.name, direction) if p)
            layer_name = f"'{layer.name}'" + (f" ({direction})" if direction else "")
            for name in self.gates:
                values = getattr(trace, name)
                found[f"{prefix}/{name}"] = [
                    gate_figures.gate_figure(
                        v, name, layer_name, step_label,
                        marks=() if self.time_marks is None else self.time_marks[k],
                        subtitle=f"example {k + 1} of {len(values)}"
                        if len(values) > 1 else "",
                    )
                    for k, v in enumerate(values)
                ]
        return found

    def write(self, step, step_label=None):
        """Traces the layer now and writes its figures at TensorBoard `step`.

        `step_label` is the title's "when" (default "training step <step>").
        """
        figures = self.figures(step_label or f"training step {step}")
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default():
            for tag, batch in figures.items():
                tf.summary.image(
                    tag,
                    np.stack([gate_figures.figure_to_rgb(f) for f in batch]),
                    step=step,
                    max_outputs=len(batch),
                    description="rows are units, columns are time steps",
                )
        self._writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs == 0:
            self.write(epoch, step_label=f"end of epoch {epoch + 1}")

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
