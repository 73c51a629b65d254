"""Runs a recipe's entry point in a fresh process, to kill, signal or race it."""

import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)


def run(module, *args, timeout=300):
    """Runs `python -m module args...` to its end; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", module, *map(str, args)],
                          cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def run_code(code, *args, timeout=300):
    """Runs `python -c code args...` to its end (code may patch, then run_module)."""
    return subprocess.run([sys.executable, "-c", code, *map(str, args)],
                          cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def start(module, *args):
    """Starts `python -m module args...`; returns the Popen (pipes, text)."""
    return subprocess.Popen([sys.executable, "-m", module, *map(str, args)],
                            cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_lock(process, model_dir, timeout=240):
    """Waits until `process` holds model_dir's run lock (the run has begun)."""
    path = os.path.join(model_dir, ".lock")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        try:
            with open(path) as f:
                if json.load(f).get("pid") == process.pid:
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{process.args} never took the lock of {model_dir}")


def wait_for_file(process, path, timeout=240):
    """Waits until `path` exists while `process` runs."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, f"{path} never appeared"
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.2)


def check_second_run_refused(module, flags, model_dir, stop_signal):
    """Starts a run, checks a second one on model_dir is refused, stops the first.

    Returns the first run's (exit status, stderr) after `stop_signal`.
    """
    first = start(module, *flags)
    try:
        wait_for_lock(first, model_dir)
        second = run(module, *flags)
        assert second.returncode == 2, second.stderr[-3000:]
        assert f"another run is using --model_dir (process {first.pid}" in (
            second.stderr)
        assert "Traceback" not in second.stderr
        assert first.poll() is None  # The first run goes on.
    finally:
        first.send_signal(stop_signal)
        _, stderr = first.communicate(timeout=120)
    return first.returncode, stderr


_KILL_DURING_MODEL_SAVE = """
import os, runpy, signal, sys, zipfile
writestr = zipfile.ZipFile.writestr
def die_while_saving(self, name, *args, **kwargs):
    target = os.path.basename(str(self.filename))
    if "model.keras" in target and str(name).endswith(".weights.h5"):
        self.fp.flush()  # Config written, weights not yet: then kill -9.
        os.kill(os.getpid(), signal.SIGKILL)
    writestr(self, name, *args, **kwargs)
zipfile.ZipFile.writestr = die_while_saving
sys.argv = [sys.argv[1]] + sys.argv[2:]
runpy.run_module(sys.argv[0], run_name="__main__")
"""


def run_killed_during_model_save(module, *args):
    """Runs the recipe, killed (SIGKILL) halfway through writing model.keras."""
    return run_code(_KILL_DURING_MODEL_SAVE, module, *args)


_SIGNAL_AFTER_BATCH = """
import runpy, signal, sys
from recipes.imdb_sentiment import checkpoints
signum, after = int(sys.argv[1]), int(sys.argv[2])
original = checkpoints.EpochCheckpoint.on_train_batch_end
seen = []
def on_train_batch_end(self, batch, logs=None):
    seen.append(batch)
    if len(seen) == after:
        signal.raise_signal(signum)
    original(self, batch, logs)
checkpoints.EpochCheckpoint.on_train_batch_end = on_train_batch_end
sys.argv = [sys.argv[3]] + sys.argv[4:]
runpy.run_module(sys.argv[0], run_name="__main__")
"""


def imdb_signalled_command(signum, after, *args):
    """argv of `python -m recipes.imdb_sentiment args...` that sends itself
    `signum` at the end of its `after`-th training batch (counted in this
    process), before the recipe's own end-of-batch check: mid-epoch, always."""
    return [sys.executable, "-c", _SIGNAL_AFTER_BATCH, str(int(signum)),
            str(after), "recipes.imdb_sentiment", *map(str, args)]


def signal_run(module, flags, model_dir, signum):
    """Starts a run, sends `signum` once it holds the lock; returns (status, stderr).

    The stderr holds no traceback (checked here).
    """
    process = start(module, *flags)
    wait_for_lock(process, model_dir)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert "Traceback" not in stderr, stderr[-3000:]
    return process.returncode, stderr
