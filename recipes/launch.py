"""Starts a multi-worker run on this machine: one process per worker.

    python -m recipes.launch --workers=2 -- \\
        python -m recipes.char_lm --strategy=multi_worker --model_dir=/tmp/lm ...

Every worker runs the same command with its own `TF_CONFIG` (a cluster of
`localhost` ports picked free here), as a cluster scheduler would start it on
separate hosts. Worker 0 is the chief: its output is shown; the others write
to worker_N.log in --worker_logs. SIGINT, SIGTERM and SIGHUP are forwarded to
every worker. If a worker fails, the others are stopped (SIGTERM, then
SIGKILL after --grace_seconds) and the launcher exits with the failing
worker's status (128 + N for a worker killed by signal N, as a shell
reports it). Rerun the same command to resume from the last checkpoint.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

flags.DEFINE_integer("workers", 2, "Number of worker processes.", lower_bound=1)
flags.DEFINE_string("worker_logs", "", "Where workers 1..N-1 write worker_N.log "
                    "(empty: a new temporary directory).")
flags.DEFINE_float("grace_seconds", 10.0, "After a failure, how long the other "
                   "workers get to exit on SIGTERM before SIGKILL.", lower_bound=0.0)
FLAGS = flags.FLAGS

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_POLL_SECONDS = 0.1
_LOG_TAIL_LINES = 30


def free_ports(count):
    """`count` distinct TCP ports free on localhost right now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("localhost", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports, index):
    """The TF_CONFIG of worker `index` in a cluster of localhost `ports`."""
    return json.dumps({
        "cluster": {"worker": [f"localhost:{port}" for port in ports]},
        "task": {"type": "worker", "index": index},
    })


def check_command(command):
    """Raises app.UsageError unless `command` is a multi-worker run."""
    if not command:
        raise app.UsageError(
            "give the command each worker runs after `--`, e.g. `python -m "
            "recipes.launch --workers=2 -- python -m recipes.char_lm "
            "--strategy=multi_worker --model_dir=DIR`. Received: no command")
    given = " ".join(command)
    if "--strategy=multi_worker" not in command and not any(
            a == "--strategy" and b == "multi_worker"
            for a, b in zip(command, command[1:])):
        raise app.UsageError(
            "the command must train with --strategy=multi_worker; otherwise "
            "every worker trains alone and they overwrite each other's "
            f"--model_dir. Received: {given}")


def _exit_status(returncode):
    """A Popen return code as a shell exit status (signal N -> 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


def _die_with_parent():
    """In the child: get SIGTERM if the launcher dies (Linux), so that no
    worker is left waiting for its peers."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Cluster:
    """The worker processes of one launch."""

    def __init__(self, command, workers, log_dir):
        ports = free_ports(workers)
        self.log_dir = log_dir
        self.signalled = False
        self.processes = []
        for index in range(workers):
            env = {**os.environ, "TF_CONFIG": tf_config(ports, index)}
            output = None  # The chief's output goes to the launcher's.
            if index:
                output = open(self.log_path(index), "w")
            # A session of their own: a Ctrl-C in the terminal reaches the
            # launcher only, which forwards it once.
            self.processes.append(subprocess.Popen(
                command, env=env, stdout=output, stderr=output,
                start_new_session=True, preexec_fn=_die_with_parent))
            if output is not None:
                output.close()

    def log_path(self, index):
        return os.path.join(self.log_dir, f"worker_{index}.log")

    def forward(self, signum, frame=None):
        """Signal handler: passes `signum` on to every worker, which stop
        together (see `recipes.common.workers.make_stop_agreement`)."""
        del frame
        self.signalled = True
        self.send(signum)

    def send(self, signum):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signum)

    def stop(self, grace_seconds):
        """SIGTERM to the workers still running, SIGKILL after the grace period."""
        self.send(signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline and any(
                p.poll() is None for p in self.processes):
            time.sleep(_POLL_SECONDS)
        self.send(signal.SIGKILL)
        for process in self.processes:
            process.wait()

    def wait(self, grace_seconds):
        """Waits until all workers exit, or one fails; returns (index, code)
        of the first failure, or None.

        After a forwarded signal, the others get `grace_seconds` after the
        first one exits: each saves and exits on its own, and stopping one
        early could cut its save short.
        """
        first_failure = failed_at = None
        while True:
            codes = [p.poll() for p in self.processes]
            for index, code in enumerate(codes):
                if code and first_failure is None:
                    first_failure, failed_at = (index, code), time.monotonic()
            if None not in codes or first_failure and (
                    not self.signalled
                    or time.monotonic() > failed_at + grace_seconds):
                return first_failure
            time.sleep(_POLL_SECONDS)


def _show_log_tail(path):
    with open(path, errors="replace") as f:
        tail = f.readlines()[-_LOG_TAIL_LINES:]
    print(f"--- last lines of {path} ---", file=sys.stderr)
    sys.stderr.writelines(tail)


def main(argv):
    command = argv[1:]
    check_command(command)
    log_dir = FLAGS.worker_logs or tempfile.mkdtemp(prefix="keras_lstm_launch_")
    os.makedirs(log_dir, exist_ok=True)
    cluster = Cluster(command, FLAGS.workers, log_dir)
    pids = ", ".join(f"worker {i}: pid {p.pid}" for i, p in enumerate(cluster.processes))
    print(f"launch: {FLAGS.workers} workers ({pids}); logs of workers 1+ in "
          f"{log_dir}", file=sys.stderr, flush=True)
    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, cluster.forward)
    failure = cluster.wait(FLAGS.grace_seconds)
    if failure is None:
        return 0
    index, code = failure
    status = _exit_status(code)
    print(f"launch: worker {index} exited with status {status}; stopping any "
          "others", file=sys.stderr, flush=True)
    cluster.stop(FLAGS.grace_seconds)
    if index:
        _show_log_tail(cluster.log_path(index))
    return status


if __name__ == "__main__":
    app.run(main)
