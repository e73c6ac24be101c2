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


BLAS_CHILD = """
import json
from evalkit.worker_setup import WorkerSetup, init_worker
init_worker(WorkerSetup(threads=2))
import numpy as np
import torch
from threadpoolctl import threadpool_info
a = np.ones((300, 300))
a @ a
print(json.dumps({"blas": sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"
                                  and "numpy" in p["filepath"]}), "torch": torch.get_num_threads()}))
"""


@pytest.mark.slow  # starts a process that imports torch
def test_a_worker_s_numpy_blas_runs_on_one_thread_and_torch_on_its_share():
    """numpy's BLAS gets one thread in a worker (a metric's dot products are too short to share), torch its
    ``threads``."""
    pytest.importorskip("threadpoolctl")
    done = subprocess.run([sys.executable, "-c", BLAS_CHILD], capture_output=True, text=True, check=True)
    threads = json.loads(done.stdout.strip().splitlines()[-1])
    assert threads == {"blas": [1], "torch": 2}


def _units(outcomes):
    return [o.decoded.shape if o.decoded is not None else None for o in outcomes]


@pytest.mark.skipif(sys.platform == "win32", reason="raw transfer: POSIX pipes")
def test_the_outbox_sends_a_tasks_quick_units_as_one_message_that_ends_it():
    import multiprocessing

    import numpy as np

    from evalkit.worker_setup import Outbox, receive_message

    receiver, sender = multiprocessing.Pipe(duplex=False)
    outbox = Outbox(sender)
    outbox.send(("start", 7))
    for n in (10, 20, 30):
        outbox.unit(7, _Outcome(np.zeros((1, n), np.float32)))
    outbox.done(7)
    outbox.send(("start", 8))
    outbox.done(8)  # nothing held: a plain "done"
    messages = [receive_message(receiver) for _ in range(4)]
    assert messages[0] == ("start", 7)
    kind, task_id, outcomes, done = messages[1]
    assert (kind, task_id, done) == ("units", 7, True) and _units(outcomes) == [(1, 10), (1, 20), (1, 30)]
    assert messages[2:] == [("start", 8), ("done", 8)]
    assert not receiver.poll(0.2)


@pytest.mark.skipif(sys.platform == "win32", reason="raw transfer: POSIX pipes")
def test_the_outbox_sends_a_held_unit_without_waiting_for_the_next_one():
    import multiprocessing

    import numpy as np

    from evalkit.worker_setup import Outbox, receive_message

    receiver, sender = multiprocessing.Pipe(duplex=False)
    outbox = Outbox(sender)
    outbox.unit(3, _Outcome(np.ones((1, 5), np.float32)))  # the task's next unit is still running
    assert receiver.poll(10.0), "a held outcome must leave on its own"
    kind, task_id, outcomes, done = receive_message(receiver)
    assert (kind, task_id, done) == ("units", 3, False) and _units(outcomes) == [(1, 5)]
    outbox.done(3)
    assert receive_message(receiver) == ("done", 3)


@pytest.mark.skipif(sys.platform == "win32", reason="raw transfer: POSIX pipes")
def test_the_outbox_sends_held_units_before_a_large_one_and_the_large_one_raw():
    import multiprocessing
    import threading

    import numpy as np

    from evalkit.worker_setup import Outbox, receive_message

    receiver, sender = multiprocessing.Pipe(duplex=False)
    outbox = Outbox(sender)
    large = np.arange(2 * 300_000, dtype=np.float32).reshape(2, -1)  # 2.4 MB: more than the pipe holds

    def send():
        outbox.unit(1, _Outcome(np.zeros((1, 4), np.float32)))
        outbox.unit(1, _Outcome(large.copy()))
        outbox.send(("crash", 1, "ValueError: boom"))

    thread = threading.Thread(target=send)
    thread.start()
    first, second, third = (receive_message(receiver) for _ in range(3))
    thread.join()
    assert first[:2] == ("units", 1) and _units(first[2]) == [(1, 4)] and first[3] is False
    assert second[:2] == ("unit", 1) and second[3] == ((2, 300_000), "<f4")
    np.testing.assert_array_equal(second[2].decoded, large)
    assert third == ("crash", 1, "ValueError: boom")


class _Unpicklable(_Outcome):
    def __reduce__(self):
        raise TypeError("cannot pickle this outcome")


def test_an_outcome_the_outbox_thread_cannot_send_fails_the_task_s_next_call():
    """A held outcome that cannot be pickled, found by the thread, is raised by the task's next call (the worker
    then sends a crash message and the coordinator records the units as errors), not lost in silence."""
    import multiprocessing
    import time

    import numpy as np

    from evalkit.worker_setup import Outbox

    receiver, sender = multiprocessing.Pipe(duplex=False)
    outbox = Outbox(sender)
    outbox.unit(2, _Unpicklable(np.zeros((1, 3), np.float32)))
    deadline = time.monotonic() + 10.0
    while outbox._failure is None and time.monotonic() < deadline:  # the thread tries within about 0.05 s
        time.sleep(0.01)
    with pytest.raises(TypeError, match="cannot pickle this outcome"):
        outbox.unit(2, _Outcome(np.zeros((1, 3), np.float32)))
    outbox.send(("crash", 2, "TypeError: cannot pickle this outcome"))
    assert receiver.recv() == ("crash", 2, "TypeError: cannot pickle this outcome")
