"""Weights between PyTorch's `nn.LSTM` and keras_lstm's packed layout.

PyTorch keeps, for layer k (suffix ``_l{k}``, plus ``_reverse`` for the
backward direction of a bidirectional LSTM):

    weight_ih  (4H, input)     x part, gate rows i, f, g, o
    weight_hh  (4H, H or P)    h part
    bias_ih, bias_hh (4H,)     two biases, always added together
    weight_hr  (P, H)          only with proj_size=P: h_t = weight_hr·(o ⊙ tanh c)

keras_lstm (and `keras.layers.LSTM`) keep ``kernel (input, 4H)``,
``recurrent_kernel (H or P, 4H)``, one ``bias (4H,)`` and, for
`ProjectionLSTMCell`, ``projection_kernel (H, P)``: the transposes, blocks
reordered from PyTorch's gate order to `keras_lstm.GATE_ORDER` (the same
order, i, f, g = c, o), biases summed. Going back, the summed bias cannot be
split: all of it goes to ``bias_ih`` and ``bias_hh`` is zeros, which gives
PyTorch the same outputs.

Nothing here imports torch: state dicts are dicts of NumPy arrays (torch
tensors are accepted too and converted with ``.detach().cpu().numpy()``).
`keras.layers.LSTM` needs no converter: its weights are ours, so
``ours.set_weights(keras_layer.get_weights())`` works both ways.
"""

import keras
import numpy as np

from keras_lstm.cell import GATE_ORDER
from keras_lstm.cell import LSTMCell
from keras_lstm.variants.projection import ProjectionLSTMCell

TORCH_GATE_ORDER = ("i", "f", "c", "o")
"""PyTorch's gate blocks (its "g" is our candidate "c")."""


def from_torch_lstm(state_dict, layer=0, reverse=False, prefix=""):
    """Converts one layer (one direction) of an `nn.LSTM` state dict.

    Args:
        state_dict: Mapping of parameter names to arrays, such as
            ``{k: v.numpy() for k, v in torch_lstm.state_dict().items()}``.
        layer: Index k of the stacked layer (``num_layers`` > 1).
        reverse: Take the backward direction (``..._l{k}_reverse``) of a
            bidirectional LSTM.
        prefix: Prefix of the keys, e.g. ``"encoder.lstm."`` for a state dict
            of a whole model.

    Returns:
        List of arrays for `set_weights` of a `keras_lstm.LSTM` (or
        `keras.layers.LSTM`): ``[kernel, recurrent_kernel, bias]``, without
        bias if the torch LSTM had ``bias=False``, with ``projection_kernel``
        appended if it had ``proj_size`` (for `keras_lstm.ProjectionLSTM`).

    Example:

    >>> weights = keras_lstm.from_torch_lstm(
    ...     {k: v.numpy() for k, v in torch_lstm.state_dict().items()})
    >>> ours = keras_lstm.LSTM(torch_lstm.hidden_size)
    >>> ours.build((None, None, torch_lstm.input_size))
    >>> ours.set_weights(weights)
    """
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")

    def get(name, required=True):
        key = f"{prefix}{name}{suffix}"
        if key in state_dict:
            return _to_numpy(state_dict[key])
        if required:
            raise KeyError(
                f"from_torch_lstm expects the nn.LSTM parameter '{key}' in "
                f"the state dict. Received keys: {sorted(state_dict)}"
            )
        return None

    w_ih, w_hh = get("weight_ih"), get("weight_hh")
    b_ih, b_hh = get("bias_ih", False), get("bias_hh", False)
    w_hr = get("weight_hr", False)
    gate_rows = w_ih.shape[0]
    hidden = gate_rows // 4
    h_size = hidden if w_hr is None else w_hr.shape[0]
    expected = {
        "weight_ih": (4 * hidden, w_ih.shape[1]),
        "weight_hh": (4 * hidden, h_size),
        "bias_ih": (4 * hidden,),
        "bias_hh": (4 * hidden,),
        "weight_hr": (h_size, hidden),
    }
    found = {"weight_ih": w_ih, "weight_hh": w_hh, "bias_ih": b_ih,
             "bias_hh": b_hh, "weight_hr": w_hr}
    shapes = {k: v.shape for k, v in found.items() if v is not None}
    if gate_rows % 4 or any(shapes[k] != expected[k] for k in shapes) or (
        (b_ih is None) != (b_hh is None)
    ):
        raise ValueError(
            "from_torch_lstm expects nn.LSTM shapes weight_ih (4H, input), "
            "weight_hh (4H, H or proj_size), bias_ih and bias_hh (4H,), "
            f"weight_hr (proj_size, H). Received: layer {layer}"
            f"{' reverse' if reverse else ''} shapes {shapes}"
        )
    weights = [
        _reorder(w_ih.T, TORCH_GATE_ORDER, GATE_ORDER),
        _reorder(w_hh.T, TORCH_GATE_ORDER, GATE_ORDER),
    ]
    if b_ih is not None:
        weights.append(_reorder(b_ih + b_hh, TORCH_GATE_ORDER, GATE_ORDER))
    if w_hr is not None:
        weights.append(np.ascontiguousarray(w_hr.T))
    return weights


