"""The adding-problem generator: markers, targets, seeding, baseline."""

import numpy as np
import pytest

from recipes.long_range import data


@pytest.mark.parametrize("length", [2, 3, 50, 201])
def test_exactly_two_markers_one_in_each_half(length):
    inputs, _ = data.adding_problem(300, length, np.random.default_rng(0))
    markers = inputs[..., 1]
    assert set(np.unique(markers)) <= {0.0, 1.0}
    np.testing.assert_array_equal(markers.sum(axis=1), 2.0)
    half = length // 2
    np.testing.assert_array_equal(markers[:, :half].sum(axis=1), 1.0)
    np.testing.assert_array_equal(markers[:, half:].sum(axis=1), 1.0)


def test_target_is_the_sum_of_the_marked_values():
    inputs, targets = data.adding_problem(64, 30, np.random.default_rng(1))
    assert inputs.shape == (64, 30, 2) and inputs.dtype == np.float32
    assert targets.shape == (64, 1) and targets.dtype == np.float32
    for x, y in zip(inputs, targets):
        marked = np.flatnonzero(x[:, 1])
        assert len(marked) == 2
        np.testing.assert_allclose(y[0], x[marked, 0].sum(), rtol=1e-6)


def test_values_lie_in_the_unit_interval():
    inputs, _ = data.adding_problem(50, 40, np.random.default_rng(2))
    assert inputs[..., 0].min() >= 0.0 and inputs[..., 0].max() <= 1.0
    assert inputs[..., 0].std() > 0.2  # Uniform: std ≈ 0.289, not constant.


def test_predicting_the_mean_scores_the_baseline():
    _, targets = data.adding_problem(200_000, 4, np.random.default_rng(3))
    np.testing.assert_allclose(targets.mean(), 1.0, atol=0.01)
    mse = np.mean((targets - 1.0) ** 2)
    np.testing.assert_allclose(mse, data.BASELINE_MSE, rtol=0.02)


def test_batches_are_reproducible_and_distinct():
    a = data.training_batch(seed=7, length=20, step=5, batch_size=4)
    b = data.training_batch(seed=7, length=20, step=5, batch_size=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    for other in (
        data.training_batch(seed=7, length=20, step=6, batch_size=4),
        data.training_batch(seed=8, length=20, step=5, batch_size=4),
    ):
        assert not np.array_equal(a[0], other[0])


def test_validation_and_test_sets_differ_from_each_other():
    val, _ = data.held_out_set(0, "validation", 10, 8)
    test, _ = data.held_out_set(0, "test", 10, 8)
    again, _ = data.held_out_set(0, "test", 10, 8)
    assert not np.array_equal(val, test)
    np.testing.assert_array_equal(test, again)


def test_too_short_length_is_rejected():
    with pytest.raises(ValueError, match="at least 2 steps.*length=1"):
        data.adding_problem(4, 1, np.random.default_rng(0))


def test_unknown_split_is_rejected():
    with pytest.raises(ValueError, match="split='train_set'"):
        data.held_out_set(0, "train_set", 10, 8)
