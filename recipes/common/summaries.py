"""TensorBoard records written with core TensorFlow alone.

`tf.summary.scalar`, `.text` and `.image` need the separate tensorboard
package, which TensorFlow no longer installs. These write the same records
(the tensor and the plugin name TensorBoard's dashboards look for) through
`tf.summary.write`, so a recipe logs whether or not tensorboard is installed;
`tensorboard --logdir=<model_dir>` shows them as usual.
"""

import tensorflow as tf
from tensorflow.core.framework import summary_pb2


def _metadata(plugin_name):
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = plugin_name
    return metadata


def write_scalar(tag, value, step):
    """A float32 scalar on the Scalars dashboard (default writer)."""
    tensor = tf.cast(value, tf.float32)
    return tf.summary.write(tag, tensor, step=step, metadata=_metadata("scalars"))


def write_text(tag, text, step):
    """Markdown text on the Text dashboard (default writer)."""
    tensor = tf.convert_to_tensor(text, tf.string)
    return tf.summary.write(tag, tensor, step=step, metadata=_metadata("text"))


def write_png(tag, png_bytes, step):
    """An encoded PNG on the Images dashboard (default writer).

    The image plugin's tensor is [width, height, png, ...] as strings.
    """
    png_bytes = tf.convert_to_tensor(png_bytes, tf.string)
    height, width = tf.unstack(tf.shape(tf.io.decode_png(png_bytes))[:2])
    tensor = tf.stack([tf.as_string(width), tf.as_string(height), png_bytes])
    return tf.summary.write(tag, tensor, step=step, metadata=_metadata("images"))
