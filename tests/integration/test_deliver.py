"""`streams deliver` against a real HTTPS receiver (its own self-signed certificate) and the real
broker: signed webhooks, a receiver that fails, rate-limits and goes down, refusals to dead-letters,
a SIGKILL mid-stream, and replayed outputs held back unless --backfill."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from streams.codec import decode_value, encode_value
from streams.config import Settings
from streams.core.config import MINUTE
from streams.kafka.produce import make_producer
from streams.kafka.topics import ensure_topics
from streams.live.process import WorkerProcess, free_port
from tests.integration.harness import offline, produce, read_topic, start_worker, wait_until
from tests.integration.https_receiver import Receiver, self_signed_certificate
from tests.integration.test_pipeline import _click, _clock_users

SIGNING_KEY = b"a test signing key of 32 bytes.."
SECRET = "whsec_" + base64.b64encode(SIGNING_KEY).decode()
BATCH = 10


@dataclass
class DeliverProcess(WorkerProcess):
    """`streams deliver` as an operator runs it, its secret and CA file in the environment (the
    worker's process handling: stop, SIGKILL, log)."""

    receiver: Receiver | None = None
    metrics_port: int = field(default_factory=free_port)

    def env(self) -> dict[str, str]:
        assert self.receiver is not None
        return {
            **super().env(),
            "STREAMS_DELIVER_URL": self.receiver.url,
            "STREAMS_DELIVER_SECRET": SECRET,
            "STREAMS_DELIVER_API_KEY": "pk_test_key",
            "STREAMS_DELIVER_CA_FILE": str(self.receiver.cert),
        }

    def command(self) -> list[str]:
        options = ["--batch-size", str(BATCH), "--rate", "200", "--burst", "50", "--backoff-max", "1"]
        command = [sys.executable, "-m", "streams", "deliver", "--metrics-port", str(self.metrics_port)]
        return [*command, *options, *self.extra_args]

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a counter's samples with these labels (0 while the process does not answer)."""
        self.assert_running()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return 0.0
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == f"{name}_total" and all(sample.labels.get(k) == v for k, v in labels.items())
        )


def trigger(n: int, replay: bool = False) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "trigger_id": f"t-{n:05d}",
        "user_id": f"u{n % 13}",
        "kind": "cart_abandonment",
        "items": [{"item_id": f"sku-{n}", "quantity": 1 + n % 3, "price": 10.0 + n}],
        "reason": "1 item(s) in cart, no activity for 30 min",
        "ts": 1_700_000_000_000 + n * 1000,
        "expires_at": 1_700_086_400_000 + n * 1000,
        "replay": replay,
    }


def segment_change(n: int) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": f"s-{n:05d}",
        "user_id": f"u{n % 13}",
        "segment": "cart_over_100",
        "action": "enter" if n % 2 else "exit",
        "ts": 1_700_000_000_000 + n * 1000,
        "reason": "cart_value > 100",
        "replay": False,
    }


def produce_outputs(settings: Settings, logical: str, values: list[dict[str, Any] | bytes]) -> None:
    """Write outputs as the worker does: msgpack, key user_id, the Java clients' partitioner."""
    producer = make_producer(settings)
    try:
        for value in values:
            raw = value if isinstance(value, bytes) else encode_value(value)
            key = b"u-bad" if isinstance(value, bytes) else value["user_id"].encode()
            producer.send(settings.topic(logical), key=key, value=raw)
        producer.flush()
    finally:
        producer.close()


def webhook_ids(received: list[Any]) -> list[str]:
    return [a.headers["webhook-id"] for a in received]


def verify(attempt: Any) -> dict[str, Any]:
    """What a Standard Webhooks receiver checks: the signature over id, timestamp and body, and a
    timestamp within five minutes; returns the payload."""
    message_id, timestamp = attempt.headers["webhook-id"], attempt.headers["webhook-timestamp"]
    assert abs(time.time() - int(timestamp)) < 300
    signed = f"{message_id}.{timestamp}.".encode() + attempt.body
    expected = base64.b64encode(hmac.new(SIGNING_KEY, signed, hashlib.sha256).digest()).decode()
    versions = attempt.headers["webhook-signature"].split(" ")
    assert f"v1,{expected}" in versions, f"signature of {message_id} does not verify"
    return json.loads(attempt.body)


def committed_everything(settings: Settings, group: str, logical: str) -> bool:
    topic = settings.topic(logical)
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(partitions)
        return all((consumer.committed(tp) or 0) == ends[tp] for tp in partitions)
    finally:
        consumer.close()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    cert, key = self_signed_certificate(tmp_path)
    server = Receiver(cert, key).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def deliver(settings: Settings, receiver: Receiver, tmp_path: Path) -> Iterator[list[DeliverProcess]]:
    """Started by each test with its own arguments; all stopped at the end."""
    ensure_topics(settings)
    started: list[DeliverProcess] = []
    try:
        yield started
    finally:
        for process in started:
            process.stop()


