"""The real train_and_evaluate on a tiny config: outputs, resume, bad input."""

import dataclasses
import json
import os

import numpy as np
import pytest

from recipes.common.errors import UsageError
from recipes.long_range import config as config_lib
from recipes.long_range import data
from recipes.long_range import train

PNGS = ("mse_vs_length.png", "gradient_norms.png", "validation_curves.png")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One tiny run shared by the tests that only read its outputs."""
    model_dir = str(tmp_path_factory.mktemp("long_range"))
    config = config_lib.debug_config()
    metrics = train.train_and_evaluate(config, model_dir)
    return config, model_dir, metrics


def _read(model_dir, name):
    with open(os.path.join(model_dir, name)) as f:
        return json.load(f)


def test_writes_results_metrics_and_plots(finished_run):
    config, model_dir, metrics = finished_run
    assert metrics == _read(model_dir, "metrics.json")
    assert metrics["baseline_mse"] == pytest.approx(1 / 6)
    assert metrics["figures"] == list(PNGS)
    for name in PNGS:
        with open(os.path.join(model_dir, name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    results = _read(model_dir, "results.json")
    for length in config.lengths:
        for name in config.models:
            entry = results["runs"][str(length)][name]
            assert metrics["test_mse"][str(length)][name] == entry["test_mse"]
            assert np.isfinite(entry["test_mse"]) and entry["test_mse"] > 0
            _, test_y = data.held_out_set(
                config.seed, "test", length, config.eval_examples
            )
            assert entry["test_baseline_mse"] == pytest.approx(
                np.mean((test_y - 1.0) ** 2)
            )
            assert metrics["test_baseline_mse"][str(length)] == (
                entry["test_baseline_mse"]
            )
            assert entry["steps"] == config.train_steps
            assert entry["stopped_by"] == "train_steps"
            assert [row["step"] for row in entry["history"]] == [3, 6]
            for stage in ("init", "trained"):
                norms = entry["gradient_norms"][stage]
                assert len(norms) == length
                assert all(np.isfinite(norms)) and norms[0] > 0
                summary = metrics["gradient_norm_by_distance"][str(length)]
                assert summary[name][stage] == {
                    "0": norms[0], "first": norms[-1]
                }


def test_models_have_the_same_units_and_lstm_has_four_blocks(finished_run):
    config, model_dir, _ = finished_run
    entry = _read(model_dir, "results.json")["runs"]["4"]
    units, features = config.units, 2
    rnn = units * (features + units + 1) + units + 1
    lstm = 4 * units * (features + units + 1) + units + 1
    assert entry["simple_rnn"]["parameters"] == rnn
    assert entry["lstm"]["parameters"] == lstm


def test_writes_checkpoints_and_tensorboard_logs(finished_run):
    config, model_dir, _ = finished_run
    run_dir = os.path.join(model_dir, "T8", "lstm")
    assert os.path.exists(os.path.join(run_dir, "checkpoints", "checkpoint"))
    assert os.listdir(os.path.join(run_dir, "logs"))
    tags = _summary_tags(os.path.join(model_dir, "logs"))
    assert {"config", "mse_vs_length", "gradient_norms"} <= tags
    assert {"train/loss", "validation/mse"} <= _summary_tags(
        os.path.join(run_dir, "logs")
    )


def test_gate_heatmaps_of_lstm_models_only(finished_run):
    _, model_dir, _ = finished_run
    lstm_tags = _summary_tags(os.path.join(model_dir, "T4", "lstm", "logs"))
    assert {f"gates/lstm/{g}" for g in "fioc"} <= lstm_tags
    rnn_tags = _summary_tags(os.path.join(model_dir, "T4", "simple_rnn", "logs"))
    assert not any(tag.startswith("gates/") for tag in rnn_tags)


def test_gate_heatmaps_mark_the_two_marked_positions(tmp_path):
    from recipes.long_range.model import build_model

    config = config_lib.debug_config()
    model = build_model("lstm", 12, data.FEATURES, config.units, config.lstm_bias, config.seed)
    example, _ = data.held_out_set(config.seed, "test", 12, 1)
    heatmaps = train._gate_heatmaps(config, model, "lstm", example, str(tmp_path))
    figure = heatmaps.figures("training step 0")["gates/lstm/f"][0]
    drawn = sorted({float(line.get_xdata()[0]) for line in figure.axes[0].lines})
    assert drawn == list(np.flatnonzero(example[0, :, data.MARKER_CHANNEL]))
    assert len(drawn) == 2 and drawn[0] < 6 <= drawn[1]


def test_rerun_skips_finished_runs(finished_run, capsys):
    config, model_dir, metrics = finished_run
    again = train.train_and_evaluate(config, model_dir)
    assert "(skipped)" in capsys.readouterr().out
    assert again["test_mse"] == metrics["test_mse"]


def test_more_steps_resume_from_the_checkpoint(tmp_path, capsys):
    config = dataclasses.replace(
        config_lib.debug_config(), lengths=(4,), models=("lstm",)
    )
    train.train_and_evaluate(config, str(tmp_path))
    longer = dataclasses.replace(config, train_steps=9)
    train.train_and_evaluate(longer, str(tmp_path))
    out = capsys.readouterr().out
    assert "resumed from step 6" in out
    entry = _read(str(tmp_path), "results.json")["runs"]["4"]["lstm"]
    assert entry["steps"] == 9
    assert [row["step"] for row in entry["history"]] == [3, 6, 9]


def test_runs_with_other_models_are_reported_together(tmp_path):
    first = dataclasses.replace(
        config_lib.debug_config(), lengths=(4,), models=("simple_rnn",)
    )
    train.train_and_evaluate(first, str(tmp_path))
    second = dataclasses.replace(first, models=("keras_lstm",), train_steps=3)
    metrics = train.train_and_evaluate(second, str(tmp_path))
    assert sorted(metrics["test_mse"]["4"]) == ["keras_lstm", "simple_rnn"]
    assert metrics["train_steps"]["4"] == {"keras_lstm": 3, "simple_rnn": 6}


def test_stop_mse_ends_training_early(tmp_path):
    config = dataclasses.replace(
        config_lib.debug_config(), lengths=(4,), models=("simple_rnn",),
        stop_mse=1e9,
    )
    train.train_and_evaluate(config, str(tmp_path))
    entry = _read(str(tmp_path), "results.json")["runs"]["4"]["simple_rnn"]
    assert entry["stopped_by"] == "stop_mse"
    assert entry["steps"] == config.eval_every


def test_other_settings_in_the_same_model_dir_are_refused(finished_run):
    config, model_dir, _ = finished_run
    before = sorted(os.listdir(os.path.join(model_dir, "T4", "lstm", "checkpoints")))
    wider = dataclasses.replace(config, units=config.units + 1)
    with pytest.raises(UsageError, match=r"other settings \(units=4\).*units=5"):
        train.train_and_evaluate(wider, model_dir)
    after = sorted(os.listdir(os.path.join(model_dir, "T4", "lstm", "checkpoints")))
    assert before == after


def test_unreadable_results_json_is_reported_not_overwritten(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("{not json")
    with pytest.raises(UsageError, match="cannot be read as JSON"):
        train.train_and_evaluate(config_lib.debug_config(), str(tmp_path))
    assert path.read_text() == "{not json"


def test_model_dir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "file"
    path.write_text("keep me")
    with pytest.raises(UsageError, match="model_dir must be a directory"):
        train.train_and_evaluate(config_lib.debug_config(), str(path))
    assert path.read_text() == "keep me"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"lengths": (50, 1)}, r"lengths must be integers >= 2.*\(50, 1\)"),
        ({"lengths": ()}, r"lengths must be at least one length"),
        ({"lengths": (8, 8)}, r"lengths must be distinct"),
        ({"models": ("lstm", "gru")}, r"models must be names from lstm, "
         r"simple_rnn, keras_lstm. Received: models=\('lstm', 'gru'\)"),
        ({"units": 0}, r"units must be an integer >= 1. Received: units=0"),
        ({"lstm_bias": "ones"}, r"lstm_bias must be one of chrono"),
        ({"max_minutes": -1.0}, r"max_minutes must be >= 0"),
        ({"learning_rate": 0.0}, r"learning_rate must be > 0"),
    ],
)
def test_bad_config_is_refused_before_any_file_is_written(tmp_path, change, message):
    config = dataclasses.replace(config_lib.debug_config(), **change)
    with pytest.raises(UsageError, match=message):
        train.train_and_evaluate(config, str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run")


def _summary_tags(log_dir):
    import tensorflow as tf

    tags = set()
    for name in os.listdir(log_dir):
        for event in tf.data.TFRecordDataset(os.path.join(log_dir, name)):
            summary = tf.compat.v1.Event.FromString(event.numpy()).summary
            tags |= {value.tag for value in summary.value}
    return tags
