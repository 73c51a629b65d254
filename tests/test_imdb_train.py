"""End to end: the IMDB recipe's train_and_evaluate on tiny reviews, resume, outputs, predict."""

import dataclasses
import glob
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from recipes.common import tfds_access
from recipes.imdb_sentiment import checkpoints
from recipes.imdb_sentiment import config as config_lib
from recipes.imdb_sentiment import predict
from recipes.imdb_sentiment import train
from imdb_data import NEGATIVE, POSITIVE, write_acl_imdb

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(**changes):
    fields = dict(bucket_by_length=False, early_stopping_patience=0, epochs=2)
    fields.update(changes)
    return dataclasses.replace(config_lib.debug_config(), **fields)


def _checkpoint_probabilities(model_dir, config, epoch, reviews):
    """P(positive) of `reviews` from epoch `epoch`'s classifier checkpoint,
    vectorized with the run's saved vocabulary: what model.keras should give."""
    from recipes.imdb_sentiment import text

    with open(os.path.join(model_dir, "vocabulary.json")) as f:
        vocabulary = json.load(f)
    vectorizer = text.make_vectorizer(config.vocab_size, config.max_len, vocabulary, config.keep_marks)
    classifier = keras.models.load_model(checkpoints.checkpoint_path(model_dir, epoch))
    return classifier.predict(vectorizer(tf.constant([[r] for r in reviews])), verbose=0)[:, 0]


def _interrupt_at_epoch(monkeypatch, interrupted_epoch):
    original = checkpoints.EpochCheckpoint.on_epoch_begin

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == interrupted_epoch:
            raise KeyboardInterrupt("simulated Ctrl-C")
        original(self, epoch, logs)

    monkeypatch.setattr(checkpoints.EpochCheckpoint, "on_epoch_begin", on_epoch_begin)


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """Two epochs, interrupted at the start of the second, then rerun."""
    root = tmp_path_factory.mktemp("imdb")
    config = tiny_config(data_dir=write_acl_imdb(root / "aclImdb"), gate_heatmaps=True,
                         learning_rate_schedule="cosine", keep_marks=True)
    model_dir = str(root / "run")
    monkeypatch = pytest.MonkeyPatch()
    _interrupt_at_epoch(monkeypatch, interrupted_epoch=1)
    with pytest.raises(KeyboardInterrupt):
        train.train_and_evaluate(config, model_dir)
    monkeypatch.undo()
    first_checkpoint = checkpoints.checkpoint_path(model_dir, 1)
    with open(first_checkpoint, "rb") as f:
        first_bytes = f.read()
    history_after_interrupt, done = checkpoints.resume_point(model_dir)
    metrics = train.train_and_evaluate(config, model_dir)
    return dict(config=config, model_dir=model_dir, metrics=metrics,
                done_after_interrupt=done, first_bytes=first_bytes,
                history_after_interrupt=history_after_interrupt)


def test_interrupted_run_resumes_after_the_last_epoch(resumed_run):
    model_dir = resumed_run["model_dir"]
    assert resumed_run["done_after_interrupt"] == 1
    assert not os.path.exists(checkpoints.checkpoint_path(model_dir, 2 + 1))
    history, done = checkpoints.resume_point(model_dir)
    assert done == 2 and [entry["epoch"] for entry in history] == [1, 2]
    # The first epoch was kept, not redone.
    assert history[0] == resumed_run["history_after_interrupt"][0]
    with open(checkpoints.checkpoint_path(model_dir, 1), "rb") as f:
        assert f.read() == resumed_run["first_bytes"]


