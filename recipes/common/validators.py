"""absl flag validators shared by the recipes' entry points."""

from absl import flags


def require_at_least(name, minimum, flag_values=flags.FLAGS):
    """Registers a validator: flag `name` must be >= minimum."""
    flags.register_validator(
        name,
        lambda value: value is None or value >= minimum,
        message=f"--{name} must be >= {minimum}",
        flag_values=flag_values,
    )


def require_above(name, bound, flag_values=flags.FLAGS):
    """Registers a validator: flag `name` must be > bound."""
    flags.register_validator(
        name,
        lambda value: value is None or value > bound,
        message=f"--{name} must be > {bound}",
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
