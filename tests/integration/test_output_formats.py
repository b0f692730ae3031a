"""Output formats through the real broker and a real worker: every message on every output topic
carries its CloudEvents headers (and, in JSON, its content type) and validates against its schema;
the messages are byte for byte what the offline replay writes; plain-JSON clicks without a header
are processed; abandoned checkouts reach `promotion-triggers` enriched from the catalog."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from streams.codec import decode_value
from streams.config import Settings
from streams.core.config import RulesConfig
from streams.generate import TrafficConfig, generate_traffic
from streams.logs import LogRecord
from streams.output_encoding import CE_ATTRIBUTES, OUTPUT_SCHEMAS, OutputFormat, encode_output
from streams.schemas import validate
from tests.integration.harness import WALL_CLOCK, offline, produce, read_topic, start_worker, wait_until

RULES = """
cap_per_kind = 1000
cap_overall = 1000
[trigger_links]
"*" = "https://shop.example/u/{user_id}?t={trigger_id}"
"""
SCHEMA_OF = {topic: kind for topic, kind in OUTPUT_SCHEMAS.items() if topic != "demand-forecasts"}


def traffic() -> tuple[list[LogRecord], list[LogRecord], set[str]]:
    """The catalog, the events (every third click as plain JSON without any header, one value no
    decoder can read), and the event ids of the plain-JSON clicks."""
    config = TrafficConfig(users=150, items=400, events=4_000, seed=8, checkout_rate=0.5)
    records = list(generate_traffic(config))
    catalog = [r for r in records if r.topic == "catalog"]
    events: list[LogRecord] = []
    plain: set[str] = set()
    for n, record in enumerate(r for r in records if r.topic != "catalog"):
        if record.topic == "clicks" and record.value is not None and n % 3 == 0:
            plain.add(record.value["event_id"])
            raw = json.dumps(record.value).encode()
            events.append(LogRecord("clicks", record.key, record.ts, value_bytes=raw))
        else:
            events.append(record)
    events.append(LogRecord("clicks", "u-bad", events[-1].ts, value_bytes=b"\xc1 not an event"))
    return catalog, events, plain


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_every_output_message_is_what_the_offline_replay_writes(
    fmt: OutputFormat, settings: Settings, tmp_path: Path
) -> None:
    settings = replace(settings, output_format=fmt)
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(RULES)
    catalog, events, plain = traffic()
    expected = offline([*catalog, *events], settings, RulesConfig.load(rules_file))
    assert len(expected.dead_letters) == 1
    want: dict[str, dict[str, tuple[bytes, list[tuple[str, bytes]]]]] = {}
    for output in expected.outputs:
        value, headers = encode_output(output.topic, output.value, fmt)
        want.setdefault(output.topic, {})[dict(headers)["ce_id"].decode()] = (value, headers)
    checkouts = [o.value for o in expected.outputs if o.value.get("kind") == "checkout_abandonment"]
    assert checkouts and set(want) == set(SCHEMA_OF) - {"dead-letters"}

    produce(catalog, settings)  # before the worker: it starts once it has read the whole catalog
    worker = start_worker(settings, tmp_path, rules=rules_file)
    try:
        worker.wait_healthy()
        produce(events, settings)
        got: dict[str, list[Any]] = {}

        def everything() -> bool:
            worker.assert_running()
            for topic in SCHEMA_OF:
                got[topic] = read_topic(settings, topic)
            return len(got["dead-letters"]) == 1 and all(len(got[t]) >= len(want[t]) for t in want)

        try:
            wait_until(everything, 420, "every output offline has")
        except TimeoutError:
            counts = {t: (len(got.get(t, ())), len(want.get(t, ()))) for t in SCHEMA_OF}
            raise AssertionError(
                f"(on the topics, offline) per topic: {counts}\n{worker.log_tail()}"
            ) from None
    finally:
        worker.stop()

    for topic, messages in got.items():
        for message in messages:
            headers = [(name, bytes(raw)) for name, raw in message.headers]
            names = [name for name, _ in headers]
            assert names == (["content-type", *CE_ATTRIBUTES] if fmt == "json" else list(CE_ATTRIBUTES)), (
                topic,
                names,
            )
            value = decode_value(message.value, headers)
            if fmt == "json":
                validate(SCHEMA_OF[topic], value)
            if topic == "dead-letters":
                assert value["error"]["code"] == "bad_msgpack"
                continue
            wanted_value, wanted_headers = want[topic][dict(headers)["ce_id"].decode()]
            assert headers == wanted_headers, topic
            if topic == "recommendations":  # carries the worker's own latency: all else is equal
                wanted = decode_value(wanted_value, wanted_headers)
                assert {k: v for k, v in value.items() if k not in WALL_CLOCK} == {
                    k: v for k, v in wanted.items() if k not in WALL_CLOCK
                }
            else:
                assert message.value == wanted_value, topic
        assert len({dict(m.headers)["ce_id"] for m in messages}) == len(messages)  # no copies
    caused = {decode_value(m.value, m.headers)["cause_event_id"] for m in got["recommendations"]}
    assert plain and plain <= caused  # every header-less JSON click was processed
    triggers = [decode_value(m.value, m.headers) for m in got["promotion-triggers"]]
    abandoned = [t for t in triggers if t["kind"] == "checkout_abandonment"]
    assert len(abandoned) == len(checkouts)
    for trigger in abandoned:
        assert trigger["value"] > 0 and trigger["currency"] == "EUR" and trigger["link"]
        assert all(item["title"] and item["image_url"] and item["url"] for item in trigger["items"])
