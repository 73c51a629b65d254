"""Gradients that can be differentiated again, for the fused path.

The C++ ops and the XLA loops come with hand-written backward passes that
are not differentiable themselves: TensorFlow has no gradient for the C++
backward op, and an outer tape cannot differentiate through XLA's compiled
loops. When a gradient may be differentiated again (nested GradientTapes:
gradient penalties, Hessian-vector products, MAML), `higher_order_possible`
says so while the forward pass runs, and the backward pass then gets its
gradients by autodiff of the plain TensorFlow loop instead
(`autodiff_gradients`), which an outer tape differentiates like any ops.
First-order training keeps the fast backward passes.
"""

import tensorflow as tf
from tensorflow.python.ops import gradients_util


def higher_order_possible(tensors):
    """Whether a tape may take a gradient of a gradient of `tensors`.

    True with two or more tapes watching them (nested tapes), a persistent
    tape, or a forward accumulator; False for one plain tape (model.fit).
    Variables (such as Keras's) count through the tensors they read into.
    """
    tensors = [tf.convert_to_tensor(t) for t in tensors if t is not None]
    return (
        gradients_util.PossibleTapeGradientTypes(tensors)
        == gradients_util.POSSIBLE_GRADIENT_TYPES_HIGHER_ORDER
    )


def autodiff_gradients(forward, inputs, upstream):
    """Gradients of ``forward(*inputs)`` given its outputs' `upstream`.

    Computed by autodiff while any outer tape records, so that tape can
    differentiate them again. Inputs the outputs do not depend on get zeros.
    """
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = forward(*inputs)
    return tape.gradient(
        outputs,
        list(inputs),
        output_gradients=list(upstream),
        unconnected_gradients=tf.UnconnectedGradients.ZERO,
    )
