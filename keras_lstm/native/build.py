"""Builds, checks and loads keras_lstm's C++ ops (`lstm_ops.cc`), once per machine.

The library is built on first use, once per machine, compiler and TensorFlow
version, with TensorFlow's own compile and link flags (`tf.sysconfig`), and
cached in ``$KERAS_LSTM_CACHE_DIR`` (default ``~/.cache/keras_lstm``). The
compiler is ``$CXX``, else g++ or c++. `keras_lstm.native.flags` lists the
-march flag sets tried in order until one compiles; a JSON record beside the
library says which one did and holds the library's SHA-256, checked before
every load (the cache is user-writable: a damaged or replaced file is
rebuilt, never loaded). A build that fails with every flag set is recorded
under the same key, so later processes do not compile again; ``python -m
keras_lstm.native build --force`` retries, ``info`` says what happened.
Without the ops, `keras_lstm.fused` keeps its XLA loops, which compute the
same thing. ``KERAS_LSTM_NATIVE=0`` turns the ops off.
"""

import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import warnings

import tensorflow as tf

from keras_lstm.native import flags as build_flags

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lstm_ops.cc")
DISABLE_VARIABLE = "KERAS_LSTM_NATIVE"
CACHE_VARIABLE = "KERAS_LSTM_CACHE_DIR"
REQUIRE_VARIABLE = "KERAS_LSTM_REQUIRE_NATIVE"
"""Set to 1 (as CI does) to make the tests fail, not skip, without the ops."""

# Changes whenever the way the library is built changes, so that records of
# earlier builds (and failures) no longer match.
_BUILD_SCHEME = "flag-chain-1"


class BuildError(RuntimeError):
    """The C++ ops could not be compiled or loaded."""


def enabled():
    """False when the user turned the ops off with KERAS_LSTM_NATIVE=0."""
    return os.environ.get(DISABLE_VARIABLE, "1").strip().lower() not in (
        "0", "false", "no", "off",
    )


def required():
    """True when KERAS_LSTM_REQUIRE_NATIVE asks that missing ops be an error."""
    return os.environ.get(REQUIRE_VARIABLE, "0").strip().lower() in (
        "1", "true", "yes", "on",
    )


def compiler():
    """The C++ compiler to use: $CXX, else g++ or c++ on PATH, else None."""
    for name in (os.environ.get("CXX"), "g++", "c++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cpu_signature():
    """What -march=native depends on: the machine, CPU model and features."""
    lines = [
        line for line in build_flags.read_cpuinfo().splitlines()
        if line.split(":")[0].strip() in ("model name", "flags", "Features")
    ]
    return platform.machine() + "".join(sorted(set(lines)))


def compile_command(compiler_path, output, march_flags=("-march=native",)):
    """The compiler invocation that builds SOURCE into the shared library `output`."""
    return [
        compiler_path, "-O3", *march_flags, "-shared", "-fPIC", "-w",
        *tf.sysconfig.get_compile_flags(), SOURCE, "-o", output,
        *tf.sysconfig.get_link_flags(),
    ]


def cache_dir():
    """Where built libraries and their records live."""
    return os.environ.get(CACHE_VARIABLE) or os.path.join(
        os.path.expanduser("~"), ".cache", "keras_lstm"
    )


def library_path(compiler_path):
    """Where the library built from this source, TF, compiler and CPU is cached."""
    digest = hashlib.sha256()
    with open(SOURCE, "rb") as source:
        digest.update(source.read())
    # The flag sets this machine would try are part of the key: a library
    # built by an older chain (say, one that fell back to x86-64-v3 because
    # it missed a feature) is rebuilt once the chain would try otherwise.
    for part in (_BUILD_SCHEME, tf.__version__, compiler_path, _cpu_signature(),
                 repr(build_flags.flag_sets()),
                 *tf.sysconfig.get_compile_flags()):
        digest.update(part.encode())
    return os.path.join(cache_dir(), f"lstm_ops_{digest.hexdigest()[:16]}.so")


def record_path(library):
    """The JSON record of a successful build: flag set and SHA-256."""
    return library + ".json"


def failure_path(library):
    """The JSON record of a build that failed with every flag set."""
    return library[: -len(".so")] + ".failed.json"


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path):
    """The JSON object in `path`, or None if missing or unreadable."""
    try:
        with open(path) as file:
            value = json.load(file)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _write_json(path, value):
    """Writes `value` to `path` atomically (a temporary file, then rename)."""
    handle, partial = tempfile.mkstemp(suffix=".json", dir=os.path.dirname(path))
    with os.fdopen(handle, "w") as file:
        json.dump(value, file, indent=1)
    os.replace(partial, path)


