"""Leaving TF Addons: its cells' equations and weights in keras_lstm.

References are NumPy transcriptions of TF Addons' `LayerNormLSTMCell.call`
and `PeepholeLSTMCell._compute_carry_and_output_fused` (tensorflow_addons/rnn/,
the last release); tensorflow_addons itself is not needed (it does not run on
Keras 3). TF Addons' LayerNormalization sublayers normalize over the last
axis with the biased variance and epsilon inside the square root.
"""

import numpy as np
import pytest
import tensorflow as tf

import keras_lstm
from keras_lstm.convert_tfa import LAYER_NORM_NAMES
from keras_lstm.convert_tfa import PEEPHOLE_NAMES
from numpy_reference import sigmoid
from numpy_reference import split_gates
from test_variants import FEATURES
from test_variants import UNITS
from test_variants import assert_matches
from test_variants import built
from test_variants import inputs
from test_variants import layer_norm
from test_variants import peephole_step


def tfa_layer_norm_step(x, h, c, w, eps=1e-3):
    """TF Addons' LayerNormLSTMCell: three LayerNormalization layers with
    gain and shift each, and the normalized cell state carried on."""
    k, u, b, g_k, b_k, g_r, b_r, g_s, b_s = w
    z = layer_norm(x @ k, g_k, b_k, eps) + layer_norm(h @ u, g_r, b_r, eps)
    z_i, z_f, z_c, z_o = split_gates(z + b)
    c_new = sigmoid(z_f) * c + sigmoid(z_i) * np.tanh(z_c)
    c_new = layer_norm(c_new, g_s, b_s, eps)
    return sigmoid(z_o) * np.tanh(c_new), c_new


def tfa_weights(names, seed=0, use_bias=True):
    """Random arrays shaped as TF Addons' cell weights, in its order."""
    rng = np.random.default_rng(seed)
    shapes = {"kernel": (FEATURES, 4 * UNITS),
              "recurrent_kernel": (UNITS, 4 * UNITS), "bias": (4 * UNITS,)}
    weights = {}
    for name in names:
        if name == "bias" and not use_bias:
            continue
        shape = shapes.get(name, (4 * UNITS,) if name.startswith(
            ("kernel_norm", "recurrent_norm")) else (UNITS,))
        weights[name] = (0.5 * rng.standard_normal(shape)).astype("float32")
    if "state_norm/gamma" in weights:  # Gains near one, as trained ones.
        for name in ("kernel_norm/gamma", "recurrent_norm/gamma",
                     "state_norm/gamma"):
            weights[name] = weights[name] + 1.0
    return weights


def test_carry_normalized_state_is_tf_addons_layer_norm_lstm():
    layer = built(keras_lstm.LayerNormLSTM, UNITS, carry_normalized_state=True)
    weights = list(tfa_weights(LAYER_NORM_NAMES).values())
    layer.set_weights(keras_lstm.from_tfa_layer_norm_lstm(weights))
    assert [w.name for w in layer.weights] == [
        n.replace("/", "_") for n in LAYER_NORM_NAMES
    ]
    # The carried (final) c is the normalized state.
    assert_matches(layer, tfa_layer_norm_step, weights)


def test_carry_normalized_state_without_bias_and_other_epsilon():
    layer = built(keras_lstm.LayerNormLSTM, UNITS, carry_normalized_state=True,
                  use_bias=False, norm_epsilon=1e-5)
    weights = tfa_weights(LAYER_NORM_NAMES, use_bias=False)
    assert len(layer.weights) == 8
    layer.set_weights(keras_lstm.from_tfa_layer_norm_lstm(list(weights.values())))
    with_zero_bias = list(weights.values())
    with_zero_bias.insert(2, np.zeros(4 * UNITS))
    assert_matches(
        layer,
        lambda x, h, c, w: tfa_layer_norm_step(x, h, c, w, eps=1e-5),
        with_zero_bias,
    )


