"""The checkpoint of an epoch cut short by SIGTERM or SIGINT, to resume at its batch.

A scheduler's SIGTERM (or Ctrl-C) may come long before an epoch ends. Then,
at the end of the current batch, the whole classifier (weights and optimizer
state, hence the learning-rate schedule's position) is saved to
checkpoints/mid_epoch_EEE_batch_BBBBB.keras, and checkpoints/mid_epoch.json
records what the .keras file cannot hold: the epoch and batches done, the
epoch's running loss/accuracy sums, the dropout layers' random-generator
states and the training seconds so far. Both are written through a temporary
file and a rename, the .keras file first, and the JSON names its .keras
file: a run killed at any moment leaves either the previous pair or the new
one. The rerun serves that epoch's batches in the same order (see
input_pipeline.epoch_seed), skips the ones done and goes on as if never
stopped. Once the epoch's own checkpoint is recorded, both files go.
"""

import glob
import os
import shutil
import sys

import keras
import numpy as np

from recipes.common.outputs import read_json
from recipes.common.outputs import save_model_atomically
from recipes.common.outputs import write_json_atomically
from recipes.common.errors import UsageError

STATE_FILE = "mid_epoch.json"


def _directory(model_dir):
    return os.path.join(model_dir, "checkpoints")


def state_path(model_dir):
    return os.path.join(_directory(model_dir), STATE_FILE)


def checkpoint_name(epoch, batches_done):
    return f"mid_epoch_{epoch:03d}_batch_{batches_done:05d}.keras"


def random_states(model):
    """The model's variables that are not weights: its layers' seed-generator states.

    Keras does not save them in a .keras file; without them a resumed
    epoch would draw other dropout masks than an uninterrupted one.
    """
    weights = {id(weight) for weight in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def save(model, model_dir, epoch, batches_done, train_seconds):
    """Saves the classifier and the state of epoch `epoch` (1-based) after `batches_done`."""
    name = checkpoint_name(epoch, batches_done)
    save_model_atomically(model, os.path.join(_directory(model_dir), name))
    write_json_atomically(state_path(model_dir), {
        "checkpoint": name,
        "epoch": epoch,
        "batches_done": batches_done,
        "steps": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
        "train_seconds": train_seconds,
        "metric_sums": {v.path: float(keras.ops.convert_to_numpy(v))
                        for v in model.metrics_variables},
        "random_states": [keras.ops.convert_to_numpy(v).tolist()
                          for v in random_states(model)],
    })
    _remove_other_checkpoints(model_dir, keep=name)


def _remove_other_checkpoints(model_dir, keep=None):
    for path in glob.glob(os.path.join(glob.escape(_directory(model_dir)),
                                       "mid_epoch_*_batch_*.keras")):
        if os.path.basename(path) != keep:
            os.remove(path)


def discard(model_dir):
    """Removes the mid-epoch state and checkpoint (the epoch is recorded now)."""
    path = state_path(model_dir)
    if os.path.exists(path):
        os.remove(path)
    _remove_other_checkpoints(model_dir)


def _warn(message):
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _move_to_damaged(model_dir, path):
    damaged = os.path.join(_directory(model_dir), "damaged")
    try:  # Another worker of a multi-worker run may move it first.
        os.makedirs(damaged, exist_ok=True)
        shutil.move(path, os.path.join(damaged, os.path.basename(path)))
    except OSError:
        pass
    return damaged


def load(model_dir, epoch):
    """(classifier, state) to resume epoch `epoch` (1-based) mid-way, or (None, None).

    Only a state for exactly that epoch counts: an older one is a leftover
    of a run stopped after recording the epoch, a later one follows an epoch
    checkpoint found damaged (the run resumes from the intact one before).
    A state file or checkpoint that cannot be read is moved to
    checkpoints/damaged/ with a warning naming it; the run then resumes
    from the last epoch checkpoint.
    """
    path = state_path(model_dir)
    try:
        state = read_json(path, None)
        if state is not None:
            checkpoint = os.path.join(_directory(model_dir), state["checkpoint"])
            int(state["epoch"]), int(state["batches_done"])
    except (UsageError, KeyError, TypeError, ValueError) as error:
        damaged = _move_to_damaged(model_dir, path)
        _warn(f"{path} is damaged ({type(error).__name__}); moved to {damaged}, "
              "resuming from the last completed epoch")
        return None, None
    if state is None:
        return None, None
    if state["epoch"] != epoch:
        if state["epoch"] > epoch:
            _warn(f"{path} (batch {state['batches_done']} of epoch "
                  f"{state['epoch']}) does not follow the last intact epoch "
                  f"checkpoint (epoch {epoch - 1}); it is not used")
        return None, None
    try:
        model = keras.models.load_model(checkpoint)
    except Exception as error:  # noqa: BLE001 - damaged, whatever the cause.
        damaged = _move_to_damaged(model_dir, checkpoint)
        _warn(f"{checkpoint} is damaged ({type(error).__name__}); moved to "
              f"{damaged}, resuming from the last completed epoch")
        return None, None
    states = random_states(model)
    if len(states) != len(state["random_states"]):
        _warn(f"{path} holds {len(state['random_states'])} random-generator "
              f"states for a model with {len(states)}; resuming from the "
              "last completed epoch")
        return None, None
    for variable, value in zip(states, state["random_states"]):
        variable.assign(np.asarray(value, dtype=variable.dtype))
    return model, state


def add_metric_sums(model, state):
    """Adds the saved epoch's running sums to the model's metric variables.

    Called after the resumed epoch's first batch (Keras creates and resets
    the metric variables only then). Loss and accuracy are sums of per-batch
    totals and counts, so saved + first batch is the very addition an
    uninterrupted run makes. The sums go into this process's first replica
    only: a metric's value is the sum over all replicas (and workers; the
    saved sums are those of all of them, so only the chief adds them).
    Reading a distributed metric variable would be a collective op that the
    other workers do not run, so nothing is read here.
    """
    sums = state["metric_sums"]
    variables = {v.path: v for v in model.metrics_variables}
    if set(variables) != set(sums):
        raise ValueError(
            "the resumed epoch's metrics do not match the saved ones; expected "
            f"{sorted(sums)}, the model has {sorted(variables)}")
    strategy = model.distribute_strategy
    for path, value in sums.items():
        variable = variables[path]
        first = strategy.experimental_local_results(variable.value)[0]
        first.assign_add(np.asarray(value, dtype=variable.dtype))
