"""ZoneoutLSTMCell: units randomly keep their previous value while training."""

import keras
from keras import ops

from keras_lstm import validation
from keras_lstm.cell import LSTMCell


@keras.saving.register_keras_serializable(package="keras_lstm")
class ZoneoutLSTMCell(LSTMCell):
    """LSTM cell with zoneout (Krueger et al., 2017).

    "Zoneout: Regularizing RNNs by randomly preserving hidden activations"
    (ICLR 2017): while training, each unit of c and of h keeps its previous
    value with probability `zoneout_c` / `zoneout_h`, a fresh draw every step
    and every unit:

        c_t = d_c ⊙ c_{t-1} + (1 - d_c) ⊙ c_t',   d_c ~ Bernoulli(zoneout_c)
        h_t = d_h ⊙ h_{t-1} + (1 - d_h) ⊙ h_t',   d_h ~ Bernoulli(zoneout_h)

    where c_t', h_t' are the plain cell's new states. Like dropout, inference
    uses the expectation of the noise, which is deterministic:
    ``c_t = zoneout_c·c_{t-1} + (1 - zoneout_c)·c_t'`` (and the same for h).
    With both rates 0 the cell is the plain `LSTMCell`.

    Args:
        units: Positive int, size of the hidden and cell states.
        zoneout_h: Float in [0, 1), probability that a unit of h is preserved.
        zoneout_c: Float in [0, 1), probability that a unit of c is preserved.
        **kwargs: The arguments of `keras_lstm.LSTMCell`.

    Example:

    >>> layer = keras.layers.RNN(
    ...     keras_lstm.ZoneoutLSTMCell(64, zoneout_h=0.05, zoneout_c=0.5)
    ... )
    """

    per_gate_dropout = False  # One dropout mask shared by all gates.

    def __init__(self, units, zoneout_h=0.0, zoneout_c=0.0, **kwargs):
        super().__init__(units, **kwargs)
        self.zoneout_h = validation.check_rate(zoneout_h, "zoneout_h")
        self.zoneout_c = validation.check_rate(zoneout_c, "zoneout_c")

    def step(self, z, c_tm1, h_tm1, training=False):
        gates = super().step(z, c_tm1, h_tm1, training=training)
        return gates._replace(
            h=self._zoneout(h_tm1, gates.h, self.zoneout_h, training),
            c=self._zoneout(c_tm1, gates.c, self.zoneout_c, training),
        )

    def _zoneout(self, previous, new, rate, training):
        """Keeps each unit of `previous` with probability `rate`."""
        if rate == 0.0:
            return new
        if training:
            draw = keras.random.uniform(
                ops.shape(new), dtype=new.dtype, seed=self.seed_generator
            )
            return ops.where(draw < rate, previous, new)
        return rate * previous + (1.0 - rate) * new

    def get_config(self):
        config = {"zoneout_h": self.zoneout_h, "zoneout_c": self.zoneout_c}
        return {**super().get_config(), **config}
