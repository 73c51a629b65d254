"""How much the loss still feels each input step: ‖∂loss/∂x_t‖ by distance.

For a plain RNN, ∂h_T/∂x_t is a product of T - t Jacobians, which shrinks
exponentially with the distance T - t (Bengio et al., 1994; Hochreiter, 1991):
early inputs stop influencing learning. The LSTM's additive cell state
c_t = f_t ⊙ c_{t-1} + ... lets the gradient pass through f_t ≈ 1 nearly
intact. This module measures that curve for any model.
"""

import numpy as np
import tensorflow as tf


def input_gradient_norms(model, inputs, targets):
    """Mean per-example ‖∂loss/∂x_t‖ for each distance from the last step.

    Each example's loss is its own squared error (ŷ - y)², so the figure does
    not depend on the batch size. For every example and step t, the norm is
    taken over the input channels; the result averages it over examples.

    Args:
        model: A Keras model mapping (batch, time, features) to (batch, 1).
        inputs: float array (batch, time, features).
        targets: float array (batch, 1).

    Returns:
        float64 NumPy array (time,) whose entry d belongs to the step d steps
        before the last one (d = 0 is the last step, time - 1 the first).
    """
    norms = _gradient_norms_by_step(
        model,
        tf.convert_to_tensor(inputs, tf.float32),
        tf.convert_to_tensor(targets, tf.float32),
    )
    return norms.numpy().astype(np.float64)[::-1]


@tf.function(reduce_retracing=True)
def _gradient_norms_by_step(model, inputs, targets):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        predictions = model(inputs, training=False)  # (batch, 1)
        loss = tf.reduce_sum(tf.square(predictions - targets))
    grads = tape.gradient(loss, inputs)  # (batch, time, features)
    per_example = tf.norm(grads, axis=-1)  # (batch, time)
    return tf.reduce_mean(per_example, axis=0)  # (time,)


def summarize_by_distance(norms, distances=(0, 10, 100, 1000)):
    """The norms at a few distances (those within the sequence) and at the
    first step ("first"), for tables."""
    summary = {str(d): float(norms[d]) for d in distances if d < len(norms)}
    summary["first"] = float(norms[-1])
    return summary
