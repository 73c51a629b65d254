"""imdb_sentiment stopped by SIGTERM or SIGINT mid-epoch resumes at that batch.

The signal is sent by the training process itself after its Nth batch (a
real signal through the recipe's handler, landing mid-epoch every time).
The rerun of the same command must end exactly where a run never stopped
ends: same weights, figures and number of optimizer steps, with dropout on
and a cosine learning-rate schedule. A damaged mid-epoch checkpoint falls
back to the last epoch checkpoint. See docs/reliability.md.
"""

import dataclasses
import json
import signal
import subprocess

import keras
import numpy as np
import pytest

import recipe_process
from imdb_data import write_acl_imdb
from recipes.common.signals import Stopped
from recipes.imdb_sentiment import checkpoints
from recipes.imdb_sentiment import config as config_lib
from recipes.imdb_sentiment import train

MODULE = "recipes.imdb_sentiment"
# Dropout stays on (0.5): the resumed epoch must draw the same masks.
SETTINGS = dict(vocab_size=50, max_len=12, embedding_dim=8, lstm_units=4,
                batch_size=4, validation_fraction=0.25, epochs=2,
                learning_rate_schedule="cosine")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_acl_imdb(tmp_path_factory.mktemp("imdb") / "aclImdb",
                          per_folder=12)


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    """A run never stopped: its model_dir and batches per epoch."""
    model_dir = tmp_path_factory.mktemp("whole") / "run"
    config = dataclasses.replace(config_lib.Config(), data_dir=data_dir,
                                 **SETTINGS)
    train.train_and_evaluate(config, str(model_dir))
    per_epoch = _steps(checkpoints.checkpoint_path(model_dir, 1))
    assert per_epoch >= 4
    return model_dir, per_epoch


def _flags(model_dir, data_dir):
    return [f"--model_dir={model_dir}", f"--data_dir={data_dir}",
            *(f"--{name}={value}" for name, value in SETTINGS.items())]


def _run_signalled(flags, signum, after):
    """Runs the recipe, which sends itself `signum` after its `after`-th batch."""
    return subprocess.run(
        recipe_process.imdb_signalled_command(signum, after, *flags),
        cwd=recipe_process.REPO, env=recipe_process.ENV, capture_output=True,
        text=True, timeout=300)


def _steps(path):
    model = keras.models.load_model(str(path))
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _weights(path):
    model = keras.models.load_model(str(path))
    return ([keras.ops.convert_to_numpy(w) for w in model.weights],
            [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables])


def _figures(model_dir):
    keys = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")
    history = json.loads((model_dir / "history.json").read_text())
    return [{key: entry[key] for key in keys} for entry in history]


def _assert_same_run(resumed_dir, whole_dir, epochs):
    """Same figures, weights, optimizer state and steps as the run never stopped."""
    resumed, whole = _figures(resumed_dir), _figures(whole_dir)
    assert [e["epoch"] for e in resumed] == list(range(1, epochs + 1))
    for got, expected in zip(resumed, whole):
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-7), key
    last = checkpoints.checkpoint_path(resumed_dir, epochs)
    assert _steps(last) == _steps(checkpoints.checkpoint_path(whole_dir, epochs))
    got_weights, got_optimizer = _weights(last)
    expected_weights, expected_optimizer = _weights(
        checkpoints.checkpoint_path(whole_dir, epochs))
    for got, expected in zip(got_weights + got_optimizer,
                             expected_weights + expected_optimizer):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    metrics = json.loads((resumed_dir / "metrics.json").read_text())
    expected = json.loads((whole_dir / "metrics.json").read_text())
    for key in ("test_accuracy", "test_loss", "validation_accuracy", "best_epoch"):
        assert metrics[key] == pytest.approx(expected[key], rel=1e-6), key
    assert not (resumed_dir / "checkpoints" / "mid_epoch.json").exists()
    assert not list((resumed_dir / "checkpoints").glob("mid_epoch_*.keras"))


def _mid_epoch_state(model_dir):
    return json.loads((model_dir / "checkpoints" / "mid_epoch.json").read_text())