def start(
    started: list[DeliverProcess], settings: Settings, receiver: Receiver, tmp_path: Path, *args: str
) -> DeliverProcess:
    process = DeliverProcess(settings, tmp_path / "deliver.log", extra_args=args, receiver=receiver)
    process.start()
    started.append(process)
    return process


def test_signed_webhooks_of_triggers_and_segment_changes_verify(
    settings: Settings, receiver: Receiver, deliver: list[DeliverProcess], tmp_path: Path
) -> None:
    triggers = [trigger(n) for n in range(25)]
    changes = [segment_change(n) for n in range(6)]
    # One in JSON without a content-type header, as a worker writing JSON outputs may send it.
    produce_outputs(settings, "promotion-triggers", [*triggers[:-1], json.dumps(triggers[-1]).encode()])
    produce_outputs(settings, "audience-segments", changes)
    process = start(
        deliver,
        settings,
        receiver,
        tmp_path,
        "--source",
        "promotion-triggers",
        "--source",
        "audience-segments",
    )

    expected = {t["trigger_id"] for t in triggers} | {c["event_id"] for c in changes}
    wait_until(lambda: set(webhook_ids(receiver.taken())) >= expected, 120, "every output delivered")
    by_id = {t["trigger_id"]: t for t in triggers} | {c["event_id"]: c for c in changes}
    for attempt in receiver.taken():
        payload = verify(attempt)
        assert payload["data"] == by_id[attempt.headers["webhook-id"]]
        assert attempt.headers["content-type"] == "application/json"
    assert set(webhook_ids(receiver.taken())) == expected
    wait_until(
        lambda: committed_everything(settings, f"{settings.app_id}-deliver-webhook", "promotion-triggers"),
        60,
        "the offsets committed",
    )
    assert process.metric("streams_deliver_outputs", outcome="delivered") == len(expected)
    assert SECRET not in process.log_tail() and "pk_test_key" not in process.log_tail()


def test_a_receiver_that_fails_then_limits_then_goes_down_loses_nothing(
    settings: Settings, receiver: Receiver, deliver: list[DeliverProcess], tmp_path: Path
) -> None:
    mode = ["500"]

    def answer(body: bytes) -> tuple[int, dict[str, str], bytes]:
        if mode[0] == "500":
            return 500, {}, b"internal error"
        if mode[0] == "429":
            return 429, {"Retry-After": "2"}, b"slow down"
        return 204, {}, b""

    receiver.answer = answer  # type: ignore[method-assign]
    triggers = [trigger(n) for n in range(60)]
    produce_outputs(settings, "promotion-triggers", triggers)
    process = start(deliver, settings, receiver, tmp_path)

    wait_until(lambda: receiver.count() >= 3, 120, "three attempts answered 500")
    mode[0] = "429"
    wait_until(lambda: sum(a.status == 429 for a in receiver.attempts) >= 2, 60, "two attempts answered 429")
    receiver.stop()
    wait_until(
        lambda: process.metric("streams_deliver_retries", reason="connection_error") >= 2,
        60,
        "retries while down",
    )
    mode[0] = "ok"
    receiver.start()

    expected = {t["trigger_id"] for t in triggers}
    wait_until(lambda: set(webhook_ids(receiver.taken())) >= expected, 120, "every trigger delivered")
    assert set(webhook_ids(receiver.taken())) == expected  # each at least once, nothing else
    for attempt in receiver.taken():
        verify(attempt)
    # Never sooner than Retry-After: one request is in flight at a time, so the next attempt is the retry.
    attempts = sorted(receiver.attempts, key=lambda a: a.at)
    for limited, after in itertools.pairwise(attempts):
        if limited.status == 429:
            assert after.at - limited.at >= 1.9
    assert process.metric("streams_deliver_retries", reason="500") >= 3
    assert process.metric("streams_deliver_retries", reason="429") >= 2
    assert process.metric("streams_deliver_outputs", outcome="delivered") == len(triggers)


def test_a_400_and_bad_input_end_in_dead_letters_and_the_rest_is_delivered(
    settings: Settings, receiver: Receiver, deliver: list[DeliverProcess], tmp_path: Path
) -> None:
    def answer(body: bytes) -> tuple[int, dict[str, str], bytes]:
        if json.loads(body)["data"]["trigger_id"] == "t-00003":
            return 400, {}, b'{"error": "unknown property: kind"}'
        return 200, {}, b"{}"

    receiver.answer = answer  # type: ignore[method-assign]
    triggers = [trigger(n) for n in range(8)]
    produce_outputs(settings, "promotion-triggers", [*triggers, b"\xc1 not msgpack"])
    process = start(deliver, settings, receiver, tmp_path)

    wait_until(lambda: process.metric("streams_deliver_outputs") >= 9, 120, "every message handled")
    assert set(webhook_ids(receiver.taken())) == {t["trigger_id"] for t in triggers} - {"t-00003"}
    dead = {
        d["error"]["code"]: d for d in (decode_value(m.value) for m in read_topic(settings, "dead-letters"))
    }
    assert set(dead) == {"http_400", "bad_msgpack"}
    refused = dead["http_400"]
    assert "400" in refused["error"]["message"] and "unknown property: kind" in refused["error"]["message"]
    assert decode_value(refused["value"]) == triggers[3]
    assert refused["source_topic"] == settings.topic("promotion-triggers")
    assert dead["bad_msgpack"]["value"] == b"\xc1 not msgpack"
    assert process.metric("streams_deliver_refusals", status="400") == 1
    assert process.metric("streams_deliver_outputs", outcome="dead_lettered") == 1
    assert process.metric("streams_deliver_outputs", outcome="bad_input") == 1


