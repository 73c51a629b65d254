"""keras_lstm.LSTM against keras.layers.LSTM with the same weights.

Outputs, final states and gradients (with respect to the inputs, the initial
states and every weight) must agree to 1e-5. Weights are moved both ways with
get_weights()/set_weights().
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lstm
from random_data import random_weights

BATCH, STEPS, FEATURES, UNITS = 3, 5, 4, 6
ATOL = 1e-5

MASKS = {
    "left": [[0, 0, 1, 1, 1], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1]],
    "right": [[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]],
    "middle": [[1, 0, 0, 1, 1], [1, 1, 0, 1, 1], [1, 0, 1, 0, 1]],
}

CASES = {
    "last_output": dict(layer={}, call={}),
    "return_sequences": dict(layer=dict(return_sequences=True), call={}),
    "go_backwards": dict(
        layer=dict(return_sequences=True, go_backwards=True), call={}
    ),
    "no_bias": dict(layer=dict(use_bias=False, return_sequences=True),
                    call={}),
    "unroll": dict(layer=dict(unroll=True, return_sequences=True), call={}),
    "mask_left": dict(layer=dict(return_sequences=True),
                      call=dict(mask="left")),
    "mask_right": dict(layer=dict(return_sequences=True),
                       call=dict(mask="right")),
    "mask_middle_backwards": dict(
        layer=dict(return_sequences=True, go_backwards=True),
        call=dict(mask="middle"),
    ),
    "mask_right_last_output": dict(layer={}, call=dict(mask="right")),
    "initial_state": dict(layer=dict(return_sequences=True),
                          call=dict(initial_state=True)),
    "initial_state_and_mask": dict(
        layer=dict(return_sequences=True),
        call=dict(initial_state=True, mask="left"),
    ),
}


def random_array(*shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def twin_layers(make_ours, make_keras, input_shape, ours_first):
    """Builds both layers; one gets random weights and passes them on."""
    ours, theirs = make_ours(), make_keras()
    ours.build(input_shape)
    theirs.build(input_shape)
    source, target = (ours, theirs) if ours_first else (theirs, ours)
    source.set_weights(random_weights(source))
    target.set_weights(source.get_weights())
    return ours, theirs


def run_with_gradients(layer, x, initial_state=None, mask=None):
    """Outputs and d(loss)/d(inputs, states, weights) of one call."""
    x = tf.convert_to_tensor(x)
    states = (
        None
        if initial_state is None
        else [tf.convert_to_tensor(s) for s in initial_state]
    )
    kwargs = {} if mask is None else {"mask": tf.constant(mask)}
    with tf.GradientTape() as tape:
        tape.watch(x)
        if states is not None:
            tape.watch(states)
            kwargs["initial_state"] = states
        result = tf.nest.flatten(layer(x, **kwargs))
        # A loss that weighs every output and state differently.
        loss = sum(
            tf.reduce_sum(r * random_array(*r.shape, seed=10 + k))
            for k, r in enumerate(result)
        )
    sources = [x] + (states or []) + list(layer.trainable_weights)
    grads = tape.gradient(loss, sources)
    return [r.numpy() for r in result], [g.numpy() for g in grads]


def assert_all_close(ours, theirs, what):
    assert len(ours) == len(theirs), what
    for k, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a, b, atol=ATOL, err_msg=f"{what}[{k}]")


@pytest.fixture(params=["auto", "step"])
def implementation(request):
    """Our layer's own path choice, and the plain step loop."""
    return request.param


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_keras_lstm(case, implementation):
    layer_kwargs = dict(return_state=True, **CASES[case]["layer"])
    call = CASES[case]["call"]
    x = random_array(BATCH, STEPS, FEATURES)
    mask = np.array(MASKS[call["mask"]], bool) if "mask" in call else None
    states = None
    if call.get("initial_state"):
        states = [random_array(BATCH, UNITS, seed=s) for s in (5, 6)]
    ours, theirs = twin_layers(
        lambda: keras_lstm.LSTM(UNITS, implementation=implementation,
                                **layer_kwargs),
        lambda: keras.layers.LSTM(UNITS, **layer_kwargs),
        x.shape,
        ours_first=False,
    )

    our_out, our_grads = run_with_gradients(ours, x, states, mask)
    their_out, their_grads = run_with_gradients(theirs, x, states, mask)

    assert_all_close(our_out, their_out, "outputs and states")
    assert_all_close(our_grads, their_grads, "gradients")


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("with_states", [False, True])
def test_bidirectional_matches_keras(masked, with_states, implementation):
    x = random_array(BATCH, STEPS, FEATURES)
    mask = np.array(MASKS["right"], bool) if masked else None
    states = None
    if with_states:  # [h_fw, c_fw, h_bw, c_bw]
        states = [random_array(BATCH, UNITS, seed=s) for s in range(5, 9)]

    def wrap(lstm_class, **kwargs):
        return lambda: keras.layers.Bidirectional(
            lstm_class(UNITS, return_sequences=True, return_state=True,
                       **kwargs),
            merge_mode="concat",
        )

    ours, theirs = twin_layers(
        wrap(keras_lstm.LSTM, implementation=implementation),
        wrap(keras.layers.LSTM),
        x.shape,
        ours_first=True,
    )
    assert len(ours.trainable_weights) == 6

    our_out, our_grads = run_with_gradients(ours, x, states, mask)
    their_out, their_grads = run_with_gradients(theirs, x, states, mask)

    assert_all_close(our_out, their_out, "outputs and states")
    assert_all_close(our_grads, their_grads, "gradients")


