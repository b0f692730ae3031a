"""Attribution figures of the worker (streams.core.attribution): Prometheus counters of the
partitions it owns, and `GET /stats/recommendations`, the whole shop's summary.

The counts live in each partition's state, so they survive restarts and follow a partition to its
next owner. A worker answers the summary from its own partitions and asks the owner of every other
partition (found as the per-user forwarding finds it, streams.live.owners) for that partition's
counts: each partition is counted once, from whoever owns it now, and a partition nobody answered
for is named in `missing_partitions`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from streams.core.attribution import MEASURES, shop_summary, summarize
from streams.live.bearer import API_TOKEN_REQUIRED, carries_api_token

if TYPE_CHECKING:
    from streams.live.app import Worker

Counts = dict[str, dict[str, list[int]]]  # AttributionCounts' wire form
PartitionCounts = Callable[[], dict[int, Counts]]
STATS_PATH = "/stats/recommendations"
ASK_TIMEOUT_SECONDS = 10.0
LABELS = ["model_version", "placement"]
_HELP = {
    "impressions": "Recommendations shown (impression clicks), by model version and placement",
    "clicks": "Clicks on recommended items",
    "add_to_carts": "Add-to-carts attributed to a click on a recommended item",
    "orders": "Placed orders attributed to a recommendation",
    "revenue_cents": "Revenue of attributed order lines",
}


def owned_counts(worker: Worker) -> dict[int, Counts]:
    """The attribution counts of each partition this worker owns (read from another thread)."""
    return {p: task.state.attribution.snapshot() for p, task in list(worker.loop.partitions.tasks.items())}


class AttributionMetrics(Collector):
    """`streams_attributed_*_total{model_version, placement}` over the partitions owned here; a
    partition that moves away takes its counts along (Prometheus reads the drop as a reset)."""

    def __init__(self, counts: PartitionCounts) -> None:
        self.counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        rows = summarize(self.counts().values(), 0)["rows"]
        for measure in MEASURES:
            name = "revenue" if measure == "revenue_cents" else measure
            family = CounterMetricFamily(f"streams_attributed_{name}", _HELP[measure], labels=LABELS)
            for row in rows:
                family.add_metric([row["model_version"], row["placement"]], row[name])
            yield family


def whole_shop(
    partitions: int, local: Mapping[int, Counts], answers: Iterable[tuple[set[int], Mapping[str, Counts]]]
) -> dict[int, Counts]:
    """Each partition's counts once: from here if owned here, else from the answer of the worker
    the group names its owner (`answers`: the partitions asked of a worker, and what it sent)."""
    gathered = {p: counts for p, counts in local.items() if 0 <= p < partitions}
    for asked, answer in answers:
        for key, counts in answer.items():
            p = int(key)
            if p in asked and p not in gathered:
                gathered[p] = counts
    return gathered


def register_attribution(worker: Worker, forwarded_by: str) -> None:
    """The counters on the worker's registry and the stats view on its app. `forwarded_by`: the
    header a worker sets on a request it passes to another (that one answers for itself only)."""
    worker.metrics.registry.register(AttributionMetrics(lambda: owned_counts(worker)))
    settings = worker.settings

    @worker.app.page(STATS_PATH)
    async def recommendation_stats(web: Any, request: Any) -> Any:
        if not carries_api_token(request.headers, settings.api_token):
            return web.json({"error": API_TOKEN_REQUIRED}, status=401)
        local = owned_counts(worker)
        if request.headers.get(forwarded_by) or request.query.get("scope") == "local":
            return web.json({"partitions": {str(p): counts for p, counts in local.items()}})
        if request.query.get("scope", "shop") != "shop":
            return web.json({"error": "scope is `shop` (the default) or `local`"}, status=400)
        others = [p for p in range(settings.partitions) if p not in local]
        owners = await asyncio.get_running_loop().run_in_executor(
            None, lambda: {p: worker.owners.owner(p) for p in others}
        )
        here = settings.canonical_url().rstrip("/")
        asked: dict[str, set[int]] = {}
        for p, url in owners.items():
            if url is not None and url.rstrip("/") != here:
                asked.setdefault(url.rstrip("/"), set()).add(p)
        headers = {forwarded_by: here, "Authorization": request.headers["Authorization"]}
        answers = await _ask(asked, headers)
        gathered = whole_shop(settings.partitions, local, answers)
        return web.json(shop_summary(gathered, settings.partitions, worker.rules.attribution_window_ms))

    _ = recommendation_stats


async def _ask(
    asked: Mapping[str, set[int]], headers: Mapping[str, str]
) -> list[tuple[set[int], Mapping[str, Counts]]]:
    """Every other owner's counts of its partitions, asked at once; one that fails answers nothing."""
    if not asked:
        return []
    timeout = aiohttp.ClientTimeout(total=ASK_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(url: str) -> Mapping[str, Counts]:
            try:
                async with session.get(f"{url}{STATS_PATH}?scope=local", headers=dict(headers)) as reply:
                    if reply.status != 200:
                        return {}
                    return (await reply.json()).get("partitions", {})
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return {}

        replies = await asyncio.gather(*(one(url) for url in asked))
    return list(zip(asked.values(), replies, strict=True))
