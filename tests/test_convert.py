"""Weights to and from torch.nn.LSTM.

The default suite checks against a NumPy implementation of nn.LSTM's
documented equations in its own layout; the tests marked ``torch`` check
against torch itself (`python -m pytest -m torch` where torch is installed).
"""

import ast
import os

import keras
import numpy as np
import pytest

import keras_lstm
from numpy_reference import sigmoid

BATCH, STEPS, FEATURES, HIDDEN, PROJ = 3, 5, 4, 6, 2
ATOL = 1e-5


def torch_reference(x, sd, suffix="_l0"):
    """nn.LSTM's documented equations in its own layout, batch first."""
    w_ih, w_hh = sd["weight_ih" + suffix], sd["weight_hh" + suffix]
    b = sd.get("bias_ih" + suffix, 0.0) + sd.get("bias_hh" + suffix, 0.0)
    w_hr = sd.get("weight_hr" + suffix)
    hidden = w_ih.shape[0] // 4
    h = np.zeros((x.shape[0], w_hh.shape[1]))
    c = np.zeros((x.shape[0], hidden))
    outputs = []
    for t in range(x.shape[1]):
        gates = x[:, t] @ w_ih.T + h @ w_hh.T + b
        i, f, g, o = np.split(gates, 4, axis=-1)  # PyTorch's order i, f, g, o
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        if w_hr is not None:
            h = h @ w_hr.T
        outputs.append(h)
    return np.stack(outputs, 1), h, c


def torch_state_dict(bias=True, proj=0, layers=1, reverse=False, seed=0):
    """A random nn.LSTM-shaped state dict of NumPy arrays."""
    rng = np.random.default_rng(seed)
    sd = {}
    for k in range(layers):
        for suffix in [f"_l{k}"] + ([f"_l{k}_reverse"] if reverse else []):
            size_in = FEATURES if k == 0 else (proj or HIDDEN) * (1 + reverse)
            shapes = {"weight_ih": (4 * HIDDEN, size_in),
                      "weight_hh": (4 * HIDDEN, proj or HIDDEN)}
            if bias:
                shapes.update(bias_ih=(4 * HIDDEN,), bias_hh=(4 * HIDDEN,))
            if proj:
                shapes["weight_hr"] = (proj, HIDDEN)
            for name, shape in shapes.items():
                sd[name + suffix] = (0.5 * rng.standard_normal(shape)).astype(
                    "float32")
    return sd


