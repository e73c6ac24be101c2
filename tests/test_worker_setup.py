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


class _Outcome:
    def __init__(self, decoded):
        self.decoded = decoded

    def detach_bulk(self):
        if self.decoded is None or self.decoded.nbytes < 1 << 20:
            return None
        bulk, self.decoded = self.decoded, None
        return bulk

    def attach_bulk(self, bulk):
        self.decoded = bulk


def _send_in_thread(sender, messages):
    import threading

    from evalkit.worker_setup import send_outcome

    def send():
        for task_id, outcome in messages:
            send_outcome(sender, task_id, outcome)
        sender.close()

    thread = threading.Thread(target=send)
    thread.start()
    return thread


@pytest.mark.skipif(sys.platform == "win32", reason="raw transfer: POSIX pipes")
def test_a_large_array_crosses_the_pipe_as_raw_bytes_and_small_ones_pickled():
    import multiprocessing

    import numpy as np

    from evalkit.worker_setup import receive_message

    rng = np.random.default_rng(0)
    large = rng.standard_normal((2, 300_000)).astype(np.float32)  # 2.4 MB: more than a pipe holds
    small = rng.standard_normal((1, 100)).astype(np.float32)
    receiver, sender = multiprocessing.Pipe(duplex=False)
    thread = _send_in_thread(sender, [(1, _Outcome(large.copy())), (2, _Outcome(small.copy())), (3, _Outcome(None))])
    first, second, third = (receive_message(receiver) for _ in range(3))
    thread.join()
    assert first[:2] == ("unit", 1) and first[3] == ((2, 300_000), "<f4")
    np.testing.assert_array_equal(first[2].decoded, large)
    assert second[3] is None and third[3] is None  # pickled with the outcome
    np.testing.assert_array_equal(second[2].decoded, small)
    assert third[2].decoded is None


@pytest.mark.skipif(sys.platform == "win32", reason="raw transfer: POSIX pipes")
def test_a_pipe_that_ends_in_the_middle_of_an_array_is_end_of_file():
    import multiprocessing
    import os

    from evalkit.worker_setup import receive_message

    receiver, sender = multiprocessing.Pipe(duplex=False)
    sender.send(("unit", 1, _Outcome(None), ((1, 1 << 20), "<f4")))  # a worker killed after the header ...
    os.write(sender.fileno(), b"some")  # ... and 4 of the array's 4 MiB
    sender.close()
    with pytest.raises(EOFError):
        receive_message(receiver)


IDLE_CHILD = """
import json, os, sys, time
from evalkit.worker_setup import WorkerSetup, init_worker
if sys.argv[1] == "openblas-default":
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = "28"  # OpenBLAS's own default (a user's setting is kept)
init_worker(WorkerSetup(threads=2))
import numpy as np
a = np.random.default_rng(0).standard_normal((300, 300))
idle = 0.0
for _ in range(5):
    a @ a  # a BLAS call on two threads
    c0 = time.process_time()
    time.sleep(0.2)
    idle += time.process_time() - c0
print(json.dumps(idle))
"""


@pytest.mark.slow  # starts two processes
def test_a_worker_s_idle_blas_threads_do_not_spin():
    """Between a unit's BLAS calls the worker's idle BLAS threads sleep, leaving the core to the coordinator."""
    def idle_cpu_s(mode: str) -> float:
        done = subprocess.run([sys.executable, "-c", IDLE_CHILD, mode], capture_output=True, text=True, check=True)
        return json.loads(done.stdout)

    spinning = idle_cpu_s("openblas-default")
    if spinning < 0.1:
        pytest.skip(f"OpenBLAS's threads do not spin here ({spinning:.3f} CPU-s in 1 s idle)")
    assert idle_cpu_s("worker") < 0.1 * spinning
