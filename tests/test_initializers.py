"""ChronoInitializer: the packed bias of Tallec & Ollivier (2018)."""

import keras
import numpy as np
import pytest

import keras_lstm

UNITS, T_MAX = 500, 1000.0


def blocks(bias, n=4):
    return np.split(np.asarray(bias), n)


def test_values_follow_the_chrono_layout():
    bias = keras_lstm.ChronoInitializer(T_MAX, seed=1)((4 * UNITS,))
    b_i, b_f, b_c, b_o = blocks(bias)
    # b_f = log U(1, T_max - 1): exp(b_f) spans the timescales 1 .. T_max - 1.
    timescales = np.exp(b_f)
    assert timescales.min() >= 1.0 - 1e-4
    assert timescales.max() <= T_MAX - 1 + 1e-2
    # Uniform in [1, T_max - 1]: its quartiles are near a quarter of the way.
    np.testing.assert_allclose(np.quantile(timescales, [0.25, 0.5, 0.75]),
                               [250.75, 500.0, 749.25], rtol=0.15)
    np.testing.assert_allclose(b_i, -b_f)
    np.testing.assert_array_equal(b_c, 0.0)
    np.testing.assert_array_equal(b_o, 0.0)


def test_in_the_lstm_layer():
    layer = keras_lstm.LSTM(
        8,
        bias_initializer=keras_lstm.ChronoInitializer(50, seed=3),
        unit_forget_bias=False,
    )
    layer.build((None, None, 2))
    b_i, b_f, b_c, b_o = blocks(layer.cell.bias.numpy())
    assert np.all((b_f >= 0) & (b_f <= np.log(49) + 1e-6))
    assert np.any(b_f > 1.0)  # Not the 0 or 1 of the other initializations.
    np.testing.assert_allclose(b_i, -b_f)
    np.testing.assert_array_equal(np.concatenate([b_c, b_o]), 0.0)


def test_unit_forget_bias_would_override_it_so_it_raises():
    with pytest.raises(ValueError, match="unit_forget_bias=True"):
        keras_lstm.LSTM(8, bias_initializer=keras_lstm.ChronoInitializer(50))


def test_cifg_layout_by_gate_order():
    gate_order = keras_lstm.CIFGLSTMCell.gate_order
    cell = keras_lstm.CIFGLSTMCell(
        4,
        bias_initializer=keras_lstm.ChronoInitializer(20, gate_order),
        unit_forget_bias=False,
    )
    cell.build((None, 3))
    b_f, b_c, b_o = blocks(cell.bias.numpy(), 3)
    assert np.all((b_f >= 0) & (b_f <= np.log(19) + 1e-6))
    np.testing.assert_array_equal(np.concatenate([b_c, b_o]), 0.0)
    with pytest.raises(ValueError, match=r"gate_order=\('i', 'f', 'c', 'o'\)"):
        keras_lstm.CIFGLSTMCell(
            4,
            bias_initializer=keras_lstm.ChronoInitializer(20),
            unit_forget_bias=False,
        )


def test_same_seed_same_values():
    a = keras_lstm.ChronoInitializer(100, seed=7)((40,))
    b = keras_lstm.ChronoInitializer(100, seed=7)((40,))
    c = keras_lstm.ChronoInitializer(100, seed=8)((40,))
    np.testing.assert_array_equal(a, b)
    assert np.any(np.asarray(a) != np.asarray(c))


def test_serialization_round_trip():
    init = keras_lstm.ChronoInitializer(300, seed=2)
    config = keras.initializers.serialize(init)
    clone = keras.initializers.deserialize(config)
    assert isinstance(clone, keras_lstm.ChronoInitializer)
    assert clone.get_config() == init.get_config()
    np.testing.assert_array_equal(clone((12,)), init((12,)))
    layer = keras_lstm.LSTM(4, bias_initializer=init, unit_forget_bias=False)
    again = keras_lstm.LSTM.from_config(layer.get_config())
    assert again.cell.bias_initializer.get_config() == init.get_config()


@pytest.mark.parametrize("bad", [2, 0.5, -10, "1000", True])
def test_bad_max_timescale(bad):
    with pytest.raises(ValueError, match=f"Received: max_timescale={bad!r}"):
        keras_lstm.ChronoInitializer(bad)


def test_bad_shape_and_gate_order():
    with pytest.raises(ValueError, match=r"Received: shape=\(10,\)"):
        keras_lstm.ChronoInitializer(100)((10,))
    with pytest.raises(ValueError, match="Received: shape"):
        keras_lstm.ChronoInitializer(100)((4, 8))
    with pytest.raises(ValueError, match="gate_order"):
        keras_lstm.ChronoInitializer(100, gate_order=("i", "c", "o"))
