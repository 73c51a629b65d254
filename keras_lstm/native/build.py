"""Builds and loads keras_lstm's C++ ops (`lstm_ops.cc`), once per machine.

The library is built on first use, once per machine and TensorFlow version,
with the system's C++ compiler and TensorFlow's own compile and link flags
(`tf.sysconfig`), then cached in ``$KERAS_LSTM_CACHE_DIR`` (default
``~/.cache/keras_lstm``). Without a compiler, or if the build fails, `ops()`
returns None, one warning says why, and `keras_lstm.fused` keeps its XLA
loops, which compute the same thing. ``KERAS_LSTM_NATIVE=0`` turns the ops
off.
"""

import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import warnings

import tensorflow as tf

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lstm_ops.cc")
DISABLE_VARIABLE = "KERAS_LSTM_NATIVE"
CACHE_VARIABLE = "KERAS_LSTM_CACHE_DIR"


class BuildError(RuntimeError):
    """The C++ ops could not be compiled or loaded."""


def enabled():
    """False when the user turned the ops off with KERAS_LSTM_NATIVE=0."""
    return os.environ.get(DISABLE_VARIABLE, "1").strip().lower() not in (
        "0", "false", "no", "off",
    )


def _compiler():
    """The C++ compiler to use: $CXX, else g++ or c++ on PATH, else None."""
    for name in (os.environ.get("CXX"), "g++", "c++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cpu_signature():
    """What -march=native depends on: the CPU model and its feature flags."""
    wanted = ("model name", "flags")
    lines = []
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.split(":")[0].strip() in wanted and line not in lines:
                    lines.append(line)
    except OSError:
        pass
    return platform.machine() + "".join(lines)


def compile_command(compiler, output):
    """The compiler invocation that builds SOURCE into the shared library `output`."""
    return [
        compiler, "-O3", "-march=native", "-shared", "-fPIC", "-w",
        *tf.sysconfig.get_compile_flags(), SOURCE, "-o", output,
        *tf.sysconfig.get_link_flags(),
    ]


def library_path(compiler):
    """Where the library built from this source, TF and CPU is cached."""
    digest = hashlib.sha256()
    with open(SOURCE, "rb") as source:
        digest.update(source.read())
    for part in (tf.__version__, compiler, _cpu_signature(),
                 *tf.sysconfig.get_compile_flags()):
        digest.update(part.encode())
    cache = os.environ.get(CACHE_VARIABLE) or os.path.join(
        os.path.expanduser("~"), ".cache", "keras_lstm"
    )
    return os.path.join(cache, f"lstm_ops_{digest.hexdigest()[:16]}.so")


def compile_library(compiler, path):
    """Compiles SOURCE to `path` (atomically: a failed build leaves nothing)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    print(
        "keras_lstm: compiling its C++ LSTM ops (once per machine, about a "
        f"minute) into {path}", file=sys.stderr, flush=True,
    )
    handle, partial = tempfile.mkstemp(
        suffix=".so", dir=os.path.dirname(path)
    )
    os.close(handle)
    try:
        result = subprocess.run(
            compile_command(compiler, partial), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise BuildError(
                f"{compiler} exited with {result.returncode}:\n"
                + result.stderr[-2000:]
            )
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


@functools.lru_cache(maxsize=None)
def ops():
    """The loaded op module, building it if needed; None if unavailable."""
    if not enabled():
        return None
    try:
        compiler = _compiler()
        if compiler is None:
            raise BuildError("no C++ compiler (set $CXX or install g++)")
        path = library_path(compiler)
        if not os.path.exists(path):
            compile_library(compiler, path)
        return tf.load_op_library(path)
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
