"""TensorBoard summaries the recipes write, through `tf.summary`.

Thin wrappers so that every recipe logs scalars, text and PNG plots the same
way (`write_png` takes the encoded file a plotting library saves). Each
writes to the default `tf.summary` writer; `tensorboard --logdir=<model_dir>`
shows them.
"""

import tensorflow as tf


def write_scalar(tag, value, step):
    """A float32 scalar on the Scalars dashboard."""
    return tf.summary.scalar(tag, tf.cast(value, tf.float32), step=step)


def write_text(tag, text, step):
    """Markdown text on the Text dashboard."""
    return tf.summary.text(tag, text, step=step)


def write_png(tag, png_bytes, step):
    """An encoded PNG (RGB or RGBA) on the Images dashboard."""
    image = tf.io.decode_png(png_bytes, dtype=tf.uint8)  # (H, W, C)
    return tf.summary.image(tag, image[tf.newaxis], step=step, max_outputs=1)
