"""The operations pack against a real worker: /readyz while a restarted worker restores its tables,
/livez, the metrics the dashboard reads, and `streams lag`."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from streams.cli import _register, app
from streams.config import Settings
from streams.logs import LogRecord
from tests.integration.harness import WorkerProcess, get, produce, wait_until
from tests.test_monitoring import dashboard_metrics, exported_names

T0 = 1_700_000_000_000
# Enough users that restoring their states from the changelog takes a while a poll can see.
USERS = 40_000


def probe(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def lag(settings: Settings) -> dict[str, Any]:
    _register()
    flags = ["--bootstrap", settings.bootstrap, "--topic-prefix", settings.topic_prefix]
    result = CliRunner().invoke(app, ["lag", "--json", *flags, "--app-id", settings.app_id])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def sample(metrics: str, series: str) -> float | None:
    """The value of one series (name and labels as the text has them) in a `/metrics` text."""
    for line in metrics.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def views(users: int) -> list[LogRecord]:
    return [
        LogRecord(
            "clicks",
            f"u{n}",
            T0 + n,
            {
                "event_id": f"e{n}",
                "user_id": f"u{n}",
                "type": "view",
                "item_id": f"sku-{n % 500}",
                "ts": T0 + n,
            },
        )
        for n in range(users)
    ]


def test_a_restarted_worker_is_not_ready_while_it_restores_its_tables_then_ready(
    settings: Settings, tmp_path: Path
) -> None:
    settings = replace(settings, partitions=2, api_token="s3cret")
    produce(views(USERS), settings)
    before = lag(settings)
    assert before["lag"] == USERS and all(p["committed"] is None for p in before["partitions"])

    first = WorkerProcess(settings, tmp_path / "first.log", extra_args=("--no-model",)).start()
    try:
        first.wait_ready(timeout=180)
        wait_until(lambda: (first.health() or {}).get("applied") == USERS, 600, "every event applied")
        wait_until(lambda: (first.health() or {}).get("lag") == 0, 120, "every offset committed")
        # Every recommendation's latency from its event's read to its production is measured.
        recommendations = sample(first.metrics(), "streams_recommendations_total")
        assert recommendations == USERS
        assert (
            sample(first.metrics(), 'streams_event_to_output_seconds_count{topic="recommendations"}') == USERS
        )
    finally:
        first.stop()
    assert lag(settings)["lag"] == 0

    # A new machine: no local RocksDB, so every user's state comes back from the changelog.
    restarted = replace(settings, data_dir=str(tmp_path / "restarted"))
    second = WorkerProcess(restarted, tmp_path / "second.log", extra_args=("--no-model",)).start()
    base = f"http://127.0.0.1:{restarted.web_port}"
    seen: list[tuple[int, list[str], int]] = []  # (readyz status, its reasons, livez status)
    try:
        second.wait_healthy(timeout=120)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            second.assert_running()
            status, document = probe(f"{base}/readyz")
            alive, _ = probe(f"{base}/livez")
            seen.append((status, document["reasons"], alive))
            if status == 200:
                break
        restoring = [s for s in seen if "restoring" in s[1]]
        assert restoring, f"never saw the restore: {seen[:5]} ... {seen[-5:]}\n{second.log_tail(20)}"
        assert all(status == 503 and alive == 200 for status, _, alive in restoring)
        assert seen[-1][0] == 200, f"not ready in time: {seen[-5:]}"
        assert all(status == 503 for status, _, _ in seen[:-1])
        assert probe(f"{base}/livez") == (200, {"status": "alive"})
        # Ready means the restored state is served.
        status, state = get(f"{base}/users/u{USERS - 1}/state", token="s3cret")
        assert status == 200 and state["user_id"] == f"u{USERS - 1}"

        metrics = second.metrics()
        wanted, exported = dashboard_metrics(), exported_names(metrics)
        assert wanted <= exported, (
            f"the dashboard asks for what the worker lacks: {sorted(wanted - exported)}"
        )
        assert 'streams_build_info{model_version="trending-only",version="' in metrics
        assert 'streams_http_requests_total{route="/readyz",status="503"}' in metrics
        assert "streams_ready 1.0" in metrics
        assert "streams_sse_connections 0.0" in metrics
        assert (
            sample(metrics, 'streams_http_requests_total{route="/users/{user_id}/state",status="200"}') == 1
        )
        with urllib.request.urlopen(f"{base}/users/u1/recommendations/stream", timeout=30):
            assert sample(second.metrics(), "streams_sse_connections") == 1
        wait_until(lambda: sample(second.metrics(), "streams_sse_connections") == 0, 60, "the feed to close")
    finally:
        second.stop()
