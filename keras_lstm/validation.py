"""Argument and input checks shared by the cells and the layer.

Every check raises before any computation, and every message says what was
expected and ends with ``Received: name=value`` as Keras's own errors do.
"""

import numbers

import numpy as np
from keras import backend
from keras import ops


def check_units(units, name="units"):
    """Returns `units` if it is a positive Python int, else raises."""
    if isinstance(units, bool) or not isinstance(units, numbers.Integral):
        raise TypeError(
            f"`{name}` must be a positive integer (the size of the hidden "
            f"state). Received: {name}={units!r} of type {type(units).__name__}"
        )
    if units <= 0:
        raise ValueError(
            f"`{name}` must be a positive integer (the size of the hidden "
            f"state). Received: {name}={units}"
        )
    return int(units)


def check_rate(rate, name):
    """Returns `rate` as a float if it lies in [0, 1), else raises."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(
            f"`{name}` must be a float in [0, 1). "
            f"Received: {name}={rate!r} of type {type(rate).__name__}"
        )
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(
            f"`{name}` must be a float in [0, 1) (the fraction of units to "
            f"drop). Received: {name}={rate}"
        )
    return float(rate)


KERAS_IMPLEMENTATIONS = (0, 1, 2)
"""Keras 3's `implementation` values: 1 draws a dropout mask per gate."""


def check_cell_implementation(implementation):
    """Returns Keras's `implementation` (0, 1 or 2) as an int, else raises."""
    if isinstance(implementation, bool) or implementation not in (
        KERAS_IMPLEMENTATIONS
    ):
        raise ValueError(
            "A cell's `implementation` must be 0, 1 or 2, as in Keras 3 (1: "
            "one dropout mask per gate). Received: "
            f"implementation={implementation!r}"
        )
    return int(implementation)


def _dtype_name(x):
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        dtype = np.asarray(x).dtype
    try:
        return backend.standardize_dtype(dtype)
    except ValueError:  # NumPy strings and objects have no Keras name.
        return str(getattr(dtype, "name", dtype))


def _shape(x):
    shape = getattr(x, "shape", None)
    if shape is None:
        shape = np.shape(x)
    return tuple(None if d is None else int(d) for d in shape)


def check_sequence_input(inputs, layer_name):
    """Checks that `inputs` is a numeric tensor (batch, time, features).

    Integer and bool inputs are accepted, as `keras.layers.LSTM` accepts
    them; the layers compute in their float dtype (see `as_float`).
    """
    shape = _shape(inputs)
    if len(shape) != 3:
        raise ValueError(
            f"Layer '{layer_name}' expects inputs of rank 3, shaped "
            f"(batch, timesteps, features). Received: inputs.shape={shape} "
            f"(rank {len(shape)})"
        )
    _check_numeric(inputs, layer_name)
    return shape


def _is_numeric(dtype):
    return dtype == "bool" or "float" in dtype or "int" in dtype


def _check_numeric(inputs, layer_name):
    dtype = _dtype_name(inputs)
    if not _is_numeric(dtype):
        raise TypeError(
            f"Layer '{layer_name}' expects numeric inputs (float, integer or "
            f"bool; integers and bools are computed in the layer's float "
            f"dtype). Received: inputs.dtype={dtype}"
        )


def as_float(inputs, dtype):
    """`inputs` cast to `dtype` if integer or bool, else unchanged.

    `keras.layers.LSTM` multiplies integer inputs by its float weights,
    which promotes them to the compute dtype; casting first does the same.
    """
    if "float" in _dtype_name(inputs):
        return inputs
    return ops.cast(inputs, dtype)


def check_step_input(inputs, cell_name):
    """Checks that a cell's `inputs` are numeric and shaped (batch, features)."""
    shape = _shape(inputs)
    if len(shape) != 2:
        raise ValueError(
            f"Cell '{cell_name}' computes one time step and expects inputs "
            f"of rank 2, shaped (batch, features). Received: "
            f"inputs.shape={shape} (rank {len(shape)})"
        )
    _check_numeric(inputs, cell_name)
    return shape


def check_mask(mask, input_shape, layer_name):
    """Checks that `mask` is shaped (batch, timesteps) like the inputs."""
    if mask is None:
        return
    shape = _shape(mask)
    expected = input_shape[:2]
    compatible = len(shape) == 2 and all(
        a is None or b is None or a == b for a, b in zip(shape, expected)
    )
    if not compatible:
        raise ValueError(
            f"Layer '{layer_name}' expects a mask of shape (batch, timesteps) "
            f"= {expected} matching its inputs. Received: mask.shape={shape}"
        )


def check_initial_state(initial_state, input_shape, units, layer_name):
    """Checks that `initial_state` is [h, c], each shaped (batch, units)."""
    if initial_state is None:
        return
    states = (
        list(initial_state)
        if isinstance(initial_state, (list, tuple))
        else [initial_state]
    )
    shapes = [_shape(s) for s in states]
    expected = (input_shape[0], units)
    ok = len(states) == 2 and all(
        len(s) == 2 and all(a is None or b is None or a == b
                            for a, b in zip(s, expected))
        for s in shapes
    )
    if not ok:
        raise ValueError(
            f"Layer '{layer_name}' expects initial_state to be a list of two "
            f"tensors [h, c], each of shape (batch, units) = {expected}. "
            f"Received: initial_state shapes={shapes}"
        )
