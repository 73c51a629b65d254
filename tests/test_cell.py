"""LSTMCell: one step and whole sequences against the NumPy reference."""

import keras
import numpy as np
import pytest

import keras_lstm
from numpy_reference import lstm_reference
from numpy_reference import lstm_step
from random_data import randomize, random_inputs

BATCH, STEPS, FEATURES, UNITS = 3, 5, 4, 6
ATOL = 1e-5


def built_cell(input_dim=FEATURES, **kwargs):
    cell = keras_lstm.LSTMCell(UNITS, **kwargs)
    cell.build((None, input_dim))
    return cell


def weights_with_bias(weights):
    """(kernel, recurrent_kernel, bias or None) from a weight list."""
    return (weights + [None])[:3]


def test_contract_matches_keras_cell():
    cell = built_cell()
    keras_cell = keras.layers.LSTMCell(UNITS)
    keras_cell.build((None, FEATURES))
    assert cell.state_size == [UNITS, UNITS]
    assert cell.output_size == UNITS
    assert [w.shape for w in cell.weights] == [
        w.shape for w in keras_cell.weights
    ]
    assert [w.path.split("/")[-1] for w in cell.weights] == [
        "kernel",
        "recurrent_kernel",
        "bias",
    ]
    assert keras_lstm.GATE_ORDER == ("i", "f", "c", "o")


def test_get_initial_state_is_zeros():
    cell = built_cell()
    h0, c0 = cell.get_initial_state(batch_size=BATCH)
    for state in (h0, c0):
        assert tuple(state.shape) == (BATCH, UNITS)
        assert keras.backend.standardize_dtype(state.dtype) == "float32"
        np.testing.assert_array_equal(np.asarray(state), 0.0)


@pytest.mark.parametrize("use_bias", [True, False])
def test_one_step_matches_reference(use_bias):
    cell = built_cell(use_bias=use_bias)
    weights = randomize(cell)
    x = random_inputs(BATCH, FEATURES)
    h_tm1 = random_inputs(BATCH, UNITS, seed=2)
    c_tm1 = random_inputs(BATCH, UNITS, seed=3)

    output, (h, c) = cell(x, [h_tm1, c_tm1])

    expected = lstm_step(x, h_tm1, c_tm1, *weights_with_bias(weights))
    np.testing.assert_allclose(output, expected["h"], atol=ATOL)
    np.testing.assert_allclose(h, expected["h"], atol=ATOL)
    np.testing.assert_allclose(c, expected["c"], atol=ATOL)


def test_lstm_equations_gives_every_gate():
    rng = np.random.default_rng(4)
    kernel = rng.standard_normal((FEATURES, 4 * UNITS))
    recurrent_kernel = rng.standard_normal((UNITS, 4 * UNITS))
    bias = rng.standard_normal(4 * UNITS)
    x, h_tm1, c_tm1 = (
        rng.standard_normal((BATCH, n)) for n in (FEATURES, UNITS, UNITS)
    )
    z = (x @ kernel + h_tm1 @ recurrent_kernel + bias).astype("float32")

    gates = keras_lstm.lstm_equations(z, c_tm1.astype("float32"))

    expected = lstm_step(x, h_tm1, c_tm1, kernel, recurrent_kernel, bias)
    for name in ("i", "f", "c_hat", "o", "c", "h"):
        np.testing.assert_allclose(
            getattr(gates, name), expected[name], atol=ATOL, err_msg=name
        )


def test_preactivations_are_the_packed_matmuls():
    cell = built_cell()
    kernel, recurrent_kernel, bias = randomize(cell)
    x = random_inputs(BATCH, FEATURES)
    h_tm1 = random_inputs(BATCH, UNITS, seed=2)
    z = cell.preactivations(x, h_tm1)
    np.testing.assert_allclose(
        z, x @ kernel + h_tm1 @ recurrent_kernel + bias, atol=ATOL
    )


@pytest.mark.parametrize(
    "unit_forget_bias, expected_blocks",
    [(True, [0.5, 1.0, 0.5, 0.5]), (False, [0.5, 0.5, 0.5, 0.5])],
)
def test_initial_bias(unit_forget_bias, expected_blocks):
    init = keras.initializers.Constant(0.5)
    cell = built_cell(bias_initializer=init, unit_forget_bias=unit_forget_bias)
    keras_cell = keras.layers.LSTMCell(
        UNITS, bias_initializer=init, unit_forget_bias=unit_forget_bias
    )
    keras_cell.build((None, FEATURES))
    expected = np.repeat(expected_blocks, UNITS)
    np.testing.assert_array_equal(cell.bias.numpy(), expected)
    np.testing.assert_array_equal(keras_cell.bias.numpy(), expected)


