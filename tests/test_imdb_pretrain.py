"""Language-model pretraining of the IMDB classifier's encoder: loss, transfer, resume, faults."""

import dataclasses
import glob
import json
import os
import signal
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

import recipe_process
from imdb_data import write_acl_imdb, write_movie_urls
from recipes.common.errors import UsageError
from recipes.imdb_sentiment import checkpoints
from recipes.imdb_sentiment import config as config_lib
from recipes.imdb_sentiment import input_pipeline
from recipes.imdb_sentiment import model as model_lib
from recipes.imdb_sentiment import pretrain
from recipes.imdb_sentiment import sources
from recipes.imdb_sentiment import text
from recipes.imdb_sentiment import train

MODULE = "recipes.imdb_sentiment"


def lm_config(**changes):
    fields = dict(bucket_by_length=False, pretrain_epochs=3, epochs=1,
                  pretrain_sampled_words=8, pretrain_learning_rate=2e-2)
    fields.update(changes)
    return dataclasses.replace(config_lib.debug_config(), **fields)


def repetitive_corpus(reviews=24):
    """Reviews that cycle through the same 6 words, from varying starts."""
    words = "alpha beta gamma delta epsilon zeta".split()
    return [" ".join(words[(start + i) % 6] for i in range(10))
            for start in range(reviews)]


def _dataset(texts, config):
    vectorizer = text.make_vectorizer(config.vocab_size)
    input_pipeline.adapt_vocabulary(vectorizer, np.array(texts))
    reviews = sources.Reviews(np.array(texts, dtype=object),
                              np.zeros(len(texts), np.int32))
    batches = input_pipeline.Batches(
        reviews, vectorizer, config.max_len, config.batch_size, False, shuffle_seed=0)
    return batches, vectorizer


def _full_loss(language_model, dataset):
    """Exact (full-softmax) LM loss over the batches of `dataset`."""
    losses = [float(language_model(ids, training=False)[0]) for ids, _ in dataset.epoch()]
    return float(np.mean(losses))


def test_pretraining_lowers_the_full_softmax_loss_on_a_repetitive_corpus(tmp_path):
    config = lm_config(pretrain_epochs=8, max_len=10)
    dataset, vectorizer = _dataset(repetitive_corpus(), config)
    vocab_size = vectorizer.vocabulary_size()
    keras.utils.set_random_seed(0)
    untrained = pretrain.build_language_model(config, vocab_size)
    before = _full_loss(untrained, dataset)
    assert before == pytest.approx(np.log(vocab_size), rel=0.05)
    trained = pretrain.pretrain(config, str(tmp_path), str(tmp_path), dataset,
                                tf.distribute.get_strategy(), vocab_size)
    after = _full_loss(trained, dataset)
    # Every word follows from the one before (and after): most of the
    # log(8) = 2.08 nats of an untrained model go.
    assert after < 0.5 * before, (before, after)
    history = json.loads((tmp_path / "pretrain" / "history.json").read_text())
    assert [entry["epoch"] for entry in history] == list(range(1, 9))
    assert history[-1]["loss"] < history[0]["loss"]


def test_targets_are_the_next_and_previous_words_of_real_tokens():
    layer = pretrain.NextAndPreviousWordLoss(vocab_size=6, sampled_words=3)
    units = 2
    ids = np.array([[2, 3, 4, 0], [5, 0, 0, 0]])
    forward = np.random.default_rng(0).normal(size=(2, 4, units)).astype("float32")
    backward = np.random.default_rng(1).normal(size=(2, 4, units)).astype("float32")
    layer.build([(2, 4, units), (2, 4, units), (2, 4)])
    loss = float(layer([forward, backward, ids], training=False)[0])
    kernels = [keras.ops.convert_to_numpy(k) for k in layer.kernels]
    biases = [keras.ops.convert_to_numpy(b) for b in layer.biases]

    def cross_entropy(hidden, direction, target):
        logits = kernels[direction] @ hidden + biases[direction]
        return np.log(np.exp(logits).sum()) - logits[target]

    # Review 1: forward predicts 3 from position 0 and 4 from 1; backward 2
    # from position 1 and 3 from 2. Review 2 (one word) predicts nothing.
    expected = np.mean([
        cross_entropy(forward[0, 0], 0, 3), cross_entropy(forward[0, 1], 0, 4),
        cross_entropy(backward[0, 1], 1, 2), cross_entropy(backward[0, 2], 1, 3)])
    assert loss == pytest.approx(expected, rel=1e-5)


