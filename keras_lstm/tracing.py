"""Whether the graph being traced may be saved, so must hold standard ops only.

The C++ ops (`keras_lstm.native`) exist only in a process that loaded them:
a SavedModel holding them cannot be loaded by TF Serving, by another
language, or by a Python process that has not imported keras_lstm. And the
XLA loops carry ``jit_compile``, which TF Serving's CPU build does not run by
default. So any graph that may be written to disk runs the fused path's
plain TensorFlow loops instead (same numbers, standard ops only).

A graph is treated as one that may be saved when it is traced

- by `tf.saved_model.save` (its save context), Keras's `model.export` /
  `ExportArchive`, or the TFLite converter (seen on the Python stack);
- inside `keras_lstm.portable_graphs()` (for code that traces a function
  itself and saves it later; ``portable_graphs(False)`` declares the
  opposite, for a user's own inference function that is never saved);
- for inference (``training`` false) by anything but Keras's own
  `fit`/`evaluate`/`predict` loops: a user's `tf.function(model)` is
  exactly what ends up in `tf.saved_model.save(module)`.

Graphs that compute gradients (training steps, custom training loops) and
Keras's predict/evaluate functions keep the fast C++ ops, as does eager code.
"""

import contextlib
import os
import sys
import threading

import tensorflow as tf
from tensorflow.python.saved_model import save_context

# Parts of file paths of the code that serializes graphs (any OS separator).
_SERIALIZERS = (
    "keras/src/export/",
    "keras/src/backend/tensorflow/export",
    "tensorflow/python/saved_model/",
    "tensorflow/lite/python/",
)
# Keras's training and inference loops: their graphs are never saved.
_KERAS_LOOPS = (
    "keras/src/backend/tensorflow/trainer.py",
    "keras/src/trainers/",
)

_scope = threading.local()


@contextlib.contextmanager
def portable_graphs(enabled=True):
    """Says whether graphs traced in this block may be saved.

    ``portable_graphs()`` (enabled): keras_lstm layers build standard ops
    only, e.g. for a training-mode function you trace now and save later:

    >>> with keras_lstm.portable_graphs():
    ...     concrete = tf.function(model).get_concrete_function(spec)

    ``portable_graphs(False)``: a promise that inference graphs traced in
    the block are never saved, so they may use the C++ ops (as Keras's
    `predict` does). Saving and export tracing stay portable regardless.
    """
    previous = getattr(_scope, "portable", None)
    _scope.portable = bool(enabled)
    try:
        yield
    finally:
        _scope.portable = previous


def _stack_has(parts):
    """Whether a frame on the Python stack runs code from a path in `parts`."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename.replace(os.sep, "/")
        if any(part in filename for part in parts):
            return True
        frame = frame.f_back
    return False


def graph_may_be_saved(training):
    """Whether ops built now must be standard TensorFlow ops (see module doc).

    Args:
        training: The layer's training argument (any value but False/None,
            a tensor included, counts as training).
    """
    if tf.executing_eagerly():
        return False
    if save_context.in_save_context() or _stack_has(_SERIALIZERS):
        return True
    declared = getattr(_scope, "portable", None)
    if declared is not None:
        return declared
    if training is not None and training is not False:
        return False
    return not _stack_has(_KERAS_LOOPS)
