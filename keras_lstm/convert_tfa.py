"""Weights from TF Addons' LSTM cells to keras_lstm's variants.

TF Addons (end of life; its cells do not run on Keras 3) has

- `tfa.rnn.PeepholeLSTMCell` (also tf.keras 2's
  `tf.keras.experimental.PeepholeLSTMCell`): ``kernel``,
  ``recurrent_kernel``, ``bias``, ``input_gate_peephole_weights``,
  ``forget_gate_peephole_weights``, ``output_gate_peephole_weights``; the
  equations of `keras_lstm.PeepholeLSTMCell`.
- `tfa.rnn.LayerNormLSTMCell`: ``kernel``, ``recurrent_kernel``, ``bias``
  and the ``gamma``/``beta`` of its three LayerNormalization sublayers
  ``kernel_norm``, ``recurrent_norm``, ``state_norm``; the equations of
  ``keras_lstm.LayerNormLSTMCell(carry_normalized_state=True)``.

Both keep Keras's packing (gate order i, f, c, o, the same as
`keras_lstm.GATE_ORDER`), so the arrays pass unchanged: the converters find
them by name, put them in the order the keras_lstm cell's `set_weights`
takes and check their shapes. Nothing here needs tensorflow_addons.
"""

import numpy as np
import tensorflow as tf

PEEPHOLE_NAMES = (
    "kernel", "recurrent_kernel", "bias", "input_gate_peephole_weights",
    "forget_gate_peephole_weights", "output_gate_peephole_weights",
)
"""TF Addons' PeepholeLSTMCell weights, in its get_weights order."""

LAYER_NORM_NAMES = (
    "kernel", "recurrent_kernel", "bias", "kernel_norm/gamma",
    "kernel_norm/beta", "recurrent_norm/gamma", "recurrent_norm/beta",
    "state_norm/gamma", "state_norm/beta",
)
"""TF Addons' LayerNormLSTMCell weights, in its get_weights order."""

_CHECKPOINT_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def from_tfa_peephole_lstm(weights, prefix=""):
    """Weights of a TF Addons `PeepholeLSTMCell` for `keras_lstm.PeepholeLSTM`.

    Args:
        weights: The TF Addons cell's (or its RNN layer's) ``get_weights()``
            list; or a dict of variable names to arrays (an .h5 file's
            ``"rnn/peephole_lstm_cell/kernel:0"``, a checkpoint's
            ``".../cell/kernel/.ATTRIBUTES/VARIABLE_VALUE"``); or the path of
            a TensorFlow checkpoint.
        prefix: With a dict or checkpoint holding several cells, only names
            starting with it are read.

    Returns:
        ``[kernel, recurrent_kernel, bias, input_peephole, forget_peephole,
        output_peephole]`` (no bias if the cell had none), for `set_weights`
        of a ``keras_lstm.PeepholeLSTMCell`` or ``PeepholeLSTM`` (the same
        order).

    Example:

    >>> ours = keras_lstm.PeepholeLSTM(units)
    >>> ours.build((None, None, features))
    >>> ours.set_weights(keras_lstm.from_tfa_peephole_lstm("ckpt/model"))
    """
    arrays = _named_arrays(weights, PEEPHOLE_NAMES, prefix, "PeepholeLSTMCell")
    _check_shapes(arrays, {
        name: "units" for name in PEEPHOLE_NAMES[3:]
    }, "PeepholeLSTMCell")
    return list(arrays.values())


