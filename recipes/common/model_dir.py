"""Checks that --model_dir can hold a run, before anything is read or written."""

import os
import tempfile

from recipes.common.errors import UsageError


def check_model_dir(model_dir):
    """Raises UsageError unless `model_dir` is, or can become, a writable directory.

    Writability is probed with a temporary file that is removed at once
    (permission bits alone say nothing for root or a read-only mount).
    """
    if not model_dir:
        raise UsageError("--model_dir must name a directory. Received: model_dir=''")
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise UsageError(
            "--model_dir must be a directory, but it is a file. "
            f"Received: model_dir={model_dir!r}")
    existing = os.path.abspath(model_dir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    try:
        if not os.path.isdir(existing):
            raise NotADirectoryError(existing)
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".write_probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        where = ("" if existing == os.path.abspath(model_dir)
                 else f" (it would be created in {existing})")
        raise UsageError(
            f"--model_dir must be a writable directory{where}, but writing "
            f"there fails: {error.strerror or error}. "
            f"Received: model_dir={model_dir!r}") from None