def test_sigterm_mid_epoch_saves_the_batch_and_the_rerun_ends_as_if_never_stopped(
        tmp_path, data_dir, uninterrupted):
    whole_dir, per_epoch = uninterrupted
    model_dir = tmp_path / "run"
    flags = _flags(model_dir, data_dir)
    stopped = _run_signalled(flags, signal.SIGTERM, per_epoch + 2)
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert "Traceback" not in stopped.stderr
    assert "SIGTERM: stopped during epoch 2 after its batch 2" in stopped.stderr
    state = _mid_epoch_state(model_dir)
    assert (state["epoch"], state["batches_done"], state["steps"]) == (
        2, 2, per_epoch + 2)
    saved = model_dir / "checkpoints" / "mid_epoch_002_batch_00002.keras"
    assert _steps(saved) == per_epoch + 2
    assert [e["epoch"] for e in _figures(model_dir)] == [1]

    resumed = recipe_process.run(MODULE, *flags)  # The same command again.
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (f"Resuming epoch 2 after its batch 2 of {per_epoch}"
            in resumed.stdout)
    _assert_same_run(model_dir, whole_dir, epochs=2)
    assert _steps(checkpoints.checkpoint_path(model_dir, 2)) == 2 * per_epoch


@pytest.mark.slow
def test_sigint_then_sigterm_during_the_resumed_epoch_lose_no_batch(
        tmp_path, data_dir, uninterrupted):
    whole_dir, per_epoch = uninterrupted
    model_dir = tmp_path / "run"
    flags = _flags(model_dir, data_dir)
    first = _run_signalled(flags, signal.SIGINT, 2)
    assert first.returncode == 130, first.stderr[-3000:]
    assert "Traceback" not in first.stderr
    assert _mid_epoch_state(model_dir)["batches_done"] == 2
    assert not (model_dir / "history.json").exists()
    # Stopped again one batch into the resumed epoch 1: 3 batches done.
    second = _run_signalled(flags, signal.SIGTERM, 1)
    assert second.returncode == 143, second.stderr[-3000:]
    assert "stopped during epoch 1 after its batch 3" in second.stderr
    state = _mid_epoch_state(model_dir)
    assert (state["epoch"], state["batches_done"], state["steps"]) == (1, 3, 3)
    assert [p.name for p in (model_dir / "checkpoints").glob("mid_epoch_*")] == [
        "mid_epoch_001_batch_00003.keras"]
    last = recipe_process.run(MODULE, *flags)
    assert last.returncode == 0, last.stderr[-3000:]
    _assert_same_run(model_dir, whole_dir, epochs=2)


def _signal_in_process(monkeypatch, signum, after):
    """Makes this process send itself `signum` after its `after`-th batch."""
    original = checkpoints.EpochCheckpoint.on_train_batch_end
    seen = []

    def on_train_batch_end(self, batch, logs=None):
        seen.append(batch)
        if len(seen) == after:
            signal.raise_signal(signum)
        original(self, batch, logs)

    monkeypatch.setattr(checkpoints.EpochCheckpoint, "on_train_batch_end",
                        on_train_batch_end)


@pytest.mark.parametrize("damage, signum, status", [
    ("truncated checkpoint", signal.SIGTERM, 143),
    ("garbled state", signal.SIGINT, 130)])
def test_a_damaged_mid_epoch_checkpoint_falls_back_to_the_last_epoch(
        tmp_path, data_dir, uninterrupted, monkeypatch, capfd, damage, signum,
        status):
    _, per_epoch = uninterrupted
    model_dir = tmp_path / "run"
    config = dataclasses.replace(config_lib.Config(), data_dir=data_dir,
                                 **SETTINGS)
    with monkeypatch.context() as patch:
        _signal_in_process(patch, signum, per_epoch + 2)
        with pytest.raises(Stopped, match="stopped during epoch 2 after its "
                           "batch 2") as stopped:
            train.train_and_evaluate(config, str(model_dir))
    assert stopped.value.status == status
    if damage == "truncated checkpoint":
        damaged = model_dir / "checkpoints" / "mid_epoch_002_batch_00002.keras"
        damaged.write_bytes(damaged.read_bytes()[:400])
    else:
        damaged = model_dir / "checkpoints" / "mid_epoch.json"
        damaged.write_text('{"epoch": 2, "batc')
    capfd.readouterr()
    metrics = train.train_and_evaluate(config, str(model_dir))
    out, err = capfd.readouterr()
    assert f"warning: {damaged} is damaged" in err
    assert "resuming from the last completed epoch" in err
    assert "Resuming after epoch 1 from" in out
    assert (model_dir / "checkpoints" / "damaged" / damaged.name).exists()
    # Epoch 2 trained again from epoch 1's checkpoint: no batch twice.
    assert metrics["epochs"] == 2
    assert [e["epoch"] for e in _figures(model_dir)] == [1, 2]
    assert _steps(checkpoints.checkpoint_path(model_dir, 2)) == 2 * per_epoch
    assert not (model_dir / "checkpoints" / "mid_epoch.json").exists()
