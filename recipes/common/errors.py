"""User-facing errors of the recipes and the entry-point wrapper that shows them.

A `UsageError` is a mistake in what the user gave (a missing file, an empty
split, an unreachable dataset): the recipe prints its message alone, without a
traceback, and exits with status 2 before any training starts.
"""

import contextlib
import sys


class UsageError(Exception):
    """Bad input from the user; the message says what was expected and given."""


def run_and_report(main_fn, argv):
    """Runs `main_fn(argv)`; a UsageError becomes one line on stderr, exit 2."""
    try:
        return main_fn(argv)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


@contextlib.contextmanager
def stop_statuses():
    """Turns how a run stopped early into one line on stderr and an exit status.

    A NaN or infinity (FloatingPointError): status 1. SIGINT or SIGTERM
    after saving (`signals.Stopped`): 130 or 143. A second Ctrl-C
    (KeyboardInterrupt): 130. No traceback in any case.
    """
    from recipes.common.signals import Stopped

    try:
        yield
    except FloatingPointError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
    except Stopped as stopped:
        print(str(stopped), file=sys.stderr, flush=True)
        sys.exit(stopped.status)
    except KeyboardInterrupt:
        sys.exit(130)
