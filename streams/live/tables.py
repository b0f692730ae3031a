"""The per-user state table: RocksDB (rocksdict) locally, a changelog topic for recovery."""

from __future__ import annotations

import msgpack

from streams.codec import encode_value
from streams.core.state import UserState

STATE_TABLE = "user_state"


def changelog_topic(app_id: str) -> str:
    """Faust's name for the table's changelog topic."""
    return f"{app_id}-{STATE_TABLE}-changelog"


def encode_state(state: UserState) -> bytes:
    return encode_value(state.to_wire())


def decode_state(raw: bytes) -> UserState:
    return UserState.from_wire(msgpack.unpackb(raw, raw=False))
