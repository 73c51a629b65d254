"""recipes/common/outputs.py: atomic writes, the umask, no NaN in JSON."""

import json
import os
import stat

import keras
import numpy as np
import pytest

from recipes.common import outputs


@pytest.fixture
def umask():
    """Sets a umask for the test; the old one is restored after it."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600),
                                        (0o002, 0o664)])
def test_outputs_honour_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    path = tmp_path / "metrics.json"
    outputs.write_json_atomically(str(path), {"accuracy": 0.9})
    assert stat.S_IMODE(path.stat().st_mode) == mode
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    outputs.save_model_atomically(model, str(tmp_path / "model.keras"))
    assert stat.S_IMODE((tmp_path / "model.keras").stat().st_mode) == mode
    assert sorted(os.listdir(tmp_path)) == ["metrics.json", "model.keras"]


def test_nan_is_never_written_and_the_old_file_stays(tmp_path):
    path = tmp_path / "metrics.json"
    outputs.write_json_atomically(str(path), {"loss": 0.5})
    with pytest.raises(ValueError):
        outputs.write_json_atomically(str(path), {"loss": float("nan")})
    assert json.loads(path.read_text()) == {"loss": 0.5}
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.layers[0].kernel.assign(np.full((2, 1), np.inf, np.float32))
    with pytest.raises(FloatingPointError, match="NaN or infinite"):
        outputs.save_model_atomically(model, str(tmp_path / "model.keras"))
    assert os.listdir(tmp_path) == ["metrics.json"]
