"""recipes.common.summaries: records TensorBoard reads, without tensorboard."""

import os

import numpy as np
import tensorflow as tf

from recipes.common import summaries


def _records(log_dir):
    """(tag, plugin name, step, value) of every summary in `log_dir`."""
    found = []
    for name in os.listdir(log_dir):
        for raw in tf.data.TFRecordDataset(os.path.join(log_dir, name)):
            event = tf.compat.v1.Event.FromString(raw.numpy())
            for value in event.summary.value:
                found.append((
                    value.tag,
                    value.metadata.plugin_data.plugin_name,
                    event.step,
                    tf.make_ndarray(value.tensor),
                ))
    return found


def test_scalar_text_and_png_records(tmp_path):
    png = tf.io.encode_png(np.zeros((5, 7, 3), np.uint8)).numpy()
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        summaries.write_scalar("train/loss", np.float64(0.25), step=3)
        summaries.write_text("config", "| a | b |", step=0)
        summaries.write_png("plot", png, step=1)
    writer.close()
    records = {tag: rest for tag, *rest in _records(str(tmp_path))}
    plugin, step, value = records["train/loss"]
    assert (plugin, step, value.dtype, float(value)) == ("scalars", 3, np.float32, 0.25)
    plugin, step, value = records["config"]
    assert (plugin, step, value.item()) == ("text", 0, b"| a | b |")
    plugin, step, value = records["plot"]
    # The image plugin's layout: width, height, then the encoded PNG.
    assert (plugin, step) == ("images", 1)
    assert list(value) == [b"7", b"5", png]