def from_tfa_layer_norm_lstm(weights, prefix=""):
    """Weights of a TF Addons `LayerNormLSTMCell` for keras_lstm's.

    The target is ``keras_lstm.LayerNormLSTMCell(units,
    carry_normalized_state=True)`` (or `LayerNormLSTM` with that argument),
    which computes TF Addons' equations; its 9 weights are in TF Addons'
    order. Arguments as `from_tfa_peephole_lstm`.

    Returns:
        ``[kernel, recurrent_kernel, bias, kernel_norm_gamma,
        kernel_norm_beta, recurrent_norm_gamma, recurrent_norm_beta,
        state_norm_gamma, state_norm_beta]`` (no bias if the cell had none).
    """
    arrays = _named_arrays(
        weights, LAYER_NORM_NAMES, prefix, "LayerNormLSTMCell"
    )
    sizes = {name: "gates" for name in LAYER_NORM_NAMES[3:7]}
    sizes.update({name: "units" for name in LAYER_NORM_NAMES[7:]})
    _check_shapes(arrays, sizes, "LayerNormLSTMCell")
    return list(arrays.values())


def _named_arrays(weights, names, prefix, cell):
    """{name: array} in `names` order ("bias" may be absent)."""
    if isinstance(weights, str):
        weights = _read_checkpoint(weights)
    if isinstance(weights, dict):
        return _find_by_name(weights, names, prefix, cell)
    weights = [np.asarray(w) for w in weights]
    # Without a bias the list is one shorter; bias is the only 1-D array
    # among the first three.
    has_bias = len(weights) == len(names)
    expected = names if has_bias else tuple(n for n in names if n != "bias")
    if len(weights) != len(expected) or (
        has_bias and weights[2].ndim != 1
    ):
        raise ValueError(
            f"A TF Addons {cell} has {len(names)} weights ({len(names) - 1} "
            f"without bias): {', '.join(names)}. Received: "
            f"{len(weights)} arrays shaped {[w.shape for w in weights]}"
        )
    return dict(zip(expected, weights))


def _read_checkpoint(path):
    """A TensorFlow checkpoint's variables (no optimizer slots) by name."""
    return {
        name: tf.train.load_variable(path, name)
        for name, _ in tf.train.list_variables(path)
        if ".OPTIMIZER_SLOT" not in name
    }


def _short_name(key):
    """A variable's name without ':0' or a checkpoint's attribute suffix."""
    key = key.split(":")[0]
    if key.endswith(_CHECKPOINT_SUFFIX):
        key = key[: -len(_CHECKPOINT_SUFFIX)]
    return key


def _find_by_name(weights, names, prefix, cell):
    keys = [k for k in weights if k.startswith(prefix)]
    found = {}
    for name in names:
        matches = [
            k for k in keys
            if _short_name(k) == name or _short_name(k).endswith("/" + name)
        ]
        if len(matches) > 1:
            raise ValueError(
                f"Several variables match the TF Addons {cell} weight "
                f"'{name}': {matches}. Pass `prefix` to pick one cell. "
                f"Received: prefix={prefix!r}"
            )
        if matches:
            found[name] = np.asarray(weights[matches[0]])
        elif name != "bias":
            raise KeyError(
                f"A TF Addons {cell} has a weight named '{name}'; none of "
                f"the names starting with {prefix!r} ends with it. "
                f"Received names: {sorted(weights)}"
            )
    return found


def _check_shapes(arrays, vector_sizes, cell):
    """kernel (features, 4u), recurrent_kernel (u, 4u), the vectors sized."""
    kernel, recurrent = arrays["kernel"], arrays["recurrent_kernel"]
    units = recurrent.shape[0] if recurrent.ndim == 2 else -1
    sizes = {"units": units, "gates": 4 * units}
    expected = {"kernel": (kernel.shape[0], 4 * units),
                "recurrent_kernel": (units, 4 * units),
                "bias": (4 * units,)}
    expected.update({name: (sizes[s],) for name, s in vector_sizes.items()})
    for name, array in arrays.items():
        if kernel.ndim != 2 or array.shape != expected[name]:
            raise ValueError(
                f"A TF Addons {cell} with units={units} has {name} shaped "
                f"{expected[name]} (recurrent_kernel (units, 4 * units)). "
                "Received: "
                + ", ".join(f"{n}={a.shape}" for n, a in arrays.items())
            )
