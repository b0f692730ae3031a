"""The HTTP API with two workers in one group: every user answered, whichever worker is asked."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

from streams.bench.soak import memory_parts
from streams.config import Settings
from streams.generate import TrafficConfig, generate_traffic
from streams.live.shopper_access import public_recommendation
from streams.logs import LogRecord
from tests.integration.harness import (
    WorkerProcess,
    get,
    latest_on_topic,
    produce,
    two_workers_after,
    wait_until,
)


def get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class SseReader(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.events: list[tuple[str, dict[str, Any]]] = []

    def run(self) -> None:
        with urllib.request.urlopen(self.url, timeout=60) as response:  # follows the owner redirect
            kind = None
            for raw in response:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind:
                    self.events.append((kind, json.loads(line[6:])))


def test_both_workers_serve_what_the_topic_last_carried(settings: Settings, tmp_path: Path) -> None:
    settings = replace(settings, api_token="s3cret")
    records = list(generate_traffic(TrafficConfig(users=60, items=200, events=2000, seed=21)))
    workers: list[WorkerProcess] = two_workers_after(records, settings, tmp_path)
    try:
        latest = latest_on_topic(settings)
        users = sorted(latest)[:25]
        for w in workers:
            base = f"http://127.0.0.1:{w.settings.web_port}"
            for user in users:
                status, body = get(f"{base}/users/{user}/recommendations")
                assert status == 200, (user, body)
                assert body["rec_id"] == latest[user]["rec_id"]
                assert body["items"] == latest[user]["items"]
            assert get(f"{base}/users/nobody/recommendations")[0] == 404
            assert get(f"{base}/users/{users[0]}/state")[0] == 401
            status, state = get(f"{base}/users/{users[0]}/state", token="s3cret")
            assert status == 200 and state["user_id"] == users[0]
            # Faust's own views would serve any table row, and the cluster layout, to anyone.
            for path in (
                f"/table/user_state/{users[0]}/",
                "/table/",
                "/router/",
                f"/router/user_state/{users[0]}/",
            ):
                assert get_status(f"{base}{path}") == 404, path
            status, spec = get(f"{base}/openapi.json")
            assert status == 200 and "/users/{user_id}/recommendations" in spec["paths"]
            metrics = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
            assert "streams_recommendations_total" in metrics
            # Every event is processed: no input partition of this worker is behind its log end.
            lags = [line for line in metrics.splitlines() if line.startswith("streams_consumer_lag_records{")]
            inputs = (settings.topic("clicks"), settings.topic("orders"))
            assert lags and all(any(f'"{t}"' in line for t in inputs) for line in lags), lags
            assert all(float(line.rsplit(" ", 1)[1]) == 0 for line in lags), lags
            parts = memory_parts(workers[0])
            assert parts.get("cache", 0) > 0, "the shared RocksDB cache holds the tables"
            assert parts.get("heap_in_use", 0) > 0 and parts.get("python_blocks", 0) > 0, parts
            assert "table_readers" in parts and "heap_mapped" in parts, parts

        # Live feed: subscribe through the *first* worker; the owner may be the other one.
        user = users[0]
        reader = SseReader(f"http://127.0.0.1:{settings.web_port}/users/{user}/recommendations/stream")
        reader.start()
        wait_until(lambda: bool(reader.events), 30, "the latest recommendation on the feed")
        # The latest recommendation as the user state keeps it: `latency_ms` belongs to the message sent.
        # Without a shopper token the feed leaves out what was removed for being in the cart.
        assert reader.events[0] == (
            "recommendation",
            public_recommendation({**latest[user], "latency_ms": 0.0}),
        )
        ts = int(time.time() * 1000)
        produce(
            [
                LogRecord(
                    "clicks",
                    user,
                    ts,
                    value={
                        "event_id": "sse-1",
                        "user_id": user,
                        "type": "view",
                        "item_id": "sku-3",
                        "ts": ts,
                    },
                )
            ],
            settings,
        )
        wait_until(
            lambda: any(e[1].get("cause_event_id") == "sse-1" for e in reader.events), 60, "a live update"
        )
    finally:
        for w in workers:
            w.stop()
