"""The fused path's time loops as compiled C++ TensorFlow ops (CPU, float32).

`lstm_ops.cc` holds two ops: the forward recurrence over time-major input
projections (the bias is added inside), and its backward walk. A step costs
one small matmul and one pass of element-wise math; a batch of
`ROW_BLOCKS_MIN_BATCH` rows or more is cut into row blocks that run every
step on separate threads. At imdb's shape a step takes 26–27 µs (row blocks
on two cores), 40–47 µs on one thread, where a step of the XLA loops took
60–95 µs. `build` compiles and loads them; `recurrence` is the
differentiable recurrence on top of them.
"""

import tensorflow as tf

from keras_lstm import second_order
from keras_lstm.native.build import available  # noqa: F401 (part of this API)
from keras_lstm.native.build import ops
from keras_lstm.sequence_gradients import recurrent_kernel_gradient


def _float_mask(mask):
    """bool (time, batch, 1) or None -> float (time, batch), or (0,) for none."""
    if mask is None:
        return tf.zeros([0], tf.float32)
    return tf.cast(mask[:, :, 0], tf.float32)


# The ops split a batch of ROW_BLOCKS_MIN_BATCH rows or more into row blocks
# (lstm_ops.cc). A smaller batch runs on one thread, which hands a step's
# matmul to TensorFlow's thread pool, split by columns, from this many
# multiply-adds on; below, one thread is as fast. Measured before the row
# blocks, training step x keras with 8 chunks, thread pool vs one thread:
# imdb (1 M per step) 1.16 vs 1.20, charlm (16.8 M) 1.60 vs 1.45.
THREADED_MIN_MACS = 1 << 21

# From this many batch rows on, the ops run row blocks of at least 16 rows,
# up to one per thread of the pool (2 * kMinRowsPerBlock in lstm_ops.cc).
ROW_BLOCKS_MIN_BATCH = 32


def recurrence(zx, h0, c0, recurrent_kernel, mask=None, training=True,
               bias=None):
    """The LSTM recurrence on the C++ ops, differentiable (float32, CPU).

    Args:
        zx: (time, batch, 4 * units) input projections ``x_t·kernel``;
            time may be 0 (the states pass through).
        h0, c0: (batch, units) initial states.
        recurrent_kernel: (units, 4 * units).
        mask: None or bool (time, batch, 1); False keeps the states.
        training: Store cell states and gates for the backward pass. If
            False, a gradient, if asked for anyway, reruns the forward pass.
        bias: None or (4 * units,), added to every step's zx inside the op
            (which also sums its gradient), saving a pass over zx each way.

    Returns:
        hs (time, batch, units) the h after each step, h_last and c_last
        (batch, units) the final states. Gradients flow to zx, h0, c0,
        recurrent_kernel and bias; ``drecurrent_kernel`` is one matmul over
        all steps.
    """
    module = ops()
    float_mask = _float_mask(mask)
    no_bias = bias is None
    if no_bias:
        bias = tf.zeros([0], tf.float32)
    twice = second_order.higher_order_possible(
        [zx, h0, c0, recurrent_kernel, bias])

    def plain_loop(zx, h0, c0, recurrent_kernel, bias):
        """The same recurrence as standard TensorFlow ops (differentiable)."""
        from keras_lstm import fused  # Imported here: fused imports this.

        z = zx if no_bias else zx + bias
        hs, c_last = fused._forward_loop(
            z, h0, c0, recurrent_kernel, mask, store="outputs")
        return hs, tf.concat([h0[None], hs], axis=0)[-1], c_last

    def forward(args, store):
        return module.keras_lstm_forward(
            *args[:4], float_mask, args[4], store_for_backward=store,
            threaded_min_macs=THREADED_MIN_MACS,
        )

    @tf.custom_gradient
    def core(zx, h0, c0, recurrent_kernel, bias):
        # Kept only when a gradient may be differentiated again.
        originals = (zx, h0, c0, recurrent_kernel, bias) if twice else None
        # The ops are never differentiated by autodiff; the gradient is below.
        args = [tf.stop_gradient(t)
                for t in (zx, h0, c0, recurrent_kernel, bias)]
        hs, h_last, c_last, cs, gates = forward(args, store=training)
        if training:
            args[0] = None  # The backward pass needs no zx: free it early.

        def grad(d_hs, dh_last, dc_last):
            if originals is not None:
                return second_order.autodiff_gradients(
                    plain_loop, originals, (d_hs, dh_last, dc_last))
            saved_cs, saved_gates = cs, gates
            if not training:
                _, _, _, saved_cs, saved_gates = forward(args, store=True)
            d_zs, dh0, dc0, d_bias = module.keras_lstm_backward(
                d_hs, dh_last, dc_last, saved_cs, saved_gates, args[2],
                args[3], float_mask, threaded_min_macs=THREADED_MIN_MACS,
            )
            d_kernel = recurrent_kernel_gradient(args[1], hs, d_zs)
            if no_bias:
                d_bias = tf.zeros([0], tf.float32)
            return d_zs, dh0, dc0, d_kernel, d_bias

        return (hs, h_last, c_last), grad

    return core(zx, h0, c0, recurrent_kernel, bias)
