"""Handing freed native memory back to the system (glibc), so a worker's resident size follows what it holds.

Long items are coded in chunks and scored in segments, so a worker *holds* little more for a 10-minute item
than for a 1-minute one; left alone its resident size still ratchets up segment after segment. glibc serves a
block of at least ``M_MMAP_THRESHOLD`` bytes with its own ``mmap`` (returned to the system on ``free``) and
smaller ones from its heaps (kept, for reuse). By default that threshold is dynamic: each freed ``mmap`` block
raises it to the block's size, up to 32 MiB, so after the first large array is freed every array up to 32 MiB
(seconds of audio, an STFT, a ViSQOL patch) comes from the heaps, and freed heap memory behind a live block stays
resident.

* :func:`mapped_allocations` fixes the threshold at 1 MiB while a long item is processed in a worker. It costs
  page faults (about 10 % more CPU for every metric on short items, measured), so short items keep the heaps;
  afterwards the threshold stays fixed at 32 MiB, where glibc's dynamic rule ends (it cannot be turned back on).
* :func:`release_free_memory` returns what the heaps hold free now (``malloc_trim``).
* :func:`heap_allocations` gives native code that only works with heap placement glibc's usual one: code that
  reads past its buffers or after freeing them goes unnoticed inside a heap and crashes once the buffers are
  mapped on their own. PESQ's C code does (a 3-minute item crashed the process in ``pesq`` in 3 runs of 3 with
  the 1 MiB threshold, never without it).

Thresholds change only in processes evalkit owns (:func:`own_process`: its workers), never in a user's
interpreter. Everything is a no-op where the C library is not glibc (macOS, musl).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
import threading
from collections.abc import Iterator

M_MMAP_THRESHOLD = -3  # <malloc.h>
#: Inside :func:`mapped_allocations`, blocks of this size or more are mapped on their own and unmapped when freed
#: (1 MiB keeps the many small temporaries of the metrics in the heaps, where reuse is cheap).
MAPPED_THRESHOLD_BYTES = 1 << 20
#: The largest threshold glibc's dynamic rule reaches on 64-bit systems: blocks below it come from the heaps.
HEAP_THRESHOLD_BYTES = 32 << 20

_owned = False  # evalkit owns this process (a worker): it may change glibc's settings
_threshold: int | None = None  # the threshold set here (None: glibc's dynamic default)
_lock = threading.RLock()


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc has both; musl neither
    except (OSError, AttributeError):
        return None
    return libc


def own_process() -> bool:
    """Let :func:`mapped_allocations` change this process's allocator settings (evalkit's worker processes call
    it at start-up). Returns whether the C library is glibc."""
    global _owned
    _owned = _glibc() is not None
    return _owned


def _set_threshold(threshold_bytes: int) -> None:
    global _threshold
    _glibc().mallopt(M_MMAP_THRESHOLD, int(threshold_bytes))
    _threshold = int(threshold_bytes)


@contextlib.contextmanager
def _threshold_within(threshold_bytes: int, after: int | None) -> Iterator[None]:
    with _lock:
        before = _threshold
        _set_threshold(threshold_bytes)
        try:
            yield
        finally:
            _set_threshold(after if after is not None else before)


def mapped_allocations() -> contextlib.AbstractContextManager[None]:
    """Within the block (a long item), blocks of 1 MiB or more are mapped on their own and go back to the system
    when freed; after it, the threshold is glibc's largest (32 MiB). Nothing changes outside evalkit's workers."""
    if not _owned or (_threshold is not None and _threshold <= MAPPED_THRESHOLD_BYTES):  # not ours, or nested
        return contextlib.nullcontext()
    return _threshold_within(MAPPED_THRESHOLD_BYTES, after=HEAP_THRESHOLD_BYTES)


def heap_allocations() -> contextlib.AbstractContextManager[None]:
    """Within the block, blocks below 32 MiB come from the heaps, as glibc places them by default, for native code
    that only works there (see the module's docstring). Nothing changes where blocks already come from the heaps."""
    if _threshold is None or _threshold >= HEAP_THRESHOLD_BYTES:
        return contextlib.nullcontext()
    return _threshold_within(HEAP_THRESHOLD_BYTES, after=None)


def release_free_memory() -> bool:
    """Return the free memory of every heap to the system now (``malloc_trim(0)``). Returns whether any was."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))
