"""Per-epoch checkpoints, the epoch history and resuming from them.

After every epoch the whole classifier (weights and optimizer state) is saved
to model_dir/checkpoints/epoch_NNN.keras through a temporary file and a rename,
then the epoch's figures are appended to model_dir/history.json. A run killed
at any moment therefore leaves only complete checkpoints, and rerunning the
same command continues after the last epoch recorded in the history. Early
stopping and the choice of the best epoch read the same history, so they too
survive an interruption.

What is saved is finite: a NaN or infinite loss stops training at once, and
an epoch whose weights went non-finite is neither saved nor recorded. An
epoch cut short by SIGINT or SIGTERM is saved as it stands after the current
batch (see mid_epoch.py) and the rerun resumes at the next batch. A checkpoint that cannot be loaded is moved to
checkpoints/damaged/ with a warning, and the run resumes from the epoch
before it.
"""

import json
import math
import os
import shutil
import sys
import time

import keras

from recipes.common import workers
from recipes.common.finite import non_finite_weights
from recipes.common.outputs import save_model_atomically
from recipes.common.outputs import write_json_atomically
from recipes.imdb_sentiment import mid_epoch

CHECKPOINT_DIR = "checkpoints"
HISTORY_FILE = "history.json"
MONITOR = "val_accuracy"


def checkpoint_path(model_dir, epoch):
    """The checkpoint written after `epoch` (1-based) epochs."""
    return os.path.join(model_dir, CHECKPOINT_DIR, f"epoch_{epoch:03d}.keras")


def resume_point(model_dir):
    """Reads history.json; returns (history, epochs completed).

    Only epochs whose checkpoint exists count, so a run killed between saving
    a checkpoint and recording it simply repeats that epoch.
    """
    path = os.path.join(model_dir, HISTORY_FILE)
    if not os.path.exists(path):
        return [], 0
    with open(path) as f:
        history = json.load(f)
    complete = []
    for entry in history:
        if entry["epoch"] != len(complete) + 1:
            break
        if not os.path.exists(checkpoint_path(model_dir, entry["epoch"])):
            break
        complete.append(entry)
    return complete, len(complete)


def load_newest_intact(model_dir, history):
    """(model, history) from the newest loadable epoch checkpoint in `history`.

    A checkpoint that does not load is moved to checkpoints/damaged/, with
    a warning naming it, and the epoch before it is tried; `history` is cut
    to the epoch loaded. Returns (None, []) when no epoch is left.
    """
    history = list(history)
    while history:
        path = checkpoint_path(model_dir, history[-1]["epoch"])
        try:
            return keras.models.load_model(path), history
        except Exception as error:  # noqa: BLE001 - damaged, whatever the cause.
            damaged = os.path.join(model_dir, CHECKPOINT_DIR, "damaged")
            try:  # Another worker of a multi-worker run may move it first.
                os.makedirs(damaged, exist_ok=True)
                shutil.move(path, os.path.join(damaged, os.path.basename(path)))
            except OSError:
                pass
            print(f"warning: {path} is damaged ({type(error).__name__}); "
                  f"moved to {damaged}, resuming from the epoch before it",
                  file=sys.stderr, flush=True)
            history.pop()
    return None, history


def best_entry(history):
    """The history entry with the highest validation accuracy (earliest on ties)."""
    return max(history, key=lambda entry: (entry[MONITOR], -entry["epoch"]))