def test_the_classifier_starts_from_exactly_the_pretrained_weights(tmp_path):
    config = lm_config()
    keras.utils.set_random_seed(0)
    language_model = pretrain.build_language_model(config, 50)
    # Move the LM's weights away from any fresh initialization.
    for weight in language_model.weights:
        weight.assign(np.random.default_rng(7).normal(size=weight.shape))
    classifier, history, resumed = train._restore_or_build(
        dataclasses.replace(config, ngram_buckets=0), str(tmp_path), [], 50,
        types.SimpleNamespace(num_batches=5), 18, language_model)
    assert history == [] and resumed is None
    for name in pretrain.SHARED_LAYERS:
        lm_weights = language_model.get_layer(name).get_weights()
        classifier_weights = classifier.get_layer(name).get_weights()
        assert len(lm_weights) == len(classifier_weights) > 0
        for lm_weight, classifier_weight in zip(lm_weights, classifier_weights):
            np.testing.assert_array_equal(lm_weight, classifier_weight)
    forward = classifier.get_layer("bidirectional_0").forward_layer
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(forward.cell.kernel),
        keras.ops.convert_to_numpy(
            language_model.get_layer("bidirectional_0").forward_layer.cell.kernel))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = write_acl_imdb(tmp_path_factory.mktemp("imdb") / "aclImdb", per_folder=12)
    write_movie_urls(root, per_folder=12)
    return root


def _interrupt_at_pretraining_epoch(monkeypatch, interrupted_epoch):
    """Ctrl-C at the start of pretraining epoch `interrupted_epoch` (from 0)."""
    original = checkpoints.EpochCheckpoint.on_epoch_begin

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == interrupted_epoch and self.model_dir.endswith(pretrain.PRETRAIN_DIR):
            raise KeyboardInterrupt("simulated Ctrl-C")
        original(self, epoch, logs)

    monkeypatch.setattr(checkpoints.EpochCheckpoint, "on_epoch_begin", on_epoch_begin)


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
    """The same pretrained run uninterrupted, and interrupted in pretraining then resumed."""
    root = tmp_path_factory.mktemp("runs")
    config = lm_config(data_dir=data_dir)
    whole_dir, resumed_dir = str(root / "whole"), str(root / "resumed")
    keras.utils.set_random_seed(1234)
    whole = train.train_and_evaluate(config, whole_dir)
    monkeypatch = pytest.MonkeyPatch()
    _interrupt_at_pretraining_epoch(monkeypatch, interrupted_epoch=1)
    keras.utils.set_random_seed(1234)
    with pytest.raises(KeyboardInterrupt):
        train.train_and_evaluate(config, resumed_dir)
    monkeypatch.undo()
    lm_history, done = checkpoints.resume_point(os.path.join(resumed_dir, "pretrain"))
    keras.utils.set_random_seed(1234)
    resumed = train.train_and_evaluate(config, resumed_dir)
    return dict(config=config, whole=whole, resumed=resumed, whole_dir=whole_dir,
                resumed_dir=resumed_dir, done_after_interrupt=done,
                lm_history_after_interrupt=lm_history)


def _lm_history(model_dir):
    return json.loads(open(os.path.join(model_dir, "pretrain", "history.json")).read())


def test_resumed_pretraining_ends_like_the_uninterrupted_run(runs):
    assert runs["done_after_interrupt"] == 1
    whole, resumed = _lm_history(runs["whole_dir"]), _lm_history(runs["resumed_dir"])
    assert [e["epoch"] for e in resumed] == [e["epoch"] for e in whole] == [1, 2, 3]
    # The first epoch was kept, and is the uninterrupted run's first epoch.
    assert resumed[0] == runs["lm_history_after_interrupt"][0]
    assert resumed[0]["loss"] == pytest.approx(whole[0]["loss"], rel=1e-5)
    # Each epoch's batches depend only on the seed and the epoch; the
    # sampled-softmax draws and float rounding may still differ a little.
    for a, b in zip(resumed, whole):
        assert a["loss"] == pytest.approx(b["loss"], rel=0.1)
    assert runs["resumed"]["test_accuracy"] == pytest.approx(
        runs["whole"]["test_accuracy"], abs=0.25)


