from __future__ import annotations

import random
from dataclasses import fields

import msgpack

from streams.core.events import Click, Order, OrderLine, Position
from streams.core.processor import Processor
from streams.core.profile import Profile
from streams.core.state import SESSION_GAP_MS, RecentEvent, StateLimits, UserState, apply_event, is_duplicate


def click(n: int, ts: int, type_: str = "view", item: str | None = "a", **kw: object) -> Click:
    return Click(event_id=f"c{n}", user_id="u", type=type_, ts=ts, item_id=item, **kw)  # type: ignore[arg-type]


def order(n: int, ts: int, *items: str, status: str = "placed", order_id: str = "o1") -> Order:
    lines = tuple(OrderLine(i, 1, 9.5) for i in items)
    return Order(event_id=f"o{n}", user_id="u", order_id=order_id, status=status, items=lines, ts=ts)  # type: ignore[arg-type]


def run(events: list[Click | Order], limits: StateLimits | None = None) -> UserState:
    processor = Processor(limits=limits or StateLimits())
    state = None
    for event in events:
        state = processor.process(state, event).state
    assert state is not None
    return state


def test_cart_add_remove_and_order_clears_purchased_items() -> None:
    state = run(
        [
            click(1, 1000, "add_to_cart", "a", quantity=2),
            click(2, 2000, "add_to_cart", "b"),
            click(3, 3000, "remove_from_cart", "a", quantity=1),
            order(4, 4000, "b"),
        ]
    )
    assert state.cart_quantities() == {"a": 1}
    assert state.purchases["b"].order_id == "o1"
    assert state.counters == {"add_to_cart": 2, "remove_from_cart": 1, "order_placed": 1}
    assert (state.first_ts, state.last_ts) == (1000, 4000)


def test_apply_is_pure() -> None:
    before = run([click(1, 1000, "add_to_cart", "a")])
    snapshot = msgpack.packb(before.to_wire())
    apply_event(before, order(2, 2000, "a"))
    assert msgpack.packb(before.to_wire()) == snapshot


def test_every_transition_leaves_the_state_before_unchanged() -> None:
    # A state shares what the transition replaces rather than changes (cart lines, purchases, the
    # session): each kind of change must leave every earlier state as it was.
    events: list[Click | Order] = [
        click(1, 1000, "add_to_cart", "a", quantity=2, session_id="s1"),
        click(2, 2000, "add_to_cart", "a", price=3.0, session_id="s1"),
        click(3, 3000, "add_to_cart", "b", session_id="s1"),
        click(4, 4000, "remove_from_cart", "a", quantity=3, session_id="s1"),
        order(5, 5000, "b"),
        order(6, 6000, "b", status="cancelled"),
        click(7, 7000, "view", "c"),
        click(8, 8000, "view", "c"),
        click(9, 9000 + SESSION_GAP_MS, "add_to_cart", "a"),
        order(10, 9500 + SESSION_GAP_MS, "a", order_id="o2"),
    ]
    states: list[UserState] = []
    wires: list[bytes] = []
    for event in events:
        states.append(
            apply_event(states[-1] if states else None, event, limits=StateLimits(chunks_per_line=1))
        )
        wires.append(msgpack.packb(states[-1].to_wire()))
        assert [msgpack.packb(s.to_wire()) for s in states] == wires, f"after {event.event_id}"
    assert states[3].cart_quantities() == {"b": 1} and states[1].cart_quantities() == {"a": 3}
    assert states[5].purchases["b"].status == "cancelled" and states[4].purchases["b"].status == "placed"


def test_recent_window_is_bounded_and_sorted_by_event_time() -> None:
    limits = StateLimits(recent_events=5)
    state = run([click(i, 10_000 - i * 10) for i in range(20)], limits)
    assert len(state.recent) == 5
    assert [e.ts for e in state.recent] == sorted(e.ts for e in state.recent)
    # The newest five by event time survive, whatever the arrival order.
    assert [e.ts for e in state.recent] == [9960, 9970, 9980, 9990, 10_000]


def test_state_stays_bounded_under_hostile_volume() -> None:
    limits = StateLimits(recent_events=10, purchases=5, cart_lines=7, chunks_per_line=3)
    events: list[Click | Order] = []
    for i in range(500):
        events.append(click(i, i, "add_to_cart", f"i{i % 50}", quantity=1))
        if i % 9 == 0:
            events.append(order(10_000 + i, i, f"i{i % 50}", order_id=f"o{i}"))
    state = run(events, limits)
    assert len(state.recent) == 10
    assert len(state.cart) <= 7
    assert all(len(line.chunks) <= 3 for line in state.cart.values())
    assert len(state.purchases) <= 5
    assert len(msgpack.packb(state.to_wire())) < 4096


def test_redelivered_offset_and_repeated_event_id_are_not_applied_twice() -> None:
    processor = Processor()
    first = processor.process(None, click(1, 1000, "add_to_cart"), Position("clicks", 3, 41))
    again = processor.process(first.state, click(1, 1000, "add_to_cart"), Position("clicks", 3, 41))
    assert not again.applied and again.state is first.state
    older = processor.process(first.state, click(9, 900), Position("clicks", 3, 40))
    assert not older.applied
    retry = processor.process(first.state, click(1, 1000, "add_to_cart"), Position("clicks", 3, 77))
    assert not retry.applied  # same event id produced twice by a retrying producer
    other_partition = processor.process(first.state, click(2, 1100), Position("orders", 3, 5))
    assert other_partition.applied
    assert is_duplicate(other_partition.state, click(2, 1100), None)


