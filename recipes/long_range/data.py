"""The adding problem (Hochreiter & Schmidhuber, 1997), generated and seeded.

Each example is a sequence of `length` steps with two input channels:

    channel 0: values drawn uniformly from [0, 1]
    channel 1: markers, 1 at exactly two steps and 0 elsewhere

and its target is the sum of the two marked values. As in Le et al. (2015) and
Arjovsky et al. (2016), the first marker falls in the first half of the
sequence and the second in the second half, so the model must carry the first
value across at least length / 2 steps to the output.

A model that ignores its inputs does best by predicting the mean target, 1;
its MSE is the variance of a sum of two U(0, 1) values, 2 / 12 ≈ 0.167.

Every batch is a pure function of (seed, split, length, index), so a resumed
run sees exactly the stream of training batches it would have seen unbroken,
and both models of a comparison train on the same data.
"""

import numpy as np

BASELINE_MSE = 2.0 / 12.0
"""Test MSE of always predicting the mean target (1.0): Var(U + U') = 1/6."""

FEATURES = 2
"""Input channels: the values and the markers."""

MARKER_CHANNEL = 1
"""The input channel that is 1 at the two marked steps."""

_SPLITS = {"train": 0, "validation": 1, "test": 2}


def adding_problem(num_examples, length, rng):
    """Draws `num_examples` adding-problem sequences of `length` steps.

    Args:
        num_examples: Positive int, the batch size.
        length: Int >= 2, the number of time steps.
        rng: A `numpy.random.Generator`, the only source of randomness.

    Returns:
        inputs: float32 (num_examples, length, 2), values and markers.
        targets: float32 (num_examples, 1), the sum of the two marked values.
    """
    if length < 2:
        raise ValueError(
            "The adding problem needs at least 2 steps (one marker in each "
            f"half). Received: length={length}"
        )
    half = length // 2
    values = rng.uniform(0.0, 1.0, size=(num_examples, length))
    first = rng.integers(0, half, size=num_examples)
    second = rng.integers(half, length, size=num_examples)
    rows = np.arange(num_examples)
    markers = np.zeros((num_examples, length))
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    inputs = np.stack([values, markers], axis=-1).astype(np.float32)
    targets = values[rows, first] + values[rows, second]
    return inputs, targets[:, None].astype(np.float32)


def split_rng(seed, split, length, index=0):
    """The generator of batch `index` of `split` at `length` for `seed`."""
    if split not in _SPLITS:
        raise ValueError(
            f"split must be one of {sorted(_SPLITS)}. Received: split={split!r}"
        )
    return np.random.default_rng([seed, _SPLITS[split], length, index])


def training_batch(seed, length, step, batch_size):
    """Training batch number `step`: the same arrays every time it is asked."""
    return adding_problem(batch_size, length, split_rng(seed, "train", length, step))


def held_out_set(seed, split, length, num_examples):
    """The fixed validation or test set at `length` (disjoint seed streams)."""
    return adding_problem(num_examples, length, split_rng(seed, split, length))
