"""imdb_sentiment never loses work: faults injected into real training runs.

A diverging run, a damaged epoch checkpoint, a concurrent start, a kill
during the export, SIGTERM and SIGINT, and bad input (non-UTF-8 files, an
Excel CSV, empty reviews, a folder in train/pos, a bad --model_dir, a
damaged model.keras); see docs/reliability.md.
"""

import dataclasses
import json
import math
import os
import signal

import keras
import pytest

import recipe_process
from imdb_data import write_acl_imdb
from recipes.common.errors import UsageError
from recipes.imdb_sentiment import config as config_lib
from recipes.imdb_sentiment import train

MODULE = "recipes.imdb_sentiment"
TINY = ["--vocab_size=50", "--max_len=12", "--embedding_dim=8",
        "--lstm_units=4", "--batch_size=4", "--validation_fraction=0.25"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_acl_imdb(tmp_path_factory.mktemp("imdb") / "aclImdb",
                          per_folder=12)


def _flags(model_dir, data_dir, *extra):
    return [f"--model_dir={model_dir}", f"--data_dir={data_dir}", *TINY, *extra]


def _config(**changes):
    return dataclasses.replace(config_lib.debug_config(), **changes)


def _finite_model(path):
    model = keras.models.load_model(str(path))
    return all(math.isfinite(float(x)) for w in model.weights
               for x in keras.ops.convert_to_numpy(w).ravel())


def test_diverging_run_exports_nothing_and_exits_1(tmp_path, data_dir):
    model_dir = tmp_path / "run"
    result = recipe_process.run(MODULE, *_flags(
        model_dir, data_dir, "--epochs=3", "--learning_rate=1e38"))
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "error: the training loss became nan" in result.stderr
    assert not (model_dir / "model.keras").exists()
    assert not (model_dir / "metrics.json").exists()
    assert all(_finite_model(p) for p in (model_dir / "checkpoints").glob("*.keras"))
    # The advised rerun, a lower learning rate in a new model_dir, works.
    metrics = train.train_and_evaluate(_config(data_dir=data_dir),
                                       str(tmp_path / "new"))
    assert math.isfinite(metrics["test_loss"])
    result = recipe_process.run(MODULE, *_flags(model_dir, data_dir,
                                                "--clipnorm=inf"))
    assert result.returncode == 1
    assert "--clipnorm must be >= 0.0 and finite" in result.stderr


def test_a_damaged_epoch_checkpoint_falls_back_to_the_one_before(
        tmp_path, data_dir, capfd):
    model_dir = tmp_path / "run"
    config = _config(data_dir=data_dir, epochs=2,
                     learning_rate_schedule="constant")
    train.train_and_evaluate(config, str(model_dir))
    damaged = model_dir / "checkpoints" / "epoch_002.keras"
    damaged.write_bytes(damaged.read_bytes()[:300])  # Truncated.
    capfd.readouterr()
    metrics = train.train_and_evaluate(dataclasses.replace(config, epochs=3),
                                       str(model_dir))
    out, err = capfd.readouterr()
    assert f"warning: {damaged} is damaged" in err
    assert "Resuming after epoch 1" in out
    assert metrics["epochs"] == 3
    history = json.loads((model_dir / "history.json").read_text())
    assert [entry["epoch"] for entry in history] == [1, 2, 3]
    assert (model_dir / "checkpoints" / "damaged" / "epoch_002.keras").exists()
    assert _finite_model(damaged)  # Written again by the resumed run.


def test_changing_epochs_under_a_cosine_schedule_is_refused(tmp_path, data_dir):
    model_dir = tmp_path / "run"
    train.train_and_evaluate(_config(data_dir=data_dir), str(model_dir))
    with pytest.raises(UsageError, match=r"cosine learning-rate schedule was "
                       r"fixed for 1 epochs.*Received: epochs=2"):
        train.train_and_evaluate(_config(data_dir=data_dir, epochs=2),
                                 str(model_dir))


def test_a_second_run_on_the_same_model_dir_is_refused(tmp_path, data_dir):
    model_dir = tmp_path / "run"
    flags = _flags(model_dir, data_dir, "--epochs=100000",
                   "--learning_rate_schedule=constant")
    status, stderr = recipe_process.check_second_run_refused(
        MODULE, flags, model_dir, signal.SIGINT)
    assert status == 130, stderr[-3000:]
    assert "Traceback" not in stderr


@pytest.mark.parametrize("signum, status", [
    (signal.SIGTERM, 143),
    pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow)])
