"""The graph an `LSTM` layer traces for export: standard ops TFLite can fuse.

In graphs that may be saved (`keras_lstm.tracing`: `model.export`,
`tf.saved_model.save`, TFLite's converters), a plain float32
`keras_lstm.LSTM` runs its sequence through `keras_lstm_composite`: a
`tf.function` carrying the attributes of Keras 2's LSTM (``api_implements``
starting with ``"lstm_"``, ``time_major``, ``go_backwards``), its argument
order ``(inputs, h0, c0, kernel, recurrent_kernel, bias)`` and its five
results ``(last_output, outputs, h, c, runtime)``. TFLite's converter
recognises such a function and replaces its body with one fused
``UNIDIRECTIONAL_SEQUENCE_LSTM`` op (see tensorflow's
``compiler/mlir/lite/transforms/prepare_composite_functions_tf.cc`` and
``utils/lstm_utils.cc``). The body is `keras_lstm.fused` on plain TensorFlow
ops, so TF Serving and any process without keras_lstm run the same numbers.

The converter fuses only when h0 and c0 have static shapes (with an open
batch size, zero initial states enter as one row: `_open_batch_states`) and
only the first two results are used; it has no mask input and
clips the cell state to [-10, 10] (`keras_lstm.tflite.without_cell_clip`
undoes that). So this module computes what Keras returns besides the
outputs with standard ops around the call:

- masks, any (left or right padding, holes, all-masked rows): compaction.
  The fused op has no mask, but an LSTM is causal: if each row's valid steps
  come first, in order, the outputs at them are Keras's. So, in processing
  order (a backward layer reverses inputs and mask first, as Keras does),
  each row's valid steps are moved to the front by a stable permutation
  (TOPK_V2 on the keys ``t`` for valid and ``T + t`` for masked steps, then
  GATHER), the fused op runs forward, and Keras's output at step t is the
  compacted output at ``cumsum(mask)[t] - 1``: the previous valid step's
  output at masked steps (zeros before the first valid step, or at every
  masked step with ``zero_output_for_mask``). Masked layers take this form
  in every saved graph (CPU), so `model.export` followed by
  `TFLiteConverter.from_saved_model` fuses them as well.
- a single step (T = 1, as in a one-step sampling model) has no time loop to
  fuse: it is the cell's step on plain ops (FULLY_CONNECTED and element-wise),
  which also gives c_T without the second copy of the weights that the
  closed form below needs.
- the final cell state c_T (``return_state``, stateful layers): every step's
  gates follow from the known h_{t-1} in one matmul, and the linear recurrence
  ``c_t = f_t c_{t-1} + i_t ĉ_t`` sums in closed form with a reversed
  cumulative sum of ``log f``. This stores the layer's weights a second time
  in the .tflite (the fused op keeps its own, split per gate); without
  return_state the converter prunes it.
"""

import contextlib
import functools
import itertools
import sys
import threading
import uuid
import warnings

import keras
import tensorflow as tf

from keras_lstm import fused
from keras_lstm import tracing
from keras_lstm.cell import lstm_equations

_scope = threading.local()
_distinct = itertools.count(2)  # Factors for `_fresh_states` (1 would fold).
# Code that converts to TFLite (any OS separator).
_TFLITE_CONVERTERS = ("tensorflow/lite/python/", "keras/src/export/litert")


@contextlib.contextmanager
def bound_for_tflite():
    """Layers traced in this block take the TFLite form (see module doc).

    Saved graphs take it anyway on a CPU; on a machine with a GPU they keep
    cuDNN unless traced here (TFLite's converter and Keras's LiteRT export
    are recognised by themselves). Use it around `model.export` on a GPU
    machine when the SavedModel goes to `TFLiteConverter.from_saved_model`.
    """
    previous = getattr(_scope, "active", False)
    _scope.active = True
    try:
        yield
    finally:
        _scope.active = previous


# Its earlier name (from before compaction, when masks went in as lengths).
masks_as_lengths = bound_for_tflite


@contextlib.contextmanager
def zero_initial_state(zero):
    """Declares whether layers called in this block start from zero states
    (no ``initial_state``, not stateful); see `_open_batch_states`."""
    previous = getattr(_scope, "zero_states", False)
    _scope.zero_states = bool(zero)
    try:
        yield
    finally:
        _scope.zero_states = previous


