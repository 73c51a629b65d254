"""What a recipe writes to model_dir: metrics.json, the run's flags, safely.

Every file a run leaves behind is written under a temporary name in the same
directory and renamed over the target, so a run killed at any moment (even by
`kill -9`) leaves either the old file or the new one, never a truncated one.
New files get the usual permissions (0666 minus the umask), as `open` gives.
Temporaries a killed run left are swept by the next run (`temporaries`).
"""

import json
import os

import tensorflow as tf

from recipes.common.errors import UsageError
from recipes.common.finite import require_finite_weights
from recipes.common.summaries import write_text
from recipes.common.temporaries import temporary_beside


def write_json_atomically(path, payload):
    """Writes `payload` as strict JSON to `path` via a temporary file and a rename.

    Raises:
        ValueError: `payload` holds NaN or infinity (not valid JSON); nothing
            is written then.
    """
    text = json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_bytes_atomically(path, text.encode("utf-8"))


def write_bytes_atomically(path, data):
    """Writes `data` to `path` via a temporary file and a rename."""
    fd, tmp = temporary_beside(path, ".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_model_atomically(model, path):
    """`model.save(path)` through a temporary .keras file and a rename.

    Refuses (FloatingPointError) a model with a NaN or infinite weight, so
    no non-finite model is ever exported.
    """
    require_finite_weights(model, path)
    fd, tmp = temporary_beside(path, ".partial.keras")
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path, default):
    """The JSON in `path`, or `default` if there is no such file.

    Raises:
        UsageError: the file exists but is not readable JSON; the message
            says to move it away rather than have it overwritten.
    """
    if not os.path.exists(path):
        return default
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise UsageError(
            f"{path} exists but cannot be read as JSON ({error}); move it away "
            f"to start afresh. Received: path={path!r}"
        ) from error


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
