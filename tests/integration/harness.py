"""Run real workers against the real broker, each test in its own topics, app id and data folder."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from streams.codec import decode_value
from streams.config import Settings
from streams.core.state import UserState
from streams.kafka.produce import replay_log
from streams.kafka.topics import ensure_topics
from streams.live.changelog import read_states
from streams.live.process import WorkerProcess, free_port
from streams.logs import LogRecord


def isolated_settings(bootstrap: str, tmp_path: Path, partitions: int = 4) -> Settings:
    name = f"it-{uuid.uuid4().hex[:10]}"
    return Settings(
        bootstrap=bootstrap,
        topic_prefix=f"{name}-",
        app_id=name,
        partitions=partitions,
        data_dir=str(tmp_path / "worker-data"),
        web_port=free_port(),
    )


def start_worker(
    settings: Settings, tmp_path: Path, tick_seconds: float = 0.0, rules: Path | None = None
) -> WorkerProcess:
    ensure_topics(settings)
    log_path = tmp_path / f"worker-{settings.app_id}.log"
    return WorkerProcess(settings, log_path, tick_seconds=tick_seconds, rules=rules).start()


def produce(records: Iterable[LogRecord], settings: Settings) -> None:
    ensure_topics(settings)  # never let the broker auto-create them with its own partition count
    replay_log(records, settings)


def recommender() -> Any:
    """What a worker started by these tests serves with: the shipped model, else trending only."""
    from streams.core.recommend import TrendingOnly
    from streams.serving import ModelRecommender, default_model_dir

    model = default_model_dir()
    return ModelRecommender(model) if model is not None else TrendingOnly()


def offline(records: list[LogRecord], settings: Settings, rules: Any = None) -> Any:
    """The offline engine's result for a log: what a worker must end up with."""
    from streams.core.config import RulesConfig
    from streams.core.processor import Processor
    from streams.offline.engine import OfflineEngine

    processor = Processor(recommender(), rules or RulesConfig(), catalog={})
    return OfflineEngine(processor, settings.partitions).run(records)


def comparable(states: dict[str, UserState]) -> dict[str, dict[str, Any]]:
    # Offsets are where the broker put the events; an in-process run has none. All else must match.
    out = {}
    for user, state in states.items():
        view = state.to_dict()
        view.pop("offsets")
        out[user] = view
    return out


def wait_for_states(
    settings: Settings,
    expected: dict[str, UserState],
    worker: WorkerProcess,
    timeout: float = 180,
) -> dict[str, UserState]:
    """Poll the changelog until it holds exactly the expected states (or fail with a diff)."""
    want = comparable(expected)
    deadline = time.monotonic() + timeout
    got: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        worker.assert_running()
        states = read_states(settings)
        got = comparable(states)
        if got == want:
            return states
        time.sleep(2)
    raise AssertionError(
        f"{describe_difference(want, got)}\nworker: {worker.health()}\n{worker.log_tail(30)}"
    )


def describe_difference(want: dict[str, Any], got: dict[str, Any], limit: int = 5) -> str:
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    differing = [u for u in sorted(set(want) & set(got)) if want[u] != got[u]]
    lines = [
        f"{len(want)} users expected, {len(got)} in the changelog: {len(missing)} missing, "
        f"{len(extra)} unexpected, {len(differing)} differing",
        f"missing: {missing[:limit]}",
        f"unexpected: {extra[:limit]}",
    ]
    for user in differing[:limit]:
        fields = [k for k in want[user] if want[user][k] != got[user].get(k)]
        lines.append(
            f"{user}: differs in {fields}; applied want {want[user]['applied']} got {got[user]['applied']}"
        )
    return "\n".join(lines)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def with_partitions(settings: Settings, partitions: int) -> Settings:
    return replace(settings, partitions=partitions)


def read_topic(settings: Settings, logical: str) -> list[Any]:
    """Every message currently in a topic (all partitions, from the beginning to the end offsets)."""
    from kafka import KafkaConsumer, TopicPartition

    topic = settings.topic(logical)
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        out: list[Any] = []
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            for messages in consumer.poll(timeout_ms=500).values():
                out += messages
        return out
    finally:
        consumer.close()


# The one output field that measures the run's own clock (consume to send); everything else in an
# output is derived from its cause, so a re-emission must repeat it exactly.
WALL_CLOCK = ("latency_ms",)


def without_wall_clock(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k not in WALL_CLOCK}


def copies_by_id(settings: Settings, logical: str, id_field: str) -> dict[str, list[dict[str, Any]]]:
    """Every copy of every output on a topic, by the output's id (a re-emission is a second copy)."""
    copies: dict[str, list[dict[str, Any]]] = {}
    for message in read_topic(settings, logical):
        value = without_wall_clock(decode_value(message.value))
        copies.setdefault(value[id_field], []).append(value)
    return copies


def expected_by_id(outputs: Iterable[Any], logical: str, id_field: str) -> dict[str, dict[str, Any]]:
    """The offline engine's outputs on one topic, by id."""
    return {o.value[id_field]: without_wall_clock(o.value) for o in outputs if o.topic == logical}


def message_count(settings: Settings, logical: str) -> int:
    """Messages written to a topic so far (the sum of its end offsets; nothing is ever deleted)."""
    from kafka import KafkaConsumer, TopicPartition

    topic = settings.topic(logical)
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values()) if partitions else 0
    finally:
        consumer.close()


def get(url: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def latest_on_topic(settings: Settings) -> dict[str, dict[str, Any]]:
    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    for m in read_topic(settings, "recommendations"):
        key = m.key.decode()
        if key not in latest or m.offset > latest[key][0]:
            latest[key] = (m.offset, decode_value(m.value))
    return {k: v for k, (_, v) in latest.items()}


def two_workers_after(records: list[LogRecord], settings: Settings, tmp_path: Path) -> list[WorkerProcess]:
    """Two workers of one group, started on `records` (produced first), returned once every event
    has its recommendation and each worker owns some of the input partitions. The caller stops them."""
    produce(records, settings)
    second = replace(settings, web_port=free_port(), data_dir=str(tmp_path / "second"))
    workers = [start_worker(settings, tmp_path), start_worker(second, tmp_path)]
    try:
        for w in workers:
            w.wait_healthy()
        events = sum(1 for r in records if r.topic in ("clicks", "orders"))
        wait_until(lambda: len(read_topic(settings, "recommendations")) >= events, 240, "all recommendations")
        wait_until(
            lambda: all((w.health() or {}).get("partitions") for w in workers), 60, "a split assignment"
        )
    except BaseException:
        for w in workers:
            w.stop()
        raise
    return workers
