"""Trains and evaluates the IMDB sentiment classifier; a library, never reads flags.

`train_and_evaluate(config, model_dir)` checks everything it was given first
(raising `UsageError` before writing anything), then trains with `model.fit`
under the chosen tf.distribute strategy and leaves in model_dir:

    config.json         the settings, to check that a rerun resumes the same run
    vocabulary.json     the words TextVectorization learned from training text
    logs/               TensorBoard: loss/accuracy, learning rate, weight and
                        gate-bias histograms, the settings as text
    checkpoints/        epoch_NNN.keras after every epoch (see checkpoints.py);
                        mid_epoch.json and mid_epoch_*.keras while an epoch
                        cut short by SIGTERM/SIGINT waits (see mid_epoch.py)
    history.json        per-epoch figures; resuming continues after the last
    model.keras         vectorizer + best epoch's classifier: raw strings in
    metrics.json        test accuracy/loss, epochs, seconds, examples/second
    pretrain/           with --pretrain_epochs: the language model's epoch
                        checkpoints and history (pretrain.py)
"""

import dataclasses
import json
import math
import os

import keras

from recipes.common import outputs
from recipes.common import run_config
from recipes.common import workers
from recipes.common.errors import UsageError
from recipes.common.model_dir import check_model_dir
from recipes.common.run_lock import run_lock
from recipes.common.signals import Stopped
from recipes.common.signals import stop_requests
from recipes.common.strategy import make_strategy
from recipes.common.strategy import set_precision
from recipes.imdb_sentiment import callbacks as callbacks_lib
from recipes.imdb_sentiment import checkpoints
from recipes.imdb_sentiment import input_pipeline
from recipes.imdb_sentiment import mid_epoch
from recipes.imdb_sentiment import model as model_lib
from recipes.imdb_sentiment import multi_worker
from recipes.imdb_sentiment import ngrams
from recipes.imdb_sentiment import pretrain as pretrain_lib
from recipes.imdb_sentiment import sources
from recipes.imdb_sentiment import text
from recipes.imdb_sentiment.config import RESUMABLE_CHANGES

CONFIG_FILE = run_config.CONFIG_FILE
VOCABULARY_FILE = "vocabulary.json"


def check_same_run(config, model_dir):
    """Raises UsageError if model_dir holds a run with other model/data settings."""
    saved = run_config.saved_config(model_dir)
    if saved is None:
        return
    current = dataclasses.asdict(config)
    if (saved.get("learning_rate_schedule") == "cosine"
            and saved.get("epochs") != current["epochs"]):
        raise UsageError(
            "--epochs cannot change in a run whose cosine learning-rate "
            f"schedule was fixed for {saved.get('epochs')} epochs (the extra "
            "epochs would train at learning rate 0); use a new --model_dir, "
            f"or --learning_rate_schedule=constant. Received: epochs="
            f"{current['epochs']} (saved: {saved.get('epochs')})"
        )
    run_config.refuse_changes(saved, current, RESUMABLE_CHANGES)


def load_splits(config):
    """Reads the reviews and carves the validation split; checks none is empty.

    Returns:
        (splits, how): split name -> `Reviews`, and "by_movie" when whole
        movies were held out (aclImdb with its urls files) or "random".
    """
    read = sources.read_reviews(config)
    if read["train"].movies is not None:
        how = "by_movie"
        train, validation = input_pipeline.split_validation_by_movie(
            read["train"], config.validation_fraction, config.seed)
    else:
        how = "random"
        train, validation = input_pipeline.split_validation(
            read["train"], config.validation_fraction, config.seed)
    splits = {"train": train, "validation": validation, "test": read["test"]}
    input_pipeline.check_not_empty(splits)
    return splits, how


def describe_split(splits, how):
    """One line saying how validation was held out, printed at the start of a run."""
    validation = splits["validation"]
    if how == "by_movie":
        return (f"Validation split: by_movie, {len(validation)} reviews of "
                f"{len(set(validation.movies))} movies held out, none of whose "
                f"reviews are among the {len(splits['train'])} training reviews.")
    return (f"Validation split: random, {len(validation)} of "
            f"{len(validation) + len(splits['train'])} training reviews (this "
            "source names no movies, so validation may share movies with "
            "training and read higher than the test set).")


