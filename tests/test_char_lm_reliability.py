"""char_lm never loses work: faults injected into real training processes.

Each test stands for one numbered point of docs/reliability.md: a diverging
update, damaged checkpoints, a concurrent start, a kill during the final
save, SIGTERM and SIGINT, bad input, and the smaller points.
"""

import json
import os
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

import recipe_process
from recipes.char_lm import train
from recipes.char_lm.config import debug_config
from recipes.common.checkpoints import damage
from recipes.common.errors import UsageError

TEXT = ("ROMEO:\nBut, soft! what light through yonder window breaks?\n"
        "It is the east, and Juliet is the sun.\n\n") * 10
MODULE = "recipes.char_lm"


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return str(path)


def _flags(model_dir, text_file, *extra):
    return [f"--model_dir={model_dir}", f"--text_file={text_file}", "--debug",
            *extra]


def _prefixes(model_dir):
    return sorted(str(p)[:-len(".index")] for p in
                  (model_dir / "checkpoints").glob("ckpt-*.index"))


def test_diverging_update_is_never_saved_or_exported(tmp_path, text_file):
    model_dir = tmp_path / "run"
    result = recipe_process.run(MODULE, *_flags(
        model_dir, text_file, "--learning_rate=1e38", "--checkpoint_every=1",
        "--train_steps=6"))
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "NaN or infinite" in result.stderr or "became nan" in result.stderr
    assert "Lower --learning_rate or --clip_norm" in result.stderr
    assert not (model_dir / "model.keras").exists()
    assert not (model_dir / "metrics.json").exists()
    prefixes = _prefixes(model_dir)
    assert prefixes and all(damage(p) is None for p in prefixes)  # All finite.
    latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    assert latest == prefixes[-1] and latest in result.stderr
    # The advised rerun: a lower learning rate in a new model_dir.
    metrics = train.train_and_evaluate(
        debug_config(text_file=text_file, train_steps=2), str(tmp_path / "new"))
    assert np.isfinite(metrics["final_val_nats_per_char"])


def test_divergence_before_any_checkpoint_says_so(tmp_path, text_file):
    config = debug_config(text_file=text_file, learning_rate=1e38,
                          checkpoint_every=100, eval_every=2, train_steps=6)
    with pytest.raises(FloatingPointError, match="no checkpoint had been saved"):
        train.train_and_evaluate(config, str(tmp_path / "run"))


def test_infinite_flag_values_are_refused(tmp_path, text_file):
    result = recipe_process.run(MODULE, *_flags(tmp_path / "r", text_file,
                                                "--clip_norm=inf"))
    assert result.returncode == 1
    assert "--clip_norm must be > 0.0 and finite" in result.stderr
    result = recipe_process.run("recipes.char_lm.sample", "--model_dir=x",
                                "--temperature=inf")
    assert result.returncode == 1
    assert "--temperature must be > 0.0 and finite" in result.stderr
    assert not (tmp_path / "r").exists()


