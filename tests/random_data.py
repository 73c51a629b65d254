"""Seeded random inputs and weights shared by the test modules."""

import numpy as np


def random_inputs(*shape, seed=1):
    """Standard-normal float32 array of `shape`."""
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def random_weights(layer, seed=0, scale=0.5):
    """Random non-default weights shaped like `layer`'s (not set)."""
    rng = np.random.default_rng(seed)
    return [
        (scale * rng.standard_normal(w.shape)).astype("float32")
        for w in layer.get_weights()
    ]


def randomize(layer, seed=0, scale=0.5):
    """Gives the built `layer` random non-default weights and returns them."""
    weights = random_weights(layer, seed=seed, scale=scale)
    layer.set_weights(weights)
    return weights


def build_random(layer, input_shape, seed=0, scale=0.5):
    """Builds `layer`, gives it random weights and returns them."""
    layer.build(input_shape)
    return randomize(layer, seed=seed, scale=scale)
