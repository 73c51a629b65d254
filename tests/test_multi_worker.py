"""Both recipes under --strategy=multi_worker: two real worker processes.

Each test starts `python -m recipes.launch --workers=2 -- python -m
recipes.<recipe> --strategy=multi_worker ...`: two processes with their own
TF_CONFIG (two localhost ports), which tf.distribute treats as a cluster.
Checked: the same final figures as one process for the same global batch
and seed; only the chief writes to --model_dir and the other worker's
temporary directory is gone afterwards; input sharding, by counting; and
`kill -9` of one worker, then the same command again, resuming without a
lost or doubled step.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import recipe_process
from imdb_data import write_acl_imdb
from recipes.char_lm import input_pipeline as char_pipeline
from recipes.char_lm import train as char_train
from recipes.char_lm.config import debug_config
from recipes.imdb_sentiment import config as imdb_config
from recipes.imdb_sentiment import train as imdb_train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = os.path.join(REPO, "tests", "multi_worker_probe.py")
TEXT = ("ROMEO:\nBut, soft! what light through yonder window breaks?\n"
        "It is the east, and Juliet is the sun.\n\n") * 12
CHAR_FLAGS = ("--debug", "--batch_size=8", "--train_steps=6", "--eval_every=3",
              "--checkpoint_every=3")
# Dropout off: its masks are drawn per replica, so they depend on the split.
# Unbucketed batches of 4 that split evenly: Keras averages each replica's
# loss, which weights a partial batch's halves differently from one process.
IMDB_FLAGS = ("--vocab_size=30", "--max_len=12", "--embedding_dim=8",
              "--lstm_units=4", "--batch_size=4", "--word_dropout=0",
              "--dropout=0", "--nobucket_by_length", "--validation_fraction=0.1")


def _env(tmp_path):
    """Quiet TensorFlow; TMPDIR under tmp_path to see worker 1's temp dir go."""
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TMPDIR": str(temp)}


def _launch_command(tmp_path, module, *flags):
    return [sys.executable, "-m", "recipes.launch", "--workers=2",
            f"--worker_logs={tmp_path / 'logs'}", "--grace_seconds=5", "--",
            sys.executable, "-m", module, "--strategy=multi_worker", *flags]


def _launch(tmp_path, module, *flags, timeout=600):
    result = subprocess.run(_launch_command(tmp_path, module, *flags), cwd=REPO,
                            env=_env(tmp_path), capture_output=True, text=True,
                            timeout=timeout)
    logs = tmp_path / "logs" / "worker_1.log"
    detail = result.stderr[-3000:] + (logs.read_text()[-3000:] if logs.exists() else "")
    assert result.returncode == 0, detail
    return result


def _worker_temp_dirs(tmp_path):
    return [p for p in os.listdir(tmp_path / "tmp") if p.startswith("keras_lstm_worker")]


def _metrics(model_dir):
    return json.loads((model_dir / "metrics.json").read_text())


def test_char_lm_two_workers_match_one_process(tmp_path):
    text_file = tmp_path / "text.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    model_dir = tmp_path / "two"
    _launch(tmp_path, "recipes.char_lm", f"--model_dir={model_dir}",
            f"--text_file={text_file}", *CHAR_FLAGS)
    two = _metrics(model_dir)
    one = char_train.train_and_evaluate(
        debug_config(text_file=str(text_file), batch_size=8, train_steps=6,
                     eval_every=3, checkpoint_every=3), str(tmp_path / "one"))
    assert two["replicas"] == 2 and one["replicas"] == 1
    assert two["steps"] == one["steps"] == 6
    assert two["chars_trained"] == one["chars_trained"]
    np.testing.assert_allclose(two["final_val_nats_per_char"],
                               one["final_val_nats_per_char"], rtol=1e-3)
    np.testing.assert_allclose(two["best_val_nats_per_char"],
                               one["best_val_nats_per_char"], rtol=1e-3)
    # The chief wrote the run; worker 1 wrote nothing there and cleaned up.
    assert sorted(os.listdir(model_dir)) == sorted(os.listdir(tmp_path / "one"))
    assert _worker_temp_dirs(tmp_path) == []


