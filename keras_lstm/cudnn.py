"""The GPU path: cuDNN's fused LSTM kernel on the layer's own weights.

cuDNN keeps an LSTM's weights in one flat "canonical" buffer: for each gate
(i, f, c, o — the same order as `keras_lstm.GATE_ORDER`) the input weights
as a (units, features) matrix, then the recurrent weights as (units, units)
matrices, each flattened row by row; then four input biases and four
recurrent biases. cuDNN adds the two biases, so the layer's bias goes in the
recurrent half and the input half is zeros (as `keras.layers.LSTM` does).

Never run by our CI: no GPU exists on the machines that test this package.
tests/test_cudnn_contract.py checks on CPU that this module calls
CudnnRNNV3 as Keras's own cuDNN path does (shapes, attributes, weight
packing, how results are read back), and benchmarks/gpu_check.py checks it
on a real GPU in one command.
"""

import tensorflow as tf

from keras_lstm import fused
from keras_lstm import second_order
from keras_lstm.cell import GATE_ORDER
from keras_lstm.devices import gpu_available  # noqa: F401 (part of this API)

_GATES = len(GATE_ORDER)


def to_cudnn_params(kernel, recurrent_kernel, bias):
    """Packs Keras LSTM weights into cuDNN's flat canonical buffer.

    Args:
        kernel: (features, 4 * units); recurrent_kernel: (units, 4 * units);
            bias: (4 * units,). Gate order `keras_lstm.GATE_ORDER`.

    Returns:
        1-D tensor of 4·units·(features + units) + 8·units values.
    """
    blocks = tf.split(kernel, _GATES, axis=1) + tf.split(
        recurrent_kernel, _GATES, axis=1
    )
    weights = [tf.reshape(tf.transpose(w), [-1]) for w in blocks]
    biases = [tf.zeros_like(bias), bias]  # input half, recurrent half
    return tf.concat(weights + biases, axis=0)


def from_cudnn_params(params, features, units):
    """Unpacks cuDNN's canonical buffer into (kernel, recurrent_kernel, bias).

    The inverse of `to_cudnn_params`; the bias is the sum of cuDNN's input
    and recurrent biases, which is what the kernel computes with.
    """
    expected = _GATES * units * (features + units) + 2 * _GATES * units
    if params.shape[0] != expected:
        raise ValueError(
            f"A cuDNN LSTM buffer for features={features}, units={units} has "
            f"{expected} values. Received: params.shape={tuple(params.shape)}"
        )
    sizes = [units * features] * _GATES + [units * units] * _GATES
    sizes += [2 * _GATES * units]
    *weights, biases = tf.split(params, sizes)
    kernel = tf.concat(
        [tf.transpose(tf.reshape(w, [units, features])) for w in weights[:4]],
        axis=1,
    )
    recurrent_kernel = tf.concat(
        [tf.transpose(tf.reshape(w, [units, units])) for w in weights[4:]],
        axis=1,
    )
    input_bias, recurrent_bias = tf.split(biases, 2)
    return kernel, recurrent_kernel, input_bias + recurrent_bias


def cudnn_accepts_mask(mask):
    """True (a bool tensor) if cuDNN can take this (batch, time) mask.

    cuDNN takes per-sequence lengths: every row must be right-padded (all
    True steps first, then only False) and have at least one True step.
    """
    mask = tf.cast(mask, tf.bool)
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    as_lengths = tf.sequence_mask(lengths, maxlen=tf.shape(mask)[1])
    return tf.logical_and(
        tf.reduce_all(tf.equal(mask, as_lengths)),
        tf.reduce_all(lengths > 0),
    )


def cudnn_lstm(
    inputs, h0, c0, kernel, recurrent_kernel, bias, mask, go_backwards,
    return_sequences, zero_output_for_mask=False,
):
    """cuDNN forward (and, through TF's registered gradient, backward).

    Same arguments and results as `keras_lstm.fused.fused_lstm`; ``mask``
    must be None or accepted by `cudnn_accepts_mask`. The kernel runs
    batch-major (``time_major=False``), where its states are shaped
    (batch, layers, units): h0 and c0 go in as (batch, 1, units) and the
    final states come back as ``h[:, 0]``.
    """
    batch, steps = tf.shape(inputs)[0], tf.shape(inputs)[1]
    if mask is None:
        lengths = tf.fill([batch], steps)
    else:
        lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    if go_backwards:
        # Each sequence reversed within its length: padding stays at the end.
        inputs = tf.reverse_sequence(inputs, lengths, seq_axis=1, batch_axis=0)
    dtype = inputs.dtype
    params = to_cudnn_params(
        *(tf.cast(w, dtype) for w in (kernel, recurrent_kernel, bias))
    )
    outputs, h, c, _, _ = tf.raw_ops.CudnnRNNV3(
        input=inputs,
        input_h=tf.cast(h0, dtype)[:, None],
        input_c=tf.cast(c0, dtype)[:, None],
        params=params,
        sequence_lengths=lengths,
        rnn_mode="lstm",
        input_mode="linear_input",
        direction="unidirectional",
        is_training=True,
        time_major=False,
    )
    h, c = h[:, 0], c[:, 0]
    if go_backwards:
        # Processing order, padded steps first: zeros, as keras.layers.RNN
        # outputs before a sequence's first step.
        outputs = tf.reverse(
            tf.reverse_sequence(outputs, lengths, seq_axis=1, batch_axis=0),
            [1],
        )
    elif mask is not None and not zero_output_for_mask:
        # cuDNN writes zeros after each sequence's end; Keras's step loop
        # repeats the last output there.
        outputs = tf.where(tf.cast(mask, tf.bool)[:, :, None], outputs,
                           h[:, None])
    last_output = outputs[:, -1]
    if not return_sequences:
        outputs = last_output[:, None]
    return last_output, outputs, [h, c]


def cudnn_lstm_or_fused(inputs, h0, c0, kernel, recurrent_kernel, bias, mask,
                        go_backwards, return_sequences,
                        zero_output_for_mask=False):
    """cuDNN when it can run this batch, else the fused path.

    The fused path runs masks that are not right-padded (left padding,
    holes, rows with no step; decided per batch) and calls whose gradient
    may be differentiated again (`keras_lstm.second_order`): cuDNN's
    backward op has no gradient.
    """
    args = (inputs, h0, c0, kernel, recurrent_kernel, bias, mask,
            go_backwards, return_sequences, zero_output_for_mask)
    if second_order.higher_order_possible(
        [inputs, h0, c0, kernel, recurrent_kernel, bias]
    ):
        return fused.fused_lstm(*args)
    if mask is None:
        return cudnn_lstm(*args)
    return tf.cond(
        cudnn_accepts_mask(mask),
        lambda: cudnn_lstm(*args),
        lambda: fused.fused_lstm(*args),
    )
