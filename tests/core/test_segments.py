"""Audience segments: rules from config, enter / exit events with deterministic ids, consent, time."""

from __future__ import annotations

from pathlib import Path

import pytest
from simpleeval import EvalWithCompoundTypes

from streams.core.config import DAY, DEFAULT_SEGMENTS, RulesConfig, Segment
from streams.core.processor import Output, Processor
from streams.core.segments import _ALLOWED_CALLS, AUDIENCE_SEGMENTS, FACTS, Facts, SegmentRules, facts
from streams.schemas import validate
from tests.core.fakes import FakeRecommender
from tests.core.test_processor import T0, Driver, click, order


def segment_events(outputs: list[Output], segment: str | None = None) -> list[dict]:
    return [
        o.value
        for o in outputs
        if o.topic == AUDIENCE_SEGMENTS and (segment is None or o.value["segment"] == segment)
    ]


def scripted_cart_shopper() -> list:
    return [
        click(1, "u", T0, "view", item="sku-1", price=80.0),
        click(2, "u", T0 + 1000, "add_to_cart", item="sku-1", price=80.0),
        click(3, "u", T0 + 2000, "add_to_cart", item="sku-2", price=40.0),  # cart 120: enters
        click(4, "u", T0 + 3000, "view", item="sku-3", price=15.0),  # still 120: nothing new
        click(5, "u", T0 + 4000, "remove_from_cart", item="sku-1"),  # cart 40: exits
        click(6, "u", T0 + 5000, "view", item="sku-4", price=15.0),
    ]


def test_a_scripted_shopper_enters_then_exits_a_segment_exactly_once() -> None:
    outputs = Driver(Processor(FakeRecommender())).run(scripted_cart_shopper())
    events = segment_events(outputs, "cart_over_100")
    assert [(e["action"], e["cause_event_id"]) for e in events] == [("enter", "e3"), ("exit", "e5")]
    assert events[0]["reason"] == "cart_value > 100"
    assert events[1]["reason"] == "no longer: cart_value > 100"
    assert all(e["ts"] == T0 + 2000 * (i + 1) for i, e in enumerate(events))
    for value in segment_events(outputs):
        validate("audience_segment", value)
    # Same cause, same ids: a re-run (or a re-emission after a crash) can be de-duplicated.
    again = segment_events(Driver(Processor(FakeRecommender())).run(scripted_cart_shopper()))
    assert [e["event_id"] for e in again] == [e["event_id"] for e in segment_events(outputs)]
    assert len({e["event_id"] for e in again}) == len(again)


def test_membership_is_kept_in_the_state() -> None:
    driver = Driver(Processor(FakeRecommender()))
    driver.run(scripted_cart_shopper()[:3])
    assert "cart_over_100" in driver.states["u"].segments
    driver.run(scripted_cart_shopper()[3:])
    assert "cart_over_100" not in driver.states["u"].segments


def test_opting_out_exits_every_segment_and_nothing_enters_until_consent_returns() -> None:
    driver = Driver(Processor(FakeRecommender()))
    entered = segment_events(driver.run(scripted_cart_shopper()[:3]))
    assert {e["segment"] for e in entered} >= {"cart_over_100", "new_shopper"}
    out = driver.run([click(7, "u", T0 + 6000, "view", item="sku-5", marketing_consent=False)])
    exits = segment_events(out)
    assert {e["segment"] for e in exits} == {e["segment"] for e in entered}
    assert {e["action"] for e in exits} == {"exit"}
    assert {e["reason"] for e in exits} == {"marketing consent withdrawn"}
    assert driver.states["u"].segments == []
    assert (
        segment_events(driver.run([click(8, "u", T0 + 7000, "add_to_cart", item="sku-6", price=500.0)])) == []
    )
    back = segment_events(
        driver.run([click(9, "u", T0 + 8000, "view", item="sku-7", marketing_consent=True)])
    )
    assert {e["action"] for e in back} == {"enter"} and "cart_over_100" in {e["segment"] for e in back}


def test_require_opt_in_keeps_shoppers_without_consent_out() -> None:
    driver = Driver(Processor(FakeRecommender(), RulesConfig(require_opt_in=True)))
    assert segment_events(driver.run(scripted_cart_shopper()[:3])) == []


