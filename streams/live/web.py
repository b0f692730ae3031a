"""HTTP API of a worker (Faust web views): latest recommendations, a live SSE feed, state, profile,
assistant context, health, Prometheus metrics, an OpenAPI document and the demo page.

Per-user endpoints are served by the worker that owns the user: plain requests are proxied there
(Faust's table routing), the SSE feed redirects the browser there.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
from aiohttp import web as aioweb

from streams.config import INPUT_TOPICS
from streams.core.context import assistant_context
from streams.core.profile import profile_document
from streams.live.malloc import heap_usage

if TYPE_CHECKING:
    from streams.core.state import UserState
    from streams.live.app import Worker

STATIC = Path(__file__).resolve().parent / "static"
SSE_KEEPALIVE_SECONDS = 15.0
# A per-user document from the state and the latest recommendation (None before the first one).
Render = Callable[["UserState", dict[str, Any] | None], dict[str, Any]]
SSE_EVENTS = {
    "recommendations": "recommendation",
    "promotion-triggers": "trigger",
    "audience-segments": "segment",
}


def openapi_document() -> dict[str, Any]:
    user = {"name": "user_id", "in": "path", "required": True, "schema": {"type": "string"}}

    def op(summary: str, content: str = "application/json", params: list | None = None, **extra: Any) -> dict:
        return {
            "get": {
                "summary": summary,
                "parameters": params or [],
                "responses": {"200": {"description": "OK", "content": {content: {}}}, **extra},
            }
        }

    protected = {
        "401": {"description": "missing or wrong token"},
        "404": {"description": "unknown user"},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "streams worker API", "version": "1"},
        "paths": {
            "/users/{user_id}/recommendations": op(
                "Latest recommendation event for the user (schemas/recommendation.v1.json)",
                params=[user],
                **{"404": {"description": "no recommendation yet"}},
            ),
            "/users/{user_id}/recommendations/stream": op(
                "Server-Sent Events: every recommendation, promotion trigger and segment change for the user "
                "as it is sent",
                "text/event-stream",
                [user],
            ),
            "/users/{user_id}/state": op(
                "The user's state (requires `Authorization: Bearer <STREAMS_API_TOKEN>`)",
                params=[user],
                **protected,
            ),
            "/users/{user_id}/profile": op(
                "The shopper's profile: decayed interest per category, price band, recency / frequency / "
                "monetary value, lifecycle stage, segments (docs/segments.md, Profiles; requires the token)",
                params=[user],
                **protected,
            ),
            "/users/{user_id}/context": op(
                "Compact summary for a shopping assistant's prompt: recent views with titles, cart, "
                "purchase intent, recommendations, segments; at most 4 KiB "
                "(docs/segments.md, Assistant context; requires the token)",
                params=[user],
                **protected,
            ),
            "/healthz": op("Liveness and counters of this worker"),
            "/metrics": op("Prometheus metrics", "text/plain"),
            "/demo": op("Demo page following one shopper", "text/html"),
        },
    }


def register_views(worker: Worker) -> None:
    app = worker.app

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        assigned = sorted(
            tp.partition for tp in app.consumer.assignment() if tp.topic in worker.inputs.topics
        )
        recovering = bool(app.in_recovery) or not app.tables.recovery.completed.is_set()
        lag = worker.input_lag()
        stalled = worker.stall.observe(worker.processed(), 0 if recovering else lag, time.monotonic())
        return web.json(
            {
                # "stalled": input waits and nothing was processed for STREAMS_STALL_SECONDS (503).
                "status": "stalled" if stalled else "ok",
                "lag": lag,
                "app_id": worker.settings.app_id,
                "partitions": sorted(set(assigned)),
                # True while tables are restored from their changelogs (after a crash or a move).
                "recovering": recovering,
                "held": len(worker.sequencer),
                "reordered_by_timeout": worker.sequencer.forced,
                "demand_late_events": worker.demand_late_events(),
                "model_version": getattr(worker.processor.recommender, "version", None),
                **worker.counts,
            },
            status=503 if stalled else 200,
        )

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        _update_lag(worker)
        _update_memory(worker)
        return web.bytes(worker.metrics.render(), content_type="text/plain; version=0.0.4")

    @app.page("/openapi.json")
    async def openapi(web: Any, request: Any) -> Any:
        return web.json(openapi_document())

    @app.page("/demo")
    async def demo(web: Any, request: Any) -> Any:
        return web.html((STATIC / "demo.html").read_text(encoding="utf-8"))

    @app.page("/users/{user_id}/recommendations")
    @app.table_route(table=worker.latest, match_info="user_id")
    async def recommendations(web: Any, request: Any, user_id: str) -> Any:
        with worker.contexts.partition(worker.partition_for(user_id)):
            raw = worker.latest.get(user_id.encode())
        if raw is None:
            return web.json({"error": "no recommendation yet", "user_id": user_id}, status=404)
        return web.json(msgpack.unpackb(raw, raw=False))

    def respond(web: Any, request: Any, user_id: str, render: Render) -> Any:
        """`render(state, latest recommendation)` for a request with the right bearer token."""
        token = worker.settings.api_token
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not token or not hmac.compare_digest(given.encode(), token.encode()):
            return web.json({"error": "a valid bearer token is required (STREAMS_API_TOKEN)"}, status=401)
        with worker.contexts.partition(worker.partition_for(user_id)):
            state = worker.load_state(user_id)
            raw = worker.latest.get(user_id.encode())
        if state is None:
            return web.json({"error": "unknown user", "user_id": user_id}, status=404)
        return web.json(render(state, None if raw is None else msgpack.unpackb(raw, raw=False)))

    @app.page("/users/{user_id}/state")
    @app.table_route(table=worker.states, match_info="user_id")
    async def user_state(web: Any, request: Any, user_id: str) -> Any:
        return respond(web, request, user_id, lambda state, _: state.to_dict())

    @app.page("/users/{user_id}/profile")
    @app.table_route(table=worker.states, match_info="user_id")
    async def user_profile(web: Any, request: Any, user_id: str) -> Any:
        now = worker.event_time(user_id)
        return respond(web, request, user_id, lambda state, _: profile_document(state, worker.rules, now))

    @app.page("/users/{user_id}/context")
    @app.table_route(table=worker.states, match_info="user_id")
    async def user_context(web: Any, request: Any, user_id: str) -> Any:
        now = worker.event_time(user_id)
        return respond(
            web,
            request,
            user_id,
            lambda state, rec: assistant_context(state, rec, worker.catalog.items, worker.rules, now),
        )

    @app.page("/users/{user_id}/recommendations/stream")
    async def stream(web: Any, request: Any, user_id: str) -> Any:
        try:
            owner = app.router.key_store(worker.latest.name, user_id)
        except KeyError:
            owner = None
        if owner is not None and str(owner).rstrip("/") != worker.settings.canonical_url().rstrip("/"):
            raise aioweb.HTTPTemporaryRedirect(f"{str(owner).rstrip('/')}{request.path_qs}")
        return await _serve_events(worker, request, user_id)

    _ = (healthz, metrics, openapi, demo, recommendations, user_state, user_profile, user_context, stream)


async def _serve_events(worker: Worker, request: Any, user_id: str) -> aioweb.StreamResponse:
    response = aioweb.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "Access-Control-Allow-Origin": "*",
        }
    )
    await response.prepare(request)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    worker.subscribers.setdefault(user_id, set()).add(queue)
    try:
        with worker.contexts.partition(worker.partition_for(user_id)):
            latest = worker.latest.get(user_id.encode())
        if latest is not None:
            await _write(response, "recommendation", msgpack.unpackb(latest, raw=False))
        while True:
            try:
                message = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE_SECONDS)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            kind = SSE_EVENTS.get(message["topic"], "trigger")
            await _write(response, kind, message["value"])
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        queues = worker.subscribers.get(user_id, set())
        queues.discard(queue)
        if not queues:  # else every user id ever asked for would stay a key
            worker.subscribers.pop(user_id, None)
    return response


async def _write(response: aioweb.StreamResponse, event: str, data: dict[str, Any]) -> None:
    payload = json.dumps(data, separators=(",", ":"))
    await response.write(f"event: {event}\ndata: {payload}\n\n".encode())


def _update_lag(worker: Worker) -> None:
    """Lag = log end minus the next offset to process, per assigned input partition."""
    consumer = worker.app.consumer
    for tp in consumer.assignment():
        logical = worker.settings.logical(tp.topic)
        if logical not in INPUT_TOPICS:
            continue
        try:
            highwater = consumer.highwater(tp)
        except Exception:  # a partition mid-rebalance has no highwater yet
            continue
        if highwater is not None:
            done = worker.next_to_process(logical, tp.partition)
            worker.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - done))


def _update_memory(worker: Worker) -> None:
    for part, value in worker.rocks_memory.usage(worker.databases()).items():
        worker.metrics.memory.labels(part.removesuffix("_bytes")).set(value)
    for part, value in (heap_usage() or {}).items():
        worker.metrics.memory.labels(f"heap_{part}").set(value)
    worker.metrics.python_blocks.set(sys.getallocatedblocks())
    worker.metrics.indexed.set(worker.local_index.estimated_keys())