def to_torch_lstm(weights, layer=0, reverse=False, prefix=""):
    """Converts our weights to `nn.LSTM` state-dict entries (NumPy arrays).

    Args:
        weights: A built `keras_lstm.LSTM`, `keras.layers.LSTM`,
            `keras_lstm.ProjectionLSTM` (or their cells), a
            `keras.layers.Bidirectional` of one (both directions are
            returned), or the weight list ``[kernel, recurrent_kernel]``
            plus optionally ``bias`` and then ``projection_kernel``.
        layer: Index k of the torch layer the entries are for.
        reverse: Name the entries for the backward direction.
        prefix: Prefix of the keys.

    Returns:
        dict of ``weight_ih_l{k}``, ``weight_hh_l{k}`` and, with a bias,
        ``bias_ih_l{k}`` (the whole bias) and ``bias_hh_l{k}`` (zeros); with
        a projection also ``weight_hr_l{k}``. Load into torch with
        ``lstm.load_state_dict({k: torch.from_numpy(v) ...}, strict=False)``
        or together with the other layers' entries.
    """
    if isinstance(weights, keras.layers.Bidirectional):
        return {
            **to_torch_lstm(weights.forward_layer, layer, False, prefix),
            **to_torch_lstm(weights.backward_layer, layer, True, prefix),
        }
    if isinstance(weights, keras.layers.Layer):
        weights = _plain_lstm_weights(weights)
    arrays = [_to_numpy(w) for w in weights]
    kernel, recurrent_kernel = arrays[:2]
    bias = next((w for w in arrays[2:] if w.ndim == 1), None)
    projection = next((w for w in arrays[2:] if w.ndim == 2), None)
    gate_units = kernel.shape[1]
    if (
        len(arrays) != 2 + (bias is not None) + (projection is not None)
        or gate_units % 4
        or recurrent_kernel.shape[1] != gate_units
        or (bias is not None and bias.shape != (gate_units,))
    ):
        raise ValueError(
            "to_torch_lstm expects [kernel (input, 4H), recurrent_kernel "
            "(H or P, 4H)], then optionally bias (4H,) and projection_kernel "
            "(H, P). Received shapes: "
            f"{[tuple(w.shape) for w in arrays]}"
        )
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    state = {
        "weight_ih": _reorder(kernel, GATE_ORDER, TORCH_GATE_ORDER).T,
        "weight_hh": _reorder(recurrent_kernel, GATE_ORDER,
                              TORCH_GATE_ORDER).T,
    }
    if bias is not None:
        state["bias_ih"] = _reorder(bias, GATE_ORDER, TORCH_GATE_ORDER)
        state["bias_hh"] = np.zeros_like(bias)
    if projection is not None:
        state["weight_hr"] = projection.T
    return {
        f"{prefix}{name}{suffix}": np.ascontiguousarray(value)
        for name, value in state.items()
    }


def _plain_lstm_weights(layer):
    """The weight list of a layer or cell that nn.LSTM can represent."""
    cell = getattr(layer, "cell", layer)
    plain = type(cell) in (LSTMCell, ProjectionLSTMCell, keras.layers.LSTMCell)
    if (
        not plain
        or cell.activation is not keras.activations.tanh
        or cell.recurrent_activation is not keras.activations.sigmoid
    ):
        raise ValueError(
            "to_torch_lstm converts LSTMs that nn.LSTM can run: "
            "keras_lstm.LSTM, keras.layers.LSTM or keras_lstm.ProjectionLSTM "
            "with tanh and sigmoid activations (nn.LSTM has no peepholes, "
            "layer norm, coupled gates or zoneout). Received: "
            f"{type(layer).__name__} with cell {type(cell).__name__}"
        )
    if not cell.built:
        raise ValueError(
            "to_torch_lstm needs a built layer. Received: unbuilt "
            f"{layer.name!r}"
        )
    return cell.get_weights()


def _reorder(packed, from_order, to_order):
    """Reorders the gate blocks along the last axis of a packed weight."""
    blocks = np.split(np.asarray(packed), len(from_order), axis=-1)
    by_name = dict(zip(from_order, blocks))
    return np.concatenate([by_name[g] for g in to_order], axis=-1)


def _to_numpy(value):
    if hasattr(value, "detach"):  # A torch tensor, without importing torch.
        value = value.detach().cpu().numpy()
    return np.asarray(value)