def test_a_pretrained_run_reports_its_split_time_and_logs(runs):
    metrics, model_dir = runs["whole"], runs["whole_dir"]
    with open(os.path.join(model_dir, "metrics.json")) as f:
        assert json.load(f) == pytest.approx(metrics)
    assert metrics["validation_split"] == "by_movie"
    assert metrics["pretrain_epochs"] == 3
    seconds = sum(e["train_seconds"] for e in _lm_history(model_dir))
    assert metrics["pretrain_seconds"] == pytest.approx(seconds)
    classifier_seconds = sum(e["train_seconds"] for e in json.loads(
        open(os.path.join(model_dir, "history.json")).read()))
    assert metrics["training_seconds"] == pytest.approx(seconds + classifier_seconds)
    for epoch in (1, 2, 3):
        assert os.path.isfile(os.path.join(
            model_dir, "pretrain", "checkpoints", f"epoch_{epoch:03d}.keras"))
    events = glob.glob(os.path.join(model_dir, "logs", "pretrain", "train", "events.*"))
    steps = {}
    for path in events:
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    assert sorted(steps["epoch_loss"]) == [0, 1, 2]
    assert sorted(steps["epoch_learning_rate"]) == [0, 1, 2]


def test_changed_pretraining_flags_are_refused(runs):
    for change in (dict(pretrain_epochs=4), dict(pretrain_sampled_words=9),
                   dict(pretrain_learning_rate=1e-3)):
        config = dataclasses.replace(runs["config"], **change)
        name, value = next(iter(change.items()))
        with pytest.raises(UsageError, match=f"{name}={value!r} \\(saved: "):
            train.train_and_evaluate(config, runs["whole_dir"])


def test_a_non_finite_pretraining_loss_stops_without_saving(tmp_path, data_dir, monkeypatch):
    original = pretrain.NextAndPreviousWordLoss.call

    def nan_loss(self, inputs, training=None, mask=None):
        return original(self, inputs, training, mask) * float("nan")

    monkeypatch.setattr(pretrain.NextAndPreviousWordLoss, "call", nan_loss)
    model_dir = tmp_path / "run"
    with pytest.raises(FloatingPointError, match="pretraining: the training loss "
                       "became nan in epoch 1; stopped without saving it \\(no "
                       "pretraining epoch had been saved yet\\)"):
        train.train_and_evaluate(lm_config(data_dir=data_dir), str(model_dir))
    assert not os.path.exists(model_dir / "pretrain" / "checkpoints" / "epoch_001.keras")
    assert not os.path.exists(model_dir / "metrics.json")


def test_sigterm_during_pretraining_keeps_its_epochs_and_a_changed_rerun_is_refused(tmp_path, data_dir):
    model_dir = tmp_path / "run"
    flags = [f"--model_dir={model_dir}", f"--data_dir={data_dir}", "--vocab_size=50",
             "--max_len=12", "--embedding_dim=8", "--lstm_units=4", "--batch_size=4",
             "--validation_fraction=0.25", "--epochs=1", "--pretrain_epochs=100000",
             "--pretrain_sampled_words=8"]
    process = recipe_process.start(MODULE, *flags)
    recipe_process.wait_for_file(process, model_dir / "pretrain" / "history.json")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr[-3000:]
    assert "Traceback" not in stderr
    assert "SIGTERM: stopped during pretraining epoch" in stderr
    done = len(_lm_history(model_dir))
    assert done >= 1
    assert not os.path.exists(model_dir / "checkpoints")  # The classifier never began.
    changed = recipe_process.run(MODULE, *flags[:-2], f"--pretrain_epochs={done}",
                                 "--pretrain_sampled_words=8")
    assert changed.returncode == 2
    assert "pretrain_epochs=" in changed.stderr and "(saved: 100000)" in changed.stderr
