"""The worker's attribution figures: Prometheus counters over its partitions, and the whole shop's
summary gathered from every partition's owner, each partition counted once."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from streams.core.attribution import AttributionCounts, shop_summary
from streams.live.attribution import STATS_PATH, AttributionMetrics, _ask, whole_shop
from streams.live.process import free_port


def counts(version: str, placement: str, *row: int) -> dict[str, dict[str, list[int]]]:
    part = AttributionCounts()
    for measure, amount in enumerate(row):
        if amount:
            part.add(version, placement, measure, amount)
    return part.to_wire()


def test_counters_add_up_the_partitions_owned_here() -> None:
    registry = CollectorRegistry()
    owned = {0: counts("m1", "home", 10, 3, 1, 1, 1250), 2: counts("m1", "home", 5, 1, 0, 0, 0)}
    registry.register(AttributionMetrics(lambda: owned))
    text = generate_latest(registry).decode()
    assert 'streams_attributed_impressions_total{model_version="m1",placement="home"} 15.0' in text
    assert 'streams_attributed_clicks_total{model_version="m1",placement="home"} 4.0' in text
    assert 'streams_attributed_revenue_total{model_version="m1",placement="home"} 12.5' in text
    owned.pop(0)  # the partition moved to another worker: its counts go with it
    text = generate_latest(registry).decode()
    assert 'streams_attributed_impressions_total{model_version="m1",placement="home"} 5.0' in text


def test_each_partition_is_counted_once_from_its_owner() -> None:
    local = {0: counts("m1", "home", 1), 1: counts("m1", "home", 2)}
    answers = [
        ({2}, {"2": counts("m1", "home", 4), "3": counts("m1", "home", 100)}),  # 3: not its own any more
        ({3}, {"1": counts("m1", "home", 100)}),  # 1 is owned here; 3 did not answer
    ]
    gathered = whole_shop(4, local, answers)
    assert sorted(gathered) == [0, 1, 2]
    summary = shop_summary(gathered, 4, 1000)
    assert summary["totals"]["impressions"] == 7
    assert summary["missing_partitions"] == [3] and not summary["complete"]


def test_other_owners_are_asked_for_their_partitions_and_a_silent_one_answers_nothing() -> None:
    seen: list[dict[str, Any]] = []

    async def stats(request: web.Request) -> web.Response:
        seen.append({"scope": request.query.get("scope"), "auth": request.headers.get("Authorization")})
        return web.json_response({"partitions": {"2": counts("m1", "cart", 3)}})

    async def run() -> list[Any]:
        app = web.Application()
        app.router.add_get(STATS_PATH, stats)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            asked = {f"http://127.0.0.1:{port}": {2}, f"http://127.0.0.1:{free_port()}": {3}}
            return await _ask(asked, {"Authorization": "Bearer t"})
        finally:
            await runner.cleanup()

    answers = asyncio.run(run())
    assert seen == [{"scope": "local", "auth": "Bearer t"}]
    assert answers[0] == ({2}, {"2": counts("m1", "cart", 3)}) and answers[1] == ({3}, {})
