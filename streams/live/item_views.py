"""HTTP views of item lists: a shopper's recommendations computed at request time (with parameters),
items similar to an item, items bought together with it, and the shop's trending items.

Similar items come from the model every worker loads. Bought-together and trending counts live in
the partitions' states, spread over the workers: the worker asked gathers every partition's counts,
its own from its stores and the others' from their owners (`/partitions/...`, answered from their
own stores only), and the pure core ranks them. A request-time recommendation runs on the worker
that owns the shopper (the request is forwarded there first, `streams.live.web`), off the event
loop and one at a time, so it never holds up the processing loop for more than one model call.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import aiohttp
import msgpack
from aiohttp import web as aioweb

from streams.config import PARTITION_TABLE
from streams.core.item_lists import shop_bought_together, shop_trending, similar_items
from streams.core.listing import ListQuery, QueryError, parse_query, select
from streams.core.on_request import ItemSpace, recommend_now
from streams.core.processor import PartitionState
from streams.core.recommend import TrendingOnly
from streams.core.trending import Trending
from streams.live.partitions import partition_key
from streams.live.shopper_access import TOKEN_PARAMETER

if TYPE_CHECKING:
    from streams.live.app import Worker

ASKED_BY = "X-Streams-Forwarded-By"  # as streams.live.web marks a request between workers
ASK_TIMEOUT_SECONDS = 10.0


def _error(message: str, status: int, **extra: Any) -> aioweb.Response:
    return aioweb.json_response({"error": message, **extra}, status=status)


class ItemViews:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.computing = asyncio.Lock()  # request-time model calls, one at a time per worker
        self._session: aiohttp.ClientSession | None = None

    # -- what this worker holds -------------------------------------------------------------------

    def space(self) -> ItemSpace | None:
        """The model's item embeddings (None: the worker runs without a model)."""
        item_space = getattr(self.worker.processor.recommender, "item_space", None)
        return item_space() if item_space is not None else None

    async def _space(self) -> ItemSpace | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.space)  # a first call reads the model's graph

    def partition_states(self) -> dict[int, PartitionState]:
        """The owned partitions' states as of the last checkpoint begun (read like a user's state:
        safe from this thread while the processing loop runs)."""
        states = {p: self.partition_state(p) for p in sorted(list(self.worker.loop.partitions.tasks))}
        return {p: state for p, state in states.items() if state is not None}

    def partition_state(self, partition: int) -> PartitionState | None:
        """None: not owned here. An owned partition that has counted nothing yet has an empty state."""
        loop = self.worker.loop
        if partition not in loop.partitions.tasks:
            return None
        raw = loop.read(partition, PARTITION_TABLE, partition_key(partition))
        if raw is None:
            return self.worker.processor.new_partition_state()
        return PartitionState.from_wire(msgpack.unpackb(raw, raw=False))

    def knows(self, item_id: str, space: ItemSpace | None) -> bool:
        return item_id in self.worker.catalog.items or (space is not None and item_id in space)

    # -- every worker's partitions ------------------------------------------------------------------

    async def gather(self, path: str, local: dict[str, Any]) -> tuple[dict[int, Any], int]:
        """Per partition number, what `path` answers on the worker owning it (`local`: this worker's
        own answer); and how many partitions the group has. A partition whose owner does not answer
        is left out: the answer says how many it covers."""
        total = self.worker.settings.partitions
        found = {int(p): value for p, value in local.items()}
        owners = self.worker.owners
        urls = await asyncio.get_running_loop().run_in_executor(
            None, lambda: {owners.owner(p) for p in range(total) if p not in found}
        )
        here = self.worker.settings.canonical_url().rstrip("/")
        others = sorted(u.rstrip("/") for u in urls if u is not None and u.rstrip("/") != here)
        answers = await asyncio.gather(*(self._ask(f"{url}{path}", here) for url in others))
        for answer in answers:
            for p, value in answer.items():
                found.setdefault(int(p), value)  # mid-rebalance, two workers may answer for one
        return found, total

    async def _ask(self, url: str, here: str) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ASK_TIMEOUT_SECONDS))
        try:
            async with self._session.get(url, headers={ASKED_BY: here}) as reply:
                if reply.status != 200:
                    return {}
                return dict((await reply.json())["partitions"])
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError, KeyError):
            return {}

    # -- the views ----------------------------------------------------------------------------------

    async def recommendations(self, request: Any, user_id: str) -> aioweb.Response:
        """`GET /users/{id}/recommendations` with parameters, on the worker owning the shopper."""
        query, failed = _query(request)
        if failed is not None:
            return failed
        view = self.worker.view
        state = view.state(user_id)
        if state is None:
            return _error("unknown user", 404, user_id=user_id)
        partition = self.partition_state(view.partition_for(user_id))  # None: moved away just now
        trending = (
            partition.trending if partition is not None else Trending(self.worker.rules.trending_half_life_ms)
        )
        recommender = self.worker.processor.recommender or TrendingOnly()

        def compute() -> dict[str, Any]:
            listed = recommend_now(
                state,
                recommender,
                trending,
                self.worker.catalog.items,
                self.worker.rules,
                query,
                self.space(),
            )
            return listed.document(user_id, query, state.recent[-1].event_id if state.recent else None)

        async with self.computing:
            document = await asyncio.get_running_loop().run_in_executor(None, compute)
        return aioweb.json_response(document)

    async def similar(self, request: Any, item_id: str) -> aioweb.Response:
        query, failed = _query(request)
        if failed is not None:
            return failed
        space = await self._space()
        if not self.knows(item_id, space):
            return _error("unknown item", 404, item_id=item_id)
        if space is None:
            return _error("this worker runs without a model: similar items need its embeddings", 503)
        catalog = self.worker.catalog.items
        candidates = similar_items(space, item_id, query, catalog) if item_id in space else []
        return self._listed(item_id, "similar", query, select(candidates, catalog, query))

    async def bought_together(self, request: Any, item_id: str) -> aioweb.Response:
        query, failed = _query(request)
        if failed is not None:
            return failed
        local = {str(p): s.bought.partners(item_id) for p, s in self.partition_states().items()}
        found, total = await self.gather(f"/partitions/bought-together/{item_id}", local)
        candidates = shop_bought_together(found)
        if not candidates and not self.knows(item_id, await self._space()):
            return _error("unknown item", 404, item_id=item_id)
        items = select(candidates, self.worker.catalog.items, query)
        return self._listed(item_id, "bought_together", query, items, covered=(len(found), total))

    async def trending(self, request: Any) -> aioweb.Response:
        query, failed = _query(request)
        if failed is not None:
            return failed
        local = {str(p): s.trending.to_wire() for p, s in self.partition_states().items()}
        found, total = await self.gather("/partitions/trending", local)
        candidates = shop_trending({p: Trending.from_wire(w) for p, w in found.items()})
        items = select(candidates, self.worker.catalog.items, query)
        return self._listed(None, "trending", query, items, covered=(len(found), total))

    def _listed(
        self,
        item_id: str | None,
        kind: str,
        query: ListQuery,
        items: list[dict[str, Any]],
        covered: tuple[int, int] | None = None,
    ) -> aioweb.Response:
        document: dict[str, Any] = {"list": kind, "placement": query.placement, "items": items}
        if item_id is not None:
            document = {"item_id": item_id, **document}
        if covered is not None:
            # Whole-shop lists: how many partitions' counts went in (all, unless an owner was down).
            document["partitions"], document["of"] = covered
        return aioweb.json_response(document)


