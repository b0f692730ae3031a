"""HTTP API of a worker (Faust web views): latest recommendations, a live SSE feed, state, profile,
assistant context, health, Prometheus metrics, an OpenAPI document and the demo page.

Per-user endpoints are served by the worker that owns the user (streams.live.owners): plain requests
are forwarded there, the SSE feed redirects the browser there.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web as aioweb

from streams.core.context import assistant_context
from streams.core.profile import profile_document
from streams.live.attribution import register_attribution
from streams.live.bearer import API_TOKEN_REQUIRED, carries_api_token
from streams.live.dashboard import register_dashboard
from streams.live.item_views import register_item_views
from streams.live.openapi import openapi_document
from streams.live.operations import register_operations
from streams.live.shopper_access import (
    TOKEN_PARAMETER,
    Access,
    AccessRefused,
    public_recommendation,
    shopper_access,
)

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


FORWARDED_BY = "X-Streams-Forwarded-By"  # set on a request one worker passes to the owner
FORWARD_TIMEOUT_SECONDS = 10.0


def register_views(worker: Worker) -> None:
    app = worker.app
    view = worker.view
    session: aiohttp.ClientSession | None = None
    register_operations(worker)  # /livez, /readyz, the model swap, request and build metrics
    items = register_item_views(worker)
    register_dashboard(worker, STATIC)  # the demo page's files, its shopper access, /items, /system/summary

    async def forwarded(request: Any, user_id: str) -> Any | None:
        """The owner's answer when another worker owns the user; None: answer here."""
        nonlocal session
        if view.owns(user_id) or request.headers.get(FORWARDED_BY):
            return None  # a forwarded request is answered where it lands: no loops
        partition = view.partition_for(user_id)
        owner = await asyncio.get_running_loop().run_in_executor(None, worker.owners.owner, partition)
        here = worker.settings.canonical_url().rstrip("/")
        if owner is None or owner.rstrip("/") == here:
            return None
        if session is None:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_SECONDS))
        headers = {FORWARDED_BY: here}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        try:
            async with session.get(f"{owner.rstrip('/')}{request.path_qs}", headers=headers) as reply:
                body = await reply.read()
                return aioweb.Response(body=body, status=reply.status, content_type=reply.content_type)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return aioweb.json_response(
                {"error": f"the worker owning this user did not answer: {exc}", "owner": owner}, status=503
            )

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        document, status = view.health()
        return web.json(document, status=status)

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        view.update_metrics(worker.databases())
        return web.bytes(worker.metrics.render(), content_type="text/plain; version=0.0.4")

    @app.page("/openapi.json")
    async def openapi(web: Any, request: Any) -> Any:
        return web.json(openapi_document())

    @app.page("/demo")
    async def demo(web: Any, request: Any) -> Any:
        return web.html((STATIC / "demo.html").read_text(encoding="utf-8"))

    @app.page("/users/{user_id}/recommendations")
    async def recommendations(web: Any, request: Any, user_id: str) -> Any:
        try:
            access = shopper_access(worker.settings, user_id, request.headers, request.query, time.time())
        except AccessRefused as exc:
            return web.json({"error": str(exc)}, status=401)
        if (reply := await forwarded(request, user_id)) is not None:
            return reply
        if any(name != TOKEN_PARAMETER for name in request.query):
            # List parameters: computed now from the shopper's state (streams.live.item_views).
            return await items.recommendations(request, user_id)
        latest = view.latest(user_id)
        if latest is None:
            return web.json({"error": "no recommendation yet", "user_id": user_id}, status=404)
        return web.json(latest if access is Access.SHOPPER else public_recommendation(latest))

    async def respond(web: Any, request: Any, user_id: str, render: Render) -> Any:
        """`render(state, latest recommendation)` for a request with the right bearer token."""
        if not carries_api_token(request.headers, worker.settings.api_token):
            return web.json({"error": API_TOKEN_REQUIRED}, status=401)
        if (reply := await forwarded(request, user_id)) is not None:
            return reply
        state = view.state(user_id)
        if state is None:
            return web.json({"error": "unknown user", "user_id": user_id}, status=404)
        return web.json(render(state, view.latest(user_id)))

    @app.page("/users/{user_id}/state")
    async def user_state(web: Any, request: Any, user_id: str) -> Any:
        return await respond(web, request, user_id, lambda state, _: state.to_dict())

    @app.page("/users/{user_id}/profile")
    async def user_profile(web: Any, request: Any, user_id: str) -> Any:
        now = view.event_time(user_id)
        return await respond(
            web, request, user_id, lambda state, _: profile_document(state, worker.rules, now)
        )

    @app.page("/users/{user_id}/context")
    async def user_context(web: Any, request: Any, user_id: str) -> Any:
        now = view.event_time(user_id)
        return await respond(
            web,
            request,
            user_id,
            lambda state, rec: assistant_context(state, rec, worker.catalog.items, worker.rules, now),
        )

    @app.page("/users/{user_id}/recommendations/stream")
    async def stream(web: Any, request: Any, user_id: str) -> Any:
        try:
            access = shopper_access(worker.settings, user_id, request.headers, request.query, time.time())
        except AccessRefused as exc:
            return web.json({"error": str(exc)}, status=401)
        if not view.owns(user_id) and not request.headers.get(FORWARDED_BY):
            partition = view.partition_for(user_id)
            owner = await asyncio.get_running_loop().run_in_executor(None, worker.owners.owner, partition)
            here = worker.settings.canonical_url().rstrip("/")
            if owner is not None and owner.rstrip("/") != here:
                raise aioweb.HTTPTemporaryRedirect(f"{owner.rstrip('/')}{request.path_qs}")
        return await _serve_events(worker, request, user_id, access)

    _ = (healthz, metrics, openapi, demo, recommendations, user_state, user_profile, user_context, stream)
    register_attribution(worker, FORWARDED_BY)


async def _serve_events(worker: Worker, request: Any, user_id: str, access: Access) -> aioweb.StreamResponse:
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    if not worker.settings.web_access.cors_origins:  # else CORS (streams.live.cors) answers the origin
        headers["Access-Control-Allow-Origin"] = "*"
    response = aioweb.StreamResponse(headers=headers)
    await response.prepare(request)
    queue = worker.feed.subscribe(user_id)
    public = access is Access.PUBLIC
    try:
        latest = worker.view.latest(user_id)
        if latest is not None:
            await _write(response, "recommendation", public_recommendation(latest) if public else latest)
        while True:
            try:
                message = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE_SECONDS)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            kind = SSE_EVENTS.get(message["topic"], "trigger")
            if public and kind != "recommendation":
                continue  # triggers and segments tell a shopper's cart and profile
            await _write(
                response, kind, public_recommendation(message["value"]) if public else message["value"]
            )
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        worker.feed.unsubscribe(user_id, queue)
    return response


async def _write(response: aioweb.StreamResponse, event: str, data: dict[str, Any]) -> None:
    payload = json.dumps(data, separators=(",", ":"))
    await response.write(f"event: {event}\ndata: {payload}\n\n".encode())
