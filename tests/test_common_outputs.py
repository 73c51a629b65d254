"""recipes/common/outputs.py: atomic writes, the umask, no NaN in JSON, and
the sweep of temporaries a killed run left (temporaries.py, run_lock.py)."""

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


def test_the_next_run_sweeps_temporaries_a_killed_run_left(tmp_path):
    """A process killed (SIGKILL) between writing a temporary and renaming it
    leaves the temporary; the next run that takes the lock removes it and
    only it."""
    import subprocess
    import sys

    model_dir = tmp_path / "run"
    (model_dir / "checkpoints").mkdir(parents=True)
    (model_dir / "metrics.json").write_text("{}")
    keep = [model_dir / "notes.tmp", model_dir / ".hidden.txt",
            model_dir / "model.keras.partial.keras"]
    for path in keep:
        path.write_text("the user's")
    script = (
        "import os, signal, sys\n"
        "from recipes.common import temporaries\n"
        "for target in sys.argv[1:]:\n"
        "    for suffix in temporaries.SUFFIXES:\n"
        "        fd, _ = temporaries.temporary_beside(target, suffix)\n"
        "        os.write(fd, b'half written')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    targets = [str(model_dir / "model.keras"), str(model_dir / "checkpoints" / "epoch_001.keras")]
    killed = subprocess.run([sys.executable, "-c", script, *targets],
                            cwd=os.path.dirname(os.path.dirname(__file__)),
                            capture_output=True)
    assert killed.returncode == -9
    left = sorted(str(p) for p in model_dir.rglob(".*") if p.is_file()
                  and p not in keep)
    assert len(left) == 4

    swept = subprocess.run(
        [sys.executable, "-c",
         "import sys\nfrom recipes.common.run_lock import run_lock\n"
         "with run_lock(sys.argv[1]):\n    pass\n", str(model_dir)],
        cwd=os.path.dirname(os.path.dirname(__file__)),
        capture_output=True, text=True, check=True)
    for path in left:
        assert not os.path.exists(path)
        assert f"removed {path}" in swept.stderr
    for path in keep + [model_dir / "metrics.json"]:
        assert path.read_text() in ("the user's", "{}")
