"""`streams demand follow`: forecasts refreshed from the live worker's `demand` topic, each equal to
the one computed from the offline replay's demand windows for the same hours."""

from __future__ import annotations

from pathlib import Path

from kafka import KafkaProducer

from streams.codec import decode_value
from streams.config import Settings
from streams.forecast.publish import follow, forecast_value
from streams.forecast.series import HourlyDemand
from streams.generate import TrafficConfig, generate_traffic
from streams.offline.replay import Variant, run_offline
from tests.integration.harness import WorkerProcess, produce, read_topic, wait_until


def test_the_follower_sends_the_offline_forecasts_as_hours_close(
    settings: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    config = TrafficConfig(users=300, items=500, events=10**6, seed=3, daily_pattern=True, days=3)
    records = list(generate_traffic(config))
    demand = run_offline(records, Variant(None), settings.partitions).demand  # the model plays no part
    offline = HourlyDemand(partitions=settings.partitions)
    for value in demand:
        offline.add(value)
    assert offline.complete_until() is not None

    worker.wait_healthy()
    produce(records, settings)
    wait_until(lambda: len(read_topic(settings, "demand")) >= len(demand), 300, "the demand windows")
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap)
    producer.send(settings.topic("demand"), key=b"item:x", value=b"\xc1 not msgpack", partition=0)
    producer.flush()
    producer.close()

    sent = follow(settings, HourlyDemand(partitions=settings.partitions), until_idle=5)
    messages = read_topic(settings, "demand-forecasts")
    got = [decode_value(m.value) for m in messages]
    assert sent == len(got) > 0
    for message, value in zip(messages, got, strict=True):  # CloudEvents headers, as on every output
        assert dict(message.headers)["ce_id"] == value["forecast_id"].encode()
        assert dict(message.headers)["ce_type"] == b"streams.demand_forecast.v1"
    assert max(v["as_of"] for v in got) == offline.complete_until()  # the last closed hour
    for value in got:
        series = offline.series(value["as_of"])[f"{value['scope']}:{value['key']}"]
        assert value == forecast_value(series, "orders")
    [dead] = [decode_value(m.value) for m in read_topic(settings, "dead-letters")]
    assert dead["source_topic"] == settings.topic("demand") and dead["error"]["code"] == "bad_msgpack"
