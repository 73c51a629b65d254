"""SIGINT and SIGTERM turned into a request to stop at the next safe point.

Schedulers and Kubernetes send SIGTERM before they preempt a job; a user
presses Ctrl-C (SIGINT). Inside `stop_requests()` neither kills the process:
the first one is recorded, and the training loop, which checks between
steps, saves a checkpoint and leaves. A second SIGINT stops at once
(KeyboardInterrupt), for a user who does not want to wait.

The exit status says which signal stopped the run, as a shell reports a
process killed by it: 130 (128 + SIGINT) and 143 (128 + SIGTERM). Both are
non-zero because the run is not finished: a Kubernetes Job restarts the pod,
and rerunning the same command resumes from the checkpoint.
"""

import contextlib
import signal
import sys
import threading

EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


class StopRequest:
    """The signal received so far (`signum`, or None); true once one came."""

    def __init__(self):
        self.signum = None

    def __bool__(self):
        return self.signum is not None

    @property
    def name(self):
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_status(self):
        return EXIT_STATUS.get(self.signum, 1)


@contextlib.contextmanager
def stop_requests():
    """Defers SIGINT and SIGTERM to the loop's next check; yields a StopRequest.

    Outside the main thread (where Python cannot install handlers) the
    request never fires and the signals keep their usual effect.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum, frame):
        if request and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not request:
            request.signum = signum
            print(f"\n{signal.Signals(signum).name}: saving and stopping after "
                  "this step" + (" (press Ctrl-C again to stop now)"
                                 if signum == signal.SIGINT else ""),
                  file=sys.stderr, flush=True)

    previous = {sig: signal.signal(sig, handler) for sig in EXIT_STATUS}
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class Stopped(Exception):
    """Training stopped on a signal after saving; `status` is the exit status."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status
