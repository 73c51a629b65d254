"""recipes.launch with stand-in workers: TF_CONFIG, failures, exit status, signals.

The stand-in worker (written below) records its TF_CONFIG and any SIGTERM it
gets, then behaves as told: exit 0, fail with status 3, die by SIGKILL, or
wait. The real recipes under the launcher: tests/test_multi_worker.py.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = '''
import json, os, signal, sys, time
out, mode = sys.argv[1], sys.argv[2]
index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]

def on_term(signum, frame):
    open(os.path.join(out, f"signal_{index}"), "w").write(str(signum))
    sys.exit(7)

signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "deaf" and index == 1 else on_term)
open(os.path.join(out, f"tf_config_{index}.json"), "w").write(os.environ["TF_CONFIG"])
if mode == "ok" or (mode == "fail" and index == 0):
    sys.exit(0)
if mode == "fail":
    sys.exit(3)
if mode == "kill" and index == 1:
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(120)
'''


def _launch(tmp_path, mode, *flags, wait=True):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    command = [sys.executable, "-m", "recipes.launch", *flags,
               f"--worker_logs={tmp_path / 'logs'}", "--grace_seconds=5", "--",
               sys.executable, str(script), str(tmp_path), mode,
               "--strategy=multi_worker"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    if not wait:
        return process
    stdout, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


def _wait_until_started(tmp_path, process, workers):
    """Waits until every stand-in worker has installed its SIGTERM handler."""
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"tf_config_{i}.json").exists() for i in range(workers)):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.1)


def test_each_worker_gets_its_tf_config(tmp_path):
    code, stderr = _launch(tmp_path, "ok", "--workers=3")
    assert code == 0, stderr
    configs = [json.loads((tmp_path / f"tf_config_{i}.json").read_text())
               for i in range(3)]
    cluster = configs[0]["cluster"]["worker"]
    assert len(set(cluster)) == 3
    assert all(address.startswith("localhost:") for address in cluster)
    for index, config in enumerate(configs):
        assert config["cluster"] == {"worker": cluster}
        assert config["task"] == {"type": "worker", "index": index}


def test_a_failing_worker_stops_the_others_and_sets_the_exit_status(tmp_path):
    code, stderr = _launch(tmp_path, "fail", "--workers=2")
    assert code == 3
    assert "worker 1 exited with status 3" in stderr


def test_a_worker_killed_by_a_signal_gives_128_plus_the_signal(tmp_path):
    began = time.monotonic()
    code, stderr = _launch(tmp_path, "kill", "--workers=3")
    assert code == 128 + signal.SIGKILL, stderr
    # The waiting workers were told to stop, not left to sleep out their 120 s.
    assert (tmp_path / "signal_0").read_text() == str(int(signal.SIGTERM))
    assert (tmp_path / "signal_2").read_text() == str(int(signal.SIGTERM))
    assert time.monotonic() - began < 60


def test_signals_to_the_launcher_reach_every_worker(tmp_path):
    process = _launch(tmp_path, "wait", "--workers=2", wait=False)
    _wait_until_started(tmp_path, process, workers=2)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == 7  # The workers' own status.
    for index in range(2):
        assert (tmp_path / f"signal_{index}").read_text() == str(int(signal.SIGTERM))


def test_after_a_signal_a_worker_that_does_not_exit_is_killed(tmp_path):
    # Worker 1 ignores SIGTERM (as one stuck in a collective op would).
    process = _launch(tmp_path, "deaf", "--workers=2", wait=False)
    _wait_until_started(tmp_path, process, workers=2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)  # grace_seconds=5, then SIGKILL.
    assert process.returncode == 7, stderr  # Worker 0's status.
    assert "worker 0 exited with status 7" in stderr


@pytest.mark.parametrize(
    "command, message",
    [
        ([], "give the command each worker runs after `--`"),
        (["python", "-m", "recipes.char_lm", "--model_dir=/tmp/x"],
         "the command must train with --strategy=multi_worker"),
    ],
)
def test_bad_commands_are_refused_before_starting_workers(command, message):
    result = subprocess.run(
        [sys.executable, "-m", "recipes.launch", "--workers=2", "--", *command],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr
    assert "launch: 2 workers" not in result.stderr
