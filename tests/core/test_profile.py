"""Profiles in the user state: decayed interest, typical price, RFM, lifecycle; bounded and compact."""

from __future__ import annotations

import msgpack
import pytest

from streams.codec import encode_value
from streams.core.catalog import CatalogItem
from streams.core.config import DAY, HOUR, RulesConfig
from streams.core.events import Click, Order, OrderLine
from streams.core.processor import Processor
from streams.core.profile import (
    INTEREST_HALF_LIFE_MS,
    Profile,
    interest_at,
    interest_shares,
    lifecycle,
    price_band,
    profile_document,
    top_category,
)
from streams.core.state import StateLimits, UserState
from streams.generate import TrafficConfig, generate_traffic
from streams.live.tables import decode_state, encode_state
from streams.offline.engine import OfflineEngine

T0 = 1_700_000_000_000


def view(n: int, ts: int, category: str | None = "books", price: float | None = None, **kw: object) -> Click:
    return Click(f"c{n}", "u", kw.pop("type", "view"), ts, f"i{n}", category=category, price=price, **kw)  # type: ignore[arg-type]


def placed(n: int, ts: int, total: float, status: str = "placed", order_id: str | None = None) -> Order:
    line = (OrderLine(f"i{n}", 1, total),)
    return Order(f"o{n}", "u", order_id or f"ord{n}", status, line, ts)  # type: ignore[arg-type]


def run(events: list[Click | Order], processor: Processor | None = None) -> UserState:
    processor = processor or Processor()
    state = None
    for event in events:
        state = processor.process(state, event).state
    assert state is not None
    return state


def test_interest_decays_with_event_time_and_cart_adds_count_more() -> None:
    state = run([view(1, T0, "books"), view(2, T0, "garden", type="add_to_cart")])
    assert state.profile.interest == {"books": 1000, "garden": 3000}
    state = Processor().process(state, view(3, T0 + INTEREST_HALF_LIFE_MS, "toys")).state
    # One half-life later the old interest counts half, the new click in full.
    assert state.profile.interest == {"books": 500, "garden": 1500, "toys": 1000}
    assert interest_at(state.profile, T0 + 2 * INTEREST_HALF_LIFE_MS) == {
        "garden": 0.75,
        "toys": 0.5,
        "books": 0.25,
    }


def test_a_late_click_counts_what_it_would_have_by_now() -> None:
    in_order = run([view(1, T0, "books"), view(2, T0 + INTEREST_HALF_LIFE_MS, "books")])
    late = run([view(2, T0 + INTEREST_HALF_LIFE_MS, "books"), view(1, T0, "books")])
    assert in_order.profile.interest == late.profile.interest == {"books": 1500}


def test_categories_are_capped_and_a_new_interest_pushes_out_the_weakest() -> None:
    processor = Processor(limits=StateLimits(interest_categories=3))
    events = [view(i, T0 + i, f"cat{i}", type="add_to_cart" if i < 3 else "view") for i in range(6)]
    state = run(events, processor)
    assert len(state.profile.interest) == 3
    # The three carted categories were strongest; the newest view always stays.
    assert set(state.profile.interest) == {"cat1", "cat2", "cat5"}


def test_category_and_price_come_from_the_catalog_when_the_click_has_none() -> None:
    catalog = {"i1": CatalogItem("i1", T0, price=249.0, category="electronics")}
    state = run([view(1, T0, category=None)], Processor(catalog=catalog))
    assert state.profile.interest == {"electronics": 1000}
    assert state.profile.price_cents == 24900
    assert price_band(state.profile, RulesConfig()) == "premium"


def test_typical_price_is_a_moving_geometric_mean() -> None:
    state = run([view(1, T0, price=10.0), view(2, T0 + 1, price=10.0), view(3, T0 + 2, price=1000.0)])
    # 10 * (1000 / 10) ** 0.2 = 25.12: one expensive view moves it, it does not take it over.
    assert state.profile.price_cents == 2512
    assert price_band(state.profile, RulesConfig()) == "mid"


