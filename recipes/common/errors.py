"""User-facing errors of the recipes and the entry-point wrapper that shows them.

A `UsageError` is a mistake in what the user gave (a missing file, an empty
split, an unreachable dataset): the recipe prints its message alone, without a
traceback, and exits with status 2 before any training starts.
"""

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
