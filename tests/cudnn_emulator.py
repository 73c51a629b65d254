"""A CPU stand-in for `tf.raw_ops.CudnnRNNV3` (LSTM), for contract tests.

Installed in place of the op (`install`), it records every call. In a graph
being traced it passes the call on to the real op, so the graph holds a real
CudnnRNNV3 node; eagerly it checks its arguments as TensorFlow's GPU kernel
does (tensorflow/core/kernels/cudnn_rnn_ops.cc: input_h and input_c shaped
(layers, batch, units) time-major and (batch, layers, units) batch-major,
the params buffer's size) and computes what cuDNN computes: an LSTM over
each sequence's first `sequence_lengths` steps, zeros after them, the final
states taken at each sequence's last valid step, weights read from cuDNN's
canonical buffer (per gate i, f, c, o: input weights (units, features) row
by row, then recurrent weights (units, units), then 4 input biases and 4
recurrent biases, summed). Written with TensorFlow ops, so gradients flow.
It shares no code with keras_lstm.cudnn or Keras: the tests run both
through it and compare.
"""

import tensorflow as tf

REAL_OP = tf.raw_ops.CudnnRNNV3
ATTRIBUTES = ("rnn_mode", "input_mode", "direction", "dropout", "seed",
              "seed2", "num_proj", "is_training", "time_major")


class KernelArgumentError(AssertionError):
    """An argument the GPU kernel would reject.

    Not tf.errors.InvalidArgumentError: Keras turns that into a silent
    fallback to its CPU loop, which would hide the failure from the tests.
    """


class CudnnRNNV3Recorder:
    """Callable with CudnnRNNV3's signature; `calls` holds each call's
    arguments (tensors) and attributes."""

    def __init__(self):
        self.calls = []

    def __call__(self, input, input_h, input_c, params, sequence_lengths,
                 rnn_mode="lstm", input_mode="linear_input",
                 direction="unidirectional", dropout=0.0, seed=0, seed2=0,
                 num_proj=0, is_training=True, time_major=True, name=None):
        attributes = dict(
            rnn_mode=rnn_mode, input_mode=input_mode, direction=direction,
            dropout=dropout, seed=seed, seed2=seed2, num_proj=num_proj,
            is_training=is_training, time_major=time_major)
        tensors = dict(input=input, input_h=input_h, input_c=input_c,
                       params=params, sequence_lengths=sequence_lengths)
        self.calls.append(dict(attributes=attributes, **tensors))
        if not tf.executing_eagerly():
            return REAL_OP(**tensors, **attributes, name=name)
        _check(attributes, **tensors)
        return _lstm(time_major, **tensors)


def install(monkeypatch):
    """Replaces tf.raw_ops.CudnnRNNV3 for one test; returns the recorder."""
    recorder = CudnnRNNV3Recorder()
    monkeypatch.setattr(tf.raw_ops, "CudnnRNNV3", recorder)
    return recorder


def _check(attributes, input, input_h, input_c, params, sequence_lengths):
    if (attributes["rnn_mode"], attributes["input_mode"],
            attributes["direction"], attributes["num_proj"]) != (
            "lstm", "linear_input", "unidirectional", 0):
        raise KernelArgumentError(f"emulated: one plain LSTM only, {attributes}")
    if input.shape.rank != 3 or input_h.shape.rank != 3:
        raise KernelArgumentError("RNN input and input_h must be 3-D")
    time_major = attributes["time_major"]
    batch = input.shape[1] if time_major else input.shape[0]
    layers = input_h.shape[0] if time_major else input_h.shape[1]
    units = input_h.shape[2]
    expected = ((layers, batch, units) if time_major
                else (batch, layers, units))
    if tuple(input_h.shape) != expected:
        raise KernelArgumentError(
            f"Invalid input_h shape: {tuple(input_h.shape)} {expected}")
    if tuple(input_c.shape) != expected:
        raise KernelArgumentError(
            f"input_h and input_c must have the same shape: "
            f"{tuple(input_h.shape)} {tuple(input_c.shape)}")
    if layers != 1:
        raise KernelArgumentError(f"emulated: one layer only, got {layers}")
    features = input.shape[2]
    size = 4 * units * (features + units) + 8 * units
    if tuple(params.shape) != (size,):
        raise KernelArgumentError(
            f"params: expected {size} values, got {tuple(params.shape)}")
    if tuple(sequence_lengths.shape) != (batch,):
        raise KernelArgumentError(
            f"sequence_lengths: expected ({batch},), got "
            f"{tuple(sequence_lengths.shape)}")


def _lstm(time_major, input, input_h, input_c, params, sequence_lengths):
    x = tf.transpose(input, [1, 0, 2]) if time_major else input  # (B, T, F)
    h = input_h[0] if time_major else input_h[:, 0]
    c = input_c[0] if time_major else input_c[:, 0]
    features, units = x.shape[2], h.shape[1]
    sizes = [units * features] * 4 + [units * units] * 4 + [units] * 8
    blocks = tf.split(params, sizes)
    w = [tf.reshape(b, [units, features]) for b in blocks[:4]]
    r = [tf.reshape(b, [units, units]) for b in blocks[4:8]]
    b = [blocks[8 + g] + blocks[12 + g] for g in range(4)]
    outputs = []
    for t in range(x.shape[1]):
        z = [tf.matmul(x[:, t], w[g], transpose_b=True)
             + tf.matmul(h, r[g], transpose_b=True) + b[g] for g in range(4)]
        i, f, o = tf.sigmoid(z[0]), tf.sigmoid(z[1]), tf.sigmoid(z[3])
        c_new = f * c + i * tf.tanh(z[2])
        h_new = o * tf.tanh(c_new)
        valid = (t < sequence_lengths)[:, None]
        h, c = tf.where(valid, h_new, h), tf.where(valid, c_new, c)
        outputs.append(tf.where(valid, h_new, tf.zeros_like(h_new)))
    outputs = tf.stack(outputs, axis=0 if time_major else 1)
    state_axis = 0 if time_major else 1
    empty = tf.zeros([0], input.dtype)
    return (outputs, tf.expand_dims(h, state_axis),
            tf.expand_dims(c, state_axis), empty, tf.zeros([0], tf.int8))
