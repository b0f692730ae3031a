"""The per-user state table's values: a `UserState` as msgpack (the table is RocksDB locally, its
changelog topic `Settings.changelog_topic(STATE_TABLE)`)."""

from __future__ import annotations

import msgspec

from streams.core.state import UserState

# A worker reads and writes the state of every shopper of a batch: msgspec's msgpack codec takes
# about half the time of msgpack's, and writes the same bytes (tests/live/test_tables.py).
_state_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder()


def encode_state(state: UserState) -> bytes:
    return _state_encoder.encode(state.to_wire())


def decode_state(raw: bytes) -> UserState:
    return UserState.from_wire(_state_decoder.decode(raw))


class _Engagement(msgspec.Struct, array_like=True):
    """`UserState.to_wire`'s "e": [consent, timers, fired, watch, replayed]; only the timers and
    the watched item ids are built."""

    consent: msgspec.Raw
    timers: dict[str, int]
    fired: msgspec.Raw
    watch: dict[str, msgspec.Raw]


class _IndexedFields(msgspec.Struct):
    """The fields of `UserState.to_wire` the worker's derived indexes need: the decoder skips the
    rest (the recent events, the cart, the profile) without building them, a tenth of the cost of a
    whole state, which is what rebuilding a million users' indexes spends most on."""

    u: str
    e: _Engagement | None = None  # absent in older states


_indexed_decoder = msgspec.msgpack.Decoder(_IndexedFields)


def decode_indexed(raw: bytes) -> tuple[str, dict[str, int], list[str]]:
    """(user id, timers: trigger kind -> due event time, watched item ids) of an encoded state."""
    fields = _indexed_decoder.decode(raw)
    if fields.e is None:
        return fields.u, {}, []
    return fields.u, fields.e.timers, list(fields.e.watch)