def test_default_recurrent_kernel_is_orthogonal():
    cell = keras_lstm.LSTMCell(4)  # (4, 16): rows are orthonormal.
    cell.build((None, FEATURES))
    u = cell.recurrent_kernel.numpy()
    np.testing.assert_allclose(u @ u.T, np.eye(4), atol=1e-5)


def test_no_bias_weight_without_use_bias():
    cell = built_cell(use_bias=False)
    assert cell.bias is None
    assert len(cell.weights) == 2


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("unroll", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_keras_rnn_with_cell_matches_reference(go_backwards, unroll, masked):
    layer = keras.layers.RNN(
        keras_lstm.LSTMCell(UNITS),
        return_sequences=True,
        return_state=True,
        go_backwards=go_backwards,
        unroll=unroll,
    )
    x = random_inputs(BATCH, STEPS, FEATURES)
    mask = None
    if masked:  # Left, right and middle padding.
        mask = np.array(
            [[0, 0, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 1, 1]], bool
        )
    layer.build(x.shape)
    weights = randomize(layer)

    outputs, h, c = layer(x, mask=mask)

    ref_outputs, ref_h, ref_c, _ = lstm_reference(
        x, *weights, mask=mask, go_backwards=go_backwards
    )
    np.testing.assert_allclose(outputs, ref_outputs, atol=ATOL)
    np.testing.assert_allclose(h, ref_h, atol=ATOL)
    np.testing.assert_allclose(c, ref_c, atol=ATOL)


def test_dropout_inactive_without_training():
    cell = built_cell(dropout=0.5, recurrent_dropout=0.5)
    weights = randomize(cell)
    x = random_inputs(BATCH, FEATURES)
    h_tm1 = random_inputs(BATCH, UNITS, seed=2)
    c_tm1 = random_inputs(BATCH, UNITS, seed=3)
    output, _ = cell(x, [h_tm1, c_tm1], training=False)
    expected = lstm_step(x, h_tm1, c_tm1, *weights)
    np.testing.assert_allclose(output, expected["h"], atol=ATOL)


def test_dropout_mask_is_cached_until_reset():
    """One mask per sequence: repeated steps reuse it until it is reset."""
    cell = built_cell(dropout=0.5, seed=7)
    x = np.ones((BATCH, FEATURES), "float32")
    first = np.asarray(cell.get_dropout_mask(x))
    np.testing.assert_array_equal(cell.get_dropout_mask(x), first)
    assert set(np.unique(first)) <= {0.0, 2.0}
    assert 0 < np.count_nonzero(first) < first.size
    cell.reset_dropout_mask()
    assert not np.array_equal(cell.get_dropout_mask(x), first)


def test_training_step_uses_the_cached_masks():
    """With recurrent dropout each gate has its own masks, as in Keras."""
    cell = built_cell(dropout=0.5, recurrent_dropout=0.5, seed=3)
    kernel, recurrent_kernel, bias = randomize(cell)
    x = random_inputs(BATCH, FEATURES)
    h_tm1 = random_inputs(BATCH, UNITS, seed=2)
    c_tm1 = random_inputs(BATCH, UNITS, seed=3)
    input_masks = [np.asarray(m) for m in cell.get_dropout_mask(x)]
    recurrent_masks = [
        np.asarray(m) for m in cell.get_recurrent_dropout_mask(h_tm1)
    ]
    assert len(input_masks) == len(recurrent_masks) == 4

    output, (h, c) = cell(x, [h_tm1, c_tm1], training=True)

    # Gate g (i, f, c_hat, o) sees x and h_tm1 through its own pair of masks.
    i, f, c_hat, o = (
        lstm_step(x * input_masks[g], h_tm1 * recurrent_masks[g], c_tm1,
                  kernel, recurrent_kernel, bias)[name]
        for g, name in enumerate(["i", "f", "c_hat", "o"])
    )
    expected_c = f * c_tm1 + i * c_hat
    np.testing.assert_allclose(output, o * np.tanh(expected_c), atol=ATOL)
    np.testing.assert_allclose(c, expected_c, atol=ATOL)


def test_input_dropout_alone_uses_one_mask():
    cell = built_cell(dropout=0.5, seed=3)
    kernel, recurrent_kernel, bias = randomize(cell)
    x = random_inputs(BATCH, FEATURES)
    h_tm1 = random_inputs(BATCH, UNITS, seed=2)
    c_tm1 = random_inputs(BATCH, UNITS, seed=3)
    input_mask = np.asarray(cell.get_dropout_mask(x))

    output, (h, c) = cell(x, [h_tm1, c_tm1], training=True)

    expected = lstm_step(x * input_mask, h_tm1, c_tm1, kernel,
                         recurrent_kernel, bias)
    np.testing.assert_allclose(output, expected["h"], atol=ATOL)
    np.testing.assert_allclose(c, expected["c"], atol=ATOL)
