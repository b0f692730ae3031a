"""Freed C heap pages go back to the OS, even below a block that is still in use."""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import sys
from pathlib import Path

from streams.live.malloc import release_free_memory


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_free_pages_inside_the_heap_are_returned() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(4096) for _ in range(40_000)]  # 160 MiB, below glibc's mmap threshold
    for block in blocks:
        ctypes.memset(block, 1, 4096)  # touched: resident
    for block in blocks[:-1]:
        libc.free(block)  # the last one pins the heap's top: only trimming inside helps
    before = rss_bytes()
    assert release_free_memory()
    assert before - rss_bytes() > 100 * 1024 * 1024
    libc.free(blocks[-1])


ALLOCATE_AFTER_A_LARGE_FREE = """
import ctypes, ctypes.util, sys
from streams.live.malloc import configure_allocator
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = Info
if sys.argv[1] == "configured":
    assert configure_allocator()
libc.free(libc.malloc(8 << 20))  # glibc's own rule raises its mmap threshold to 8 MiB here
before = libc.mallinfo2().hblks
block = libc.malloc(512 << 10)
print(libc.mallinfo2().hblks - before)
"""


def run_allocation(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", ALLOCATE_AFTER_A_LARGE_FREE, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def test_large_buffers_stay_mapped_on_their_own_after_configuring() -> None:
    assert run_allocation("default") == 0  # glibc alone: a fetch-sized buffer now comes from the heap
    assert run_allocation("configured") == 1  # mapped by itself, unmapped when freed
