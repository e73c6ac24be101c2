"""Worker start-up: thread counts reach torch, BLAS and numba; logs, warnings and C-level stderr go to the log."""

import json
import subprocess
import sys

import pytest

from evalkit.worker_setup import threads_per_worker

CHILD = """
import json, logging, os, sys, warnings
from evalkit.worker_setup import WorkerSetup, init_worker
assert "numpy" not in sys.modules  # the initializer runs before any numerical library is loaded
init_worker(WorkerSetup(threads=int(sys.argv[1]), log_path=sys.argv[2]))
import numba, numpy, torch
from threadpoolctl import threadpool_info
warnings.warn("a library's FutureWarning", FutureWarning)
logging.getLogger("somelib").info("a library's log line")
os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
blas = sorted({p["num_threads"] for p in threadpool_info()})
print(json.dumps({"torch": torch.get_num_threads(), "numba": numba.get_num_threads(), "blas": blas}))
"""


@pytest.mark.slow  # starts worker processes
def test_worker_threads_and_log_routing(tmp_path):
    # (one thread: the libraries default to one per core, so on machines with more than one core this differs)
    pytest.importorskip("threadpoolctl")
    log = tmp_path / "run.log"
    done = subprocess.run([sys.executable, "-c", CHILD, "1", str(log)], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"torch": 1, "numba": 1, "blas": [1]}
    assert done.stderr == ""  # nothing over the parent's progress bar
    text = log.read_text()
    assert "FutureWarning: a library's FutureWarning" in text and "somelib: a library's log line" in text
    assert "XNNPACK delegate" in text


def test_threads_per_worker_splits_the_cores():
    assert threads_per_worker(1, cores=2) == 2 and threads_per_worker(2, cores=2) == 1
    assert threads_per_worker(3, cores=8) == 2 and threads_per_worker(4, cores=1) == 1