def test_recency_frequency_monetary_net_of_cancellations_and_returns() -> None:
    state = run(
        [
            placed(1, T0, 50.0),
            placed(2, T0 + DAY, 30.0),
            placed(3, T0 + 2 * DAY, 20.0),
            placed(4, T0 + 3 * DAY, 30.0, status="cancelled", order_id="ord2"),
            placed(5, T0 + 4 * DAY, 20.0, status="returned", order_id="ord3"),
        ]
    )
    p = state.profile
    assert (p.orders, p.spend_cents, p.last_order_ts) == (2, 5000, T0 + 2 * DAY)
    doc = profile_document(state, RulesConfig(), T0 + 12 * DAY)
    assert doc["rfm"] == {"recency_days": 10.0, "frequency": 2, "monetary": 50.0}


@pytest.mark.parametrize(
    ("first", "last", "now", "stage"),
    [
        (0, 0, 1 * DAY, "new"),
        (0, 20 * DAY, 21 * DAY, "active"),
        (0, 20 * DAY, 50 * DAY, "at_risk"),
        (0, 20 * DAY, 110 * DAY, "lapsed"),
        (0, 0, 0, "new"),
    ],
)
def test_lifecycle_stages(first: int, last: int, now: int, stage: str) -> None:
    assert lifecycle(first, last, now, RulesConfig()) == stage


def test_profile_document_is_bounded_and_documented() -> None:
    state = run([view(i, T0 + i * HOUR, f"category-{i}", price=5.0 + i) for i in range(40)])
    doc = profile_document(state, RulesConfig(), T0 + 2 * DAY)
    assert len(doc["interests"]) == StateLimits().interest_categories
    assert doc["interests"][0]["category"] == "category-39"  # the newest is the strongest
    assert set(doc) == {
        "user_id",
        "as_of",
        "lifecycle",
        "first_seen",
        "last_seen",
        "interests",
        "price",
        "rfm",
        "events",
        "purchase_intent",
        "segments",
    }
    assert doc["lifecycle"] == "new" and doc["price"]["band"] == "mid"  # recent views cost 35 to 44


def test_states_written_before_profiles_still_decode() -> None:
    state = run([view(1, T0), placed(2, T0 + 1, 12.5)])
    wire = state.to_wire()
    old = {k: v for k, v in wire.items() if k not in ("f", "g")}
    decoded = UserState.from_wire(msgpack.unpackb(msgpack.packb(old), raw=False))
    assert decoded.profile.interest == {} and decoded.segments == [] and decoded.intent is None
    assert decoded.cart == state.cart and decoded.recent == state.recent
    assert decode_state(encode_state(state)) == state


def test_profile_and_segments_add_little_to_the_state() -> None:
    # Busy shoppers (about 70 events each): every state holds a full recent-event window.
    records = list(generate_traffic(TrafficConfig(users=300, items=1000, events=20_000, seed=5)))
    states = OfflineEngine(Processor(catalog={}), partitions=4).run(records).states.values()
    sizes = [len(encode_state(s)) for s in states]
    without = [
        len(encode_value({k: v for k, v in s.to_wire().items() if k not in ("f", "g")})) for s in states
    ]
    added = [a - b for a, b in zip(sizes, without, strict=True)]
    assert max(sizes) <= 4096, max(sizes)  # the per-user target (docs/performance.md)
    assert sum(added) / len(added) < 200 and max(added) < 400, (sum(added) / len(added), max(added))


def test_top_category_is_the_first_of_the_interest_shares() -> None:
    for interest in ({}, {"books": 5}, {"a": 3, "b": 7, "c": 7}, {"z": 1, "y": 1}, {"x": 0}):
        profile = Profile(interest=dict(interest))
        assert top_category(profile) == next(iter(interest_shares(profile)), None), interest


def test_price_band_edges_belong_to_the_band_above() -> None:
    config = RulesConfig()  # budget < 20 <= mid < 60 <= upper < 150 <= premium
    expected = {1: "budget", 1999: "budget", 2000: "mid", 5999: "mid", 6000: "upper", 14999: "upper"}
    expected |= {15000: "premium", 10**9: "premium"}
    for cents, band in expected.items():
        assert price_band(Profile(price_cents=cents), config) == band, cents
    assert price_band(Profile(), config) is None


def test_price_band_edges_must_ascend_however_the_rules_are_made() -> None:
    with pytest.raises(ValueError, match="ascending"):
        RulesConfig(price_band_edges=(60.0, 20.0, 150.0))
    with pytest.raises(ValueError, match="ascending"):
        RulesConfig.from_mapping({"price_band_edges": [20, 60]})
