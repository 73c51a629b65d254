"""A run's settings, saved in model_dir/config.json and compared on resume.

Resuming with other settings would silently make a hybrid run (a model
trained half with one learning rate or sequence length and half with
another), or fail later with a raw shape error. So each recipe saves its
settings when the run starts and, when it resumes, refuses every change
except those it names as safe, with a message that lists them.
"""

import os

from recipes.common.errors import UsageError
from recipes.common.outputs import read_json
from recipes.common.outputs import write_json_atomically

CONFIG_FILE = "config.json"
CHANGES_FILE = "config_changes.json"


def saved_config(model_dir):
    """The settings saved in model_dir/config.json, or None if there are none."""
    return read_json(os.path.join(model_dir, CONFIG_FILE), default=None)


def changes(saved, current):
    """{name: (saved value, current value)} of the settings that differ."""
    return {name: (saved.get(name), current.get(name))
            for name in sorted(set(saved) | set(current))
            if saved.get(name) != current.get(name)}


def refuse_changes(saved, current, may_change):
    """Raises UsageError naming every changed setting not in `may_change`."""
    refused = {name: values for name, values in changes(saved, current).items()
               if name not in may_change}
    if refused:
        raise UsageError(
            "--model_dir already holds a run with other settings, which its "
            "checkpoints would not fit; use a new --model_dir or the same "
            "flags. Received: " + ", ".join(
                f"{name}={new!r} (saved: {old!r})"
                for name, (old, new) in refused.items()))


def save_config(out_dir, model_dir, current, step):
    """Writes config.json; on a resume with allowed changes, records them.

    model_dir/config_changes.json lists, for every resume that changed a
    setting, the step it resumed at and each setting's old and new value.
    """
    saved = saved_config(model_dir)
    if saved == current:
        return
    if saved is not None:
        path = os.path.join(model_dir, CHANGES_FILE)
        recorded = read_json(path, default=[])
        recorded.append({"step": step, "changed": {
            name: {"saved": old, "now": new}
            for name, (old, new) in changes(saved, current).items()}})
        write_json_atomically(os.path.join(out_dir, CHANGES_FILE), recorded)
    write_json_atomically(os.path.join(out_dir, CONFIG_FILE), current)