def epochs_without_improvement(history):
    """Epochs run since the best one."""
    return history[-1]["epoch"] - best_entry(history)["epoch"] if history else 0


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the model and records the epoch in history.json at every epoch end.

    Also times each epoch's training (validation excluded) and stops training
    once `patience` epochs have passed without a better validation accuracy.
    Stops at once, saving nothing more, on a non-finite loss (`diverged`
    then says where). When `stop` (a `signals.StopRequest`) fires, saves
    the epoch as it stands after the current batch (`mid_epoch.save`;
    `saved_mid_epoch` is then (epoch, batches done)) and stops, unless that
    batch was the epoch's last: then the epoch is completed and recorded.

    Args:
        model_dir: Where checkpoints/ and history.json go.
        history: The entries recorded so far (from `resume_point`); extended
            in place.
        patience: Epochs without improvement before stopping; 0 never stops.
        stop: A `signals.StopRequest`, or None.
        resumed: The `mid_epoch.load` state of the epoch the first `fit`
            continues, or None.
    """

    def __init__(self, model_dir, history, patience, stop=None, resumed=None):
        super().__init__()
        self.model_dir = model_dir
        self.history = history
        self.patience = patience
        self.stop = stop
        self.diverged = ""
        self._epoch_start = None
        self._train_seconds = None
        self._epoch = 0
        self._cut_short = False
        self._any_worker_stops = None  # Set for the strategy at on_train_begin.
        self.resumed = resumed
        self._skipped = 0  # Batches of this epoch done before this run.
        self._earlier_seconds = 0.0
        self.saved_mid_epoch = None

    def on_train_begin(self, logs=None):
        # Multi-worker: all workers must stop after the same step.
        if self._any_worker_stops is None:
            self._any_worker_stops = workers.make_stop_agreement(
                self.model.distribute_strategy)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged = f"the training loss became {float(loss)} in epoch {self._epoch}"
        if (batch == 0 and self._skipped
                and workers.is_chief(self.model.distribute_strategy)):
            # Saved: the sums over all workers; one worker adds them back.
            mid_epoch.add_metric_sums(self.model, self.resumed)
        if self.diverged:
            self._cut_short = True
            self.model.stop_training = True
        elif (self._any_worker_stops(self.stop)
              and batch + 1 != self.params.get("steps")):
            # After the epoch's last batch, the epoch is completed instead.
            self._cut_short = True
            self.model.stop_training = True
            self._save_mid_epoch(self._skipped + batch + 1)

    def _save_mid_epoch(self, batches_done):
        bad = non_finite_weights(self.model.weights)
        if bad:
            self.diverged = (f"epoch {self._epoch} reached NaN or infinite "
                             f"weights ({', '.join(bad[:3])})")
            return
        seconds = self._earlier_seconds + time.perf_counter() - self._epoch_start
        mid_epoch.save(self.model, self.model_dir, self._epoch, batches_done,
                       seconds)
        self.saved_mid_epoch = (self._epoch, batches_done)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1
        self._cut_short = False
        self._epoch_start = time.perf_counter()
        self._train_seconds = None
        self._skipped, self._earlier_seconds = 0, 0.0
        if self.resumed and self.resumed["epoch"] == self._epoch:
            self._skipped = self.resumed["batches_done"]
            self._earlier_seconds = self.resumed["train_seconds"]

    def on_test_begin(self, logs=None):
        # Validation at the end of an epoch: the training part is over.
        if self._epoch_start is not None and self._train_seconds is None:
            self._train_seconds = time.perf_counter() - self._epoch_start

    def on_epoch_end(self, epoch, logs=None):
        if self._cut_short:
            return  # A cut-short or diverged epoch is neither saved nor recorded.
        bad = [k for k, v in (logs or {}).items() if not math.isfinite(float(v))]
        bad += non_finite_weights(self.model.weights)
        if bad:
            self.diverged = (f"epoch {epoch + 1} ended with NaN or infinite "
                             f"values ({', '.join(bad[:3])})")
            self.model.stop_training = True
            return
        elapsed = time.perf_counter() - self._epoch_start
        train_seconds = self._train_seconds or elapsed
        save_model_atomically(self.model, checkpoint_path(self.model_dir, epoch + 1))
        entry = {"epoch": epoch + 1,
                 "train_seconds": self._earlier_seconds + train_seconds,
                 "validation_seconds": elapsed - train_seconds}
        entry.update({name: float(value) for name, value in (logs or {}).items()})
        self.history.append(entry)
        write_json_atomically(
            os.path.join(self.model_dir, HISTORY_FILE), self.history
        )
        mid_epoch.discard(self.model_dir)
        self._epoch_start = None
        # A signal during validation or the save: the epoch is kept.
        if self._any_worker_stops(self.stop):
            self.model.stop_training = True
        if self.patience and epochs_without_improvement(self.history) >= self.patience:
            self.model.stop_training = True
