"""The state table's values: whole states round-trip, and the index fields decode alone."""

from __future__ import annotations

from streams.core.state import UserState
from streams.core.triggers import watch_item
from streams.live.tables import decode_indexed, decode_state, encode_state


def test_the_index_fields_decode_without_the_rest_of_the_state() -> None:
    state = UserState("u\x00ü")
    watch_item(state, "i1", 2.0, True, 5)
    watch_item(state, "i2", None, False, 6)
    state.timers["cart_abandonment"] = 99
    raw = encode_state(state)
    assert decode_state(raw) == state
    assert decode_indexed(raw) == ("u\x00ü", {"cart_abandonment": 99}, ["i1", "i2"])
    assert decode_indexed(encode_state(UserState("new"))) == ("new", {}, [])
