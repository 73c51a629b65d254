"""What hardware TensorFlow sees, for the choice of implementation."""

import functools

import tensorflow as tf


@functools.lru_cache(maxsize=None)
def gpu_available():
    """Whether TensorFlow sees a GPU (cached: devices do not come and go)."""
    return bool(tf.config.list_logical_devices("GPU"))
