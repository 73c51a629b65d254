"""The fused path's time loops as compiled C++ TensorFlow ops (CPU, float32).

`lstm_ops.cc` holds two ops: the forward recurrence over time-major input
projections, and its backward walk. A step then costs one small matmul and
one pass of element-wise math; an XLA while-loop costs 60–95 µs more per step
at recipe sizes, which is most of an IMDB-sized step.

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


def build(compiler, path):
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
            build(compiler, path)
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


def _float_mask(mask):
    """bool (time, batch, 1) or None -> float (time, batch), or (0,) for none."""
    if mask is None:
        return tf.zeros([0], tf.float32)
    return tf.cast(mask[:, :, 0], tf.float32)


# The ops hand a step's matmul to TensorFlow's thread pool from this many
# multiply-adds on; below, one thread is as fast and leaves the other core to
# the projection of the next chunk (see keras_lstm.fused). Measured, training
# step x keras with 8 chunks, thread pool vs one thread: imdb (1 M per step)
# 1.16 vs 1.20, charlm (16.8 M) 1.60 vs 1.45.
THREADED_MIN_MACS = 1 << 21


def recurrence(zx, h0, c0, recurrent_kernel, mask=None, training=True):
    """The LSTM recurrence on the C++ ops, differentiable (float32, CPU).

    Args:
        zx: (time, batch, 4 * units) input projections with the bias added;
            time may be 0 (the states pass through).
        h0, c0: (batch, units) initial states.
        recurrent_kernel: (units, 4 * units).
        mask: None or bool (time, batch, 1); False keeps the states.
        training: Store cell states and gates for the backward pass. If
            False, a gradient, if asked for anyway, reruns the forward pass.

    Returns:
        hs (time, batch, units) the h after each step, h_last and c_last
        (batch, units) the final states. Gradients flow to zx, h0, c0 and
        recurrent_kernel; ``drecurrent_kernel`` is one matmul over all steps.
    """
    module = ops()
    float_mask = _float_mask(mask)

    def forward(args, store):
        return module.keras_lstm_forward(
            *args, float_mask, store_for_backward=store,
            threaded_min_macs=THREADED_MIN_MACS,
        )

    @tf.custom_gradient
    def core(zx, h0, c0, recurrent_kernel):
        # The ops are never differentiated by autodiff; the gradient is below.
        args = [tf.stop_gradient(t) for t in (zx, h0, c0, recurrent_kernel)]
        hs, h_last, c_last, cs, gates = forward(args, store=training)
        if training:
            args[0] = None  # The backward pass needs no zx: free it early.

        def grad(d_hs, dh_last, dc_last):
            saved_cs, saved_gates = cs, gates
            if not training:
                _, _, _, saved_cs, saved_gates = forward(args, store=True)
            d_zs, dh0, dc0 = module.keras_lstm_backward(
                d_hs, dh_last, dc_last, saved_cs, saved_gates, args[2],
                args[3], float_mask, threaded_min_macs=THREADED_MIN_MACS,
            )
            units = tf.shape(args[1])[-1]
            # h before each step: h0, then every h but the last.
            h_prev = tf.concat([args[1][None], hs], axis=0)[:-1]
            d_recurrent_kernel = tf.matmul(  # (U, T·B)·(T·B, 4U)
                tf.reshape(h_prev, [-1, units]),
                tf.reshape(d_zs, [-1, 4 * units]),
                transpose_a=True,
            )
            return d_zs, dh0, dc0, d_recurrent_kernel

        return (hs, h_last, c_last), grad

    return core(zx, h0, c0, recurrent_kernel)
