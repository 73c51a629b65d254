"""cuDNN weight repacking and mask checks (CPU); the kernel itself needs a GPU."""

import numpy as np
import pytest
import tensorflow as tf

from keras_lstm import cudnn

FEATURES, UNITS = 3, 2


def weights(seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(FEATURES, 4 * UNITS)).astype("float32"),
        rng.normal(size=(UNITS, 4 * UNITS)).astype("float32"),
        rng.normal(size=(4 * UNITS,)).astype("float32"),
    )


def test_repack_then_unpack_gives_the_weights_back():
    original = weights()
    params = cudnn.to_cudnn_params(*original)
    assert params.shape == (4 * UNITS * (FEATURES + UNITS) + 8 * UNITS,)
    for back, want in zip(cudnn.from_cudnn_params(params, FEATURES, UNITS), original):
        np.testing.assert_array_equal(back, want)


def test_canonical_layout_by_hand():
    kernel, recurrent_kernel, bias = weights()
    params = cudnn.to_cudnn_params(kernel, recurrent_kernel, bias).numpy()
    # First block: the input gate's weights as (units, features), row by row.
    np.testing.assert_array_equal(
        params[: UNITS * FEATURES], kernel[:, :UNITS].T.reshape(-1)
    )
    # The forget gate's input weights follow.
    np.testing.assert_array_equal(
        params[UNITS * FEATURES: 2 * UNITS * FEATURES],
        kernel[:, UNITS: 2 * UNITS].T.reshape(-1),
    )
    # After the 8 weight blocks: zero input biases, then the layer's bias.
    start = 4 * UNITS * (FEATURES + UNITS)
    np.testing.assert_array_equal(params[start: start + 4 * UNITS], 0)
    np.testing.assert_array_equal(params[start + 4 * UNITS:], bias)


def test_unpack_adds_both_bias_halves():
    kernel, recurrent_kernel, bias = weights()
    params = cudnn.to_cudnn_params(kernel, recurrent_kernel, bias).numpy()
    start = 4 * UNITS * (FEATURES + UNITS)
    params[start: start + 4 * UNITS] = 1.0
    np.testing.assert_allclose(
        cudnn.from_cudnn_params(tf.constant(params), FEATURES, UNITS)[2], bias + 1.0
    )


def test_unpack_rejects_wrong_size():
    with pytest.raises(ValueError, match=r"has 56 values. Received: params.shape=\(10,\)"):
        cudnn.from_cudnn_params(tf.zeros([10]), FEATURES, UNITS)


@pytest.mark.parametrize(
    "mask, accepted",
    [
        ([[1, 1, 0], [1, 1, 1]], True),  # right-padded: sequence lengths
        ([[0, 1, 1], [1, 1, 1]], False),  # left-padded: runs the fused path
        ([[1, 0, 1], [1, 1, 1]], False),  # a hole
        ([[0, 0, 0], [1, 1, 1]], False),  # an empty row
    ],
)
def test_cudnn_accepts_only_right_padded_masks(mask, accepted):
    assert bool(cudnn.cudnn_accepts_mask(tf.constant(np.array(mask, bool)))) == accepted


def test_no_gpu_here():
    # Documents the CI machine: the cuDNN kernel is never run by these tests.
    assert cudnn.gpu_available() == bool(tf.config.list_logical_devices("GPU"))
