"""How big per-user state is: bytes per active user as stored, and RocksDB on disk for N users."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
from rocksdict import Rdict

from streams.core.state import UserState
from streams.live.tables import encode_state


def state_sizes(states: Sequence[UserState]) -> dict[str, float]:
    """Encoded (msgpack, as the table and its changelog store it) bytes per user."""
    sizes = np.array([len(encode_state(s)) for s in states], dtype=np.float64)
    return {
        "users": len(sizes),
        "mean_bytes": round(float(sizes.mean()), 1),
        "p99_bytes": round(float(np.percentile(sizes, 99)), 1),
        "max_bytes": float(sizes.max()),
    }


def synthetic_states(templates: Sequence[UserState], count: int) -> Iterator[tuple[str, bytes]]:
    """`count` users, each a real state from `templates` under a new user id (sizes stay real).

    Each template is encoded once; per user only the id is encoded and spliced in as the map's first
    entry (a msgpack map is its header followed by its key/value pairs), which keeps a million
    users to seconds instead of minutes.
    """
    parts = []
    for template in templates:
        wire = template.to_wire()
        wire.pop("u")
        rest = b"".join(msgpack.packb(k) + msgpack.packb(v, use_bin_type=True) for k, v in wire.items())
        parts.append((_map_header(len(wire) + 1), rest))
    user_key = msgpack.packb("u")
    for n in range(count):
        user = f"bench-u{n}"
        header, rest = parts[n % len(parts)]
        yield user, header + user_key + msgpack.packb(user) + rest


def _map_header(size: int) -> bytes:
    if size < 16:
        return bytes([0x80 | size])
    return b"\xde" + size.to_bytes(2, "big")


def rocksdb_size(templates: Sequence[UserState], count: int, folder: Path | None = None) -> dict[str, Any]:
    """Write `count` users into a fresh RocksDB (rocksdict, as the worker's tables), compact, measure."""
    root = Path(tempfile.mkdtemp(prefix="bench-rocksdb-", dir=folder))
    try:
        db = Rdict(str(root / "db"))
        written = 0
        for user, value in synthetic_states(templates, count):
            db[user.encode()] = value
            written += len(value)
        db.flush()
        db.compact_range(None, None)
        db.close()
        on_disk = sum(p.stat().st_size for p in (root / "db").rglob("*") if p.is_file())
        return {
            "users": count,
            "value_bytes": written,
            "disk_bytes": on_disk,
            "disk_bytes_per_user": round(on_disk / count, 1),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
