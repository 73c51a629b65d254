"""Whether a TFDS dataset can be loaded without waiting on a dead network.

Offline, `tfds.load` retries its download for minutes before it fails. A
recipe calls `can_load` first and, when it says no, stops at once with its
own message naming its local-file flags. The network check is a DNS lookup
of TFDS's data host only (no connection is opened), cut short after a few
seconds: without a resolvable host no download can start. A host that
resolves but is blocked further on still leaves `tfds.load` to fail slowly.
"""

import socket
import threading

# Where TFDS fetches prepared data and dataset metadata from.
DATA_HOST = "storage.googleapis.com"
LOOKUP_TIMEOUT_SECONDS = 3.0


def is_prepared(name, data_dir=""):
    """Whether `name` is already prepared in `data_dir` (TFDS's default if "").

    An unknown name or any other builder error answers True, so that
    `tfds.load` runs and reports the problem in its own words.
    """
    import tensorflow_datasets as tfds  # Imported only when used: slow.

    try:
        return tfds.builder(name, data_dir=data_dir or None).is_prepared()
    except Exception:  # noqa: BLE001 - let tfds.load say what is wrong.
        return True


def host_resolves(host=DATA_HOST, timeout=LOOKUP_TIMEOUT_SECONDS):
    """Whether a DNS lookup of `host` succeeds within `timeout` seconds.

    `socket.getaddrinfo` takes no timeout, so it runs in a daemon thread
    that is abandoned (answer False) if it has not finished in time.
    """
    answers = []

    def lookup():
        try:
            socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
            answers.append(True)
        except (OSError, UnicodeError):
            answers.append(False)

    thread = threading.Thread(target=lookup, name="tfds-host-lookup",
                              daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answers and answers[0])


def can_load(name, data_dir="", host=DATA_HOST,
             timeout=LOOKUP_TIMEOUT_SECONDS):
    """Whether `tfds.load(name)` can run without waiting on a dead network.

    True when the dataset is prepared locally (no network needed) or when
    `host` resolves (a download can at least start).
    """
    return is_prepared(name, data_dir) or host_resolves(host, timeout)
