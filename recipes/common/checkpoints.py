"""Resuming from the newest intact tf.train checkpoint of a directory.

A run killed at a bad moment, a full disk or a copy gone wrong can leave
the latest checkpoint damaged (a truncated `.data` file, a garbage `.index`,
a missing file) or the `checkpoint` state file garbled. Restoring blindly
ends in a raw traceback, and a garbled state file makes TensorFlow start
from step 0 as if nothing had been saved. Here every checkpoint file is
found by listing the directory, not by trusting the state file; each
candidate is read in full first (TensorFlow checks every tensor's checksum)
and the float tensors of its model and optimizer must be finite. A damaged one is moved to `damaged/`
with a warning naming it, and the next older one is tried.
"""

import glob
import os
import re
import shutil
import sys

import numpy as np
import tensorflow as tf

from recipes.common.errors import UsageError
from recipes.common.outputs import write_bytes_atomically

DAMAGED_DIR = "damaged"
# Checkpoint keys whose float tensors must be finite (others, such as a
# "best loss so far" that starts at infinity, may not be).
FINITE_KEYS = ("model/", "optimizer/")


def _warn(message):
    print(f"warning: {message}", file=sys.stderr, flush=True)


def checkpoint_numbers(directory):
    """Numbers N of the `ckpt-N` checkpoints with any file in `directory`."""
    numbers = set()
    for path in glob.glob(os.path.join(glob.escape(directory), "ckpt-*")):
        match = re.fullmatch(r"ckpt-(\d+)\.(index|data-\d+-of-\d+)",
                             os.path.basename(path))
        if match:
            numbers.add(int(match.group(1)))
    return sorted(numbers)


def _first_line(error):
    return f"{type(error).__name__}: {str(error).strip().splitlines()[0][:160]}"


def damage(prefix):
    """Why the checkpoint at `prefix` cannot be resumed from, or None if intact.

    The reason names the damaged file.
    """
    index = prefix + ".index"
    if not os.path.exists(index):
        return f"{index} is missing"
    shards = glob.glob(glob.escape(prefix) + ".data-*")
    try:
        reader = tf.train.load_checkpoint(prefix)
    except Exception as error:  # noqa: BLE001 - any failure means damaged.
        return f"{index} is damaged ({_first_line(error)})"
    if not shards:
        return f"{prefix}.data-00000-of-00001 is missing"
    for key in reader.get_variable_to_shape_map():
        try:
            value = reader.get_tensor(key)
        except Exception as error:  # noqa: BLE001
            if len(shards) == 1 and not os.path.exists(
                    prefix + ".data-00000-of-00001"):
                return f"{prefix}.data-00000-of-00001 is missing"
            return (f"{' or '.join(sorted(shards))} is damaged, truncated or "
                    f"incomplete ({_first_line(error)})")
        if (key.startswith(FINITE_KEYS) and isinstance(value, np.ndarray)
                and value.dtype.kind == "f" and not np.isfinite(value).all()):
            return f"{prefix} holds NaN or infinite values ({key})"
    return None


def _move_aside(directory, prefix):
    """Moves the files of checkpoint `prefix` into directory/damaged/."""
    target = os.path.join(directory, DAMAGED_DIR)
    os.makedirs(target, exist_ok=True)
    for path in glob.glob(glob.escape(prefix) + ".*"):
        shutil.move(path, os.path.join(target, os.path.basename(path)))
    return target


def _write_state(state_path, names):
    """Rewrites the `checkpoint` state file: `names` (oldest first), relative."""
    lines = [f'model_checkpoint_path: "{names[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{name}"' for name in names]
    write_bytes_atomically(state_path, ("\n".join(lines) + "\n").encode())


def newest_intact(directory):
    """The prefix of the newest intact checkpoint in `directory`, or None.

    Reads only (a multi-worker non-chief must not move the chief's files).
    """
    numbers = checkpoint_numbers(directory) if os.path.isdir(directory) else []
    for number in reversed(numbers):
        prefix = os.path.join(directory, f"ckpt-{number}")
        if damage(prefix) is None:
            return prefix
    return None


def restore_newest_intact(checkpoint, directory, max_to_keep, finish=None):
    """Restores `checkpoint` from the newest intact checkpoint in `directory`.

    Args:
        checkpoint: The `tf.train.Checkpoint` to restore into.
        directory: Where its `ckpt-N` files are (may not exist yet).
        max_to_keep: For the returned manager.
        finish: Called with the restore status (e.g. to assert it consumed
            everything); default `expect_partial()`.

    Returns:
        (manager, prefix): a `tf.train.CheckpointManager` whose latest
        checkpoint is the one restored, and its prefix (None: nothing saved
        yet, nothing restored).

    Raises:
        UsageError: checkpoints exist but none of them is intact.
    """
    numbers = checkpoint_numbers(directory) if os.path.isdir(directory) else []
    state_path = os.path.join(directory, "checkpoint")
    state = None
    if numbers and os.path.exists(state_path):
        state = tf.train.get_checkpoint_state(directory)
        if state is None:
            _warn(f"{state_path} is unreadable; the checkpoints are found by "
                  "listing the directory instead")
    restored = None
    kept = []
    for number in reversed(numbers):
        prefix = os.path.join(directory, f"ckpt-{number}")
        if restored is None:
            reason = damage(prefix)
            if reason:
                where = _move_aside(directory, prefix)
                _warn(f"{reason}; falling back to an older checkpoint (the "
                      f"damaged files are moved to {where})")
                continue
            status = checkpoint.restore(prefix)
            (finish or (lambda s: s.expect_partial()))(status)
            restored = prefix
        kept.insert(0, os.path.basename(prefix))
    if numbers and restored is None:
        raise UsageError(
            f"every checkpoint in {directory} is damaged (see the warnings); "
            "move the directory away to start afresh, or use another "
            f"--model_dir. Received: checkpoints={numbers}")
    if restored is not None and (state is None or os.path.basename(
            state.model_checkpoint_path) != kept[-1]):
        _write_state(state_path, kept)
    manager = tf.train.CheckpointManager(checkpoint, directory,
                                         max_to_keep=max_to_keep)
    return manager, restored