def test_stateful_over_two_batches_matches_keras(implementation):
    x1 = random_array(BATCH, STEPS, FEATURES, seed=1)
    x2 = random_array(BATCH, STEPS, FEATURES, seed=2)
    kwargs = dict(stateful=True, return_sequences=True, return_state=True)
    ours, theirs = twin_layers(
        lambda: keras_lstm.LSTM(UNITS, implementation=implementation,
                                **kwargs),
        lambda: keras.layers.LSTM(UNITS, **kwargs),
        x1.shape,
        ours_first=True,
    )
    for batch in (x1, x2):
        our_out, our_grads = run_with_gradients(ours, batch)
        their_out, their_grads = run_with_gradients(theirs, batch)
        assert_all_close(our_out, their_out, "outputs and states")
        assert_all_close(our_grads, their_grads, "gradients")
        assert_all_close(
            [s.numpy() for s in ours.states],
            [s.numpy() for s in theirs.states],
            "carried states",
        )
    # The second batch really started from the first one's final states.
    ours.reset_state()
    fresh, _ = run_with_gradients(ours, x2)
    assert not np.allclose(fresh[0], our_out[0], atol=1e-3)


@pytest.mark.parametrize("ours_first", [True, False],
                         ids=["ours_to_keras", "keras_to_ours"])
def test_weights_move_both_ways(ours_first):
    x = random_array(BATCH, STEPS, FEATURES)
    mask = np.array(MASKS["middle"], bool)
    kwargs = dict(return_sequences=True, return_state=True)
    ours, theirs = twin_layers(
        lambda: keras_lstm.LSTM(UNITS, **kwargs),
        lambda: keras.layers.LSTM(UNITS, **kwargs),
        x.shape,
        ours_first,
    )
    assert_all_close(
        [r.numpy() for r in ours(x, mask=mask)],
        [r.numpy() for r in theirs(x, mask=mask)],
        "outputs and states",
    )
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dropout", ["dropout", "recurrent_dropout"])
def test_dropout_without_training_matches_keras(dropout):
    x = random_array(BATCH, STEPS, FEATURES)
    kwargs = {dropout: 0.4, "return_sequences": True}
    ours, theirs = twin_layers(
        lambda: keras_lstm.LSTM(UNITS, **kwargs),
        lambda: keras.layers.LSTM(UNITS, **kwargs),
        x.shape,
        ours_first=True,
    )
    np.testing.assert_allclose(ours(x), theirs(x), atol=ATOL)


def test_same_weight_names_and_shapes_as_keras():
    ours = keras_lstm.LSTM(UNITS)
    theirs = keras.layers.LSTM(UNITS)
    ours.build((None, STEPS, FEATURES))
    theirs.build((None, STEPS, FEATURES))
    assert [(w.name, w.shape) for w in ours.weights] == [
        (w.name, w.shape) for w in theirs.weights
    ]
