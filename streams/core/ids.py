"""Deterministic output ids: the same cause gives the same id, so a re-emission after a crash can be
de-duplicated downstream."""

from __future__ import annotations

import hashlib


def stable_id(prefix: str, *parts: object) -> str:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=10).hexdigest()
    return f"{prefix}-{digest}"
