"""`streams record` output feeds `streams replay` unchanged, bytes and all."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from typer.testing import CliRunner

from streams.cli import _register, app
from streams.config import Settings
from streams.generate import TrafficConfig, generate_traffic
from streams.kafka.topics import ensure_topics
from streams.logs import LogRecord, json_headers, read_log
from tests.integration.harness import WorkerProcess, produce, read_topic


def _env(settings: Settings) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP": settings.bootstrap,
        "STREAMS_TOPIC_PREFIX": settings.topic_prefix,
        "STREAMS_PARTITIONS": str(settings.partitions),
    }


def _by_partition(messages: list, prefix: str) -> dict[tuple[str, int], list[tuple]]:
    out: dict[tuple[str, int], list[tuple]] = {}
    for m in sorted(messages, key=lambda m: (m.topic, m.partition, m.offset)):
        topic = m.topic.removeprefix(prefix)
        out.setdefault((topic, m.partition), []).append(
            (m.key, m.value, m.timestamp, sorted(m.headers or []))
        )
    return out


def test_record_then_replay_reproduces_the_topics_exactly(settings: Settings, tmp_path: Path) -> None:
    _register()
    runner = CliRunner()
    records = list(generate_traffic(TrafficConfig(users=30, items=80, events=1500, seed=9)))
    records.append(LogRecord("clicks", "u1", records[-1].ts, value_bytes=b"\xc1poison"))
    records.append(
        LogRecord(
            "clicks",
            "u2",
            records[-1].ts,
            headers=json_headers(),
            value={
                "event_id": "j",
                "user_id": "u2",
                "type": "view",
                "item_id": "sku-1",
                "ts": records[-1].ts,
            },
        )
    )
    ensure_topics(settings)
    produce(records, settings)

    out = tmp_path / "recorded.jsonl.gz"
    result = runner.invoke(
        app,
        ["record", "clicks", "orders", "catalog", "--out", str(out), "--from-beginning", "--until-idle", "3"],
        env=_env(settings),
    )
    assert result.exit_code == 0, result.output
    recorded = list(read_log(out))
    assert len(recorded) == len(records)
    assert {r.topic for r in recorded} == {"clicks", "orders", "catalog"}  # logical names, prefix dropped
    assert any(r.value_bytes == b"\xc1poison" for r in recorded)

    again = replace(settings, topic_prefix=settings.topic_prefix + "again-")
    result = runner.invoke(app, ["replay", str(out)], env=_env(again))
    assert result.exit_code == 0, result.output
    assert "replayed" in result.output
    for topic in ("clicks", "orders", "catalog"):
        first = _by_partition(read_topic(settings, topic), settings.topic_prefix)
        second = _by_partition(read_topic(again, topic), again.topic_prefix)
        assert sum(map(len, first.values())) > 0
        assert first == second, topic


def test_state_command_prints_a_users_state(
    settings: Settings, worker: WorkerProcess, shared_data: Path
) -> None:
    from streams.importers import import_otto
    from tests.integration.harness import offline, wait_for_states

    _register()
    records = list(import_otto(shared_data / "otto-fixture"))
    produce(records, settings)
    expected = offline(records, settings).states
    wait_for_states(settings, expected, worker)
    user = max(expected, key=lambda u: sum(expected[u].counters.values()))
    env = {**_env(settings), "STREAMS_APP_ID": settings.app_id}
    result = CliRunner().invoke(app, ["state", user, "--json"], env=env)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["counters"] == expected[user].to_dict()["counters"]
    assert shown["cart"] == expected[user].to_dict()["cart"]
    result = CliRunner().invoke(app, ["state", "nobody-at-all"], env=env)
    assert result.exit_code == 1
