"""Where a live worker spends its time: a py-spy sample of the process under maximum load.

py-spy samples the running process from outside (no instrumentation, so the worker runs at full
speed). The raw stacks are folded into two tables, by own time and by inclusive time of our code.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


def start_sampling(pid: int, seconds: float, raw: Path) -> subprocess.Popen[bytes] | None:
    binary = py_spy()
    if binary is None:
        print("py-spy not installed (pip install -e '.[bench]'): no worker profile")
        return None
    return subprocess.Popen(
        [
            binary,
            "record",
            "-p",
            str(pid),
            "-d",
            str(int(seconds)),
            "-r",
            "200",
            "-f",
            "raw",
            "-o",
            str(raw),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summarize(raw: Path, out: Path, rows: int = 30) -> None:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = unreadable = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            # Sampled without pausing the worker (`--nonblocking`), py-spy can read a stack while it
            # changes: such a line is garbage, left out rather than failing the whole bench.
            unreadable += 1
            continue
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    lines = [f"{total} samples of the worker at maximum rate ({unreadable} unreadable lines left out)"]
    lines += ["", "by own time:"]
    lines += [f"{100 * n / total:6.1f}%  {frame}" for frame, n in own.most_common(rows)]
    lines += ["", "inclusive, streams code:"]
    ours = [(f, n) for f, n in inclusive.most_common() if "streams/" in f and "site-packages" not in f]
    lines += [f"{100 * n / total:6.1f}%  {frame}" for frame, n in ours[:rows]]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
