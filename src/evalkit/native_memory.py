"""Handing freed native memory back to the system (glibc), so a worker's resident size follows what it holds.

Long items are coded in chunks and scored in segments, so a worker *holds* little more for a 10-minute item
than for a 1-minute one; without this module its resident size still ratchets up segment after segment. glibc
serves a block of at least ``M_MMAP_THRESHOLD`` bytes with its own ``mmap`` (returned to the system on
``free``) and smaller ones from its heaps (kept, for reuse). By default that threshold is dynamic: each freed
``mmap`` block raises it to the block's size, up to 32 MiB, so after the first large array is freed every
array up to 32 MiB (a few seconds of audio, an STFT, a ViSQOL patch) comes from the heaps, and freed heap
memory behind a live block stays resident. :func:`limit_heap_retention` fixes the threshold (which turns the
dynamic rule off) and :func:`release_free_memory` returns what the heaps hold free now (``malloc_trim``).

Native code that reads past its buffers or after freeing them goes unnoticed while those buffers sit inside a
heap, and crashes once they are mapped on their own: PESQ's C code does (a 3-minute item crashed the process in
``pesq`` in 3 runs of 3 with the fixed threshold, never without it). Such calls run under
:func:`heap_allocations`, which gives them glibc's usual placement.

All are no-ops (returning ``False``) where the C library is not glibc (macOS, musl).
"""

from __future__ import annotations

import ctypes
import functools
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

M_MMAP_THRESHOLD = -3  # <malloc.h>
#: Blocks of this size or more are mapped on their own and unmapped when freed (glibc's default start value is
#: 128 KiB; 1 MiB keeps the many mid-sized temporaries of the metrics in the heaps, where reuse is cheap).
MMAP_THRESHOLD_BYTES = 1 << 20
#: The largest threshold glibc's dynamic rule reaches on 64-bit systems: blocks below it come from the heaps.
HEAP_THRESHOLD_BYTES = 32 << 20

_fixed_threshold: int | None = None  # what limit_heap_retention set in this process (None: glibc's default)
_heap_depth = 0  # nesting of heap_allocations blocks
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


def limit_heap_retention(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Serve every allocation of ``threshold_bytes`` or more by its own mapping, returned to the system when
    freed (a fixed ``M_MMAP_THRESHOLD``). Returns whether it was applied. Process-wide: call it in processes
    evalkit owns (its workers), not in a user's interpreter."""
    global _fixed_threshold
    libc = _glibc()
    applied = bool(libc is not None and libc.mallopt(M_MMAP_THRESHOLD, int(threshold_bytes)))
    if applied:
        _fixed_threshold = int(threshold_bytes)
    return applied


@contextmanager
def heap_allocations() -> Iterator[None]:
    """Within the block, blocks below 32 MiB come from the heaps, as glibc places them by default, for native code
    that only works there (see the module's docstring). Nothing changes where no threshold was fixed. Other
    threads entering it wait; nesting is allowed."""
    global _heap_depth
    libc = _glibc()
    if libc is None or _fixed_threshold is None:
        yield
        return
    with _lock:
        if _heap_depth == 0:
            libc.mallopt(M_MMAP_THRESHOLD, HEAP_THRESHOLD_BYTES)
        _heap_depth += 1
        try:
            yield
        finally:
            _heap_depth -= 1
            if _heap_depth == 0:
                libc.mallopt(M_MMAP_THRESHOLD, _fixed_threshold)


def release_free_memory() -> bool:
    """Return the free memory of every heap to the system now (``malloc_trim(0)``). Returns whether any was."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))
