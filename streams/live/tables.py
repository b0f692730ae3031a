"""The per-user state table: RocksDB (rocksdict) locally, a changelog topic for recovery."""

from __future__ import annotations

import msgpack
from faust.types import TableT

from streams.codec import encode_value
from streams.core.state import UserState

STATE_TABLE = "user_state"


def changelog_topic(app_id: str) -> str:
    """Faust's name for the table's changelog topic."""
    return f"{app_id}-{STATE_TABLE}-changelog"


def decode_state(raw: bytes) -> UserState:
    return UserState.from_wire(msgpack.unpackb(raw, raw=False))


class UserStateTable:
    """Typed access to the Faust table; keys are user ids as UTF-8, values msgpack'd `UserState`."""

    def __init__(self, table: TableT) -> None:
        self.table = table

    def load(self, user_id: str) -> UserState | None:
        raw = self.table.get(user_id.encode())
        return None if raw is None else decode_state(raw)

    def store(self, state: UserState) -> None:
        self.table[state.user_id.encode()] = encode_value(state.to_wire())