def test_damaged_checkpoints_fall_back_to_the_newest_intact_one(
        tmp_path, text_file):
    model_dir = tmp_path / "run"
    flags = ["--checkpoint_every=1", "--max_checkpoints=5", "--train_steps=8"]
    first = recipe_process.run(MODULE, *_flags(model_dir, text_file, *flags,
                                               "--stop_after_steps=5"))
    assert first.returncode == 0, first.stderr[-3000:]
    checkpoints = model_dir / "checkpoints"
    data = checkpoints / "ckpt-5.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])                       # truncated
    (checkpoints / "ckpt-4.index").write_bytes(b"garbage" * 30)     # garbage
    (checkpoints / "ckpt-3.data-00000-of-00001").unlink()           # missing
    (checkpoints / "checkpoint").write_text("{{{ not a state file")  # garbled

    resumed = recipe_process.run(MODULE, *_flags(model_dir, text_file, *flags,
                                                 "--stop_after_steps=1"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stderr
    for name in ("ckpt-5", "ckpt-4.index", "ckpt-3.data-00000-of-00001",
                 "checkpoints/checkpoint is unreadable"):
        assert name in resumed.stderr
    # Resumed from step 2, the newest intact checkpoint, not from step 0.
    assert "stopped at step 3 of 8" in resumed.stdout
    assert (checkpoints / "damaged" / "ckpt-5.index").exists()


def test_a_second_run_on_the_same_model_dir_is_refused(tmp_path, text_file):
    model_dir = tmp_path / "run"
    flags = _flags(model_dir, text_file, "--train_steps=1000000",
                   "--checkpoint_every=1000000", "--eval_every=1000000")
    status, stderr = recipe_process.check_second_run_refused(
        MODULE, flags, model_dir, signal.SIGTERM)
    assert status == 143, stderr[-3000:]
    assert "Traceback" not in stderr


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path, text_file):
    model_dir = tmp_path / "run"
    flags = _flags(model_dir, text_file, "--train_steps=1000000",
                   "--checkpoint_every=1000000", "--eval_every=1000000")
    first = recipe_process.start(MODULE, *flags)
    recipe_process.wait_for_lock(first, model_dir)
    first.kill()  # kill -9: no chance to release anything.
    first.communicate(timeout=60)
    # The same flags (a resume may not shrink --train_steps, and the killed
    # run may have saved its config), stopped after one step.
    second = recipe_process.run(MODULE, *flags, "--stop_after_steps=1")
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"left by process {first.pid}" in second.stderr
    assert "no longer runs; taking it over" in second.stderr


def _finish_a_run(model_dir, text_file):
    first = recipe_process.run(MODULE, *_flags(model_dir, text_file,
                                               "--train_steps=2"))
    assert first.returncode == 0, first.stderr[-3000:]


def test_kill_during_the_final_save_keeps_the_previous_model(
        tmp_path, text_file):
    model_dir = tmp_path / "run"
    _finish_a_run(model_dir, text_file)
    saved = (model_dir / "model.keras").read_bytes()
    metrics = (model_dir / "metrics.json").read_bytes()
    killed = recipe_process.run_killed_during_model_save(MODULE, *_flags(
        model_dir, text_file, "--train_steps=4"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert list(model_dir.glob(".model.keras.*.partial.keras"))  # Killed mid-save.
    assert (model_dir / "model.keras").read_bytes() == saved
    assert (model_dir / "metrics.json").read_bytes() == metrics
    keras.saving.load_model(str(model_dir / "model.keras"))


@pytest.mark.parametrize("signum, status", [
    (signal.SIGTERM, 143), pytest.param(signal.SIGINT, 130,
                                        marks=pytest.mark.slow)])
def test_a_signal_saves_a_checkpoint_and_exits_cleanly(
        tmp_path, text_file, signum, status):
    model_dir = tmp_path / "run"
    flags = _flags(model_dir, text_file, "--train_steps=1000000",
                   "--checkpoint_every=1000000", "--eval_every=1000000")
    returncode, stderr = recipe_process.signal_run(
        MODULE, flags, model_dir, signum)
    assert returncode == status, stderr[-3000:]
    name = signal.Signals(signum).name
    assert f"{name}: saved a checkpoint at step " in stderr
    step = int(stderr.split("saved a checkpoint at step ")[1].split(";")[0])
    assert step >= 1
    assert tf.train.latest_checkpoint(str(model_dir / "checkpoints")).endswith(
        f"ckpt-{step}")
    resumed = recipe_process.run(MODULE, *flags, "--stop_after_steps=1")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"stopped at step {step + 1} of 1000000" in resumed.stdout


def test_bad_model_dir_and_damaged_model_get_one_line(tmp_path, text_file):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    result = recipe_process.run(MODULE, *_flags(a_file, text_file))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: --model_dir must be a directory, but it is a file")
    assert a_file.read_text() == "not a directory"

    model_dir = tmp_path / "run"
    train.train_and_evaluate(debug_config(text_file=text_file, train_steps=1),
                             str(model_dir))
    model = model_dir / "model.keras"
    for damaged in (model.read_bytes()[:500], b"garbage"):
        model.write_bytes(damaged)
        result = recipe_process.run("recipes.char_lm.sample",
                                    f"--model_dir={model_dir}", "--length=5")
        assert result.returncode == 2, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        assert f"{model} is damaged or not a Keras model" in result.stderr


def test_extra_positional_arguments_are_refused(tmp_path, text_file):
    result = recipe_process.run(MODULE, *_flags(tmp_path / "r", text_file),
                                "stray")
    assert result.returncode == 1
    assert "Unexpected arguments: stray" in result.stderr
    assert not (tmp_path / "r").exists()


def test_changed_flags_on_resume_are_refused_and_allowed_ones_recorded(
        tmp_path, text_file):
    model_dir = tmp_path / "run"
    _finish_a_run(model_dir, text_file)
    changed = recipe_process.run(MODULE, *_flags(
        model_dir, text_file, "--train_steps=4", "--seq_len=8", "--seed=3",
        "--learning_rate=0.5", "--cell=keras"))
    assert changed.returncode == 2, changed.stderr[-3000:]
    assert "Traceback" not in changed.stderr
    for setting in ("cell='keras' (saved: 'keras_lstm')", "seq_len=8 (saved: 16)",
                    "seed=3 (saved: 0)", "learning_rate=0.5 (saved: 0.01)"):
        assert setting in changed.stderr
    assert "train_steps" not in changed.stderr.split("Received:")[1]
    with pytest.raises(UsageError, match=r"--train_steps cannot shrink.*"
                       r"train_steps=1 \(saved: 2\)"):
        train.train_and_evaluate(debug_config(text_file=text_file, train_steps=1),
                                 str(model_dir))
    metrics = train.train_and_evaluate(
        debug_config(text_file=text_file, train_steps=4), str(model_dir))
    assert metrics["steps"] == 4
    config = json.loads((model_dir / "config.json").read_text())
    assert config["train_steps"] == 4
    recorded = json.loads((model_dir / "config_changes.json").read_text())
    assert recorded == [{"step": 2, "changed": {
        "train_steps": {"saved": 2, "now": 4}}}]
