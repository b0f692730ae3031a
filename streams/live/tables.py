"""The per-user state table's values: a `UserState` as msgpack (the table is RocksDB locally, its
changelog topic `Settings.changelog_topic(STATE_TABLE)`)."""

from __future__ import annotations

import msgpack

from streams.codec import encode_value
from streams.core.state import UserState


def encode_state(state: UserState) -> bytes:
    return encode_value(state.to_wire())


def decode_state(raw: bytes) -> UserState:
    return UserState.from_wire(msgpack.unpackb(raw, raw=False))