def test_sessions_follow_session_id_or_split_on_inactivity() -> None:
    state = run([click(1, 0), click(2, SESSION_GAP_MS), click(3, 2 * SESSION_GAP_MS + 1)])
    assert state.session is not None and state.session.derived
    assert state.session.start_ts == 2 * SESSION_GAP_MS + 1 and state.session.events == 1
    state = run([click(1, 0, session_id="s1"), click(2, 10 * SESSION_GAP_MS, session_id="s1")])
    assert state.session is not None and state.session.id == "s1" and state.session.events == 2


def test_cancel_and_return_mark_the_purchase() -> None:
    state = run([order(1, 100, "a", "b"), order(2, 200, "a", status="cancelled")])
    assert state.purchases["a"].status == "cancelled"
    assert state.purchases["b"].status == "placed"


def test_wire_round_trip() -> None:
    state = run(
        [click(1, 5, "add_to_cart", "a", session_id="s"), order(2, 9, "a"), click(3, 12, "search", None)]
    )
    raw = msgpack.unpackb(msgpack.packb(state.to_wire()), raw=False)
    assert UserState.from_wire(raw) == state


def _random_user_log(rng: random.Random, n: int) -> tuple[list[Click], list[Order]]:
    clicks: list[Click] = []
    orders: list[Order] = []
    ts = 0
    for i in range(n):
        ts += rng.choice([0, 1, 5, 60_000, 3 * SESSION_GAP_MS])
        item = f"i{rng.randrange(6)}"
        r = rng.random()
        if r < 0.45:
            clicks.append(click(i, ts, "view", item))
        elif r < 0.7:
            clicks.append(click(i, ts, "add_to_cart", item, quantity=rng.randint(1, 3)))
        elif r < 0.8:
            qty = rng.choice([None, 1, 2])
            clicks.append(click(i, ts, "remove_from_cart", item, quantity=qty))
        elif r < 0.85:
            clicks.append(click(i, ts, "search", None, query="q"))
        else:
            status = rng.choice(["placed", "placed", "placed", "cancelled", "returned"])
            items = sorted({f"i{rng.randrange(6)}" for _ in range(rng.randint(1, 3))})
            orders.append(order(i, ts, *items, status=status, order_id=f"o{rng.randrange(3)}"))
    return clicks, orders


def test_final_state_does_not_depend_on_how_the_two_topics_interleave() -> None:
    # The live worker consumes clicks and orders independently; only per-topic order is guaranteed.
    rng = random.Random(7)
    for trial in range(300):
        clicks, orders = _random_user_log(rng, rng.randint(1, 40))
        in_time_order = sorted([*clicks, *orders], key=lambda e: (e.ts, e.source == "orders"))
        expected = run(in_time_order, StateLimits(recent_events=100)) if in_time_order else None
        for _ in range(5):
            merged: list[Click | Order] = []
            a, b = list(clicks), list(orders)
            while a or b:
                source = a if (a and (not b or rng.random() < 0.5)) else b
                merged.append(source.pop(0))
            got = run(merged, StateLimits(recent_events=100)) if merged else None
            assert got == expected, f"trial {trial}"


def test_copy_carries_every_field_and_owns_its_containers() -> None:
    state = run(
        [
            click(1, 1000, "add_to_cart", "a", session_id="s", marketing_consent=True),
            order(2, 2000, "a"),
            click(3, 3000, "view", "b", category="shoes", price=20.0),
        ]
    )
    state.timers["cart_abandonment"] = 9000
    state.fired.append([3000, "browse_abandonment", "t1"])
    state.watch["b"] = [20.0, True, 3000]
    state.intent, state.segments, state.recommendation = 0.5, ["s1"], ["r1"]
    copied = state.copy()
    for f in fields(UserState):
        assert getattr(copied, f.name) == getattr(state, f.name), f.name
    for f in fields(Profile):
        assert getattr(copied.profile, f.name) == getattr(state.profile, f.name), f.name
    changed = ("recent", "cart", "purchases", "counters", "seq", "offsets", "timers", "fired", "watch")
    for name in changed:
        assert getattr(copied, name) is not getattr(state, name), name
    assert copied.profile is not state.profile and copied.profile.interest is not state.profile.interest


def test_recent_events_round_trip_the_wire_and_sort_by_time_topic_and_arrival() -> None:
    built = RecentEvent(5, 0, 3, "e", "view", "a", "shoes")
    assert built.to_wire() == [5, 0, 3, "e", "view", "a", "shoes"]
    assert RecentEvent.from_wire(built.to_wire()) == built
    assert RecentEvent.from_wire([5, 1, 2, "e", "order_placed"]) == RecentEvent(5, 1, 2, "e", "order_placed")
    later_topic, later_arrival, later_time = (
        RecentEvent(5, 1, 1, "o", "order_placed"),
        RecentEvent(5, 0, 4, "f", "view"),
        RecentEvent(6, 0, 1, "g", "view"),
    )
    assert sorted([later_time, later_topic, built, later_arrival]) == [
        built,
        later_arrival,
        later_topic,
        later_time,
    ]
