"""Bias initializers that know the packed gate layout of `LSTMCell`."""

import numbers

import keras
from keras import ops

from keras_lstm.cell import GATE_ORDER


@keras.saving.register_keras_serializable(package="keras_lstm")
class ChronoInitializer(keras.initializers.Initializer):
    """Chrono initialization of the packed LSTM bias (Tallec & Ollivier, 2018).

    "Can recurrent neural networks warp time?" (ICLR 2018) argue that a unit
    whose forget gate sits near σ(b_f) keeps information for about
    ``1 / (1 - σ(b_f)) ≈ exp(b_f)`` steps, so drawing

        b_f = log(U(1, max_timescale - 1)),   b_i = -b_f,   other blocks 0

    spreads the units' memory spans between 1 and ``max_timescale`` steps,
    the longest dependency one expects. The forget and input blocks are found
    by name in `gate_order`, so one initializer serves any packed layout.

    Because it sets the forget block itself it must not be combined with
    ``unit_forget_bias=True`` (which would overwrite it); the cell raises if
    it is.

    Args:
        max_timescale: Number > 2, the longest dependency (in steps) expected.
        gate_order: Names of the packed gate blocks (default i, f, c, o, the
            `LSTMCell` layout; pass the cell's `gate_order` for a variant).
        seed: Optional int seed of the uniform draw.

    Example:

    >>> layer = keras_lstm.LSTM(
    ...     32,
    ...     bias_initializer=keras_lstm.ChronoInitializer(1000),
    ...     unit_forget_bias=False,
    ... )
    """

    def __init__(self, max_timescale, gate_order=GATE_ORDER, seed=None):
        if isinstance(max_timescale, bool) or not isinstance(
            max_timescale, numbers.Real
        ) or not max_timescale > 2:
            raise ValueError(
                "`max_timescale` must be a number greater than 2 (the forget "
                "bias is drawn from log U(1, max_timescale - 1)). "
                f"Received: max_timescale={max_timescale!r}"
            )
        gate_order = tuple(gate_order)
        if "f" not in gate_order or len(set(gate_order)) != len(gate_order):
            raise ValueError(
                "`gate_order` must name each packed gate block once and "
                "include the forget gate 'f'. "
                f"Received: gate_order={gate_order}"
            )
        self.max_timescale = float(max_timescale)
        self.gate_order = gate_order
        self.seed = seed
        self._seed_generator = keras.random.SeedGenerator(seed)

    def __call__(self, shape, dtype=None):
        blocks = len(self.gate_order)
        if len(shape) != 1 or shape[0] % blocks:
            raise ValueError(
                "ChronoInitializer initializes a packed bias of shape "
                f"({blocks} * units,) with blocks {self.gate_order}. "
                f"Received: shape={tuple(shape)}"
            )
        units = shape[0] // blocks
        dtype = dtype or keras.backend.floatx()
        timescale = keras.random.uniform(
            (units,),
            minval=1.0,
            maxval=self.max_timescale - 1.0,
            dtype=dtype,
            seed=self._seed_generator,
        )
        forget = ops.log(timescale)
        values = {"f": forget, "i": -forget}
        zeros = ops.zeros((units,), dtype=dtype)
        return ops.concatenate(
            [values.get(gate, zeros) for gate in self.gate_order]
        )

    def get_config(self):
        return {
            "max_timescale": self.max_timescale,
            "gate_order": list(self.gate_order),
            "seed": self.seed,
        }

