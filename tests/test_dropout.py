"""Dropout in keras_lstm.LSTM: off at inference, one mask per sequence.

With training=True the effective input is x * m for one mask m per sequence
(0 or 1/(1-rate) per feature), the same at every step; recurrent dropout
draws one such mask per gate, as Keras does. The tests search all
2**n candidate masks of each sequence for the one whose NumPy reference
matches the layer's output; a mask that changed between steps would match
none.
"""

import itertools

import numpy as np
import pytest
import tensorflow as tf

import keras_lstm
from numpy_reference import lstm_reference
from numpy_reference import lstm_step
from random_data import random_inputs, build_random

BATCH, STEPS, FEATURES, UNITS = 3, 5, 4, 6
ATOL = 1e-5

# (implementation, unroll): an unrolled loop is always the step path.
PATHS = [("auto", False), ("step", False), ("step", True)]


@pytest.fixture(params=["auto", "step"])
def implementation(request):
    """The layer's own path choice, and the plain step loop."""
    return request.param


def _candidate_masks(size, rate):
    bits = np.array(list(itertools.product([0, 1], repeat=size)), "float32")
    return bits / (1.0 - rate)


def _find_input_mask(outputs, x, weights, rate):
    """Per sequence, the single input mask that reproduces `outputs`."""
    found = []
    candidates = _candidate_masks(x.shape[-1], rate)
    for b in range(x.shape[0]):
        tiled = np.repeat(x[b : b + 1], len(candidates), axis=0)
        ref = lstm_reference(tiled * candidates[:, None, :], *weights)[0]
        errors = np.abs(ref - outputs[b]).max(axis=(1, 2))
        best = int(np.argmin(errors))
        assert errors[best] < ATOL, f"no single mask explains sequence {b}"
        found.append(candidates[best])
    return np.stack(found)


def _per_gate_reference(x, weights, recurrent_masks):
    """NumPy LSTM whose gate g sees h_{t-1} * recurrent_masks[g] every step."""
    h = np.zeros((x.shape[0], weights[1].shape[0]), "float64")
    c, outputs = h, []
    for t in range(x.shape[1]):
        i, f, c_hat, o = (
            lstm_step(x[:, t], h * recurrent_masks[g], c, *weights)[name]
            for g, name in enumerate(["i", "f", "c_hat", "o"])
        )
        c = f * c + i * c_hat
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def _dropout_layer(units, implementation="auto", **kwargs):
    return keras_lstm.LSTM(units, return_sequences=True, seed=11,
                           implementation=implementation, **kwargs)


@pytest.mark.parametrize("unroll", [False, True])
def test_dropout_off_without_training(unroll):
    layer = _dropout_layer(UNITS, dropout=0.5, recurrent_dropout=0.5,
                           unroll=unroll)
    x = random_inputs(BATCH, STEPS, FEATURES)
    weights = build_random(layer, x.shape)
    reference = lstm_reference(x, *weights)
    np.testing.assert_allclose(layer(x, training=False), reference[0],
                               atol=ATOL)
    np.testing.assert_allclose(layer(x), reference[0], atol=ATOL)


@pytest.mark.parametrize("implementation, unroll", PATHS)
def test_dropout_uses_one_input_mask_per_sequence(unroll, implementation):
    rate, batch = 0.5, 4
    layer = _dropout_layer(UNITS, implementation, dropout=rate, unroll=unroll)
    x = random_inputs(batch, STEPS, FEATURES)
    weights = build_random(layer, x.shape)

    first = _find_input_mask(np.asarray(layer(x, training=True)), x, weights,
                             rate)
    second = _find_input_mask(np.asarray(layer(x, training=True)), x,
                              weights, rate)

    assert 0 < np.count_nonzero(first) < first.size  # Some were dropped.
    assert len({m.tobytes() for m in first}) > 1  # Differs per sequence.
    assert not np.array_equal(first, second)  # Fresh mask per call.


@pytest.mark.parametrize("unroll", [False, True])
def test_recurrent_dropout_uses_a_mask_per_gate_and_sequence(unroll):
    """Four masks on h_{t-1}, one per gate, fixed over the steps (Keras's)."""
    rate, batch, units = 0.5, 4, 4
    layer = _dropout_layer(units, recurrent_dropout=rate, unroll=unroll)
    x = random_inputs(batch, STEPS, FEATURES)
    weights = build_random(layer, x.shape)
    # A cell with the same seed draws the same masks in the same order.
    twin = keras_lstm.LSTMCell(units, recurrent_dropout=rate, seed=11)
    masks = [np.asarray(m) for m in twin.get_recurrent_dropout_mask(
        np.zeros((batch, units), "float32"))]

    outputs = np.asarray(layer(x, training=True))

    np.testing.assert_allclose(outputs, _per_gate_reference(x, weights, masks),
                               atol=ATOL)
    assert len({m.tobytes() for m in masks}) == 4  # Each gate its own.
    assert 0 < np.count_nonzero(masks[0]) < masks[0].size
    assert not np.allclose(layer(x, training=True), outputs)  # New per call.


def test_dropout_in_a_compiled_step_draws_a_mask_per_call(implementation):
    """Inside tf.function: one mask per sequence, a new one every call."""
    rate = 0.5
    layer = _dropout_layer(UNITS, implementation, dropout=rate)
    x = random_inputs(BATCH, STEPS, FEATURES)
    weights = build_random(layer, x.shape)
    step = tf.function(lambda inputs: layer(inputs, training=True))
    first = _find_input_mask(np.asarray(step(x)), x, weights, rate)
    second = _find_input_mask(np.asarray(step(x)), x, weights, rate)
    assert not np.array_equal(first, second)