def _vocabulary(config, model_dir, train_texts):
    """The saved vocabulary of this run, or one adapted on the training text.

    Writes nothing (see `_write_run_files`); a vocabulary without a single
    word is refused.
    """
    path = os.path.join(model_dir, VOCABULARY_FILE)
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    vectorizer = text.make_vectorizer(config.vocab_size, keep_marks=config.keep_marks)
    words = [str(w) for w in input_pipeline.adapt_vocabulary(vectorizer, train_texts)]
    if not words:
        raise UsageError(
            "the training reviews hold no words to learn a vocabulary from "
            "(after lower-casing and dropping punctuation). Received: "
            f"{len(train_texts)} training reviews"
        )
    return words


def _write_run_files(config, model_dir, out_dir, vocabulary):
    """config.json and vocabulary.json (into out_dir), once every input is checked.

    A resume that changed an allowed setting (RESUMABLE_CHANGES) is recorded
    in config_changes.json, with the epochs done.
    """
    _, done = checkpoints.resume_point(model_dir)
    run_config.save_config(out_dir, model_dir, dataclasses.asdict(config), done)
    if not os.path.exists(os.path.join(model_dir, VOCABULARY_FILE)):
        outputs.write_json_atomically(
            os.path.join(out_dir, VOCABULARY_FILE), vocabulary)


class _Progress(keras.callbacks.ProgbarLogger):
    """Keras's progress bar, saying "Epoch 3/6" although each `fit` runs one epoch."""

    def __init__(self, epochs):
        super().__init__()
        self._epochs = epochs

    def set_params(self, params):
        super().set_params(params)
        self.epochs = self._epochs


def _callbacks(config, model_dir, history, vectorizer, validation, stop,
               resumed):
    log_dir = os.path.join(model_dir, "logs")
    found = [
        callbacks_lib.EpochSummaries(log_dir),
        checkpoints.EpochCheckpoint(
            model_dir, history, config.early_stopping_patience, stop, resumed
        ),
        _Progress(config.epochs),
    ]
    if config.gate_heatmaps:
        found.append(
            callbacks_lib.gate_heatmap_callback(
                vectorizer, validation.texts, os.path.join(log_dir, "gates")
            )
        )
    return found


def _make_batches(config, splits, vectorizer):
    """{split: input_pipeline.Batches}; training's are shuffled per epoch."""
    return {
        name: input_pipeline.Batches(
            reviews, vectorizer, config.max_len, config.batch_size,
            config.bucket_by_length,
            shuffle_seed=config.seed if name == "train" else None,
        )
        for name, reviews in splits.items()
    }


def _restore_or_build(config, model_dir, history, vocab_size, train_batches,
                      train_examples, language_model=None):
    """(classifier, history, mid-epoch state or None) to continue from.

    The newest intact epoch checkpoint's classifier, or the mid-epoch one
    of the epoch after it, or a new classifier.
    A new classifier starts from `language_model`'s embedding and first
    Bidirectional LSTM when one is given (pretraining), and its n-gram
    score's log-count ratios are counted on `train_batches` (checkpoints
    keep them).
    """
    batches_per_epoch = train_batches.num_batches
    classifier, history = checkpoints.load_newest_intact(model_dir, history)
    mid_classifier, resumed = mid_epoch.load(model_dir, len(history) + 1)
    if mid_classifier is not None:
        print(f"Resuming epoch {resumed['epoch']} after its batch "
              f"{resumed['batches_done']} of {batches_per_epoch} from "
              f"{model_dir}.")
        return mid_classifier, history, resumed
    if classifier is not None:
        print(f"Resuming after epoch {len(history)} from {model_dir}.")
        return classifier, history, None
    classifier = model_lib.build_classifier(config, vocab_size)
    if language_model is not None:
        pretrain_lib.transfer(language_model, classifier)
    if config.ngram_buckets:
        scores = classifier.get_layer("ngram_score")
        scores.log_count_ratios.assign(
            ngrams.log_count_ratios(scores, train_batches.epoch()))
    model_lib.compile_classifier(
        classifier,
        model_lib.learning_rate_schedule(config, train_examples),
        config.clipnorm,
    )
    return classifier, history, None


