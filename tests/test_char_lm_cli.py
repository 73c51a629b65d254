"""char_lm entry points: sampling, flag errors, MirroredStrategy on 2 CPUs."""

import json
import os
import subprocess
import sys

import pytest

from recipes.char_lm import generation
from recipes.char_lm import train
from recipes.char_lm.config import debug_config
from recipes.common.errors import UsageError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = ("ROMEO:\nBut, soft! what light through yonder window breaks?\n"
        "It is the east, and Juliet is the sun.\n\n") * 10


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("char_lm")
    text_file = directory / "text.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    model_dir = str(directory / "run")
    train.train_and_evaluate(
        debug_config(text_file=str(text_file), train_steps=2), model_dir)
    return model_dir


def _run(module, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)


def test_sampling_is_reproducible_with_a_seed(trained_dir):
    first = generation.sample_run(trained_dir, "ROMEO:", 40, 0.8, seed=7)
    again = generation.sample_run(trained_dir, "ROMEO:", 40, 0.8, seed=7)
    other = generation.sample_run(trained_dir, "ROMEO:", 40, 0.8, seed=8)
    assert first == again
    assert first != other
    assert first.startswith("ROMEO:") and len(first) == len("ROMEO:") + 40
    assert set(first) <= set(TEXT)  # The OOV id is never drawn.


def test_prime_with_unknown_characters_says_which(trained_dir):
    with pytest.raises(UsageError, match="never seen: 'Q', 'é'. Received: prime='Qué'"):
        generation.sample_run(trained_dir, "Qué", 10, 0.8, seed=0)


def test_sample_needs_a_finished_run(tmp_path):
    with pytest.raises(UsageError, match="model.keras is missing"):
        generation.sample_run(str(tmp_path), "a", 10, 0.8, seed=0)


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--seq_len=0", "--seq_len must be >= 1"),
        ("--strategy=gpu_farm", "value should be one of"),
    ],
)
def test_invalid_training_flags_exit_with_one_message(tmp_path, flag, message):
    result = _run("recipes.char_lm", f"--model_dir={tmp_path / 'run'}",
                  "--text_file=/nonexistent.txt", flag)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "run").exists()


def test_sample_command_rejects_zero_temperature(trained_dir):
    result = _run("recipes.char_lm.sample", f"--model_dir={trained_dir}",
                  "--temperature=0")
    assert result.returncode != 0
    assert "--temperature must be > 0" in result.stderr


def test_mirrored_on_two_cpus_matches_one_device(tmp_path):
    text_file = tmp_path / "text.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    common = [f"--text_file={text_file}", "--debug", "--train_steps=3",
              "--progress=false"]
    mirrored = _run("recipes.char_lm", f"--model_dir={tmp_path / 'mirrored'}",
                    "--strategy=mirrored", "--cpu_devices=2", *common)
    assert mirrored.returncode == 0, mirrored.stderr[-2000:]
    single = train.train_and_evaluate(
        debug_config(text_file=str(text_file), train_steps=3),
        str(tmp_path / "single"))
    with open(tmp_path / "mirrored" / "metrics.json") as f:
        metrics = json.load(f)
    assert metrics["replicas"] == 2
    # Same global batch, summed gradients: the same training up to rounding.
    assert metrics["final_val_nats_per_char"] == pytest.approx(
        single["final_val_nats_per_char"], abs=1e-4)
    # The logged norm is that of the global-batch gradient in both runs.
    mirrored_norms = _scalars(tmp_path / "mirrored" / "train", "gradient_norm")
    single_norms = _scalars(tmp_path / "single" / "train", "gradient_norm")
    assert sorted(mirrored_norms) == [1, 2, 3]
    for step, norm in single_norms.items():
        assert mirrored_norms[step] == pytest.approx(norm, rel=1e-4)


def _scalars(log_dir, tag):
    """{step: value} of a scalar tag in the event files of log_dir."""
    import tensorflow as tf

    values = {}
    for path in log_dir.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return values


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path):
    import signal

    text_file = tmp_path / "text.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    model_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "recipes.char_lm", f"--model_dir={model_dir}",
         f"--text_file={text_file}", "--debug", "--train_steps=1000000",
         "--eval_every=1", "--checkpoint_every=1000000", "--progress"],
        cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    while "step 2: validation" not in seen:  # Training is under way.
        line = process.stdout.readline()
        assert line, process.stderr.read()[-2000:]
        seen += line
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    stdout = seen + stdout
    assert process.returncode == 130, stderr[-2000:]
    assert "SIGINT: saving and stopping after this step" in stderr
    assert "SIGINT: saved a checkpoint at step" in stderr
    assert "Traceback" not in stderr
    step = int(stderr.split("saved a checkpoint at step ")[1].split(";")[0])
    assert (model_dir / "checkpoints" / f"ckpt-{step}.index").exists()
