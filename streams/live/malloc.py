"""Keep glibc's allocator from holding on to memory the worker no longer uses.

RocksDB's block cache allocates and frees blocks all day through the C allocator, and Kafka fetches
come in buffers of up to a MiB. glibc keeps what is freed inside its arenas, scattered between
live blocks, so a worker's resident memory creeps up by fragmentation even when what it holds is
bounded (`make soak` showed a few MiB per 10 minutes with a flat amount in use). Three settings,
all no-ops outside glibc (musl, macOS):

- `malloc_trim(0)` once a minute returns free pages inside the arenas; a call takes milliseconds.
- At most two arenas (`M_ARENA_MAX`): RocksDB's background threads would otherwise each get one,
  up to eight per core, and free memory in one is never reused by another.
- Allocations from 256 KiB up are mapped on their own (`M_MMAP_THRESHOLD`) and so unmapped when
  freed: glibc would otherwise raise that threshold after the first large free, and fetch buffers
  would fragment the heap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

TRIM_EVERY_SECONDS = 60.0


def _find_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim  # type: ignore[no-any-return]


_TRIM = _find_trim()
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # mallopt parameters (malloc.h)


def configure_allocator() -> bool:
    """Call before threads start; False where the C library has no `mallopt`."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, 2)) and bool(mallopt(_M_MMAP_THRESHOLD, 256 * 1024))


def release_free_memory() -> bool:
    """Return free heap pages to the OS; False where the C library has no `malloc_trim`."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