def test_a_signal_keeps_the_completed_epochs_and_exits_cleanly(
        tmp_path, data_dir, signum, status):
    model_dir = tmp_path / "run"
    flags = _flags(model_dir, data_dir, "--learning_rate_schedule=constant")
    process = recipe_process.start(MODULE, *flags, "--epochs=100000")
    recipe_process.wait_for_file(process, model_dir / "history.json")
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr[-3000:]
    assert "Traceback" not in stderr
    assert f"{signal.Signals(signum).name}: stopped during epoch" in stderr
    history = json.loads((model_dir / "history.json").read_text())
    done = len(history)
    assert done >= 1
    assert [e["epoch"] for e in history] == list(range(1, done + 1))
    for entry in history:
        assert _finite_model(model_dir / "checkpoints" /
                             f"epoch_{entry['epoch']:03d}.keras")
    # Mid-epoch (almost always): the batches done so far are saved too.
    mid_epoch = model_dir / "checkpoints" / "mid_epoch.json"
    if mid_epoch.exists():
        state = json.loads(mid_epoch.read_text())
        assert state["epoch"] == done + 1
        assert _finite_model(model_dir / "checkpoints" / state["checkpoint"])
        expected = (f"Resuming epoch {done + 1} after its batch "
                    f"{state['batches_done']} of")
    else:
        expected = f"Resuming after epoch {done} from"
    resumed = recipe_process.run(MODULE, *flags, f"--epochs={done + 1}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert expected in resumed.stdout
    assert json.loads((model_dir / "metrics.json").read_text())["epochs"] == done + 1
    recorded = json.loads((model_dir / "config_changes.json").read_text())
    assert recorded == [{"step": done, "changed": {
        "epochs": {"saved": 100000, "now": done + 1}}}]


def test_kill_during_the_export_keeps_the_previous_model(tmp_path, data_dir):
    model_dir = tmp_path / "run"
    flags = _flags(model_dir, data_dir, "--learning_rate_schedule=constant")
    first = recipe_process.run(MODULE, *flags, "--epochs=1")
    assert first.returncode == 0, first.stderr[-3000:]
    exported = (model_dir / "model.keras").read_bytes()
    metrics = (model_dir / "metrics.json").read_bytes()
    killed = recipe_process.run_killed_during_model_save(MODULE, *flags, "--epochs=2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert list(model_dir.glob(".model.keras.*.partial.keras"))  # Killed mid-save.
    assert (model_dir / "model.keras").read_bytes() == exported
    assert (model_dir / "metrics.json").read_bytes() == metrics
    assert (model_dir / "checkpoints" / "epoch_002.keras").exists()


def _refused(config, model_dir, message):
    with pytest.raises(UsageError, match=message):
        train.train_and_evaluate(config, str(model_dir))
    assert not os.path.exists(model_dir)  # Nothing written, not even the folder.


def test_bad_review_files_are_named_before_anything_is_written(tmp_path):
    data_dir = write_acl_imdb(tmp_path / "aclImdb", per_folder=3)
    model_dir = tmp_path / "run"
    bad = tmp_path / "aclImdb" / "train" / "pos" / "1_1.txt"
    bad.write_bytes(b"fine words\nthen \xff\xfe bytes")
    _refused(_config(data_dir=data_dir), model_dir,
             rf"line 2 of {bad} has a byte that is not valid UTF-8 \(0xff")
    bad.unlink()
    (tmp_path / "aclImdb" / "train" / "pos" / "folder.txt").mkdir()
    _refused(_config(data_dir=data_dir), model_dir,
             r"train/pos/folder.txt is not a review file \(a directory\?\)")


def test_csv_files_excel_bom_accepted_bad_bytes_and_empty_reviews_refused(
        tmp_path):
    rows = "".join(f"{w} {w} film,{s}\n" for w, s in
                   [("great", "positive"), ("awful", "negative")] * 6)
    csv_file = tmp_path / "reviews.csv"
    model_dir = tmp_path / "run"
    csv_file.write_bytes(b"review,sentiment\n" + rows.encode()[:40] + b"\xe9t\xe9\n")
    _refused(_config(csv_file=str(csv_file)), model_dir,
             rf"line 3 of {csv_file} has a byte that is not valid UTF-8")
    csv_file.write_text("review,sentiment\n" + ",positive\n,negative\n" * 6)
    _refused(_config(csv_file=str(csv_file)), model_dir,
             "every review of the train and test split is empty")
    # Fixed, and exported by Excel with a byte-order mark: it trains.
    csv_file.write_text("\ufeffreview,sentiment\n" + rows, encoding="utf-8")
    metrics = train.train_and_evaluate(_config(csv_file=str(csv_file)),
                                       str(model_dir))
    assert metrics["train_examples"] + metrics["validation_examples"] == 6
    vocabulary = json.loads((model_dir / "vocabulary.json").read_text())
    assert {"great", "awful", "film"} <= set(vocabulary)

    reviews = tmp_path / "reviews.txt"
    reviews.write_bytes(b"a great film\n\x80 awful\n")
    result = recipe_process.run(f"{MODULE}.predict", f"--model_dir={model_dir}",
                                f"--input_file={reviews}")
    assert result.returncode == 2
    assert f"line 2 of {reviews} has a byte that is not valid UTF-8" in result.stderr
    model = model_dir / "model.keras"
    model.write_bytes(model.read_bytes()[:1000])
    result = recipe_process.run(f"{MODULE}.predict", f"--model_dir={model_dir}",
                                "a great film")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"error: {model} is damaged or not a Keras model" in result.stderr


READ_ONLY_CHECK = """
import os, sys
from recipes.common.errors import UsageError
from recipes.common.model_dir import check_model_dir
if os.getuid() == 0:
    os.setgid(65534); os.setuid(65534)  # root writes anywhere: be nobody.
try:
    check_model_dir(sys.argv[1])
except UsageError as error:
    print(error)
"""


def test_model_dir_that_is_a_file_or_read_only_is_refused(tmp_path, data_dir):
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    with pytest.raises(UsageError, match="--model_dir must be a directory, but "
                       "it is a file"):
        train.train_and_evaluate(_config(data_dir=data_dir), str(a_file))
    assert a_file.read_text() == "mine"
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    tmp_path.chmod(0o755)
    for model_dir in (read_only, read_only / "run"):
        result = recipe_process.run_code(READ_ONLY_CHECK, model_dir)
        assert "--model_dir must be a writable directory" in result.stdout, (
            result.stdout + result.stderr)
        assert "Permission denied" in result.stdout
    assert os.listdir(read_only) == []