def compile_library(compiler_path, path, march_flags=("-march=native",)):
    """Compiles SOURCE to `path` (atomically: a failed build leaves nothing)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handle, partial = tempfile.mkstemp(suffix=".so", dir=os.path.dirname(path))
    os.close(handle)
    try:
        result = subprocess.run(
            compile_command(compiler_path, partial, march_flags),
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise BuildError(
                f"{compiler_path} {' '.join(march_flags)} exited with "
                f"{result.returncode}:\n" + result.stderr[-2000:]
            )
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def build(compiler_path, path, flag_sets=None):
    """Compiles with each flag set in turn until one works; records the outcome.

    Returns the record written beside the library. Raises BuildError (and
    records the failure, so later processes skip the compile) when every flag
    set fails.
    """
    flag_sets = build_flags.flag_sets() if flag_sets is None else flag_sets
    print(
        "keras_lstm: compiling its C++ LSTM ops (once per machine, about a "
        f"minute) into {path}", file=sys.stderr, flush=True,
    )
    attempts = []
    for name, march_flags in flag_sets:
        try:
            compile_library(compiler_path, path, march_flags)
        except (BuildError, OSError) as error:
            attempts.append({"flag_set": name, "flags": march_flags,
                             "error": str(error)})
            continue
        record = {
            "flag_set": name, "flags": march_flags, "compiler": compiler_path,
            "sha256": file_sha256(path), "failed_attempts": attempts,
        }
        _write_json(record_path(path), record)
        if attempts:
            print(_fallback_message(record), file=sys.stderr, flush=True)
        if os.path.exists(failure_path(path)):
            os.remove(failure_path(path))
        return record
    failure = {"compiler": compiler_path, "failed_attempts": attempts}
    _write_json(failure_path(path), failure)
    raise BuildError(_failure_message(failure, path))


def first_error_line(error):
    """The compiler's first "error:" line in a BuildError's text, else its first line."""
    lines = error.splitlines()
    return next((line.strip() for line in lines if "error:" in line),
                lines[0] if lines else "")


def _fallback_message(record):
    """Says which flag sets failed before the one that built, and why, since a
    fallback from "native" can cost the loops their widest vector instructions."""
    failed = "; ".join(
        f"'{attempt['flag_set']}' ({' '.join(attempt['flags']) or 'no flags'}): "
        f"{first_error_line(attempt['error'])}"
        for attempt in record["failed_attempts"]
    )
    return (
        f"keras_lstm: built with flag set '{record['flag_set']}' "
        f"({' '.join(record['flags']) or 'no flags'}) after {failed}. The ops "
        "work but may be slower than a native build; `python -m "
        "keras_lstm.native info` shows the whole error."
    )


def _failure_message(failure, path):
    last = failure["failed_attempts"][-1]["error"] if failure[
        "failed_attempts"] else "no flag set was tried"
    tried = ", ".join(a["flag_set"] for a in failure["failed_attempts"])
    return (
        f"building them failed with every flag set ({tried}); recorded in "
        f"{failure_path(path)} so that later processes do not compile again "
        "(retry with `python -m keras_lstm.native build --force`). Last "
        f"error: {last}"
    )


def intact(path):
    """Whether the cached library exists and matches its recorded SHA-256."""
    record = read_json(record_path(path))
    return (
        os.path.exists(path) and record is not None
        and record.get("sha256") == file_sha256(path)
    )


def ensure_built(force=False):
    """Builds the library if it is missing, damaged or `force`; returns its path.

    Raises BuildError without compiling when an earlier build with this key
    failed (unless `force`), or when there is no compiler.
    """
    compiler_path = compiler()
    if compiler_path is None:
        raise BuildError("no C++ compiler (set $CXX or install g++)")
    path = library_path(compiler_path)
    if force:
        for stale in (path, record_path(path), failure_path(path)):
            if os.path.exists(stale):
                os.remove(stale)
    failure = read_json(failure_path(path))
    if failure is not None:
        raise BuildError(_failure_message(failure, path))
    if not intact(path):
        if os.path.exists(path):
            warnings.warn(
                f"keras_lstm: the cached C++ ops {path} do not match the "
                "SHA-256 recorded when they were built; rebuilding them.",
                stacklevel=3,
            )
        build(compiler_path, path)
    return path


def load(path):
    """Loads the library after checking it against its record."""
    if not intact(path):
        raise BuildError(f"{path} does not match its recorded SHA-256")
    return tf.load_op_library(path)


@functools.lru_cache(maxsize=None)
def ops():
    """The loaded op module, building it if needed; None if unavailable."""
    if not enabled():
        return None
    try:
        return load(ensure_built())
    except (BuildError, OSError, tf.errors.OpError) as error:
        warnings.warn(
            "keras_lstm: the C++ LSTM ops are unavailable, the fused path "
            f"uses its XLA loops instead (same results, slower on CPU). "
            f"Reason: {error}",
            stacklevel=2,
        )
        return None


def available():
    """Whether the ops load here (building them on the first call)."""
    return ops() is not None
