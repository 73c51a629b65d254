"""The IMDB recipe under MirroredStrategy on 2 logical CPUs, and with mixed precision.

Logical devices must be configured before TensorFlow starts, so the mirrored
run is the real entry point in a fresh process (--cpu_devices=2).
"""

import dataclasses
import json
import os
import subprocess
import sys

import keras
import numpy as np

from recipes.imdb_sentiment import config as config_lib
from recipes.imdb_sentiment import train
from imdb_data import write_acl_imdb

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    data_dir = write_acl_imdb(tmp_path / "aclImdb", per_folder=8)
    model_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "recipes.imdb_sentiment", f"--model_dir={model_dir}",
         f"--data_dir={data_dir}", "--strategy=mirrored", "--cpu_devices=2",
         "--vocab_size=20", "--max_len=8", "--embedding_dim=4", "--lstm_units=4",
         "--batch_size=4", "--epochs=1", "--nobucket_by_length"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["strategy"] == "mirrored" and metrics["replicas"] == 2
    assert metrics["epochs"] == 1 and metrics["test_examples"] == 16
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert (model_dir / "model.keras").is_file()


def test_mixed_precision_keeps_float32_weights(tmp_path):
    config = dataclasses.replace(
        config_lib.debug_config(), data_dir=write_acl_imdb(tmp_path / "aclImdb", per_folder=8),
        mixed_precision=True, bucket_by_length=False,
    )
    metrics = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert metrics["precision"] == "mixed_bfloat16"
    assert np.isfinite(metrics["test_loss"])
    keras.mixed_precision.set_global_policy("float32")
    model = keras.models.load_model(str(tmp_path / "run" / "checkpoints" / "epoch_001.keras"))
    assert {w.dtype for w in model.weights} == {"float32"}
    assert model.get_layer("bidirectional_0").compute_dtype == "bfloat16"
    assert model.get_layer("probability").compute_dtype == "float32"
