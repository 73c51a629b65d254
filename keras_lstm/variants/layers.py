"""Sequence layers for the variant cells: thin `keras.layers.RNN` subclasses.

``keras.layers.RNN(keras_lstm.PeepholeLSTMCell(64))`` works as well; these
named layers add the cell's arguments to the layer's signature and a flat
config, as `keras_lstm.LSTM` has. They always run the cell step by step.
"""

import keras
import numpy as np

from keras_lstm import validation
from keras_lstm.layer import zero_masked_steps
from keras_lstm.variants.cifg import CIFGLSTMCell
from keras_lstm.variants.layer_norm import LayerNormLSTMCell
from keras_lstm.variants.peephole import PeepholeLSTMCell
from keras_lstm.variants.projection import ProjectionLSTMCell
from keras_lstm.variants.zoneout import ZoneoutLSTMCell

# Keyword arguments that belong to the layer; every other one goes to the cell.
_LAYER_ARGS = (
    "name",
    "dtype",
    "trainable",
    "autocast",
    "activity_regularizer",
    "input_shape",
    "input_dim",
)
# Entries of the cell's config that the layer's own config already holds.
_CELL_BASE_CONFIG = ("name", "dtype", "trainable")


class VariantLSTM(keras.layers.RNN):
    """Base of the named variant layers: runs `cell_class` over time.

    Args:
        *cell_args: Positional arguments of the cell (units, ...).
        return_sequences, return_state, go_backwards, stateful, unroll,
        zero_output_for_mask: As in `keras.layers.RNN`.
        **kwargs: The cell's keyword arguments and the base layer's (name,
            dtype, trainable, activity_regularizer).

    Call arguments:
        sequences: float tensor (batch, timesteps, features).
        initial_state: optional list of the cell's states, shaped
            (batch, size) for each size in `cell.state_size`.
        mask: optional bool tensor (batch, timesteps).
        training: whether dropout (and zoneout) apply.
    """

    cell_class = None

    def __init__(
        self,
        *cell_args,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        zero_output_for_mask=False,
        **kwargs,
    ):
        layer_kwargs = {k: kwargs.pop(k) for k in _LAYER_ARGS if k in kwargs}
        cell = self.cell_class(
            *cell_args,
            dtype=layer_kwargs.get("dtype"),
            trainable=layer_kwargs.get("trainable", True),
            name="cell",
            **kwargs,
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            zero_output_for_mask=zero_output_for_mask,
            **layer_kwargs,
        )

    @property
    def units(self):
        """The cell's `units`."""
        return self.cell.units

    def __call__(self, sequences, initial_state=None, mask=None, **kwargs):
        # Check everything the user gave before Keras builds or computes.
        shape = validation.check_sequence_input(sequences, self.name)
        validation.check_mask(mask, shape, self.name)
        if initial_state is not None:
            _check_states(initial_state, shape[0], self.cell.state_size,
                          self.name)
            kwargs["initial_state"] = initial_state
        if mask is not None:
            kwargs["mask"] = mask
        return super().__call__(sequences, **kwargs)

    def call(self, sequences, initial_state=None, mask=None, training=False):
        sequences = validation.as_float(sequences, self.compute_dtype)
        sequences = zero_masked_steps(sequences, mask)
        return super().call(
            sequences, initial_state=initial_state, mask=mask,
            training=training,
        )

    def get_config(self):
        config = super().get_config()
        del config["cell"]
        cell_config = self.cell.get_config()
        for key in _CELL_BASE_CONFIG:
            cell_config.pop(key, None)
        return {**config, **cell_config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check_states(initial_state, batch, state_size, layer_name):
    """Checks that `initial_state` matches the cell's `state_size`."""
    states = (
        list(initial_state)
        if isinstance(initial_state, (list, tuple))
        else [initial_state]
    )
    expected = [(batch, size) for size in state_size]
    shapes = [tuple(np.shape(s) if not hasattr(s, "shape") else s.shape)
              for s in states]
    ok = len(shapes) == len(expected) and all(
        len(got) == 2
        and all(a is None or b is None or a == b for a, b in zip(got, want))
        for got, want in zip(shapes, expected)
    )
    if not ok:
        raise ValueError(
            f"Layer '{layer_name}' expects initial_state to be a list of "
            f"{len(expected)} tensors shaped {expected} (batch, state size). "
            f"Received: initial_state shapes={shapes}"
        )



@keras.saving.register_keras_serializable(package="keras_lstm")
class PeepholeLSTM(VariantLSTM):
    """Runs `keras_lstm.PeepholeLSTMCell` over time (Gers & Schmidhuber, 2000).

    Example: ``keras_lstm.PeepholeLSTM(64, return_sequences=True)``.
    """

    cell_class = PeepholeLSTMCell


@keras.saving.register_keras_serializable(package="keras_lstm")
class LayerNormLSTM(VariantLSTM):
    """Runs `keras_lstm.LayerNormLSTMCell` over time (Ba et al., 2016).

    Example: ``keras_lstm.LayerNormLSTM(64, norm_epsilon=1e-5)``.
    """

    cell_class = LayerNormLSTMCell


@keras.saving.register_keras_serializable(package="keras_lstm")
class CIFGLSTM(VariantLSTM):
    """Runs `keras_lstm.CIFGLSTMCell` over time (Greff et al., 2017).

    Example: ``keras_lstm.CIFGLSTM(64)``.
    """

    cell_class = CIFGLSTMCell


@keras.saving.register_keras_serializable(package="keras_lstm")
class ProjectionLSTM(VariantLSTM):
    """Runs `keras_lstm.ProjectionLSTMCell` over time (Sak et al., 2014).

    Example: ``keras_lstm.ProjectionLSTM(256, projection_units=64)``.
    """

    cell_class = ProjectionLSTMCell


@keras.saving.register_keras_serializable(package="keras_lstm")
class ZoneoutLSTM(VariantLSTM):
    """Runs `keras_lstm.ZoneoutLSTMCell` over time (Krueger et al., 2017).

    Example: ``keras_lstm.ZoneoutLSTM(64, zoneout_h=0.05, zoneout_c=0.5)``.
    """

    cell_class = ZoneoutLSTMCell
