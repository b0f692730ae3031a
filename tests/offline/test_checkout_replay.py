"""Generated traffic with checkouts through the offline replay: each abandoned checkout gets exactly
one trigger an email can be filled from, a checkout followed by an order gets none; and the replay
writes the messages a worker would send, byte for byte, in either output format."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from streams.cli import _register, app
from streams.codec import decode_value
from streams.core.config import MINUTE
from streams.generate import TrafficConfig, generate_traffic
from streams.logs import LogRecord, read_log, write_log
from streams.offline.replay import Variant, run_offline
from streams.output_encoding import encode_output
from streams.schemas import validate

RULES = """
enabled_triggers = ["checkout_abandonment", "cart_abandonment"]
cap_per_kind = 1000
cap_overall = 1000
[trigger_links]
checkout_abandonment = "https://shop.example/checkout?u={user_id}"
"""


def checkout_traffic(events: int = 20_000) -> list[LogRecord]:
    config = TrafficConfig(users=300, items=500, events=events, seed=8, checkout_rate=0.5)
    return list(generate_traffic(config))


def test_each_abandoned_checkout_gets_one_trigger_and_an_ordered_one_none(tmp_path: Path) -> None:
    records = checkout_traffic()
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    run = run_offline(records, Variant(None, rules), partitions=4)

    clicks = [r.value for r in records if r.topic == "clicks" and r.value is not None]
    checkouts = [c for c in clicks if c["type"] == "checkout_started"]
    placed = {
        r.value["order_id"].removesuffix("-o")
        for r in records
        if r.topic == "orders" and r.value is not None and r.value["status"] == "placed"
    }
    last_ts = max(r.ts for r in records)
    due = 30 * MINUTE  # checkout_timeout_ms
    ordered = [c for c in checkouts if c["session_id"] in placed]
    abandoned = {(c["user_id"], c["ts"] + due) for c in checkouts if c["session_id"] not in placed}
    abandoned = {(user, ts) for user, ts in abandoned if ts < last_ts}  # event time got past it
    assert len(ordered) > 50 and len(abandoned) > 50

    triggers = [t for t in run.triggers if t["kind"] == "checkout_abandonment"]
    assert sorted((t["user_id"], t["ts"]) for t in triggers) == sorted(abandoned)  # one each, no more
    catalog = {r.key: r.value for r in records if r.topic == "catalog"}
    for trigger in triggers:
        validate("promotion_trigger", trigger)
        assert trigger["items"] and trigger["currency"] == "EUR"
        for item in trigger["items"]:
            known = catalog[item["item_id"]]
            assert known is not None
            for name in ("title", "category", "price", "image_url", "url"):
                assert item[name] == known[name], (name, item)
        assert trigger["value"] == round(sum(i["price"] * i["quantity"] for i in trigger["items"]), 2) > 0
        assert trigger["link"] == f"https://shop.example/checkout?u={trigger['user_id']}"
    # No trigger about a cart whose checkout ended in an order within the timeout.
    ordered_at = {(c["user_id"], c["ts"]) for c in ordered}
    for trigger in run.triggers:
        assert not any(u == trigger["user_id"] and ts < trigger["ts"] <= ts + due for u, ts in ordered_at)


def test_the_replay_writes_the_messages_a_worker_sends(tmp_path: Path) -> None:
    records = checkout_traffic(events=3_000)
    log = tmp_path / "log.jsonl.gz"
    write_log(log, records)
    _register()
    written = {}
    for fmt in ("msgpack", "json"):
        out = tmp_path / fmt
        args = ["replay", str(log), "--offline", "--out", str(out), "--model", "none", "--partitions", "4"]
        result = CliRunner().invoke(app, [*args, "--output-format", fmt, "--zero-wallclock"])
        assert result.exit_code == 0, result.output
        written[fmt] = list(read_log(out / "messages.jsonl"))
    run = run_offline(records, Variant(None), partitions=4)
    assert len(written["json"]) == len(written["msgpack"]) == len(run.result.outputs) > 0
    for output, packed, plain in zip(run.result.outputs, written["msgpack"], written["json"], strict=True):
        assert packed.topic == plain.topic == output.topic and packed.key == plain.key == output.key
        for message, fmt in ((packed, "msgpack"), (plain, "json")):
            value, headers = encode_output(output.topic, output.value, fmt)  # type: ignore[arg-type]
            assert message.wire_value() == value
            assert message.wire_headers() == headers
            assert decode_value(message.wire_value(), message.wire_headers()) == output.value
        assert plain.headers["content-type"] == "application/json" and "content-type" not in packed.headers
        assert plain.headers["ce_id"] == packed.headers["ce_id"]
    kinds = {m.headers["ce_type"] for m in written["json"]}
    assert "streams.promotion_trigger.v1" in kinds and "streams.recommendation.v1" in kinds

    result = CliRunner().invoke(
        app, ["replay", str(log), "--offline", "--out", str(tmp_path / "x"), "--output-format", "xml"]
    )
    assert result.exit_code == 2 and "unknown output format 'xml'" in " ".join(result.output.split())
