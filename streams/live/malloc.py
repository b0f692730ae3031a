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
from typing import Any

TRIM_EVERY_SECONDS = 60.0
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # mallopt parameters (malloc.h)


def _libc_function(name: str, argtypes: list[Any]) -> Any | None:
    """A glibc function with its C signature, or None where the C library lacks it."""
    library = ctypes.util.find_library("c")
    try:
        function = getattr(ctypes.CDLL(library), name) if library else None
    except (OSError, AttributeError):
        return None
    if function is not None:
        function.argtypes, function.restype = argtypes, ctypes.c_int
    return function


_TRIM = _libc_function("malloc_trim", [ctypes.c_size_t])
_MALLOPT = _libc_function("mallopt", [ctypes.c_int, ctypes.c_int])


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost",
        )
    ]  # fmt: skip


_MALLINFO2 = _libc_function("mallinfo2", [])
if _MALLINFO2 is not None:
    _MALLINFO2.restype = _MallInfo2


def configure_allocator() -> bool:
    """Call before threads start; False where the C library has no `mallopt`."""
    if _MALLOPT is None:
        return False
    return bool(_MALLOPT(_M_ARENA_MAX, 2)) and bool(_MALLOPT(_M_MMAP_THRESHOLD, 256 * 1024))


def heap_usage() -> dict[str, int] | None:
    """The C heap of all arenas, in bytes: blocks in use, free blocks the arenas keep, and blocks
    mapped on their own (256 KiB and up); None where the C library has no `mallinfo2` (glibc < 2.33).

    Resident memory mixes what is held with what fragmentation keeps: these tell the two apart.
    """
    if _MALLINFO2 is None:
        return None
    info = _MALLINFO2()
    return {"in_use": info.uordblks, "free": info.fordblks, "mapped": info.hblkhd}


def release_free_memory() -> bool:
    """Return free heap pages to the OS; False where the C library has no `malloc_trim`."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