def test_default_layer_norm_cell_is_unchanged_by_the_option():
    """Without the option: 7 weights and the unnormalized carried state."""
    default = built(keras_lstm.LayerNormLSTM, UNITS)
    assert len(default.weights) == 7
    config = built(keras_lstm.LayerNormLSTM, UNITS,
                   carry_normalized_state=True).get_config()
    assert config["carry_normalized_state"] is True
    restored = keras_lstm.LayerNormLSTM.from_config(config)
    assert restored.cell.carry_normalized_state is True
    with pytest.raises(TypeError, match="carry_normalized_state"):
        keras_lstm.LayerNormLSTMCell(UNITS, carry_normalized_state="yes")


def test_layer_norm_weights_from_h5_names_in_any_order():
    weights = tfa_weights(LAYER_NORM_NAMES, seed=3)
    named = {f"rnn/layer_norm_lstm_cell/{n}:0": w
             for n, w in reversed(weights.items())}
    layer = built(keras_lstm.LayerNormLSTM, UNITS, carry_normalized_state=True)
    layer.set_weights(keras_lstm.from_tfa_layer_norm_lstm(named))
    assert_matches(layer, tfa_layer_norm_step, list(weights.values()))


class _Node(tf.Module):
    """A tf.Module tree that checkpoints as Keras 2 layers do."""


def _write_checkpoint(path, cells):
    """Object-based checkpoint of model.layer_with_weights-k/cell/..."""
    model = _Node()
    for index, weights in enumerate(cells):
        cell = _Node()
        for name, value in weights.items():
            owner = cell
            *parents, leaf = name.split("/")
            for parent in parents:
                if not hasattr(owner, parent):
                    setattr(owner, parent, _Node())
                owner = getattr(owner, parent)
            setattr(owner, leaf, tf.Variable(value))
        layer = _Node()
        layer.cell = cell
        setattr(model, f"layer_with_weights-{index}", layer)
    return tf.train.Checkpoint(model=model).write(str(path))


def test_peephole_weights_from_a_checkpoint_of_two_cells(tmp_path):
    first = tfa_weights(PEEPHOLE_NAMES, seed=1)
    second = tfa_weights(PEEPHOLE_NAMES, seed=2)
    path = _write_checkpoint(tmp_path / "ckpt", [first, second])
    with pytest.raises(ValueError, match="prefix"):
        keras_lstm.from_tfa_peephole_lstm(path)
    layer = built(keras_lstm.PeepholeLSTM, UNITS)
    layer.set_weights(keras_lstm.from_tfa_peephole_lstm(
        path, prefix="model/layer_with_weights-1/"))
    assert_matches(layer, peephole_step, list(second.values()))


def test_layer_norm_weights_from_a_checkpoint(tmp_path):
    weights = tfa_weights(LAYER_NORM_NAMES, seed=4)
    path = _write_checkpoint(tmp_path / "ckpt", [weights])
    layer = built(keras_lstm.LayerNormLSTM, UNITS, carry_normalized_state=True)
    layer.set_weights(keras_lstm.from_tfa_layer_norm_lstm(path))
    assert_matches(layer, tfa_layer_norm_step, list(weights.values()))


def test_peephole_weights_from_a_list():
    """TF Addons' peepholes start from kernel_initializer: non-zero."""
    weights = list(tfa_weights(PEEPHOLE_NAMES, seed=5).values())
    layer = built(keras_lstm.PeepholeLSTM, UNITS)
    layer.set_weights(keras_lstm.from_tfa_peephole_lstm(weights))
    assert_matches(layer, peephole_step, weights)


def test_bad_weights_are_rejected():
    weights = tfa_weights(LAYER_NORM_NAMES)
    as_list = list(weights.values())
    with pytest.raises(ValueError, match="has 9 weights"):
        keras_lstm.from_tfa_layer_norm_lstm(as_list[:5])
    wrong = dict(weights, **{"state_norm/beta": np.zeros(UNITS + 1)})
    with pytest.raises(ValueError, match=r"state_norm/beta shaped \(6,\)"):
        keras_lstm.from_tfa_layer_norm_lstm(wrong)
    missing = {k: v for k, v in weights.items() if k != "kernel_norm/beta"}
    with pytest.raises(KeyError, match="kernel_norm/beta"):
        keras_lstm.from_tfa_layer_norm_lstm(missing)
    with pytest.raises(ValueError, match="PeepholeLSTMCell has 6 weights"):
        keras_lstm.from_tfa_peephole_lstm(as_list)
