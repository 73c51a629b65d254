"""Gradient-norm measurement against hand-computed cases."""

import keras
import numpy as np

from recipes.long_range import gradients


def _linear_model(weights):
    """ŷ = Σ_t Σ_k w[t, k] x[t, k]: its input gradient is 2 (ŷ - y) w[t]."""
    time, features = weights.shape
    return keras.Sequential([
        keras.Input((time, features)),
        keras.layers.Flatten(),
        keras.layers.Dense(
            1,
            use_bias=False,
            kernel_initializer=keras.initializers.Constant(weights.reshape(-1, 1)),
        ),
    ])


def test_linear_model_matches_hand_computation():
    weights = np.array([[3.0, 4.0], [0.0, 1.0], [1.0, 0.0]])  # ‖w_t‖ = 5, 1, 1
    model = _linear_model(weights)
    inputs = np.array(
        [[[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]],   # ŷ = 3      -> error 3 - 1 = 2
         [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]],  # ŷ = 0      -> error 0 - 1 = -1
        dtype=np.float32,
    )
    targets = np.array([[1.0], [1.0]], np.float32)
    # Per example ‖∂(ŷ - y)²/∂x_t‖ = 2 |ŷ - y| ‖w_t‖; mean of |error| = 1.5.
    expected_by_step = 2 * 1.5 * np.array([5.0, 1.0, 1.0])
    norms = gradients.input_gradient_norms(model, inputs, targets)
    np.testing.assert_allclose(norms, expected_by_step[::-1], rtol=1e-6)


def test_does_not_depend_on_batch_size():
    model = _linear_model(np.arange(8.0).reshape(4, 2))
    rng = np.random.default_rng(0)
    inputs = rng.uniform(size=(1, 4, 2)).astype(np.float32)
    targets = np.zeros((1, 1), np.float32)
    one = gradients.input_gradient_norms(model, inputs, targets)
    many = gradients.input_gradient_norms(
        model, np.repeat(inputs, 5, axis=0), np.repeat(targets, 5, axis=0)
    )
    np.testing.assert_allclose(one, many, rtol=1e-6)


def test_last_step_only_model_sees_no_earlier_gradient():
    time = 6
    model = keras.Sequential([
        keras.Input((time, 2)),
        keras.layers.Lambda(lambda x: x[:, -1, :]),
        keras.layers.Dense(1, kernel_initializer="ones"),
    ])
    inputs = np.ones((3, time, 2), np.float32)
    norms = gradients.input_gradient_norms(model, inputs, np.zeros((3, 1), np.float32))
    assert norms[0] > 0  # distance 0: the last step.
    np.testing.assert_array_equal(norms[1:], 0.0)


def test_linear_rnn_gradient_decays_geometrically():
    # h_t = 0.5 h_{t-1} + x_t W, ŷ = h_T · v, so ∂ŷ/∂x_t = 0.5^d W v with
    # d = T - 1 - t: the norm shrinks by exactly 0.5 per step of distance.
    rnn = keras.Sequential([
        keras.Input((12, 2)),
        keras.layers.SimpleRNN(
            3,
            activation=None,
            use_bias=False,
            kernel_initializer=keras.initializers.Constant([[1, 2, 0], [0, 1, 1]]),
            recurrent_initializer=keras.initializers.Identity(0.5),
        ),
        keras.layers.Dense(1, use_bias=False, kernel_initializer="ones"),
    ])
    inputs = np.random.default_rng(0).uniform(size=(4, 12, 2)).astype(np.float32)
    targets = np.full((4, 1), 100.0, np.float32)  # Every error is negative.
    norms = gradients.input_gradient_norms(rnn, inputs, targets)
    errors = np.abs(rnn.predict(inputs, verbose=0) - targets).mean()
    w_v = np.array([3.0, 2.0])  # W (2, 3) times v = ones(3).
    expected = 2 * errors * np.linalg.norm(w_v) * 0.5 ** np.arange(12)
    np.testing.assert_allclose(norms, expected, rtol=1e-5)


def test_summarize_by_distance_keeps_existing_distances():
    summary = gradients.summarize_by_distance(np.arange(50.0))
    assert summary == {"0": 0.0, "10": 10.0, "first": 49.0}
