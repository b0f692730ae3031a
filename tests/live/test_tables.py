"""The state table's values: whole states round-trip, and the index fields decode alone."""

from __future__ import annotations

import msgpack

from streams.bench.run import TrafficConfig, default_model_dir, generate_traffic
from streams.core.state import UserState
from streams.core.triggers import watch_item
from streams.live.tables import decode_indexed, decode_state, encode_state
from streams.offline.replay import Variant, run_offline


def test_the_index_fields_decode_without_the_rest_of_the_state() -> None:
    state = UserState("u\x00ü")
    watch_item(state, "i1", 2.0, True, 5)
    watch_item(state, "i2", None, False, 6)
    state.timers["cart_abandonment"] = 99
    raw = encode_state(state)
    assert decode_state(raw) == state
    assert decode_indexed(raw) == ("u\x00ü", {"cart_abandonment": 99}, ["i1", "i2"])
    assert decode_indexed(encode_state(UserState("new"))) == ("new", {}, [])


def test_states_are_written_as_msgpack_writes_them_and_read_back_whole() -> None:
    """States written before the codec changed are read alike, and one state has one encoding."""
    log = list(generate_traffic(TrafficConfig(users=60, items=200, events=1500, seed=3)))
    states = list(run_offline(log, Variant(default_model_dir()), 4).result.states.values())
    assert any(s.model is not None for s in states) and any(s.cart for s in states)
    for state in states:
        raw = encode_state(state)
        assert raw == msgpack.packb(state.to_wire(), use_bin_type=True)
        assert decode_state(raw) == state == UserState.from_wire(msgpack.unpackb(raw, raw=False))
