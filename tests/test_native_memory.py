"""Freed native memory goes back to the system: glibc's retention of freed heap blocks is what made a long item's
worker ratchet up to several GB although it held one segment at a time."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc: Linux only")

# After a 24 MiB array is freed glibc's dynamic threshold serves 8 MiB blocks from its heap. 16 such blocks, each
# followed by a live 512 KiB block (so no freed block joins the heap's top, which glibc would give back), are
# freed: by default their 128 MiB stay resident.
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

if mode in ("owned", "heap", "fixed"):
    assert native_memory.own_process()
if mode in ("fixed", "dynamic"):  # a megabyte-sized array, then a 16 MiB one freed at the heap's top
    m0 = mapped_mb(); small = np.ones(1 << 17); small_mapped = mapped_mb() - m0
    m0 = mapped_mb(); large = np.ones(2 << 20); large_mapped = mapped_mb() - m0
    before = rss_mb(); del large
    print(json.dumps({"small_mapped_mb": small_mapped, "large_mapped_mb": large_mapped,
                      "freed_mb": before - rss_mb()}))
    sys.exit()
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
    m0 = mapped_mb()
    pairs = [(np.ones(1 << 20), np.ones(1 << 16)) for _ in range(16)]  # 8 MiB block, 512 KiB live block
    mapped = mapped_mb() - m0
    blocks, pins = [p[0] for p in pairs], [p[1] for p in pairs]
    del pairs
    before = rss_mb()
    del blocks
    released = native_memory.release_free_memory() if mode == "trimmed" else None
print(json.dumps({"mapped_mb": mapped, "freed_mb": before - rss_mb(), "released": released,
                  "threshold": native_memory._threshold}))
"""


def _freed_mb(mode: str) -> dict:
    # glibc's own settings from the environment turn its dynamic threshold off (Dask's nanny sets
    # MALLOC_TRIM_THRESHOLD_ in the process that starts it, which an earlier test may have been): not in the child
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    done = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_glibc_keeps_freed_heap_blocks_by_default():
    # the premise, in a process evalkit does not own: the blocks come from the heap and stay resident when freed
    result = _freed_mb("default")
    assert result["mapped_mb"] == 0 and result["freed_mb"] < 16 and result["threshold"] is None


@pytest.mark.parametrize("mode", ["owned", "worker"])
def test_within_mapped_allocations_blocks_are_mapped_and_go_back_when_freed(mode):
    result = _freed_mb(mode)
    assert result["mapped_mb"] >= 128 and result["freed_mb"] > 120
    assert result["threshold"] == 32 << 20  # afterwards: glibc's largest dynamic threshold


def test_a_workers_arrays_come_from_the_heaps_which_keep_their_free_top():
    """Left to glibc's dynamic rule (a process that has freed no large block yet), every array of 128 KiB or more is
    mapped on its own and its pages go back when freed: each second of audio, each FFT costs fresh pages. An owned
    process takes them from the heaps and keeps up to 64 MiB free at the top for the next ones."""
    dynamic, fixed = _freed_mb("dynamic"), _freed_mb("fixed")
    assert dynamic["small_mapped_mb"] == pytest.approx(1, abs=0.01)
    assert dynamic["large_mapped_mb"] == pytest.approx(16, abs=0.01) and dynamic["freed_mb"] > 15
    assert fixed == {"small_mapped_mb": 0, "large_mapped_mb": 0, "freed_mb": pytest.approx(0, abs=0.5)}


def test_a_trim_gives_back_the_heaps_free_blocks():
    result = _freed_mb("trimmed")
    assert result["mapped_mb"] == 0  # from the heap, as by default ...
    assert result["released"] is True and result["freed_mb"] > 120  # ... and back by malloc_trim


def test_heap_allocations_give_glibcs_placement_inside_and_restore_the_threshold_after():
    result = _freed_mb("heap")  # pesq runs inside: its C code crashes when its buffers are mapped on their own
    assert result == {"inside_heap_block_mb": 0, "after_heap_block_mb": pytest.approx(8, abs=0.01)}


def test_nothing_changes_in_a_process_evalkit_does_not_own():
    from evalkit import native_memory

    assert not native_memory._owned  # the test process: not a worker
    with native_memory.mapped_allocations(), native_memory.heap_allocations():
        assert native_memory._threshold is None
