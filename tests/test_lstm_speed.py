"""The benchmark runs end to end (tiny shapes) and writes a complete JSON."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow  # ~1 min: several processes import TensorFlow.
def test_quick_benchmark_writes_table_and_json(tmp_path):
    output = tmp_path / "speed.json"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "lstm_speed.py"),
         "--quick", "--output", str(output)],
        capture_output=True, text=True, check=True, timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert "| imdb (4,12,8,6) | keras_lstm |" in result.stdout
    report = json.loads(output.read_text())
    assert report["meta"]["peak_gflops"] > 0
    assert set(report["configs"]) == {"imdb", "charlm"}
    imdb = report["configs"]["imdb"]
    assert imdb["path"] == "fused"
    # Same weights, so the implementations agree on the outputs.
    assert imdb["max_abs_output_diff_vs_keras"] < 1e-5
    keras_row = imdb["results"]["keras"]
    assert keras_row["train_speedup_vs_keras"] == 1.0
    assert imdb["results"]["export"]["infer_ms"] > 0
    for impl, row in imdb["results"].items():
        if impl == "export":
            continue
        assert row["train_ms"] > 0 and row["infer_ms"] > 0
        assert row["peak_rss_mb"] > 0  # The memory processes ran.
