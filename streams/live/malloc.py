"""Hand freed heap pages back to the operating system (glibc's `malloc_trim`).

RocksDB's block cache allocates and frees blocks all day through the C allocator. glibc keeps what
is freed inside its arenas, scattered between live blocks, so a worker's resident memory creeps up
by fragmentation even when what it holds is bounded (`make soak` showed a few MiB per 10 minutes
with a flat amount in use). `malloc_trim(0)` returns those free pages; a call takes milliseconds,
so the worker makes one a minute. Elsewhere (musl, macOS) it does nothing.
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


def release_free_memory() -> bool:
    """Return free heap pages to the OS; False where the C library has no `malloc_trim`."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
