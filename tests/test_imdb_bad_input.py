"""Every bad input of the IMDB recipe: one clear message, before training, model_dir untouched."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import tensorflow_datasets as tfds

from recipes.common import tfds_access
from recipes.common.errors import UsageError
from recipes.imdb_sentiment import config as config_lib
from recipes.imdb_sentiment import train
from imdb_data import write_acl_imdb

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def model_dir(tmp_path):
    """A model_dir that already holds files of an earlier run."""
    directory = tmp_path / "run"
    (directory / "checkpoints").mkdir(parents=True)
    (directory / "checkpoints" / "epoch_001.keras").write_bytes(b"earlier checkpoint")
    (directory / "metrics.json").write_text('{"test_accuracy": 0.9}')
    return directory


def _snapshot(directory):
    return {
        os.path.relpath(os.path.join(root, name), directory): open(os.path.join(root, name), "rb").read()
        for root, _, names in os.walk(directory) for name in names
    }


def _config(**changes):
    return dataclasses.replace(config_lib.debug_config(), **changes)


def _assert_refused(config, model_dir, message):
    before = _snapshot(model_dir)
    with pytest.raises(UsageError, match=message):
        train.train_and_evaluate(config, str(model_dir))
    assert _snapshot(model_dir) == before


def test_missing_data_dir(tmp_path, model_dir):
    _assert_refused(_config(data_dir=str(tmp_path / "none")), model_dir,
                    "--data_dir must be an existing aclImdb folder")


def test_folder_without_the_acl_imdb_layout(tmp_path, model_dir):
    (tmp_path / "reviews" / "train").mkdir(parents=True)
    _assert_refused(_config(data_dir=str(tmp_path / "reviews")), model_dir,
                    "missing: train/pos, train/neg, test/pos, test/neg")


def test_csv_without_columns(tmp_path, model_dir):
    csv_file = tmp_path / "r.csv"
    csv_file.write_text("text,label\nnice,1\n")
    _assert_refused(_config(csv_file=str(csv_file)), model_dir, "missing: review, sentiment")


def test_csv_unknown_label(tmp_path, model_dir):
    csv_file = tmp_path / "r.csv"
    csv_file.write_text("review,sentiment\nnice,positive\nhm,mixed\n")
    _assert_refused(_config(csv_file=str(csv_file)), model_dir, "Received: sentiment='mixed'")


def test_csv_empty_test_split(tmp_path, model_dir):
    csv_file = tmp_path / "r.csv"
    csv_file.write_text("review,sentiment,split\nnice,positive,train\nbad,negative,train\n")
    _assert_refused(_config(csv_file=str(csv_file)), model_dir, "the validation and test splits are empty")


def test_validation_split_rounds_to_nothing(tmp_path, model_dir):
    data_dir = write_acl_imdb(tmp_path / "aclImdb", per_folder=2)
    _assert_refused(_config(data_dir=data_dir, validation_fraction=0.01), model_dir,
                    "the validation split is empty.*validation=0")


def test_tfds_unreachable(monkeypatch, model_dir):
    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(tfds, "load", offline)
    monkeypatch.setattr(tfds_access, "host_resolves", lambda *args: True)
    _assert_refused(_config(), model_dir, "imdb_reviews.*--data_dir=PATH/aclImdb.*--csv_file=PATH.csv")


def test_unknown_cell_and_strategy(tmp_path, model_dir):
    data_dir = write_acl_imdb(tmp_path / "aclImdb", per_folder=2)
    _assert_refused(_config(data_dir=data_dir, cell="gru"), model_dir, "Received: cell='gru'")
    _assert_refused(_config(data_dir=data_dir, strategy="cluster"), model_dir,
                    "Received: strategy='cluster'")


def test_epochs_below_one(tmp_path, model_dir):
    _assert_refused(_config(epochs=0), model_dir, "--epochs must be >= 1. Received: epochs=0")


def test_model_dir_of_a_run_with_other_settings(tmp_path, model_dir):
    data_dir = write_acl_imdb(tmp_path / "aclImdb", per_folder=2)
    saved = dataclasses.asdict(_config(data_dir=data_dir))
    (model_dir / "config.json").write_text(json.dumps(saved))
    _assert_refused(_config(data_dir=data_dir, lstm_units=8), model_dir,
                    r"other settings.*lstm_units=8 \(saved: 4\)")


def _run_cli(args, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", "recipes.imdb_sentiment", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def test_cli_flag_validators_refuse_bad_values(model_dir):
    before = _snapshot(model_dir)
    result = _run_cli([f"--model_dir={model_dir}", "--epochs=0", "--max_len=0",
                       "--dropout=1.5", "--ngram_buckets=-1", "--ngram_l2=-1",
                       "--data_dir=a", "--csv_file=b"])
    assert result.returncode != 0
    for message in ("--epochs must be >= 1", "--max_len must be >= 1",
                    "--dropout must be in [0, 1)", "--ngram_buckets must be >= 0",
                    "--ngram_l2 must be >= 0",
                    "at most one of --data_dir and --csv_file"):
        assert message in result.stderr
    result = _run_cli([f"--model_dir={model_dir}", "--strategy=cluster"])
    assert result.returncode != 0
    assert "--strategy=cluster: value should be one of <default|mirrored|multi_worker|tpu>" in result.stderr
    assert _snapshot(model_dir) == before


def test_cli_usage_error_is_one_line_and_exit_2(tmp_path, model_dir):
    before = _snapshot(model_dir)
    result = _run_cli([f"--model_dir={model_dir}", f"--data_dir={tmp_path / 'none'}"])
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--data_dir must be an existing aclImdb folder" in errors[0]
    assert "Traceback" not in result.stderr
    assert _snapshot(model_dir) == before
