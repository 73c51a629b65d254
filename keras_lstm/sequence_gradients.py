"""The recurrent kernel's gradient over a whole sequence, as one large matmul.

Shared by both forms of the fused path's backward pass (`keras_lstm.fused`
and `keras_lstm.native`): the loops emit every step's ``dz_t`` and this sums
``h_{t-1}ᵀ · dz_t`` over all steps at once.
"""

import tensorflow as tf


def recurrent_kernel_gradient(h0, hs, d_zs):
    """``Σ_t h_{t-1}ᵀ · dz_t``: (units, 4 * units).

    Args:
        h0: (batch, units) the initial h.
        hs: (time, batch, units) the h after each step; time may be 0.
        d_zs: (time, batch, 4 * units) the gradient of each step's
            pre-activations.
    """
    units = tf.shape(h0)[-1]
    # h before each step: h0, then every h but the last.
    h_prev = tf.concat([h0[None], hs], axis=0)[:-1]
    return tf.matmul(  # All steps at once: (U, T·B)·(T·B, 4U).
        tf.reshape(h_prev, [-1, units]),
        tf.reshape(d_zs, [-1, 4 * units]),
        transpose_a=True,
    )
