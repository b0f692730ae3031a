"""What the live dashboard (`GET /demo`, streams/live/static/demo.html) reads besides the public API.

- `GET /demo/demo.js`, `/demo/demo.css`: the page's script and style (no build step, no CDN).
- `GET /demo/session?user=ID`: only on a worker started with `STREAMS_DEMO=true` (`streams demo`
  does): a collector write key and a shopper token for that shopper, so the page can act as any
  shopper and follow their triggers and segments. Anyone who can load the page gets them, which is
  why it is a demo-only setting; without it the page only shows public recommendations.
- `GET /demo/shoppers/{id}`: the shopper's cart, recent activity and profile, for the shopper's own
  token (or the API token), also only with `STREAMS_DEMO=true`.
- `GET /system/summary`: the worker's figures over the last minutes (streams.live.system_history).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web as aioweb

from streams.core.profile import profile_document
from streams.live.catalog_views import register_catalog_views
from streams.live.shopper_access import Access, AccessRefused, shopper_access
from streams.live.shopper_tokens import mint
from streams.live.system_history import SystemHistory, take_sample

if TYPE_CHECKING:
    from streams.core.state import UserState
    from streams.live.app import Worker

STATIC_FILES = {
    "demo.js": "application/javascript",
    "demo.css": "text/css",
}
DEMO_TOKEN_SECONDS = 12 * 60 * 60
RECENT_ACTIVITY = 12
DEMO_OFF = "the demo page's shopper access is off on this worker (STREAMS_DEMO)"


def shopper_panel(state: UserState, document: dict[str, Any], catalog: Any) -> dict[str, Any]:
    """The followed shopper as the dashboard shows them: the profile document, the cart and the
    newest events, each item with its catalog title and price when the catalog knows it."""

    def described(item_id: str | None) -> dict[str, Any]:
        item = catalog.get(item_id) if item_id is not None else None
        return {} if item is None else {"title": item.title, "price": item.price, "category": item.category}

    cart = [
        {"item_id": item_id, "quantity": line.quantity, **described(item_id), "cart_price": line.price}
        for item_id, line in sorted(state.cart.items())
    ]
    recent = [
        {"ts": e.ts, "event_id": e.event_id, "kind": e.kind, "item_id": e.item_id, **described(e.item_id)}
        for e in reversed(state.recent[-RECENT_ACTIVITY:])
    ]
    return {"profile": document, "cart": cart, "recent": recent}


def register_dashboard(worker: Worker, static: Any) -> None:
    app = worker.app
    settings = worker.settings
    history = SystemHistory(started=time.time())  # the counters are zero now

    @app.page("/demo/session")
    async def demo_session(web: Any, request: Any) -> Any:
        access = settings.web_access
        if not access.demo or access.shopper_secret is None:
            return web.json({"error": DEMO_OFF}, status=404)
        user_id = request.query.get("user", "").strip()
        if not user_id or len(user_id) > 128:
            return web.json({"error": "user must be a shopper id of 1 to 128 characters"}, status=400)
        expires = int(time.time()) + DEMO_TOKEN_SECONDS
        return web.json(
            {
                "user_id": user_id,
                "write_key": access.collector_keys[0],
                "shopper_token": mint(access.shopper_secret, user_id, expires),
                "expires": expires,
            }
        )

    @app.page("/demo/shoppers/{user_id}")
    async def demo_shopper(web: Any, request: Any, user_id: str) -> Any:
        if not settings.web_access.demo:
            return web.json({"error": DEMO_OFF}, status=404)
        try:
            access = shopper_access(settings, user_id, request.headers, request.query, time.time())
        except AccessRefused as exc:
            return web.json({"error": str(exc)}, status=401)
        if access is not Access.SHOPPER:
            return web.json({"error": "the shopper's own token is required"}, status=401)
        view = worker.view
        if not view.owns(user_id):
            partition = view.partition_for(user_id)
            owner = await asyncio.get_running_loop().run_in_executor(None, worker.owners.owner, partition)
            here = settings.canonical_url().rstrip("/")
            if owner is not None and owner.rstrip("/") != here:
                raise aioweb.HTTPTemporaryRedirect(f"{owner.rstrip('/')}{request.path_qs}")
        state = view.state(user_id)
        if state is None:
            return web.json({"error": "unknown user", "user_id": user_id}, status=404)
        document = profile_document(state, worker.rules, view.event_time(user_id))
        return web.json(shopper_panel(state, document, worker.catalog.items))

    # After /demo/session: a route with a parameter would answer for it.
    @app.page("/demo/{name}")
    async def demo_file(web: Any, request: Any, name: str) -> Any:
        content_type = STATIC_FILES.get(name)
        if content_type is None:
            return web.json({"error": "no such file"}, status=404)
        return web.bytes((static / name).read_bytes(), content_type=content_type)

    @app.page("/system/summary")
    async def system_summary(web: Any, request: Any) -> Any:
        return web.json(history.summary())

    @app.timer(history.every, name="dashboard-system-sample")
    async def sample() -> None:
        lag = sum(worker.loop.lag().values())
        history.add(take_sample(worker.metrics, lag, time.time()))

    register_catalog_views(worker)
    _ = (demo_file, demo_session, demo_shopper, system_summary, sample)
