"""Which path an LSTM runs: the pure rules and what the layer reports."""

import dataclasses

import numpy as np
import pytest

import keras_lstm
from keras_lstm import cudnn
from keras_lstm import dispatch
from keras_lstm import fused

PLAIN = dispatch.LayerOptions(
    plain_cell=True,
    activation="tanh",
    recurrent_activation="sigmoid",
    recurrent_dropout=0.0,
    unroll=False,
    use_bias=True,
)


def options(**changes):
    return dataclasses.replace(PLAIN, **changes)


@pytest.mark.parametrize("gpu, expected", [(False, "fused"), (True, "cudnn")])
def test_default_configuration(gpu, expected):
    assert dispatch.select_path(PLAIN, gpu_available=gpu) == expected


@pytest.mark.parametrize(
    "changes",
    [
        dict(plain_cell=False),
        dict(activation="relu"),
        dict(recurrent_activation="hard_sigmoid"),
        dict(recurrent_dropout=0.2),
        dict(unroll=True),
    ],
)
@pytest.mark.parametrize("gpu", [False, True])
def test_unsupported_options_run_step_by_step(changes, gpu):
    assert dispatch.select_path(options(**changes), gpu) == "step"


@pytest.mark.parametrize(
    "changes, expected",
    [
        (dict(use_bias=False), "fused"),  # cuDNN needs a bias, fused does not
        (dict(use_cudnn=False), "fused"),
        (dict(implementation="fused"), "fused"),
        (dict(implementation="step"), "step"),
    ],
)
def test_gpu_falls_back_to_fused(changes, expected):
    assert dispatch.select_path(options(**changes), gpu_available=True) == expected


def test_use_cudnn_true_without_gpu_raises():
    with pytest.raises(ValueError, match="no GPU is visible.*use_cudnn=True"):
        dispatch.select_path(options(use_cudnn=True), gpu_available=False)
    assert dispatch.select_path(options(use_cudnn=True), True) == "cudnn"


def test_forcing_fused_on_unsupported_configuration_raises():
    with pytest.raises(ValueError, match="recurrent_dropout=0.3.*implementation='fused'"):
        dispatch.select_path(
            options(recurrent_dropout=0.3, implementation="fused"), False
        )


def test_blockers_name_every_reason():
    reasons = dispatch.fused_blockers(
        options(plain_cell=False, activation="relu", unroll=True)
    )
    assert len(reasons) == 3
    assert any("relu" in r for r in reasons)


@pytest.mark.parametrize("value, expected", [("auto", "auto"), ("step", "step"),
                                             ("fused", "fused"), (1, "auto"), (2, "auto")])
def test_check_implementation(value, expected):
    assert dispatch.check_implementation(value) == expected


def test_check_implementation_rejects_unknown():
    with pytest.raises(ValueError, match="Received: implementation='cudnn'"):
        dispatch.check_implementation("cudnn")


def test_layer_reports_its_path_on_cpu():
    assert keras_lstm.LSTM(4).implementation_path == "fused"
    assert keras_lstm.LSTM(4, recurrent_dropout=0.1).implementation_path == "step"
    assert keras_lstm.LSTM(4, unroll=True).implementation_path == "step"
    assert keras_lstm.LSTM(4, activation="relu").implementation_path == "step"
    assert keras_lstm.LSTM(4, implementation="step").implementation_path == "step"
    assert keras_lstm.LSTM(4, implementation=2).implementation_path == "fused"


def test_layer_raises_before_any_work():
    with pytest.raises(ValueError, match="implementation='fused'"):
        keras_lstm.LSTM(4, activation="relu", implementation="fused")
    with pytest.raises(ValueError, match="use_cudnn=True"):
        keras_lstm.LSTM(4, use_cudnn=True, recurrent_dropout=0.1)


@pytest.mark.skipif(cudnn.gpu_available(), reason="needs a machine without GPU")
def test_use_cudnn_true_without_gpu_raises_when_called():
    layer = keras_lstm.LSTM(4, use_cudnn=True)  # As keras.layers.LSTM: at call.
    with pytest.raises(ValueError, match="no GPU is visible"):
        layer(np.zeros((2, 3, 1), "float32"))


def test_implementation_in_config_round_trip():
    layer = keras_lstm.LSTM(4, implementation="step")
    config = layer.get_config()
    assert config["implementation"] == "step"
    assert keras_lstm.LSTM.from_config(config).implementation_path == "step"


def test_implementation_path_is_read_only():
    with pytest.raises(AttributeError):
        keras_lstm.LSTM(4).implementation_path = "step"


@pytest.mark.parametrize("features, units, expected",
                         [(128, 64, True), (64, 256, False), (8, 32, False),
                          (64, 64, False), (None, 8, False)])
def test_inference_prefers_step_for_wide_inputs_without_cpp_loops(
        features, units, expected):
    for loops in ("xla", "python"):  # batch 1: small steps for the XLA rule
        assert dispatch.auto_prefers_step(
            features, units, 1, loops, training=False) == expected
    # The C++ loops are faster than step by step at every shape measured.
    assert not dispatch.auto_prefers_step(features, units, 2, "native", False)


@pytest.mark.parametrize(
    "batch, units, expected",
    [(32, 32, False),    # long: the XLA loops won on every machine
     (64, 32, False),    # 2^18 multiply-adds a step: the limit
     (64, 64, True),     # imdb: 0.90-1.35x keras
     (64, 256, True),    # charlm
     (256, 512, True),   # big
     (None, 32, False),  # unknown batch: Keras's default 32 assumed
     (None, 64, True)],
)
def test_training_without_cpp_loops_runs_step_by_step_where_xla_loses(
        batch, units, expected):
    assert dispatch.auto_prefers_step(8, units, batch, "xla", True) == expected
    assert not dispatch.auto_prefers_step(8, units, batch, "native", True)
    # Plain loops (graphs that may be saved) train slower than keras.
    assert dispatch.auto_prefers_step(8, units, batch, "python", True)
    assert not dispatch.auto_prefers_step(8, units, batch, "python", False)


def test_layer_without_cpp_ops_runs_keras_loop_at_large_steps(monkeypatch):
    """Same results as the fused path, computed by Keras's own loop."""
    monkeypatch.setattr(keras_lstm.LSTM, "fused_loops", property(lambda s: "xla"))
    calls = []
    original = fused.fused_lstm
    monkeypatch.setattr(fused, "fused_lstm",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    x = np.random.default_rng(0).normal(size=(64, 3, 4)).astype("float32")
    big = keras_lstm.LSTM(64)
    small = keras_lstm.LSTM(8)
    for layer in (big, small):
        layer(x, training=True)
    assert len(calls) == 1  # only the small layer ran fused
    reference = keras_lstm.LSTM(64, implementation="fused")
    reference.build(x.shape)
    reference.set_weights(big.get_weights())
    np.testing.assert_allclose(big(x, training=True),
                               reference(x, training=True), atol=1e-5)


def test_wide_input_inference_matches_training_path():
    # float64 runs the XLA loops, so training=False runs step by step (5
    # features > 3 units) and training=True fused; without dropout both
    # compute the same thing.
    layer = keras_lstm.LSTM(3, return_sequences=True, dtype="float64")
    assert layer.fused_loops == "xla"
    x = np.random.default_rng(0).normal(size=(2, 4, 5))
    np.testing.assert_allclose(
        layer(x, training=False), layer(x, training=True), atol=1e-12
    )
