"""Second-order gradients through every path, against keras.layers.LSTM.

A gradient penalty (outer tape over the weights of ‖∂loss/∂x‖²) and a
Hessian-vector product (outer tape over the weights of ∂loss/∂w · v), in
eager mode and inside tf.function, must match Keras to 1e-5 on the C++ ops,
the XLA loops and the step path; "auto" runs the step loop under nested
tapes, and first-order gradients keep the fast backward passes.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lstm
from keras_lstm import second_order
from random_data import random_inputs
from random_data import random_weights

BATCH, STEPS, FEATURES, UNITS = 3, 5, 4, 6
MASK = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1]], bool)


def gradient_penalty(layer, x, mask):
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = layer(x, mask=mask, training=True)
            loss = tf.reduce_sum(y * y)
        g = inner.gradient(loss, x)
        penalty = tf.reduce_sum(g * g)
    return [penalty] + outer.gradient(penalty, layer.trainable_weights)


def hessian_vector_product(layer, x, mask):
    weights = layer.trainable_weights
    vectors = [tf.ones_like(w) * 0.1 for w in weights]
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            y = layer(x, mask=mask, training=True)
            loss = tf.reduce_sum(tf.sin(y))
        grads = inner.gradient(loss, weights)
        product = tf.add_n([tf.reduce_sum(g * v)
                            for g, v in zip(grads, vectors)])
    return outer.gradient(product, weights)


def make_layer(path, monkeypatch, **kwargs):
    if path == "xla":
        monkeypatch.setattr(keras_lstm.native, "available", lambda: False)
    # "fused" keeps the fast paths, whose backward pass then differentiates
    # its plain loop by autodiff; "auto" would run the step loop instead.
    layer = keras_lstm.LSTM(
        UNITS, implementation="step" if path == "step" else "fused", **kwargs)
    if path != "step":
        assert layer.fused_loops == path
    return layer


def _cases():
    """Every combination; the default run keeps one of each kind."""
    default = {("native", "gradient_penalty", True, False),
               ("xla", "hessian_vector_product", True, False),
               ("step", "gradient_penalty", True, False),
               ("native", "hessian_vector_product", False, True),
               ("xla", "gradient_penalty", True, True)}
    for path in ("native", "xla", "step"):
        for what in (gradient_penalty, hessian_vector_product):
            for masked in (False, True):
                for compiled in (False, True):
                    key = (path, what.__name__, masked, compiled)
                    marks = () if key in default else pytest.mark.slow
                    yield pytest.param(
                        path, what, masked, compiled, marks=marks,
                        id="-".join(str(k) for k in key))


@pytest.mark.parametrize("path, what, masked, compiled", _cases())
def test_second_order_matches_keras(path, what, masked, compiled,
                                    monkeypatch):
    kwargs = dict(return_sequences=True, go_backwards=masked)
    ours = make_layer(path, monkeypatch, **kwargs)
    theirs = keras.layers.LSTM(UNITS, **kwargs)
    x = tf.constant(random_inputs(BATCH, STEPS, FEATURES))
    for layer in (ours, theirs):
        layer.build(x.shape)
    theirs.set_weights(random_weights(theirs))
    ours.set_weights(theirs.get_weights())
    mask = tf.constant(MASK) if masked else None
    run = tf.function(what) if compiled else what

    got, want = run(ours, x, mask), run(theirs, x, mask)

    for k, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, atol=1e-5, err_msg=f"result {k}")


@pytest.mark.parametrize("path", ["native", "xla"])
def test_first_order_gradients_keep_the_fast_backward(path, monkeypatch):
    calls = []
    autodiff = second_order.autodiff_gradients
    monkeypatch.setattr(second_order, "autodiff_gradients",
                        lambda *a: calls.append(1) or autodiff(*a))
    layer = make_layer(path, monkeypatch)
    x = tf.constant(random_inputs(BATCH, STEPS, FEATURES))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=True))
    tape.gradient(loss, layer.trainable_weights)
    assert not calls
    gradient_penalty(layer, x, None)
    assert calls


def test_auto_runs_the_step_loop_under_nested_tapes(monkeypatch):
    calls = []
    step = keras.layers.RNN.inner_loop
    monkeypatch.setattr(keras.layers.RNN, "inner_loop",
                        lambda *a, **k: calls.append(1) or step(*a, **k))
    ours, theirs = keras_lstm.LSTM(UNITS), keras.layers.LSTM(UNITS)
    x = tf.constant(random_inputs(BATCH, STEPS, FEATURES))
    for layer in (ours, theirs):
        layer.build(x.shape)
    ours.set_weights(theirs.get_weights())
    with tf.GradientTape() as tape:
        ours(x, training=True)
    assert not calls  # One tape: the fast path.
    got = gradient_penalty(ours, x, None)
    assert calls
    want = gradient_penalty(theirs, x, None)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, atol=1e-5)