def test_outputs_exist_and_are_sensible(resumed_run):
    model_dir, metrics = resumed_run["model_dir"], resumed_run["metrics"]
    with open(os.path.join(model_dir, "metrics.json")) as f:
        assert json.load(f) == pytest.approx(metrics)
    assert metrics["epochs"] == 2
    assert (metrics["train_examples"], metrics["validation_examples"], metrics["test_examples"]) == (18, 6, 24)
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert np.isfinite(metrics["test_loss"]) and metrics["test_loss"] > 0
    assert metrics["training_seconds"] > 0
    assert metrics["examples_per_second"] == pytest.approx(18 * 2 / metrics["training_seconds"])
    assert metrics["best_epoch"] in (1, 2)
    assert (metrics["cell"], metrics["replicas"], metrics["precision"]) == ("keras_lstm", 1, "float32")
    for name in ("model.keras", "config.json", "vocabulary.json", "history.json",
                 "checkpoints/epoch_001.keras", "checkpoints/epoch_002.keras"):
        assert os.path.isfile(os.path.join(model_dir, name)), name
    assert not glob.glob(os.path.join(model_dir, "**", "*.partial.keras"), recursive=True)
    with open(os.path.join(model_dir, "vocabulary.json")) as f:
        vocabulary = json.load(f)
    assert "great" in vocabulary and "br" not in vocabulary
    assert len(vocabulary) <= resumed_run["config"].vocab_size - 2


def _summaries(log_dir):
    """{tag: [step, ...]} of every record in log_dir's event files."""
    found = {}
    for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append(event.step)
    return found


def test_tensorboard_logs_curves_histograms_and_flags(resumed_run):
    logs = os.path.join(resumed_run["model_dir"], "logs")
    train_tags = _summaries(os.path.join(logs, "train"))
    for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate"):
        # One point per epoch; the resumed run continues at step 1.
        assert sorted(train_tags[tag]) == [0, 1], tag
    assert sorted(_summaries(os.path.join(logs, "validation"))["epoch_accuracy"]) == [0, 1]
    weights = _summaries(os.path.join(logs, "weights"))
    for direction in ("forward", "backward"):
        for gate in "ifco":
            assert f"gate_bias/bidirectional_0/{direction}/{gate}" in weights
    assert any("kernel" in tag for tag in weights)
    heatmaps = _summaries(os.path.join(logs, "gates"))
    assert any(tag.startswith("gates/bidirectional_0/forward/") for tag in heatmaps), heatmaps
    assert "config" in _summaries(os.path.join(logs, "config"))


def test_saved_model_takes_raw_strings_like_the_best_checkpoint(resumed_run):
    model_dir, metrics = resumed_run["model_dir"], resumed_run["metrics"]
    reviews = ["loved it, great and wonderful", "awful<br />boring waste", ""]
    end_to_end = predict.load_model(model_dir)
    from_strings = predict.positive_probabilities(end_to_end, reviews)

    from_ids = _checkpoint_probabilities(
        model_dir, resumed_run["config"], metrics["best_epoch"], reviews)
    np.testing.assert_allclose(from_strings, from_ids, atol=1e-6)


