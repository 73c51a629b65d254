"""The command line: bad flags fail fast with a clear message, exit status 1/2."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*flags):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "recipes.long_range", *flags],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--lengths=50,1", "--lengths must be comma-separated integers >= 2"),
        ("--lengths=50,abc", "--lengths must be comma-separated integers >= 2"),
        ("--units=0", "--units must be >= 1"),
        ("--models=lstm,gru", "--models must be comma-separated names from "
         "lstm, simple_rnn, keras_lstm"),
        ("--lstm_bias=ones", "value should be one of <chrono|forget_one|zeros>"),
        ("--learning_rate=0", "--learning_rate must be > 0"),
        ("--max_minutes=-2", "--max_minutes must be >= 0"),
    ],
)
def test_bad_flag_is_named_and_nothing_is_written(tmp_path, flag, message):
    model_dir = tmp_path / "run"
    result = _run(f"--model_dir={model_dir}", flag)
    assert result.returncode != 0
    assert message in result.stderr
    assert not model_dir.exists()


def test_model_dir_is_required():
    result = _run("--lengths=8")
    assert result.returncode != 0
    assert "Flag --model_dir must have a value other than None" in result.stderr


def test_duplicate_length_is_a_usage_error(tmp_path):
    result = _run(f"--model_dir={tmp_path / 'run'}", "--lengths=8,8")
    assert result.returncode == 2
    assert "error: lengths must be distinct. Received: lengths=(8, 8)" in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_tiny_run_from_the_command_line(tmp_path):
    result = _run(
        f"--model_dir={tmp_path}", "--lengths=4", "--units=3", "--batch_size=4",
        "--train_steps=2", "--eval_every=2", "--eval_examples=8",
        "--gradient_examples=2", "--nojit_compile",
    )
    assert result.returncode == 0, result.stderr
    assert "test MSE by length" in result.stdout
    assert (tmp_path / "gradient_norms.png").exists()