def applies(layer, mask, training):
    """Whether `layer` traces the export graph of this module now.

    In inference graphs that may be saved (`keras_lstm.tracing`), for plain
    float32 layers, masked or not; on a GPU only when the graph is bound for
    TFLite.
    """
    if training is not None and training is not False:
        return False  # Training graphs need the layer's dropout and gradients.
    if not tracing.graph_may_be_saved(training) or export_blockers(layer):
        return False
    for_tflite = (getattr(_scope, "active", False)
                  or tracing._stack_has(_TFLITE_CONVERTERS))
    if for_tflite:
        return True
    # A SavedModel traced on a GPU keeps cuDNN (standard ops too).
    return layer.implementation_path != "cudnn"


def _tracing_default_save_signature():
    """Whether Keras's `_default_save_signature` is being traced.

    Saving traces it for every model object it reaches with that model's own
    (open) batch, also for a model wrapped by `keras_lstm.tflite.fixed_batch`;
    the converter never converts that function.
    """
    frame = sys._getframe(1)
    while frame is not None:
        # Autograph renames it tf__serving_default, in a generated file.
        if frame.f_code.co_name in ("serving_default", "tf__serving_default"):
            return True
        frame = frame.f_back
    return False


def warn_open_batch(layer, sequences):
    """Warns when a graph bound for TFLite has an open batch size.

    With zero initial states the fused op gets states of one row (see
    `_open_batch_states`): the .tflite runs at batch 1 only. With initial
    states given, the converter cannot fuse and fails deep inside (on
    `TensorListReserve`). (Raising here would not reach the user: the
    converter catches errors of its first attempt and retries another way.)
    """
    if (sequences.shape[0] is not None
            or not tracing._stack_has(_TFLITE_CONVERTERS)
            or _tracing_default_save_signature()):
        return
    fix = ("keras_lstm.tflite.convert(model, batch_size=N), a model built on "
           "keras.Input(batch_shape=(N, timesteps, features)), or "
           "model.export(..., input_signature=[tf.TensorSpec((N, timesteps, "
           "features))]) with the batch size N you need")
    if getattr(_scope, "zero_states", False):
        warnings.warn(
            f"Layer '{layer.name}' is converted to TFLite with an unknown "
            "batch size: its fused LSTM op keeps states of batch 1, so the "
            ".tflite runs one sequence at a time (resizing its input to "
            f"another batch size fails). For another batch size use {fix}. "
            f"Received: inputs.shape={tuple(sequences.shape)}",
            stacklevel=2,
        )
        return
    warnings.warn(
        f"Layer '{layer.name}' is converted to TFLite with an unknown batch "
        "size and initial states given; TFLite's fused LSTM op then needs a "
        f"fixed batch size. Use {fix}. Received: "
        f"inputs.shape={tuple(sequences.shape)}",
        stacklevel=2,
    )


def export_blockers(layer):
    """Reasons `layer` cannot trace the fusable export graph (empty if it can)."""
    options = layer._path_options()
    reasons = []
    if not options.plain_cell:
        reasons.append("the cell is a variant, not keras_lstm.LSTMCell")
    if options.activation != "tanh" or options.recurrent_activation != "sigmoid":
        reasons.append("activations other than tanh and sigmoid")
    if options.unroll:
        reasons.append("unroll=True")
    if keras.backend.standardize_dtype(layer.compute_dtype) != "float32":
        reasons.append(f"compute dtype {layer.compute_dtype} (needs float32)")
    return reasons


def _lstm(inputs, h0, c0, kernel, recurrent_kernel, bias, go_backwards):
    """Keras 2's LSTM interface on `keras_lstm.fused` with plain TF ops.

    States of one row (see `_open_batch_states`) serve every row.
    """
    if h0.shape[0] == 1 and inputs.shape[0] != 1:
        shape = tf.stack([tf.shape(inputs)[0], tf.shape(h0)[1]])
        h0, c0 = tf.broadcast_to(h0, shape), tf.broadcast_to(c0, shape)
    last_output, outputs, (h, c) = fused.fused_lstm(
        inputs, h0, c0, kernel, recurrent_kernel, bias,
        go_backwards=go_backwards, return_sequences=True, training=False,
        loops="python",
    )
    runtime = tf.constant(0.0)  # Keras 2's device marker; unused.
    return last_output, outputs, h, c, runtime