def test_a_frequent_buyer_gone_quiet_enters_at_risk_when_event_time_passes_the_boundary() -> None:
    driver = Driver(Processor(FakeRecommender()))
    buys = [order(n, "buyer", T0 + n * DAY, f"sku-{n}") for n in range(1, 4)]
    out = driver.run([click(0, "buyer", T0, item="sku-9"), *buys])
    assert "frequent_buyer" in {e["segment"] for e in segment_events(out) if e["action"] == "enter"}
    last = T0 + 3 * DAY
    boundary = -(-(last + 30 * DAY) // DAY) * DAY  # 30 quiet days, on the next whole day
    # Event time moves on through another shopper on the same partition.
    assert segment_events(driver.run([click(10, "other", boundary - 1)]), "at_risk_frequent_buyer") == []
    [event] = segment_events(driver.run([click(11, "other", boundary)]), "at_risk_frequent_buyer")
    assert (event["user_id"], event["action"], event["ts"]) == ("buyer", "enter", boundary)
    assert "cause_event_id" not in event
    validate("audience_segment", event)
    # Lapsed is still "gone quiet": no change at 90 days; coming back exits.
    assert segment_events(driver.run([click(12, "other", last + 100 * DAY)]), "at_risk_frequent_buyer") == []
    [back] = segment_events(driver.run([click(13, "buyer", last + 101 * DAY)]), "at_risk_frequent_buyer")
    assert back["action"] == "exit" and back["cause_event_id"] == "e13"


def test_segments_come_from_the_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        "[[segments]]\n"
        'id = "book_lover"\n'
        "when = \"interest.get('books', 0) >= 0.5 and events >= 2\"\n"
        'description = "mostly books"\n'
    )
    config = RulesConfig.load(rules)
    assert config.segments == (
        Segment("book_lover", "interest.get('books', 0) >= 0.5 and events >= 2", "mostly books"),
    )
    driver = Driver(Processor(FakeRecommender(), config))
    out = driver.run(
        [
            click(1, "u", T0, category="books"),
            click(2, "u", T0 + 1, category="books"),
            click(3, "u", T0 + 2, "add_to_cart", category="toys"),
        ]
    )
    assert [(e["segment"], e["action"], e["cause_event_id"]) for e in segment_events(out)] == [
        ("book_lover", "enter", "e2"),
        ("book_lover", "exit", "e3"),
    ]
    assert not SegmentRules(config).time_dependent  # no lifecycle: no timers for these shoppers
    assert "segments" not in driver.states["u"].timers


@pytest.mark.parametrize(
    ("segment", "message"),
    [
        ({"id": "x", "when": "cart_valeu > 100"}, "unknown name(s) cart_valeu"),
        ({"id": "x", "when": "cart_value >"}, "cannot parse"),
        ({"id": "x", "when": "cart_value.__class__"}, "segment x"),
        ({"id": "Bad Id", "when": "orders > 1"}, "must match"),
        ({"id": "x", "when": "orders > 1", "colour": "red"}, "unknown segment setting"),
    ],
)
def test_a_bad_segment_is_a_clear_error_at_load_time(segment: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SegmentRules(RulesConfig.from_mapping({"segments": [segment]}))


def test_duplicate_segment_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        RulesConfig.from_mapping({"segments": [{"id": "a", "when": "orders > 1"}] * 2})


def test_a_segment_removed_from_the_config_exits_on_the_next_event() -> None:
    driver = Driver(Processor(FakeRecommender()))
    driver.run(scripted_cart_shopper()[:3])
    narrower = RulesConfig(segments=(Segment("cart_over_100", "cart_value > 100"),))
    driver.processor = Processor(FakeRecommender(), narrower)
    out = segment_events(driver.run([click(20, "u", T0 + 10_000, item="sku-9")]))
    assert {e["reason"] for e in out} == {"segment no longer configured"}
    assert driver.states["u"].segments == ["cart_over_100"]


def test_facts_are_computed_when_read_and_equal_the_full_set() -> None:
    driver = Driver(Processor(FakeRecommender()))
    driver.run(scripted_cart_shopper()[:4])
    state, config = driver.states["u"], RulesConfig()
    lazy = Facts(state, 0.4, T0 + DAY, config, None)
    assert len(lazy) == 0
    assert lazy["top_category"] is None and lazy["cart_value"] == 120.0
    assert sorted(lazy) == ["cart_value", "top_category"]
    full = facts(state, 0.4, T0 + DAY, config)
    assert list(full) == list(FACTS)
    assert {name: Facts(state, 0.4, T0 + DAY, config, None)[name] for name in FACTS} == full


def test_matching_answers_as_simpleeval_rule_by_rule_compiled_or_not() -> None:
    driver = Driver(Processor(FakeRecommender()))
    buys = [order(n, "buyer", T0 + n * DAY, f"sku-{n}") for n in range(1, 4)]
    driver.run([*scripted_cart_shopper()[:3], click(0, "buyer", T0, item="sku-9"), *buys])
    more = (
        Segment("not_compiled", "max(orders, 1, key=abs) >= 3"),  # keyword arguments: simpleeval's
        Segment("a_null_compared", "days_since_order > 30"),  # TypeError where no order: not matched
    )
    evaluator = EvalWithCompoundTypes(functions=_ALLOWED_CALLS)

    def holds(when: str) -> bool:
        try:
            return bool(evaluator.eval(when))
        except TypeError:
            return False

    for config, all_compiled in (
        (RulesConfig(), True),
        (RulesConfig(segments=(*DEFAULT_SEGMENTS, *more)), False),
    ):
        rules = SegmentRules(config)
        assert rules.all_compiled is all_compiled
        for state in driver.states.values():
            for intent in (None, 0.6):
                for now in (T0 + 4 * DAY, T0 + 40 * DAY):
                    evaluator.names = facts(state, intent, now, config)
                    expected = sorted(s.id for s in config.segments if holds(s.when))
                    assert rules.matching(state, intent, now) == expected
                    assert expected  # the states are not in the empty audience
