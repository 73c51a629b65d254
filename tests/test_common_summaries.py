"""recipes.common.summaries: the records TensorBoard reads, by tag and step."""

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
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), np.uint8)
    rgba = np.random.default_rng(1).integers(0, 256, (2, 3, 4), np.uint8)
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        summaries.write_scalar("train/loss", np.float64(0.25), step=3)
        summaries.write_text("config", "| a | b |", step=0)
        summaries.write_png("plot", tf.io.encode_png(pixels).numpy(), step=1)
        summaries.write_png("rgba", tf.io.encode_png(rgba), step=2)
    writer.close()
    records = {tag: rest for tag, *rest in _records(str(tmp_path))}
    assert sorted(records) == ["config", "plot", "rgba", "train/loss"]
    plugin, step, value = records["train/loss"]
    assert (plugin, step, value.dtype, float(value)) == ("scalars", 3, np.float32, 0.25)
    plugin, step, value = records["config"]
    assert (plugin, step, value.item()) == ("text", 0, b"| a | b |")
    # The image plugin's layout: width, height, then one PNG per image.
    for tag, step, expected in (("plot", 1, pixels), ("rgba", 2, rgba)):
        plugin, written_step, value = records[tag]
        assert (plugin, written_step, len(value)) == ("images", step, 3)
        height, width = expected.shape[:2]
        assert list(value[:2]) == [str(width).encode(), str(height).encode()]
        np.testing.assert_array_equal(tf.io.decode_png(value[2]).numpy(), expected)