def keras_lstm_composite(go_backwards):
    """A new `tf.function` TFLite fuses: `(x, h0, c0, kernel, rk, bias) -> 5 results`.

    Each call gets a ``api_implements`` name of its own: TensorFlow's
    implementation selector swaps functions of one name for each other, which
    would run a trace made for other shapes.
    """
    return tf.function(
        functools.partial(_lstm, go_backwards=go_backwards),
        autograph=False,
        experimental_attributes={
            "api_implements": f"lstm_keras_lstm_{uuid.uuid4().hex}",
            "api_preferred_device": "CPU",
            "time_major": False,
            "go_backwards": go_backwards,
        },
    )


def _fresh_states(x, h0, c0):
    """Copies of h0 and c0 that TFLite computes anew at every invoke.

    TFLite keeps the LSTM op's states in variable tensors that the op
    overwrites with the final states: a constant initial state would carry
    over from one invoke to the next, and a model input would be clobbered
    before other ops read it. Adding a zero computed from the input makes the
    op's states tensors of their own, written before each run (the zero is
    ``min(|x|, 0)``, which only NaN inputs spoil, as they spoil the LSTM).
    Every call scales it by its own factor and h0 adds it while c0 subtracts
    it: the converter must not merge the states of two ops, nor h0 with c0,
    even when all of them are the same zeros.
    """
    zero = tf.minimum(tf.abs(x[:, :1, 0]), 0.0) * float(next(_distinct))  # (B, 1)
    return h0 + zero, c0 - zero


def _open_batch_states(x, units):
    """Zero states of static shape (1, units) for inputs of an open batch size.

    TFLite's converter fuses only states of a static shape
    (``CheckFusableKerasLstm`` in tensorflow's
    ``prepare_composite_functions_tf.cc``), and states of an open batch have
    none. Zero initial states need no batch: the composite's body broadcasts
    them, so TensorFlow runs any batch, while the fused op keeps states of
    one row and so runs at batch 1 only (its kernel refuses other batches).
    The zero from the input plays the part it plays in `_fresh_states`.
    """
    factor = float(next(_distinct))
    zero = tf.reduce_sum(tf.minimum(tf.abs(x[:1, :1, :1]), 0.0)) * factor
    zeros = tf.zeros([1, units], x.dtype)
    return zeros + zero, zeros - zero


def _composite_states(layer, x, h0, c0):
    """The states the composite takes (see `_fresh_states`, `_open_batch_states`)."""
    if x.shape[0] is None and getattr(_scope, "zero_states", False):
        return _open_batch_states(x, layer.cell.units)
    return _fresh_states(x, h0, c0)


def _compacted(x, mask):
    """`x` with each row's valid steps first, in order, and their counts.

    Args:
        x: (B, T, F) inputs in processing order; mask: bool (B, T).

    Returns:
        ``(x_c, lengths)``: ``x_c[b, j]`` is row b's j-th valid step for
        ``j < lengths[b]`` (then its masked steps, in order).
    """
    steps = x.shape[1] if x.shape[1] is not None else tf.shape(x)[1]
    time = tf.range(steps)[None, :]  # (1, T)
    # Distinct keys, valid steps first: the order top_k gives is stable.
    keys = tf.where(mask, time, time + steps)
    order = tf.math.top_k(-keys, k=steps, sorted=True).indices  # (B, T)
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    return tf.gather(x, order, axis=1, batch_dims=1), lengths


