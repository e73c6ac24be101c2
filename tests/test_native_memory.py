"""Freed native memory goes back to the system: glibc's retention of freed heap blocks is what made a long item's
worker ratchet up to several GB although it held one segment at a time."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc: Linux only")

# 16 blocks of 8 MiB freed behind a live small block. After a 24 MiB array is freed glibc's dynamic threshold
# serves 8 MiB blocks from its heap, where the freed 128 MiB stays resident (the live block pins the heap's top).
CHILD = """
import ctypes, json, os, sys
mode = sys.argv[1]
if mode == "worker":
    from evalkit.worker_setup import WorkerSetup, init_worker
    init_worker(WorkerSetup(threads=1))
import numpy as np
from evalkit import native_memory

def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

def mapped_mb():  # glibc's mallinfo2().hblkhd: bytes in blocks mapped on their own
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = type("Info", (ctypes.Structure,), {"_fields_": [(f"f{i}", ctypes.c_size_t)
                                                                             for i in range(10)]})
    return libc.mallinfo2().f4 / 2**20

if mode != "worker":
    assert native_memory.own_process()
if mode == "default":
    native_memory._owned = False  # a user's interpreter: mapped_allocations changes nothing
big = np.ones(3 << 20)  # 24 MiB
del big
if mode == "heap":
    with native_memory.mapped_allocations():
        with native_memory.heap_allocations():
            m0 = mapped_mb(); first = np.ones(1 << 20); heap = mapped_mb() - m0
        m0 = mapped_mb(); second = np.ones(1 << 20); mapped = mapped_mb() - m0
    print(json.dumps({"inside_heap_block_mb": heap, "after_heap_block_mb": mapped}))
    sys.exit()
with native_memory.mapped_allocations():
    blocks = [np.ones(1 << 20) for _ in range(16)]
    pin = np.ones(1 << 13)  # 64 KiB, carved from the top of the heap after the blocks
    before = rss_mb()
    del blocks
    released = native_memory.release_free_memory() if mode == "trimmed" else None
print(json.dumps({"freed_mb": before - rss_mb(), "released": released, "threshold": native_memory._threshold}))
"""


def _freed_mb(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_glibc_keeps_freed_heap_blocks_by_default():
    # the premise: without evalkit's settings the 128 MiB freed stay resident
    result = _freed_mb("default")
    assert result["freed_mb"] < 16 and result["threshold"] is None


@pytest.mark.parametrize("mode", ["worker", "owned", "trimmed"])
def test_within_mapped_allocations_freed_blocks_go_back_and_the_threshold_ends_at_glibcs_largest(mode):
    result = _freed_mb(mode)
    assert result["freed_mb"] > 120
    assert result["released"] in (None, True) and result["threshold"] == 32 << 20


def test_heap_allocations_give_glibcs_placement_inside_and_restore_the_threshold_after():
    result = _freed_mb("heap")  # pesq runs inside: its C code crashes when its buffers are mapped on their own
    assert result == {"inside_heap_block_mb": 0, "after_heap_block_mb": pytest.approx(8, abs=0.01)}


def test_nothing_changes_in_a_process_evalkit_does_not_own():
    from evalkit import native_memory

    assert not native_memory._owned  # the test process: not a worker
    with native_memory.mapped_allocations(), native_memory.heap_allocations():
        assert native_memory._threshold is None