def _query(request: Any) -> tuple[ListQuery, aioweb.Response | None]:
    try:
        # The shopper token rides in the query too (EventSource cannot send headers): not a list parameter.
        return parse_query((k, v) for k, v in request.query.items() if k != TOKEN_PARAMETER), None
    except QueryError as exc:
        return ListQuery(), _error(str(exc), 400)


def register_item_views(worker: Worker) -> ItemViews:
    app = worker.app
    views = ItemViews(worker)

    @app.page("/items/trending")
    async def trending(web: Any, request: Any) -> Any:
        return await views.trending(request)

    @app.page("/items/{item_id}/similar")
    async def similar(web: Any, request: Any, item_id: str) -> Any:
        return await views.similar(request, item_id)

    @app.page("/items/{item_id}/bought-together")
    async def bought_together(web: Any, request: Any, item_id: str) -> Any:
        return await views.bought_together(request, item_id)

    # What the workers ask each other for: this worker's own partitions only.
    @app.page("/partitions/trending")
    async def partitions_trending(web: Any, request: Any) -> Any:
        wires = {str(p): s.trending.to_wire() for p, s in views.partition_states().items()}
        return web.json({"partitions": wires})

    @app.page("/partitions/bought-together/{item_id}")
    async def partitions_bought(web: Any, request: Any, item_id: str) -> Any:
        partners = {str(p): s.bought.partners(item_id) for p, s in views.partition_states().items()}
        return web.json({"partitions": partners})

    _ = (trending, similar, bought_together, partitions_trending, partitions_bought)
    return views