def _final_cell_state(x, hs, h0, c0, kernel, recurrent_kernel, bias, valid):
    """c after the last valid step, from the inputs and the outputs h_t.

    Args:
        x: (B, T, F) inputs in processing order; hs: (B, T, U) the h after
            each of those steps; valid: None or bool (B, T), steps that count
            (a prefix of each row).
    """
    h_prev = tf.concat([h0[:, None], hs[:, :-1]], axis=1)  # h_{t-1}: (B, T, U)
    z = tf.matmul(x, kernel) + tf.matmul(h_prev, recurrent_kernel) + bias
    # c_hat, f, i of every step; c_tm1 is unknown (and unused) here.
    gates = lstm_equations(z, tf.zeros_like(hs))
    log_f = tf.math.log(gates.f)
    update = gates.i * gates.c_hat
    if valid is not None:
        keep = valid[:, :, None]
        log_f = tf.where(keep, log_f, tf.zeros_like(log_f))
        update = tf.where(keep, update, tf.zeros_like(update))
    # c_T = sum_t update_t * prod_{s>t} f_s + c0 * prod_s f_s
    later = tf.math.cumsum(log_f, axis=1, exclusive=True, reverse=True)
    return (tf.reduce_sum(update * tf.exp(later), axis=1)
            + c0 * tf.exp(tf.reduce_sum(log_f, axis=1)))


def _single_step(x, h0, c0, kernel, recurrent_kernel, bias, mask):
    """One step (T = 1) as plain ops: nothing to fuse, and c without a
    second copy of the weights (see the module docstring)."""
    z = tf.matmul(x[:, 0], kernel) + tf.matmul(h0, recurrent_kernel) + bias
    gates = lstm_equations(z, c0)
    h, c, output = gates.h, gates.c, gates.h
    if mask is not None:
        kept = tf.cast(mask, tf.bool)[:, :1]  # (B, 1)
        h, c = tf.where(kept, h, h0), tf.where(kept, c, c0)
        output = tf.where(kept, output, tf.zeros_like(output))
    return output, output[:, None], [h, c]


def lstm_sequence(layer, sequences, initial_state, mask):
    """The export graph of `layer` (see the module docstring).

    Returns ``(last_output, outputs, [h, c])`` as `keras.layers.RNN.inner_loop`.
    """
    warn_open_batch(layer, sequences)
    cell = layer.cell
    h0, c0 = initial_state
    kernel, recurrent_kernel = cell.kernel, cell.recurrent_kernel
    bias = (cell.bias if cell.use_bias
            else tf.zeros([4 * cell.units], sequences.dtype))
    weights = (tf.convert_to_tensor(kernel), tf.convert_to_tensor(recurrent_kernel),
               tf.convert_to_tensor(bias))
    if isinstance(mask, (list, tuple)):
        mask = mask[0]
    if sequences.shape[1] == 1:
        return _single_step(sequences, h0, c0, *weights, mask)
    if mask is None:
        last_output, outputs, *_ = keras_lstm_composite(layer.go_backwards)(
            sequences, *_composite_states(layer, sequences, h0, c0), *weights
        )
        x = tf.reverse(sequences, [1]) if layer.go_backwards else sequences
        c = _final_cell_state(x, outputs, h0, c0, *weights, valid=None)
        return last_output, outputs, [last_output, c]

    # Processing order: Keras reverses the inputs and the mask, then runs
    # forward, and returns the outputs in that order.
    mask = tf.cast(mask, tf.bool)
    x = sequences
    if layer.go_backwards:
        x, mask = tf.reverse(x, [1]), tf.reverse(mask, [1])
    x, lengths = _compacted(x, mask)
    _, hs, *_ = keras_lstm_composite(False)(
        x, *_composite_states(layer, x, h0, c0), *weights
    )
    valid = tf.sequence_mask(lengths, tf.shape(x)[1])  # A prefix of each row.
    c = _final_cell_state(x, hs, h0, c0, *weights, valid=valid)
    seen = lengths > 0
    last_h = tf.gather(hs, tf.maximum(lengths - 1, 0), axis=1, batch_dims=1)
    h = tf.where(seen[:, None], last_h, h0)
    # Step t shows the output after the valid steps up to t: the step's own
    # when valid, else the previous valid one's (or zeros).
    done = tf.math.cumsum(tf.cast(mask, tf.int32), axis=1)  # (B, T)
    outputs = tf.gather(hs, tf.maximum(done - 1, 0), axis=1, batch_dims=1)
    shown = mask if layer.zero_output_for_mask else done > 0
    outputs = tf.where(shown[:, :, None], outputs, tf.zeros_like(outputs))
    # Keras's last output is its last step's, masked as the others.
    return outputs[:, -1], outputs, [h, c]
