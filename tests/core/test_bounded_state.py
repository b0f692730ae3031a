"""Whatever valid events arrive, in whatever number and order, a user's state stays within its caps."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.config import RulesConfig
from streams.core.events import Click, Order, OrderLine, Position
from streams.core.processor import Incoming, Processor
from streams.core.state import StateLimits
from streams.core.timers import COMPACT_SLACK, TimerIndex
from streams.core.trending import Trending
from streams.live.tables import encode_state
from tests.core.bounds import assert_bounded
from tests.core.fakes import FakeRecommender

MAX_TS = 9_999_999_999_999
# Small caps so a few hundred events overflow every one of them.
LIMITS = StateLimits(recent_events=5, purchases=4, cart_lines=3, chunks_per_line=2)

ids = st.text(min_size=1, max_size=128) | st.sampled_from([f"sku-{n}" for n in range(12)])
ts = st.integers(0, MAX_TS) | st.integers(1_700_000_000_000, 1_700_000_600_000)
price = st.none() | st.floats(0, 1e9, allow_nan=False)
clicks = st.builds(
    Click,
    event_id=ids,
    user_id=st.sampled_from(["u1", "u2"]),
    type=st.sampled_from(["view", "add_to_cart", "remove_from_cart", "search"]),
    ts=ts,
    item_id=ids,
    session_id=st.none() | ids,
    quantity=st.none() | st.integers(1, 10_000),
    price=price,
    category=st.none() | st.text(max_size=128),
    marketing_consent=st.none() | st.booleans(),
)
orders = st.builds(
    Order,
    event_id=ids,
    user_id=st.sampled_from(["u1", "u2"]),
    order_id=ids,
    status=st.sampled_from(["placed", "cancelled", "returned"]),
    items=st.lists(st.builds(OrderLine, ids, st.integers(1, 10_000), price), min_size=1, max_size=30).map(
        tuple
    ),
    ts=ts,
)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(clicks | orders, min_size=1, max_size=300), batch=st.integers(1, 64))
def test_state_stays_within_its_caps(events: list[Click | Order], batch: int) -> None:
    processor = Processor(FakeRecommender(), RulesConfig(), LIMITS, catalog={})
    states: dict = {}
    partitions: dict = {}
    timers = TimerIndex()
    incoming = [Incoming(e, 0, Position(e.source, 0, n)) for n, e in enumerate(events)]
    for start in range(0, len(incoming), batch):
        result = processor.process_batch(incoming[start : start + batch], states.get, partitions, timers)
        states.update(result.states)
        for state in result.states.values():
            assert_bounded(state, LIMITS)
            # ids are capped at 128 characters by the schemas, so capped collections cap the bytes.
            assert len(encode_state(state)) < 64 * 1024
        live_timers = sum(len(t) for t in timers.latest.values())
        assert len(timers) <= 2 * live_timers + COMPACT_SLACK + 3 * batch  # compacted before a batch
    trending: Trending = partitions[0].trending
    assert len(trending.counts) <= 2 * trending.capacity
