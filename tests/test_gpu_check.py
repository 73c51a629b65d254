"""benchmarks/gpu_check.py runs end to end on CPU (our CI has no GPU)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "gpu_check.py")


def run(*args):
    return subprocess.run(
        [sys.executable, SCRIPT, *args], capture_output=True, text=True,
        timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


def test_without_gpu_it_says_so_and_exits_2():
    result = run()
    assert result.returncode == 2, result.stderr
    assert "No GPU is visible" in result.stdout


def test_quick_cpu_run_checks_every_case(tmp_path):
    output = tmp_path / "gpu_check.json"
    result = run("--quick", "--allow-cpu", "--output", str(output))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All differences within" in result.stdout
    report = json.loads(output.read_text())
    assert len(report["checks"]) == 8
    for check in report["checks"]:
        assert check["keras_lstm_vs_keras_loop"] < 1e-4, check
    assert {row["config"] for row in report["speed"]} == {"imdb", "charlm"}
    assert all(row["train_speedup_vs_keras"] > 0 for row in report["speed"])