@pytest.mark.slow
def test_input_sharding_gives_every_example_once_per_epoch(tmp_path):
    out = tmp_path / "probe"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "recipes.launch", "--workers=2", "--",
         sys.executable, PROBE, str(out), "--strategy=multi_worker"],
        cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = [json.loads((out / f"worker_{i}.json").read_text()) for i in range(2)]

    # Char LM: worker w gets rows [4w, 4w + 4) of the batch one process reads.
    ids, seq_len, batch = seen[0]["char_lm_shape"]
    stream = char_pipeline.TrainingStream(np.arange(ids, dtype=np.int32), seq_len,
                                          batch, seed=3, stateful=False)
    steps = [seen[w]["char_lm"] for w in range(2)]
    assert len(steps[0]) == len(steps[1]) == 2 * stream.steps_per_epoch
    for step, (mine, theirs) in enumerate(zip(*steps)):
        expected = stream.batch(step)["inputs"].numpy()[:, 0].tolist()
        assert mine == [expected[:batch // 2]] and theirs == [expected[batch // 2:]]
    for epoch in range(2):
        epoch_steps = slice(epoch * stream.steps_per_epoch,
                            (epoch + 1) * stream.steps_per_epoch)
        starts = [start for w in range(2) for replicas in steps[w][epoch_steps]
                  for rows in replicas for start in rows]
        assert len(starts) == len(set(starts)) == stream.num_windows

    # IMDB, padded and length-bucketed batches: each review once per epoch.
    for layout in ("imdb_padded", "imdb_buckets"):
        for split, epochs in (("train", seen[0][layout]["train"]),
                              ("test", [seen[0][layout]["test"]])):
            other = (seen[1][layout]["train"] if split == "train"
                     else [seen[1][layout]["test"]])
            assert len(epochs) == len(other)
            for mine, theirs in zip(epochs, other):
                assert len(mine) == len(theirs)  # The same number of steps.
                reviews = [r for step in mine + theirs for rows in step for r in rows]
                assert len(reviews) == len(set(reviews)) == 30, (layout, split)


@pytest.mark.slow
def test_imdb_two_workers_match_one_process(tmp_path):
    data_dir = write_acl_imdb(tmp_path / "aclImdb", per_folder=20)
    model_dir = tmp_path / "two"
    _launch(tmp_path, "recipes.imdb_sentiment", f"--model_dir={model_dir}",
            f"--data_dir={data_dir}", "--epochs=2", *IMDB_FLAGS)
    two = _metrics(model_dir)
    config = imdb_config.Config(
        data_dir=data_dir, vocab_size=30, max_len=12, embedding_dim=8,
        lstm_units=4, batch_size=4, word_dropout=0.0, dropout=0.0,
        bucket_by_length=False, epochs=2)
    one = imdb_train.train_and_evaluate(config, str(tmp_path / "one"))
    assert two["replicas"] == 2 and one["replicas"] == 1
    assert two["test_examples"] == one["test_examples"] == 40
    np.testing.assert_allclose(two["test_accuracy"], one["test_accuracy"], rtol=1e-3)
    np.testing.assert_allclose(two["test_loss"], one["test_loss"], rtol=1e-3)
    assert sorted(os.listdir(model_dir)) == sorted(os.listdir(tmp_path / "one"))
    assert _worker_temp_dirs(tmp_path) == []


def _kill_worker_1_when(tmp_path, command, ready):
    """Starts `command`, kills worker 1 with SIGKILL once ready(); returns
    the launcher's exit status."""
    launcher = subprocess.Popen(command, cwd=REPO, env=_env(tmp_path),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
    first_line = launcher.stderr.readline()  # "launch: 2 workers (worker 0: pid ..."
    worker_1 = int(first_line.split("worker 1: pid ")[1].split(")")[0])
    deadline = time.monotonic() + 300
    while not ready():
        assert launcher.poll() is None and time.monotonic() < deadline, first_line
        time.sleep(0.05)
    os.kill(worker_1, signal.SIGKILL)
    launcher.communicate(timeout=120)
    return launcher.returncode


@pytest.mark.slow
def test_char_lm_resumes_after_kill_9_of_a_worker(tmp_path):
    text_file = tmp_path / "text.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    model_dir = tmp_path / "two"
    flags = (f"--model_dir={model_dir}", f"--text_file={text_file}", "--debug",
             "--batch_size=8", "--train_steps=30", "--eval_every=15",
             "--checkpoint_every=5")
    command = _launch_command(tmp_path, "recipes.char_lm", *flags)
    status = _kill_worker_1_when(
        tmp_path, command,
        lambda: (model_dir / "checkpoints" / "ckpt-10.index").exists())
    assert status == 128 + signal.SIGKILL
    assert not (model_dir / "metrics.json").exists()
    _launch(tmp_path, "recipes.char_lm", *flags)  # The same command again.
    resumed = _metrics(model_dir)
    whole = char_train.train_and_evaluate(
        debug_config(text_file=str(text_file), batch_size=8, train_steps=30,
                     eval_every=15, checkpoint_every=5), str(tmp_path / "one"))
    # Every step ran once: as many characters as an uninterrupted run, and
    # the same figures (the data position is the restored step).
    assert resumed["steps"] == 30
    assert resumed["chars_trained"] == whole["chars_trained"] == 30 * 8 * 16
    np.testing.assert_allclose(resumed["final_val_nats_per_char"],
                               whole["final_val_nats_per_char"], rtol=1e-3)
    # The killed worker's temporary directory went with the rerun.
    assert _worker_temp_dirs(tmp_path) == []


@pytest.mark.slow
def test_imdb_resumes_after_kill_9_of_a_worker(tmp_path):
    data_dir = write_acl_imdb(tmp_path / "aclImdb", per_folder=20)
    model_dir = tmp_path / "two"
    flags = (f"--model_dir={model_dir}", f"--data_dir={data_dir}", "--epochs=4",
             *IMDB_FLAGS)
    command = _launch_command(tmp_path, "recipes.imdb_sentiment", *flags)
    status = _kill_worker_1_when(
        tmp_path, command,
        lambda: (model_dir / "checkpoints" / "epoch_002.keras").exists())
    assert status == 128 + signal.SIGKILL
    history = json.loads((model_dir / "history.json").read_text())
    assert 2 <= len(history) < 4
    _launch(tmp_path, "recipes.imdb_sentiment", *flags)
    history = json.loads((model_dir / "history.json").read_text())
    # Every epoch exactly once, and the optimizer made exactly 4 epochs of steps.
    assert [entry["epoch"] for entry in history] == [1, 2, 3, 4]
    import keras

    final = keras.models.load_model(str(model_dir / "checkpoints" / "epoch_004.keras"))
    assert int(final.optimizer.iterations.numpy()) == 4 * 36 // 4


@pytest.mark.slow
def test_imdb_workers_stop_together_on_a_forwarded_sigterm(tmp_path):
    data_dir = write_acl_imdb(tmp_path / "aclImdb", per_folder=20)
    model_dir = tmp_path / "two"
    flags = (f"--model_dir={model_dir}", f"--data_dir={data_dir}", "--epochs=3",
             *IMDB_FLAGS)
    launcher = subprocess.Popen(
        _launch_command(tmp_path, "recipes.imdb_sentiment", *flags), cwd=REPO,
        env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)
    deadline = time.monotonic() + 300
    while not (model_dir / "checkpoints" / "epoch_001.keras").exists():
        assert launcher.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    launcher.send_signal(signal.SIGTERM)
    _, stderr = launcher.communicate(timeout=120)
    # Both workers stopped after the same step and exited with SIGTERM's
    # status; none had to be killed.
    assert launcher.returncode == 143, stderr[-3000:]
    assert "SIGTERM: stopped during epoch" in stderr, stderr[-3000:]
    worker_1 = (tmp_path / "logs" / "worker_1.log").read_text()
    assert "SIGTERM: stopped during epoch" in worker_1, worker_1[-3000:]
    done = len(json.loads((model_dir / "history.json").read_text()))
    mid_epoch = model_dir / "checkpoints" / "mid_epoch.json"
    if mid_epoch.exists():  # Stopped mid-epoch (almost always): saved there.
        assert json.loads(mid_epoch.read_text())["epoch"] == done + 1
    _launch(tmp_path, "recipes.imdb_sentiment", *flags)
    history = json.loads((model_dir / "history.json").read_text())
    assert [entry["epoch"] for entry in history] == [1, 2, 3]
    import keras

    final = keras.models.load_model(str(model_dir / "checkpoints" / "epoch_003.keras"))
    assert int(final.optimizer.iterations.numpy()) == 3 * 36 // 4
    # The same figures as one process never stopped, the resumed epoch's too.
    config = imdb_config.Config(
        data_dir=data_dir, vocab_size=30, max_len=12, embedding_dim=8,
        lstm_units=4, batch_size=4, word_dropout=0.0, dropout=0.0,
        bucket_by_length=False, epochs=3)
    imdb_train.train_and_evaluate(config, str(tmp_path / "one"))
    one = json.loads((tmp_path / "one" / "history.json").read_text())
    for got, expected in zip(history, one):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-3,
                                       err_msg=f"{key} of epoch {got['epoch']}")


@pytest.mark.slow
def test_imdb_two_workers_resume_mid_epoch_as_one_process(tmp_path):
    data_dir = write_acl_imdb(tmp_path / "aclImdb", per_folder=20)
    model_dir = tmp_path / "two"
    flags = (f"--model_dir={model_dir}", f"--data_dir={data_dir}", "--epochs=3",
             *IMDB_FLAGS)
    # Each worker sends itself SIGTERM after its 10th batch (9 per epoch).
    command = [sys.executable, "-m", "recipes.launch", "--workers=2",
               f"--worker_logs={tmp_path / 'logs'}", "--grace_seconds=5", "--",
               *recipe_process.imdb_signalled_command(
                   signal.SIGTERM, 10, "--strategy=multi_worker", *flags)]
    stopped = subprocess.run(command, cwd=REPO, env=_env(tmp_path),
                             capture_output=True, text=True, timeout=600)
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert "stopped during epoch 2 after its batch 1" in stopped.stderr
    state = json.loads((model_dir / "checkpoints" / "mid_epoch.json").read_text())
    assert (state["epoch"], state["batches_done"], state["steps"]) == (2, 1, 10)
    _launch(tmp_path, "recipes.imdb_sentiment", *flags)  # The same command.
    history = json.loads((model_dir / "history.json").read_text())
    assert [entry["epoch"] for entry in history] == [1, 2, 3]
    import keras

    final = keras.models.load_model(str(model_dir / "checkpoints" / "epoch_003.keras"))
    assert int(final.optimizer.iterations.numpy()) == 3 * 36 // 4
    config = imdb_config.Config(
        data_dir=data_dir, vocab_size=30, max_len=12, embedding_dim=8,
        lstm_units=4, batch_size=4, word_dropout=0.0, dropout=0.0,
        bucket_by_length=False, epochs=3)
    imdb_train.train_and_evaluate(config, str(tmp_path / "one"))
    one = json.loads((tmp_path / "one" / "history.json").read_text())
    # The resumed epoch 2's figures too: the saved sums are added once.
    for got, expected in zip(history, one):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-3,
                                       err_msg=f"{key} of epoch {got['epoch']}")
    assert _worker_temp_dirs(tmp_path) == []