def inputs(seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")


def loaded(layer, weights):
    layer.build((None, STEPS, FEATURES))
    layer.set_weights(weights)
    return layer


def assert_layer_matches(layer, sd, suffix="_l0"):
    outputs, h, c = layer(inputs())
    ref_out, ref_h, ref_c = torch_reference(inputs(), sd, suffix)
    np.testing.assert_allclose(outputs, ref_out, atol=ATOL)
    np.testing.assert_allclose(h, ref_h, atol=ATOL)
    np.testing.assert_allclose(c, ref_c, atol=ATOL)


SEQ = {"return_sequences": True, "return_state": True}


@pytest.mark.parametrize("bias", [True, False])
def test_from_torch_matches_reference(bias):
    sd = torch_state_dict(bias=bias)
    layer = loaded(keras_lstm.LSTM(HIDDEN, use_bias=bias, **SEQ),
                   keras_lstm.from_torch_lstm(sd))
    assert_layer_matches(layer, sd)


def test_from_torch_projection_matches_reference():
    sd = torch_state_dict(proj=PROJ)
    weights = keras_lstm.from_torch_lstm(sd)
    layer = loaded(keras_lstm.ProjectionLSTM(HIDDEN, projection_units=PROJ,
                                             **SEQ), weights)
    assert_layer_matches(layer, sd)


def test_layer_reverse_and_prefix_pick_the_right_entries():
    sd = torch_state_dict(layers=2, reverse=True)
    prefixed = {f"encoder.lstm.{k}": v for k, v in sd.items()}
    got = keras_lstm.from_torch_lstm(prefixed, layer=1, reverse=True,
                                     prefix="encoder.lstm.")
    np.testing.assert_array_equal(got[0], sd["weight_ih_l1_reverse"].T)
    np.testing.assert_array_equal(got[1], sd["weight_hh_l1_reverse"].T)
    np.testing.assert_array_equal(
        got[2], sd["bias_ih_l1_reverse"] + sd["bias_hh_l1_reverse"])


@pytest.mark.parametrize("proj", [0, PROJ])
def test_round_trips(proj):
    sd = torch_state_dict(proj=proj)
    weights = keras_lstm.from_torch_lstm(sd)
    back = keras_lstm.to_torch_lstm(weights)
    assert set(back) == set(sd)
    for name in ("weight_ih_l0", "weight_hh_l0", "weight_hr_l0"):
        if name in sd:
            np.testing.assert_array_equal(back[name], sd[name])
    # The two biases cannot be told apart: their sum goes to bias_ih.
    np.testing.assert_allclose(back["bias_ih_l0"],
                               sd["bias_ih_l0"] + sd["bias_hh_l0"])
    np.testing.assert_array_equal(back["bias_hh_l0"], 0.0)
    again = keras_lstm.from_torch_lstm(back)
    for a, b in zip(again, weights):
        np.testing.assert_array_equal(a, b)
    # The torch layout of our weights computes what our layer computes.
    layer = (keras_lstm.ProjectionLSTM(HIDDEN, projection_units=PROJ, **SEQ)
             if proj else keras_lstm.LSTM(HIDDEN, **SEQ))
    assert_layer_matches(loaded(layer, weights), back)


def test_to_torch_accepts_layers():
    ours = keras_lstm.LSTM(HIDDEN)
    ours.build((None, STEPS, FEATURES))
    theirs = keras.layers.LSTM(HIDDEN)
    theirs.build((None, STEPS, FEATURES))
    theirs.set_weights(ours.get_weights())
    a = keras_lstm.to_torch_lstm(ours, layer=2)
    b = keras_lstm.to_torch_lstm(theirs.cell, layer=2)
    assert set(a) == {"weight_ih_l2", "weight_hh_l2", "bias_ih_l2",
                      "bias_hh_l2"}
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    bi = keras.layers.Bidirectional(keras_lstm.LSTM(HIDDEN, use_bias=False))
    bi.build((None, STEPS, FEATURES))
    assert set(keras_lstm.to_torch_lstm(bi, prefix="m.")) == {
        "m.weight_ih_l0", "m.weight_hh_l0",
        "m.weight_ih_l0_reverse", "m.weight_hh_l0_reverse"}


@pytest.mark.parametrize("layer", [
    keras_lstm.PeepholeLSTM(HIDDEN),
    keras_lstm.CIFGLSTM(HIDDEN),
    keras_lstm.LSTM(HIDDEN, recurrent_activation="hard_sigmoid"),
], ids=["peephole", "cifg", "hard_sigmoid"])
def test_to_torch_rejects_what_torch_cannot_run(layer):
    layer.build((None, STEPS, FEATURES))
    with pytest.raises(ValueError, match="Received: .* with cell"):
        keras_lstm.to_torch_lstm(layer)


def test_conversion_errors():
    sd = torch_state_dict()
    with pytest.raises(KeyError, match="weight_ih_l1"):
        keras_lstm.from_torch_lstm(sd, layer=1)
    bad = dict(sd, weight_hh_l0=sd["weight_hh_l0"][:, :3])
    with pytest.raises(ValueError, match=r"'weight_hh': \(24, 3\)"):
        keras_lstm.from_torch_lstm(bad)
    lone = {k: v for k, v in sd.items() if k != "bias_hh_l0"}
    with pytest.raises(ValueError, match="Received: layer 0"):
        keras_lstm.from_torch_lstm(lone)
    with pytest.raises(ValueError, match=r"Received shapes: \[\(4, 18\)"):
        keras_lstm.to_torch_lstm([np.zeros((4, 18)), np.zeros((6, 18))])


def test_the_package_never_imports_torch():
    """No import of torch anywhere in keras_lstm (state dicts are NumPy)."""
    package = os.path.dirname(keras_lstm.__file__)
    for root, _, files in os.walk(package):
        for name in (f for f in files if f.endswith(".py")):
            with open(os.path.join(root, name)) as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    modules = [node.module or ""]
                else:
                    continue
                assert not any(m.split(".")[0] == "torch" for m in modules), (
                    f"{name} imports {modules}")


# --- against torch itself ---------------------------------------------------


def torch_lstm(**kwargs):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch, torch.nn.LSTM(FEATURES, HIDDEN, batch_first=True, **kwargs)


def keras_stack(layers, proj, bidirectional):
    model = keras.Sequential([keras.Input((STEPS, FEATURES))])
    for _ in range(layers):
        layer = (keras_lstm.ProjectionLSTM(HIDDEN, projection_units=proj,
                                           return_sequences=True)
                 if proj else keras_lstm.LSTM(HIDDEN, return_sequences=True))
        model.add(keras.layers.Bidirectional(layer) if bidirectional
                  else layer)
    return model


@pytest.mark.torch
@pytest.mark.parametrize("proj", [0, PROJ], ids=["plain", "proj"])
def test_torch_outputs_from_and_back(proj):
    torch, module = torch_lstm(num_layers=2, bidirectional=True,
                               proj_size=proj)
    # Parameters require grad: the converter detaches them itself.
    state = dict(module.named_parameters())
    expected = module(torch.from_numpy(inputs()))[0].detach().numpy()
    model = keras_stack(2, proj, bidirectional=True)
    for k, layer in enumerate(model.layers):
        layer.forward_layer.set_weights(
            keras_lstm.from_torch_lstm(state, layer=k))
        layer.backward_layer.set_weights(
            keras_lstm.from_torch_lstm(state, layer=k, reverse=True))
    np.testing.assert_allclose(model(inputs()), expected, atol=ATOL)

    _, fresh = torch_lstm(num_layers=2, bidirectional=True, proj_size=proj)
    entries = {}
    for k, layer in enumerate(model.layers):
        entries.update(keras_lstm.to_torch_lstm(layer, layer=k))
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in entries.items()})
    got = fresh(torch.from_numpy(inputs()))[0].detach().numpy()
    np.testing.assert_allclose(got, expected, atol=ATOL)


@pytest.mark.torch
def test_torch_without_bias_final_states():
    torch, module = torch_lstm(bias=False)
    sd = {k: v.numpy() for k, v in module.state_dict().items()}
    _, (h, c) = module(torch.from_numpy(inputs()))
    layer = loaded(keras_lstm.LSTM(HIDDEN, use_bias=False, return_state=True),
                   keras_lstm.from_torch_lstm(sd))
    _, h_ours, c_ours = layer(inputs())
    np.testing.assert_allclose(h_ours, h[0].detach().numpy(), atol=ATOL)
    np.testing.assert_allclose(c_ours, c[0].detach().numpy(), atol=ATOL)
