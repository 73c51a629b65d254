"""One run per --model_dir: a lock file naming the process that holds it.

`model_dir/.lock` holds the PID and host of the run that owns the directory
and is locked with `flock` while that run lives. The kernel drops the flock
when the process dies, even by `kill -9`, so a lock left behind by a dead
run is recognised as stale and taken over (with a warning). A second run
started on the same directory is refused with a message naming the first.
The run that takes the lock sweeps the temporaries of atomic writes that a
killed run left (`temporaries.sweep`).

In a multi-worker run (TF_CONFIG) only the chief takes the lock: the other
workers share the chief's --model_dir but write nothing of their own there.
"""

import contextlib
import fcntl
import json
import os
import socket
import sys

from recipes.common import temporaries
from recipes.common.errors import UsageError

LOCK_FILE = ".lock"


def is_chief_task():
    """Whether TF_CONFIG (if set) makes this process the chief (or worker 0)."""
    try:
        tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except ValueError:
        return True
    task = tf_config.get("task") or {}
    kind, index = task.get("type"), task.get("index", 0)
    if not kind:
        return True
    if kind == "chief":
        return True
    has_chief = "chief" in (tf_config.get("cluster") or {})
    return kind == "worker" and int(index) == 0 and not has_chief


def _holder(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def run_lock(model_dir):
    """Holds the lock of `model_dir` (created if needed) for the `with` body.

    Raises:
        UsageError: another live run holds the lock.
    """
    if not is_chief_task():
        yield
        return
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(path)
            raise UsageError(
                f"another run is using --model_dir (process {holder.get('pid', '?')}"
                f" on host {holder.get('host', '?')} holds {path}); wait for it to "
                f"end or use another --model_dir. Received: model_dir={model_dir!r}"
            ) from None
        old = _holder(path)
        if old:
            print(f"warning: {path} was left by process {old.get('pid')} on host "
                  f"{old.get('host')}, which no longer runs; taking it over",
                  file=sys.stderr, flush=True)
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, me.encode(), 0)
        os.fsync(fd)
        # The lock is ours: temporaries of atomic writes in model_dir belong
        # to a run that was killed between writing and renaming.
        for leftover in temporaries.sweep(model_dir):
            print(f"note: removed {leftover}, left by a run that was killed "
                  "while writing it", file=sys.stderr, flush=True)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # Released: an empty lock file is no warning.
    finally:
        os.close(fd)  # Drops the flock.
