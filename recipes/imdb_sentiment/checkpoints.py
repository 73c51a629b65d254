"""Per-epoch checkpoints, the epoch history and resuming from them.

After every epoch the whole classifier (weights and optimizer state) is saved
to model_dir/checkpoints/epoch_NNN.keras through a temporary file and a rename,
then the epoch's figures are appended to model_dir/history.json. A run killed
at any moment therefore leaves only complete checkpoints, and rerunning the
same command continues after the last epoch recorded in the history. Early
stopping and the choice of the best epoch read the same history, so they too
survive an interruption.
"""

import json
import os
import time

import keras

from recipes.common.outputs import write_json_atomically

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

    Args:
        model_dir: Where checkpoints/ and history.json go.
        history: The entries recorded so far (from `resume_point`); extended
            in place.
        patience: Epochs without improvement before stopping; 0 never stops.
    """

    def __init__(self, model_dir, history, patience):
        super().__init__()
        self.model_dir = model_dir
        self.history = history
        self.patience = patience
        self._epoch_start = None
        self._train_seconds = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._train_seconds = None

    def on_test_begin(self, logs=None):
        # Validation at the end of an epoch: the training part is over.
        if self._epoch_start is not None and self._train_seconds is None:
            self._train_seconds = time.perf_counter() - self._epoch_start

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._epoch_start
        train_seconds = self._train_seconds or elapsed
        path = checkpoint_path(self.model_dir, epoch + 1)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = path[: -len(".keras")] + ".partial.keras"
        self.model.save(partial)
        os.replace(partial, path)
        entry = {"epoch": epoch + 1, "train_seconds": train_seconds,
                 "validation_seconds": elapsed - train_seconds}
        entry.update({name: float(value) for name, value in (logs or {}).items()})
        self.history.append(entry)
        write_json_atomically(
            os.path.join(self.model_dir, HISTORY_FILE), self.history
        )
        self._epoch_start = None
        if self.patience and epochs_without_improvement(self.history) >= self.patience:
            self.model.stop_training = True
