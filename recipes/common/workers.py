"""Roles of the processes of a multi-worker run, and where each one writes.

Under `MultiWorkerMirroredStrategy` every worker runs the same program with
the same flags, `--model_dir` included. Only the chief writes the run's
files there; the others must still perform every save (saving can take part
in collective ops), so they write to a temporary directory of their own,
removed when the process ends. Everybody reads (resumes) from `--model_dir`.
"""

import atexit
import os
import re
import shutil
import tempfile

import tensorflow as tf

from recipes.common.errors import UsageError


def is_chief(strategy):
    """Whether this process writes the run's files (always, outside multi-worker).

    The chief is task "chief" if the cluster has one, else worker 0.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )


def task_name(strategy):
    """"worker_1", "chief_0", ...; "local" outside multi-worker."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return "local"
    return f"{resolver.task_type}_{resolver.task_id}"


def _remove_stale(prefix):
    """Removes temporary directories `prefix<pid>_*` whose process is gone
    (left by a worker killed with `kill -9`)."""
    root = tempfile.gettempdir()
    for name in os.listdir(root):
        match = re.fullmatch(re.escape(prefix) + r"(\d+)_\w+", name)
        if not match:
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        except OSError:
            pass  # Alive (or not ours to judge).


def output_dir(strategy, model_dir):
    """Where this process writes: model_dir, or a new temporary directory.

    A non-chief worker's temporary directory is removed when the process
    exits; one left by a worker killed with `kill -9` is removed by the next
    worker of the same task on this host.
    """
    if is_chief(strategy):
        return model_dir
    prefix = f"keras_lstm_{task_name(strategy)}_"
    _remove_stale(prefix)
    path = tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}_")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def every_replica(strategy, value):
    """Every replica's `value` (a number), in replica order; a collective op."""
    @tf.function
    def gather(value):
        per_replica = strategy.run(lambda: tf.reshape(value, [1]))
        return strategy.gather(per_replica, axis=0)

    return gather(tf.constant(value, tf.float64)).numpy().tolist()


def check_same_position(strategy, position, what, model_dir):
    """Raises UsageError unless every worker resumes from the same `position`.

    A worker that cannot see the chief's checkpoints (a per-host disk instead
    of a shared filesystem) would otherwise train out of step and hang.
    """
    if task_name(strategy) == "local":
        return
    positions = every_replica(strategy, position)
    lowest, highest = min(positions), max(positions)
    if highest != lowest:
        raise UsageError(
            f"the workers found different {what} to resume from in --model_dir "
            f"(from {lowest:g} to {highest:g}; this {task_name(strategy)}: "
            f"{position}): every worker must see the chief's checkpoints, so "
            f"--model_dir must be on a filesystem all workers share. "
            f"Received: model_dir={model_dir!r}"
        )


def make_stop_agreement(strategy):
    """Returns any_worker(flag) -> bool: whether any worker's flag is set.

    A worker asked to stop (Ctrl-C, SIGTERM) must stop at the same step as
    the others, or its final save would wait forever for their collective
    ops; every worker calls the function after every step. Outside
    multi-worker it just returns the flag.
    """
    if task_name(strategy) == "local":
        return bool

    @tf.function
    def how_many_set(flag):
        per_replica = strategy.run(lambda: tf.cast(flag, tf.int32))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return lambda flag: bool(how_many_set(tf.constant(bool(flag))))