def test_predict_command_in_a_fresh_process(resumed_run, tmp_path):
    model_dir = resumed_run["model_dir"]
    input_file = tmp_path / "reviews.txt"
    input_file.write_text("the best film\n\nworst plot ever\n")
    result = subprocess.run(
        [sys.executable, "-m", "recipes.imdb_sentiment.predict",
         f"--model_dir={model_dir}", f"--input_file={input_file}", "fun and great"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split("\t")[1] for line in lines] == ["fun and great", "the best film", "worst plot ever"]
    expected = predict.positive_probabilities(
        predict.load_model(model_dir), ["fun and great", "the best film", "worst plot ever"]
    )
    np.testing.assert_allclose([float(line.split("\t")[0]) for line in lines], expected, atol=1e-4)


def test_cosine_schedule_survives_the_resume(resumed_run):
    """Part way down after epoch 1, at zero after epoch 2 (the resumed one)."""
    model_dir, peak = resumed_run["model_dir"], resumed_run["config"].learning_rate
    rates = [float(keras.models.load_model(checkpoints.checkpoint_path(model_dir, epoch)).optimizer.learning_rate)
             for epoch in (1, 2)]
    # Near half of the peak: Keras 3.15 counts one extra optimizer iteration
    # per epoch when a dataset's length is unknown (5 batches, 6 iterations).
    assert 0.3 * peak < rates[0] < 0.6 * peak
    assert rates[1] == pytest.approx(0.0, abs=1e-9)


def test_finished_run_rerun_trains_no_more(resumed_run, capsys):
    metrics = train.train_and_evaluate(resumed_run["config"], resumed_run["model_dir"])
    assert "Epoch" not in capsys.readouterr().out
    assert metrics["epochs"] == 2
    assert metrics["test_accuracy"] == pytest.approx(resumed_run["metrics"]["test_accuracy"])


def test_mock_tfds_with_buckets_and_the_keras_cell(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_access, "host_resolves", lambda *args: True)
    config = tiny_config(cell="keras", bucket_by_length=True, epochs=1)
    with tfds.testing.mock_data(num_examples=8):
        metrics = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert (metrics["train_examples"], metrics["validation_examples"], metrics["test_examples"]) == (6, 2, 8)
    assert metrics["cell"] == "keras" and metrics["epochs"] == 1
    model = keras.models.load_model(str(tmp_path / "run" / "checkpoints" / "epoch_001.keras"))
    assert [type(l.forward_layer) for l in model.layers if isinstance(l, keras.layers.Bidirectional)] == [keras.layers.LSTM]


def test_csv_run_with_last_output_pooling_and_early_stopping(tmp_path):
    rows = [f"{' '.join([word] * 3)},{label}"
            for i in range(12) for word, label in ((POSITIVE[i % 6], "positive"), (NEGATIVE[i % 6], "negative"))]
    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text("review,sentiment\n" + "\n".join(rows) + "\n")
    config = tiny_config(csv_file=str(csv_file), epochs=3, early_stopping_patience=1,
                         learning_rate=0.0, pooling="last", keep_marks=False)
    metrics = train.train_and_evaluate(config, str(tmp_path / "run"))
    # With no learning, validation accuracy never improves: stop after epoch 2.
    assert metrics["epochs"] == 2 and metrics["best_epoch"] == 1
    assert (metrics["train_examples"] + metrics["validation_examples"], metrics["test_examples"]) == (12, 12)


def test_ngram_score_trains_and_the_saved_model_scores_strings(tmp_path):
    """--ngram_buckets: the log-count ratios are counted before training and
    kept, the word-and-pair weights move off zero in training, and
    model.keras (strings in) gives the best checkpoint's probabilities."""
    rows = [f"{POSITIVE[i % 6]} {POSITIVE[(i + 1) % 6]},positive\n"
            f"{NEGATIVE[i % 6]} {NEGATIVE[(i + 1) % 6]},negative" for i in range(12)]
    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text("review,sentiment\n" + "\n".join(rows) + "\n")
    config = tiny_config(csv_file=str(csv_file), epochs=1, ngram_buckets=64)
    model_dir = str(tmp_path / "run")
    train.train_and_evaluate(config, model_dir)
    best = keras.models.load_model(checkpoints.checkpoint_path(model_dir, 1))
    scores = best.get_layer("ngram_score")
    weights = scores.ngram_weights.numpy()
    vocab_size = best.get_layer("embedding").input_dim  # the adapted vocabulary
    assert weights.shape == (vocab_size + 64,) and np.abs(weights).max() > 0
    # Positive words only appear in positive reviews: their ratios are > 0.
    # (vocabulary.json, the training reviews' words, leaves out id 0,
    # padding, and id 1, [UNK].)
    with open(os.path.join(model_dir, "vocabulary.json")) as f:
        vocabulary = json.load(f)
    ratios = dict(zip(vocabulary, scores.log_count_ratios.numpy()[2:]))
    assert {word: ratios[word] > 0 for word in vocabulary} == {
        word: word in POSITIVE for word in vocabulary}
    assert set(POSITIVE) & set(vocabulary) and set(NEGATIVE) & set(vocabulary)
    reviews = [POSITIVE[0] + " " + POSITIVE[1], NEGATIVE[2]]
    np.testing.assert_allclose(
        predict.positive_probabilities(predict.load_model(model_dir), reviews),
        _checkpoint_probabilities(model_dir, config, 1, reviews), atol=1e-6)
