"""Guards that keep NaN and infinity out of everything a run saves.

A diverging update can leave finite losses behind it for a step (the loss
is computed before the update), so the recipes check the weights themselves
before they save a checkpoint or export a model, not only the loss.
"""

import math

import numpy as np


def non_finite_weights(variables):
    """Paths (or names) of the float variables holding a NaN or an infinity."""
    bad = []
    for variable in variables:
        value = np.asarray(variable.numpy() if hasattr(variable, "numpy")
                           else variable)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            bad.append(getattr(variable, "path", None)
                       or getattr(variable, "name", "?"))
    return bad


def require_finite_weights(model, what):
    """Raises FloatingPointError if a weight of `model` is NaN or infinite.

    Args:
        model: A Keras model.
        what: What was about to be written (named in the message).
    """
    bad = non_finite_weights(model.weights)
    if bad:
        raise FloatingPointError(
            f"the model's weights became NaN or infinite ({', '.join(bad[:3])}"
            f"{', ...' if len(bad) > 3 else ''}); {what} was not written")


def is_finite_number(value):
    """Whether `value` is a finite real number (NaN and +-inf are not)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
