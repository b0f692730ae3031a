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
from streams.live.malloc import configure_allocator, heap_usage
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "configured":
    assert configure_allocator()
libc.free(libc.malloc(8 << 20))  # glibc's own rule raises its mmap threshold to 8 MiB here
before = heap_usage()
block = libc.malloc(512 << 10)
after = heap_usage()
print(after["mapped"] - before["mapped"], after["in_use"] - before["in_use"])
"""


def run_allocation(mode: str) -> tuple[int, int]:
    """Growth of the mapped and the in-heap bytes (`heap_usage`) from one 512 KiB allocation."""
    done = subprocess.run(
        [sys.executable, "-c", ALLOCATE_AFTER_A_LARGE_FREE, mode], capture_output=True, text=True, check=True
    )
    mapped, in_heap = map(int, done.stdout.split())
    return mapped, in_heap


def test_large_buffers_stay_mapped_on_their_own_after_configuring() -> None:
    mapped, in_heap = run_allocation("default")
    assert mapped == 0 and in_heap >= 512 << 10  # glibc alone: a fetch-sized buffer comes from the heap
    mapped, in_heap = run_allocation("configured")
    assert mapped >= 512 << 10 and in_heap < 512 << 10  # mapped by itself, unmapped when freed