def test_sigkill_mid_stream_loses_nothing_and_resends_at_most_the_open_batch(
    settings: Settings, receiver: Receiver, deliver: list[DeliverProcess], tmp_path: Path
) -> None:
    triggers = [trigger(n) for n in range(300)]
    produce_outputs(settings, "promotion-triggers", triggers)
    rate = ("--rate", "40", "--burst", "1")  # slow enough to be killed mid-stream
    first = start(deliver, settings, receiver, tmp_path, *rate)
    wait_until(lambda: len(receiver.taken()) >= 60, 120, "a fifth delivered")
    first.kill()
    delivered_before = len(receiver.taken())
    assert delivered_before < len(triggers)
    start(deliver, settings, receiver, tmp_path, *rate)

    expected = {t["trigger_id"] for t in triggers}
    wait_until(lambda: set(webhook_ids(receiver.taken())) >= expected, 180, "every trigger delivered")
    ids = webhook_ids(receiver.taken())
    assert set(ids) == expected
    again = len(ids) - len(expected)
    print(f"killed after {delivered_before} deliveries; {again} delivered twice")
    assert again <= BATCH


def test_replayed_triggers_reach_no_receiver_unless_backfill(
    settings: Settings, receiver: Receiver, deliver: list[DeliverProcess], tmp_path: Path
) -> None:
    replayed = [trigger(n, replay=True) for n in range(10)]
    live = [trigger(n) for n in range(100, 103)]
    produce_outputs(settings, "promotion-triggers", [*replayed, *live])
    plain = start(deliver, settings, receiver, tmp_path)
    wait_until(lambda: plain.metric("streams_deliver_outputs") >= 13, 120, "every trigger read")
    assert plain.metric("streams_deliver_outputs", outcome="skipped_replay") == 10
    assert set(webhook_ids(receiver.taken())) == {t["trigger_id"] for t in live}
    plain.stop()

    receiver.attempts.clear()
    backfill = start(
        deliver, settings, receiver, tmp_path, "--backfill", "--format", "klaviyo", "--group", "backfill"
    )
    wait_until(lambda: len(receiver.taken()) >= 13, 120, "the backfill delivered")
    events = {a.json()["data"]["attributes"]["unique_id"]: a for a in receiver.taken()}
    assert set(events) == {t["trigger_id"] for t in [*replayed, *live]}
    for trigger_id, attempt in events.items():
        assert attempt.headers["authorization"] == "Klaviyo-API-Key pk_test_key"
        properties = attempt.json()["data"]["attributes"]["properties"]
        assert properties.get("backfill", False) is trigger_id.startswith("t-0000"), trigger_id
    assert backfill.metric("streams_deliver_outputs", outcome="skipped_replay") == 0


def test_a_replayed_log_through_a_worker_reaches_the_receiver_only_with_backfill(
    settings: Settings, receiver: Receiver, deliver: list[DeliverProcess], tmp_path: Path
) -> None:
    t0 = 1_700_000_000_000
    records = [_click(f"shopper-{n}", 1, t0 + n, "add_to_cart", quantity=1 + n % 2) for n in range(6)]
    # Event time moves on for every partition through a clock shopper on it: the carts' timers fire.
    for n, (_, user) in enumerate(sorted(_clock_users(settings.partitions).items())):
        records += [_click(user, n, t0 + 20 * MINUTE), _click(user, n + 100, t0 + 45 * MINUTE)]
    expected = {
        o.value["trigger_id"] for o in offline(records, settings).outputs if o.topic == "promotion-triggers"
    }
    assert len(expected) >= 6

    produce(records, settings)  # as `streams replay` does: marked as a replay
    worker = start_worker(settings, tmp_path)
    try:
        wait_until(
            lambda: len(read_topic(settings, "promotion-triggers")) >= len(expected), 180, "the triggers"
        )
    finally:
        worker.stop()
    triggers = [decode_value(m.value) for m in read_topic(settings, "promotion-triggers")]
    assert {t["trigger_id"] for t in triggers} == expected and all(t["replay"] for t in triggers)

    plain = start(deliver, settings, receiver, tmp_path)
    wait_until(
        lambda: plain.metric("streams_deliver_outputs", outcome="skipped_replay") >= len(triggers),
        120,
        "every trigger read",
    )
    assert receiver.count() == 0
    plain.stop()

    start(deliver, settings, receiver, tmp_path, "--backfill", "--group", "backfill")
    wait_until(lambda: set(webhook_ids(receiver.taken())) >= expected, 120, "the backfill delivered")
    assert set(webhook_ids(receiver.taken())) == expected
    assert all(verify(attempt)["data"]["replay"] is True for attempt in receiver.taken())
