"""absl flag validators shared by the recipes' entry points.

Bounds are finite: `--clip_norm=inf` or `--temperature=inf` would pass a
plain comparison and then turn the run's numbers into NaN, so every
validator here also refuses infinity and NaN.
"""

import math

from absl import flags


def _finite(value):
    return not isinstance(value, float) or math.isfinite(value)


def require_at_least(name, minimum, flag_values=flags.FLAGS):
    """Registers a validator: flag `name` must be >= minimum."""
    flags.register_validator(
        name,
        lambda value: value is None or (_finite(value) and value >= minimum),
        message=f"--{name} must be >= {minimum} and finite",
        flag_values=flag_values,
    )


def require_above(name, bound, flag_values=flags.FLAGS):
    """Registers a validator: flag `name` must be > bound."""
    flags.register_validator(
        name,
        lambda value: value is None or (_finite(value) and value > bound),
        message=f"--{name} must be > {bound} and finite",
        flag_values=flag_values,
    )


def require_fraction(name, flag_values=flags.FLAGS):
    """Registers a validator: flag `name` must lie in [0, 1)."""
    flags.register_validator(
        name,
        lambda value: value is None or 0.0 <= value < 1.0,
        message=f"--{name} must be in [0, 1)",
        flag_values=flag_values,
    )
