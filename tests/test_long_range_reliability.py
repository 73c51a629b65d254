"""long_range never loses work: faults injected into real runs.

A diverging pair, a damaged checkpoint, a concurrent start, SIGTERM and
SIGINT, and a resume with fewer --train_steps; see docs/reliability.md.
"""

import dataclasses
import json
import re
import signal

import numpy as np
import pytest

import recipe_process
from recipes.common.checkpoints import damage
from recipes.common.errors import UsageError
from recipes.long_range import config as config_lib
from recipes.long_range import train

MODULE = "recipes.long_range"
TINY = ["--lengths=4", "--models=lstm", "--units=4", "--batch_size=8",
        "--eval_examples=16", "--gradient_examples=4", "--log_every=2",
        "--nojit_compile", "--nogate_heatmaps"]


def _config(**changes):
    return dataclasses.replace(config_lib.debug_config(), lengths=(4,),
                               models=("lstm",), gate_heatmaps=False, **changes)


def test_a_diverging_pair_is_neither_saved_nor_recorded(tmp_path):
    model_dir = tmp_path / "run"
    result = recipe_process.run(MODULE, f"--model_dir={model_dir}", *TINY,
                                "--train_steps=6", "--eval_every=1",
                                "--learning_rate=1e38")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert re.search(r"error: T=4 lstm: the (training loss|weights|validation "
                     r"MSE) became .* stopped without saving or recording",
                     result.stderr)
    assert not (model_dir / "results.json").exists()
    assert not (model_dir / "metrics.json").exists()
    prefixes = [str(p)[:-len(".index")] for p in
                (model_dir / "T4" / "lstm" / "checkpoints").glob("*.index")]
    assert all(damage(p) is None for p in prefixes)  # Only finite ones.
    # The advised rerun, a lower learning rate in a new model_dir, works.
    metrics = train.train_and_evaluate(_config(), str(tmp_path / "new"))
    assert np.isfinite(metrics["test_mse"]["4"]["lstm"])


def test_a_damaged_checkpoint_falls_back_and_fewer_steps_are_refused(
        tmp_path, capfd):
    model_dir = tmp_path / "run"
    train.train_and_evaluate(_config(train_steps=6, eval_every=3), str(model_dir))
    checkpoints = model_dir / "T4" / "lstm" / "checkpoints"
    data = checkpoints / "ckpt-6.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:50])
    with pytest.raises(UsageError, match=r"already trained 6 steps, more than "
                       r"--train_steps.*Received: train_steps=5"):
        train.train_and_evaluate(_config(train_steps=5, eval_every=3),
                                 str(model_dir))
    capfd.readouterr()
    metrics = train.train_and_evaluate(_config(train_steps=9, eval_every=3),
                                       str(model_dir))
    out, err = capfd.readouterr()
    assert f"{data} is damaged, truncated or incomplete" in err
    assert "T=4 lstm: resumed from step 3" in out
    assert metrics["train_steps"]["4"]["lstm"] == 9
    history = json.loads((model_dir / "T4" / "lstm" / "history.json").read_text())
    assert [row["step"] for row in history] == [3, 6, 9]


def test_a_second_run_on_the_same_model_dir_is_refused(tmp_path):
    model_dir = tmp_path / "run"
    flags = [f"--model_dir={model_dir}", *TINY, "--train_steps=100000000",
             "--eval_every=100000000"]
    status, stderr = recipe_process.check_second_run_refused(
        MODULE, flags, model_dir, signal.SIGTERM)
    assert status == 143, stderr[-3000:]


@pytest.mark.parametrize("signum, status", [
    (signal.SIGTERM, 143),
    pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow)])
def test_a_signal_saves_the_pair_and_exits_cleanly(tmp_path, signum, status):
    model_dir = tmp_path / "run"
    flags = [f"--model_dir={model_dir}", *TINY, "--eval_every=100000000"]
    returncode, stderr = recipe_process.signal_run(
        MODULE, [*flags, "--train_steps=100000000"], model_dir, signum)
    assert returncode == status, stderr[-3000:]
    name = signal.Signals(signum).name
    assert f"{name}: T=4 lstm saved a checkpoint at step " in stderr
    step = int(stderr.split("saved a checkpoint at step ")[1].split(";")[0])
    assert not (model_dir / "results.json").exists()  # Not recorded as finished.
    resumed = recipe_process.run(MODULE, *flags, f"--train_steps={step + 3}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"T=4 lstm: resumed from step {step}" in resumed.stdout
    results = json.loads((model_dir / "results.json").read_text())
    assert results["runs"]["4"]["lstm"]["steps"] == step + 3
