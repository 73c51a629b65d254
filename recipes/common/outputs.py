"""What a recipe writes to model_dir: metrics.json, the run's flags, safely."""

import json
import os
import tempfile

import tensorflow as tf

from recipes.common.summaries import write_text


def write_json_atomically(path, payload):
    """Writes `payload` as JSON to `path` via a temporary file and a rename.

    An interrupted write never leaves a truncated file behind.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_metrics(model_dir, metrics):
    """Writes the run's final figures to model_dir/metrics.json."""
    path = os.path.join(model_dir, "metrics.json")
    write_json_atomically(path, metrics)
    return path


def log_config_text(log_dir, config):
    """Logs the run's configuration as a Markdown table to TensorBoard text."""
    rows = ["| setting | value |", "|---|---|"]
    rows += [f"| {key} | `{value}` |" for key, value in sorted(config.items())]
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        write_text("config", "\n".join(rows), step=0)
    writer.flush()
    writer.close()