def _export(config, vocabulary, checkpoint, model_dir):
    """Saves vectorizer + classifier (built outside any strategy) as model.keras."""
    end_to_end = model_lib.build_end_to_end(
        text.make_vectorizer(
            config.vocab_size, config.max_len, vocabulary, config.keep_marks
        ),
        keras.models.load_model(checkpoint, compile=False),
    )
    outputs.save_model_atomically(end_to_end, os.path.join(model_dir, "model.keras"))


def _raise_if_cut_short(epoch_checkpoint, model_dir, history, stop):
    """A FloatingPointError or Stopped if fit ended on a NaN or a signal."""
    where = os.path.join(model_dir, checkpoints.CHECKPOINT_DIR)
    saved = (f"epochs 1-{len(history)} are saved in {where}"
             if history else "no epoch had been saved yet")
    if epoch_checkpoint.diverged:
        raise FloatingPointError(
            f"{epoch_checkpoint.diverged}; stopped without saving it ({saved}). "
            "Lower --learning_rate or --clipnorm and train in a new --model_dir")
    if stop:
        if epoch_checkpoint.saved_mid_epoch:
            epoch, batches = epoch_checkpoint.saved_mid_epoch
            raise Stopped(
                f"{stop.name}: stopped during epoch {epoch} after its batch "
                f"{batches}, saved in {where} ({saved}); rerun the same command "
                f"to resume from batch {batches + 1} of epoch {epoch}",
                stop.exit_status)
        raise Stopped(f"{stop.name}: stopped during epoch {len(history) + 1} ("
                      f"{saved}); rerun the same command to resume from epoch "
                      f"{len(history) + 1}", stop.exit_status)


def _fit_epochs(config, classifier, batches, callbacks, done, resumed):
    """Trains epochs done+1.. (1-based) until the last, a stop or early stopping.

    One `fit` per epoch, each on that epoch's own batches (the first one
    without the batches done before a mid-epoch stop), so that every epoch
    sees the same batches however often the run was stopped and resumed.
    """
    validation = batches["validation"].epoch()
    for epoch in range(done, config.epochs):
        skip = resumed["batches_done"] if resumed and epoch == done else 0
        classifier.fit(
            batches["train"].epoch(epoch, skip=skip),
            validation_data=validation,
            epochs=epoch + 1,
            initial_epoch=epoch,
            callbacks=callbacks,
        )
        if classifier.stop_training:
            return


def train_and_evaluate(config, model_dir):
    """Trains on config's data, evaluates the best epoch, writes model_dir.

    Returns:
        The metrics written to model_dir/metrics.json.

    Raises:
        UsageError: bad input, before anything is written; or another run
            holds model_dir.
        FloatingPointError: the loss or the weights became NaN or infinite;
            only finite epochs are saved, nothing is exported.
        Stopped: SIGINT or SIGTERM arrived; the completed epochs are saved.
    """
    # Checks: nothing below writes until all of them passed.
    check_model_dir(model_dir)
    if config.epochs < 1:
        raise UsageError(f"--epochs must be >= 1. Received: epochs={config.epochs}")
    model_lib.lstm_class(config.cell)
    model_lib.check_pooling(config.pooling)
    model_lib.check_learning_rate_schedule(config.learning_rate_schedule)
    check_same_run(config, model_dir)
    # Before any TF op: multi-worker collectives are set up at startup.
    strategy = make_strategy(config.strategy, config.tpu_address)
    splits, split_how = load_splits(config)
    print(describe_split(splits, split_how), flush=True)
    policy = set_precision(config.mixed_precision)
    keras.utils.set_random_seed(config.seed)
    # Only the chief writes to model_dir; other workers write to a temporary
    # directory (every worker reads and resumes from model_dir).
    out_dir = workers.output_dir(strategy, model_dir)
    vocabulary = _vocabulary(config, model_dir, splits["train"].texts.astype(str))
    # Signals are deferred from before the lock is taken (chief only).
    with stop_requests() as stop, run_lock(model_dir):
        return _train(config, model_dir, out_dir, splits, split_how,
                      strategy, policy, vocabulary, stop)


