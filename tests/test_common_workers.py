"""recipes.common.workers: who is chief, and where each worker writes.

The multi-worker runs themselves: tests/test_multi_worker.py.
"""

import os
import subprocess
import sys

import pytest

from recipes.common import workers


class _Resolver:
    def __init__(self, task_type, task_id, cluster):
        self.task_type, self.task_id, self._cluster = task_type, task_id, cluster

    def cluster_spec(self):
        cluster = self._cluster

        class Spec:
            def as_dict(self):
                return cluster

        return Spec()


class _Strategy:
    def __init__(self, resolver):
        self.cluster_resolver = resolver


@pytest.mark.parametrize(
    "resolver, chief, name",
    [
        (None, True, "local"),
        (_Resolver(None, None, {}), True, "local"),
        (_Resolver("worker", 0, {"worker": ["a", "b"]}), True, "worker_0"),
        (_Resolver("worker", 1, {"worker": ["a", "b"]}), False, "worker_1"),
        (_Resolver("chief", 0, {"chief": ["a"], "worker": ["b"]}), True, "chief_0"),
        (_Resolver("worker", 0, {"chief": ["a"], "worker": ["b"]}), False, "worker_0"),
    ],
)
def test_the_chief_is_task_chief_or_else_worker_0(resolver, chief, name):
    strategy = _Strategy(resolver)
    assert workers.is_chief(strategy) is chief
    assert workers.task_name(strategy) == name
    assert (workers.output_dir(strategy, "run") == "run") is chief


def test_a_worker_directory_goes_at_exit_and_stale_ones_at_the_next_start(tmp_path):
    # A dead worker's directory (Linux PIDs never exceed 2**22) and a live
    # one's (this process).
    dead = tmp_path / f"keras_lstm_worker_1_{2**22 + 1}_abc"
    alive = tmp_path / f"keras_lstm_worker_1_{os.getpid()}_abc"
    dead.mkdir()
    alive.mkdir()
    code = (
        "from recipes.common import workers; import test_common_workers as t;"
        "print(workers.output_dir(t._Strategy(t._Resolver('worker', 1, "
        "{'worker': ['a', 'b']})), 'run'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={**os.environ, "TMPDIR": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3",
             "PYTHONPATH": os.pathsep.join(
                 [os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])})
    assert result.returncode == 0, result.stderr[-2000:]
    path = result.stdout.strip().splitlines()[-1]
    assert os.path.dirname(path) == str(tmp_path)
    assert os.path.basename(path).startswith("keras_lstm_worker_1_")
    assert not os.path.exists(path)  # Removed when the process exited.
    assert not dead.exists() and alive.exists()
