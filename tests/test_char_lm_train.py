"""char_lm: the real train_and_evaluate on small texts, resume, bad input."""

import glob
import json
import math
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from recipes.char_lm import train
from recipes.char_lm import trainer
from recipes.char_lm.config import debug_config
from recipes.common import tfds_access
from recipes.common.errors import UsageError

SHORT_TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\n"
) * 12


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(SHORT_TEXT, encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def existing_run(tmp_path_factory):
    """(text_file, model_dir) of a finished 2-step run; tests must not change it."""
    directory = tmp_path_factory.mktemp("existing")
    text_file = directory / "text.txt"
    text_file.write_text(SHORT_TEXT, encoding="utf-8")
    model_dir = str(directory / "run")
    metrics = train.train_and_evaluate(
        debug_config(text_file=str(text_file), train_steps=2), model_dir)
    return str(text_file), model_dir, metrics


def _metrics(model_dir):
    with open(os.path.join(model_dir, "metrics.json")) as f:
        return json.load(f)


def _scalars(log_dir, tag):
    """{step: value} of a scalar tag in the event files of log_dir."""
    values = {}
    for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return values


def _snapshot(directory):
    """Bytes of every file under directory, by relative path."""
    files = {}
    for path in glob.glob(os.path.join(directory, "**", "*"), recursive=True):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                files[os.path.relpath(path, directory)] = f.read()
    return files


def test_run_writes_events_checkpoints_model_and_metrics(existing_run):
    _, model_dir, metrics = existing_run
    for name in ("metrics.json", "vocab.json", "model.keras",
                 "checkpoints/checkpoint", "checkpoints/ckpt-2.index"):
        assert os.path.isfile(os.path.join(model_dir, name)), name
    for split in ("train", "validation"):
        assert glob.glob(os.path.join(model_dir, split, "events.out.tfevents.*"))
    assert _metrics(model_dir) == pytest.approx(metrics)
    assert metrics["steps"] == 2 and metrics["chars_trained"] == 2 * 4 * 16
    vocab_size = len(set(SHORT_TEXT)) + 1
    # An untrained model is close to uniform over the vocabulary.
    assert abs(metrics["final_val_nats_per_char"] - math.log(vocab_size)) < 0.2
    assert metrics["final_val_bits_per_char"] == pytest.approx(
        metrics["final_val_nats_per_char"] / math.log(2))
    assert metrics["chars_per_second"] > 0 and metrics["training_seconds"] > 0


def test_tensorboard_records_scalars_samples_and_flags(existing_run):
    _, model_dir, _ = existing_run
    tags = {}
    for split in ("train", "validation"):
        for path in glob.glob(os.path.join(model_dir, split, "events.*")):
            for event in tf.compat.v1.train.summary_iterator(path):
                for value in event.summary.value:
                    tags.setdefault(split, set()).add(value.tag)
    assert {"loss", "bits_per_char", "learning_rate", "gradient_norm",
            "config"} <= tags["train"]
    assert {"loss", "bits_per_char", "samples/temperature_0.5",
            "samples/temperature_0.8", "samples/temperature_1.0"} <= tags["validation"]


def test_loss_falls_on_a_repetitive_text(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_text("abcdefgh" * 200, encoding="utf-8")
    config = debug_config(text_file=str(path), train_steps=40, eval_every=40,
                          learning_rate=3e-2, warmup_steps=5)
    metrics = train.train_and_evaluate(config, str(tmp_path / "run"))
    # Uniform over 9 ids is 2.2 nats; the sequence is deterministic after a
    # character, so a trained model's loss goes towards 0.
    assert metrics["final_val_nats_per_char"] < 0.5


@pytest.mark.parametrize(
    "stateful", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_resumed_run_ends_like_an_uninterrupted_one(tmp_path, text_file, stateful):
    config = debug_config(text_file=text_file, train_steps=6, eval_every=3,
                          checkpoint_every=100, dropout=0.3, stateful=stateful)
    straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
    resumed_dir = str(tmp_path / "resumed")
    first = train.train_and_evaluate(
        debug_config(**{**config.as_dict(), "stop_after_steps": 4}), resumed_dir)
    assert first["steps"] == 4
    # Stopped between evaluations: the final figure is step 4's, not step 3's.
    logged = _scalars(os.path.join(resumed_dir, "validation"), "loss")
    assert sorted(logged) == [3]
    assert first["final_val_nats_per_char"] != pytest.approx(logged[3], rel=1e-6)
    resumed = train.train_and_evaluate(config, resumed_dir)
    assert resumed["steps"] == 6
    for key in ("final_val_nats_per_char", "best_val_nats_per_char",
                "best_step", "chars_trained"):
        assert resumed[key] == pytest.approx(straight[key], rel=1e-6), key


def test_tfds_mock_data_run(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(tfds_access, "host_resolves", lambda *args: True)

    with tfds.testing.mock_data(num_examples=4):
        metrics = train.train_and_evaluate(
            debug_config(seq_len=8, train_steps=2), str(tmp_path / "run"))
    assert metrics["steps"] == 2 and np.isfinite(metrics["final_val_nats_per_char"])


def test_tfds_unreachable_names_text_file_and_writes_nothing(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(tfds, "load", offline)
    monkeypatch.setattr(tfds_access, "host_resolves", lambda *args: True)
    model_dir = tmp_path / "run"
    with pytest.raises(UsageError, match="--text_file=PATH"):
        train.train_and_evaluate(debug_config(), str(model_dir))
    assert not model_dir.exists()


@pytest.mark.parametrize(
    "content, overrides, match",
    [
        (None, {}, "was not found"),
        (b"", {}, "the training text is empty"),
        (b"0123456789", {}, "at least seq_len \\+ 1 = 17 characters"),
        (b"ok \xff\xfe", {}, "byte at offset 3 \\(0xff\\) is not valid UTF-8"),
        (SHORT_TEXT.encode(), {"seq_len": 0}, "seq_len must be >= 1"),
        (SHORT_TEXT.encode(), {"batch_size": 0}, "batch_size must be >= 1"),
        (SHORT_TEXT.encode(), {"strategy": "gpu_farm"}, "strategy must be one of"),
        (SHORT_TEXT.encode(), {"weight_dropout": 1.0}, "weight_dropout must be in"),
        (SHORT_TEXT.encode(), {"weight_dropout": 0.2, "cell": "keras"},
         "weight_dropout .* needs --cell=keras_lstm"),
        ("other", {}, "model_dir holds a run trained on another text"),
    ],
    ids=["missing", "empty", "short", "not_utf8", "seq_len", "batch_size",
         "strategy", "weight_dropout", "weight_dropout_keras", "other_text"],
)
def test_bad_input_leaves_an_existing_run_untouched(
        tmp_path, existing_run, content, overrides, match):
    _, model_dir, _ = existing_run
    before = _snapshot(model_dir)
    bad = tmp_path / "bad.txt"
    if content == "other":
        bad.write_text("zzzz qqqq " * 50)
    elif content is not None:
        bad.write_bytes(content)
    config = debug_config(text_file=str(bad), train_steps=4, **overrides)
    with pytest.raises(UsageError, match=match):
        train.train_and_evaluate(config, model_dir)
    assert _snapshot(model_dir) == before


def test_weight_dropout_reaches_every_layer_and_survives_saving(tmp_path, text_file):
    import keras

    model_dir = str(tmp_path / "run")
    config = debug_config(text_file=text_file, train_steps=2, layers=2,
                          weight_dropout=0.25)
    train.train_and_evaluate(config, model_dir)
    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    layers = [model.get_layer(f"lstm_{k}") for k in (1, 2)]
    assert [layer.cell.recurrent_weight_dropout for layer in layers] == [0.25, 0.25]
    # DropConnect acts in training only: inference is deterministic, and a
    # training call differs from it.
    ids = np.ones((2, 5), np.int32)
    states = [np.zeros((2, config.units), np.float32)] * (2 * config.layers)
    inference = [model([ids] + states, training=False)[0] for _ in range(2)]
    np.testing.assert_array_equal(inference[0], inference[1])
    trained = model([ids] + states, training=True)[0]
    assert np.max(np.abs(np.asarray(trained) - np.asarray(inference[0]))) > 1e-4


@pytest.mark.parametrize("locked", [False, True])
def test_locked_dropout_shares_one_mask_across_time(tmp_path, text_file, locked):
    import keras

    model_dir = str(tmp_path / "run")
    config = debug_config(text_file=text_file, train_steps=2, dropout=0.5,
                          locked_dropout=locked)
    train.train_and_evaluate(config, model_dir)
    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    for name in ("embedding_dropout", "lstm_1_dropout"):
        kept = np.asarray(model.get_layer(name)(np.ones((3, 40, 8), np.float32),
                                                training=True)) > 0
        assert 0.2 < kept.mean() < 0.8
        # Locked: every time step keeps the same features; else they vary.
        assert (kept == kept[:, :1]).all() == locked


def test_moving_average_is_evaluated_and_raw_weights_train_on(tmp_path, text_file):
    from recipes.char_lm import input_pipeline
    from recipes.char_lm import steps

    model_dir = str(tmp_path / "run")
    config = debug_config(text_file=text_file, ema_decay=0.75)
    vocab, train_ids, _ = train.load_data(config, model_dir)
    strategy = tf.distribute.get_strategy()
    run = trainer.Trainer(config, model_dir, model_dir, vocab, strategy, "float32")
    stream = input_pipeline.TrainingStream(
        train_ids, config.seq_len, config.batch_size, config.seed, stateful=False)
    raw_after_each_step = []
    for batch in steps.distribute(strategy, lambda: stream.dataset(0, 3)):
        _, _, run.states = run.train_step(batch, run.states)
        raw_after_each_step.append([v.numpy() for v in run.model.trainable_variables])
    # NumPy reference: the first step's weights, then a <- d a + (1 - d) w.
    expected = raw_after_each_step[0]
    for weights in raw_after_each_step[1:]:
        expected = [0.75 * a + 0.25 * w for a, w in zip(expected, weights)]
    with run.evaluated_weights():
        for variable, average in zip(run.model.trainable_variables, expected):
            np.testing.assert_allclose(variable.numpy(), average, rtol=1e-5, atol=1e-7)
    for variable, raw in zip(run.model.trainable_variables, raw_after_each_step[-1]):
        np.testing.assert_array_equal(variable.numpy(), raw)
    assert not np.allclose(expected[0], raw_after_each_step[-1][0])


def test_moving_average_is_saved_and_its_raw_weights_resume(tmp_path, text_file):
    import keras

    model_dir = str(tmp_path / "run")
    config = debug_config(text_file=text_file, ema_decay=0.5)
    train.train_and_evaluate(config, model_dir)
    saved = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    vocab, _, _ = train.load_data(config, model_dir)
    # A trainer restored from the last checkpoint holds the raw weights and,
    # in the optimizer, their average: model.keras holds the average.
    run = trainer.Trainer(config, model_dir, model_dir, vocab,
                          tf.distribute.get_strategy(), "float32")
    assert int(run.step.numpy()) == config.train_steps
    kernel = run.model.get_layer("lstm_1").cell.kernel
    saved_kernel = saved.get_layer("lstm_1").cell.kernel.numpy()
    assert not np.allclose(kernel.numpy(), saved_kernel)
    with run.evaluated_weights():
        np.testing.assert_allclose(kernel.numpy(), saved_kernel, rtol=1e-6)


def test_ema_decay_out_of_range_is_refused(tmp_path, text_file):
    with pytest.raises(UsageError, match=r"ema_decay must be in \[0, 1\). "
                       "Received: ema_decay=1.0"):
        train.train_and_evaluate(debug_config(text_file=text_file, ema_decay=1.0),
                                 str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run")


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
        tmp_path, existing_run, monkeypatch):
    text_file, existing_dir, _ = existing_run
    model_dir = str(tmp_path / "run")
    shutil.copytree(existing_dir, model_dir)
    before = _snapshot(os.path.join(model_dir, "checkpoints"))
    make_train_step = trainer.steps.make_train_step

    def diverging(strategy, model, optimizer, step, *args):
        train_step = make_train_step(strategy, model, optimizer, step, *args)

        def step_then_diverge(batch, states):
            loss, grad_norm, states = train_step(batch, states)
            return loss * (np.nan if step.numpy() >= 3 else 1.0), grad_norm, states

        return step_then_diverge

    monkeypatch.setattr(trainer.steps, "make_train_step", diverging)
    with pytest.raises(FloatingPointError, match="training loss became nan at "
                       "step 3; stopped without saving"):
        train.train_and_evaluate(
            debug_config(text_file=text_file, train_steps=6), model_dir)
    assert _snapshot(os.path.join(model_dir, "checkpoints")) == before


def test_keyboard_interrupt_saves_a_checkpoint(tmp_path, text_file, monkeypatch):
    original = train._log_train_step

    def interrupt_at_step_3(writer, step, *args):
        original(writer, step, *args)
        if step == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(train, "_log_train_step", interrupt_at_step_3)
    model_dir = str(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        train.train_and_evaluate(
            debug_config(text_file=text_file, train_steps=10,
                         checkpoint_every=100, eval_every=100), model_dir)
    checkpoint = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    assert checkpoint.endswith("ckpt-3")


def test_mixed_precision_and_gate_heatmaps(tmp_path, text_file):
    model_dir = str(tmp_path / "run")
    metrics = train.train_and_evaluate(
        debug_config(text_file=text_file, train_steps=2, mixed_precision=True,
                     gate_heatmap=True, stateful=True), model_dir)
    assert metrics["precision_policy"] == "mixed_bfloat16"
    assert np.isfinite(metrics["final_val_nats_per_char"])
    tags = set()
    for path in glob.glob(os.path.join(model_dir, "validation", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    assert {"gates/lstm_1/f", "gates/lstm_1/i", "gates/lstm_1/o"} <= tags