def _train(config, model_dir, out_dir, splits, split_how, strategy, policy,
           vocabulary, stop):
    """The run itself, once every input is checked and model_dir is locked."""
    _write_run_files(config, model_dir, out_dir, vocabulary)
    outputs.log_config_text(
        os.path.join(out_dir, "logs", "config"), dataclasses.asdict(config)
    )
    vectorizer = text.make_vectorizer(
        config.vocab_size, vocabulary=vocabulary, keep_marks=config.keep_marks
    )
    batches = _make_batches(config, splits, vectorizer)

    history, _ = checkpoints.resume_point(model_dir)
    language_model = None
    if config.pretrain_epochs and not history:
        language_model = pretrain_lib.pretrain(
            config, model_dir, out_dir, batches["train"], strategy,
            vectorizer.vocabulary_size(), stop)
    with strategy.scope():
        classifier, history, resumed = _restore_or_build(
            config, model_dir, history, vectorizer.vocabulary_size(),
            batches["train"], len(splits["train"]), language_model,
        )
    done = len(history)
    workers.check_same_position(strategy, done, "epochs", model_dir)
    workers.check_same_position(
        strategy, resumed["batches_done"] if resumed else 0,
        f"batches of epoch {done + 1}", model_dir)
    multi_worker.patch_for_multi_worker(classifier)
    patience = config.early_stopping_patience
    stopped = patience and checkpoints.epochs_without_improvement(history) >= patience
    if done < config.epochs and not stopped:
        callbacks = _callbacks(
            config, out_dir, history, vectorizer, splits["validation"], stop,
            resumed,
        )
        _fit_epochs(config, classifier, batches, callbacks, done, resumed)
        _raise_if_cut_short(callbacks[1], model_dir, history, stop)

    best = checkpoints.best_entry(history)
    # This process's own copy if it saved that epoch (a multi-worker worker
    # need not see the chief's files yet), else the one in model_dir.
    best_path = checkpoints.checkpoint_path(out_dir, best["epoch"])
    if not os.path.exists(best_path):
        best_path = checkpoints.checkpoint_path(model_dir, best["epoch"])
    with strategy.scope():
        best_classifier = keras.models.load_model(best_path)
    multi_worker.patch_for_multi_worker(best_classifier)
    test = best_classifier.evaluate(batches["test"].epoch(), return_dict=True)
    if not all(math.isfinite(value) for value in test.values()):
        raise FloatingPointError(
            f"the best epoch's test figures are not finite ({test}); nothing "
            "was exported")
    _export(config, vocabulary, best_path, out_dir)

    train_seconds = sum(entry["train_seconds"] for entry in history)
    pretrain_seconds = pretrain_lib.seconds(model_dir)
    metrics = {
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "epochs": len(history),
        "best_epoch": best["epoch"],
        "validation_accuracy": best["val_accuracy"],
        "training_seconds": train_seconds + pretrain_seconds,
        "pretrain_seconds": pretrain_seconds,
        "pretrain_epochs": config.pretrain_epochs,
        "examples_per_second": len(splits["train"]) * len(history) / train_seconds,
        "train_examples": len(splits["train"]),
        "validation_examples": len(splits["validation"]),
        "validation_split": split_how,
        "test_examples": len(splits["test"]),
        "cell": config.cell,
        "strategy": config.strategy,
        "replicas": strategy.num_replicas_in_sync,
        "precision": policy,
    }
    outputs.write_metrics(out_dir, metrics)
    return metrics
