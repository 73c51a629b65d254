"""Temporary files of atomic writes: made beside their target, swept after a kill.

`outputs` writes every file under a temporary name in the target's directory
and renames it over the target. A run killed by `kill -9` (or a power cut)
between the two leaves the temporary behind; the next run that takes the
directory's lock (`run_lock`) sweeps them, since no live process can own one
then.
"""

import os
import re
import tempfile

# Suffixes of the temporaries: plain files, and the .keras files that
# `model.save` needs a .keras name for.
SUFFIXES = (".tmp", ".partial.keras")
# "." + target name + "." + mkstemp's 8 random characters + a suffix.
_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}(%s)$"
                   % "|".join(re.escape(suffix) for suffix in SUFFIXES))


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temporary_beside(path, suffix):
    """(fd, name) of a new temporary file next to `path`, mode 0666 & ~umask."""
    if suffix not in SUFFIXES:
        raise ValueError(f"suffix must be one of {SUFFIXES}. Received: {suffix!r}")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(path)}.", suffix=suffix)
    os.fchmod(fd, 0o666 & ~_current_umask())  # mkstemp makes it 0600.
    return fd, tmp


def is_temporary(name):
    """Whether a file name is one `temporary_beside` makes."""
    return bool(_NAME.match(name))


def sweep(directory):
    """Removes the temporaries under `directory` (recursively); returns their paths.

    Call it only while holding the directory's run lock.
    """
    removed = []
    for root, _, files in os.walk(directory):
        for name in files:
            if is_temporary(name):
                path = os.path.join(root, name)
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    continue
                removed.append(path)
    return sorted(removed)
