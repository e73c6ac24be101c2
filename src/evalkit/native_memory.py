"""Handing freed native memory back to the system (glibc), so a worker's resident size follows what it holds.

Long items are coded in chunks and scored in segments, so a worker *holds* little more for a 10-minute item
than for a 1-minute one; left alone its resident size still ratchets up segment after segment. glibc serves a
block of at least ``M_MMAP_THRESHOLD`` bytes with its own ``mmap`` (returned to the system on ``free``) and
smaller ones from its heaps (kept, for reuse). By default that threshold is dynamic: each freed ``mmap`` block
raises it to the block's size, up to 32 MiB, so after the first large array is freed every array up to 32 MiB
(seconds of audio, an STFT, a ViSQOL patch) comes from the heaps, and freed heap memory behind a live block stays
resident.

* :func:`own_process` (a worker's start-up) fixes the thresholds where glibc's dynamic rule ends: blocks below
  32 MiB from the heaps, whose top is given back only beyond 64 MiB free. Left dynamic, the rule depends on the
  process's history: a worker that never freed a large block mapped every array of 128 KiB or more (a second of
  16 kHz audio in float64, its FFT) on its own, and once a threshold is set glibc gives back the heap's top beyond
  128 KiB free; either way each such array cost fresh pages. SI-SDR with its delay estimate took 1.3-1.7 ms per
  one-second item in such a worker, 0.83-1.0 ms with the fixed thresholds (measured).
* :func:`mapped_allocations` fixes the threshold at 1 MiB (and the heap's top given back beyond 128 KiB free,
  glibc's default) while a long item is processed in a worker. It costs page faults (about 10 % more CPU for
  every metric on short items, measured), so short items keep the heaps; afterwards both thresholds are back at
  32 and 64 MiB.
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

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
#: Inside :func:`mapped_allocations`, blocks of this size or more are mapped on their own and unmapped when freed
#: (1 MiB keeps the many small temporaries of the metrics in the heaps, where reuse is cheap).
MAPPED_THRESHOLD_BYTES = 1 << 20
#: The largest threshold glibc's dynamic rule reaches on 64-bit systems: blocks below it come from the heaps.
HEAP_THRESHOLD_BYTES = 32 << 20
#: Free memory at the heap's top beyond which glibc gives it back: twice the mapping threshold, as glibc's dynamic
#: rule sets it (with the heaps serving blocks up to 32 MiB), and its default (128 KiB) inside mapped allocations.
HEAP_TRIM_BYTES, MAPPED_TRIM_BYTES = 2 * HEAP_THRESHOLD_BYTES, 128 << 10

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
    """Fix this process's allocator thresholds at the heaps' (32 MiB, the top given back beyond 64 MiB free) and
    let :func:`mapped_allocations` change them (evalkit's worker processes call this at start-up). Returns whether
    the C library is glibc."""
    global _owned
    _owned = _glibc() is not None
    if _owned:
        with _lock:
            _set_threshold(HEAP_THRESHOLD_BYTES)
    return _owned


def _set_threshold(threshold_bytes: int) -> None:
    """The mapping threshold, and the trim threshold that goes with it (:data:`HEAP_TRIM_BYTES` for the heaps'
    threshold, else :data:`MAPPED_TRIM_BYTES`)."""
    global _threshold
    libc = _glibc()
    libc.mallopt(M_MMAP_THRESHOLD, int(threshold_bytes))
    libc.mallopt(M_TRIM_THRESHOLD, HEAP_TRIM_BYTES if threshold_bytes >= HEAP_THRESHOLD_BYTES else MAPPED_TRIM_BYTES)
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


@contextlib.contextmanager
def _mapped_within() -> Iterator[None]:
    with _threshold_within(MAPPED_THRESHOLD_BYTES, after=HEAP_THRESHOLD_BYTES):
        release_free_memory()  # the heaps' free memory, kept for short items, would otherwise serve large blocks
        yield


def mapped_allocations() -> contextlib.AbstractContextManager[None]:
    """Within the block (a long item), blocks of 1 MiB or more are mapped on their own and go back to the system
    when freed, and the heaps start with their free memory given back; after it, the thresholds are the heaps'
    again (:func:`own_process`). Nothing changes outside evalkit's workers."""
    if not _owned or (_threshold is not None and _threshold <= MAPPED_THRESHOLD_BYTES):  # not ours, or nested
        return contextlib.nullcontext()
    return _mapped_within()


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
