"""The operations endpoints of a worker and the metrics its HTTP layer feeds.

`GET /livez` and `GET /readyz` (streams.live.readiness); `POST /admin/model` swaps the model the
worker serves without a restart (the runtime's hot swap, streams.model.runtime), behind the API
token; every HTTP request is counted by route and status; open live feeds, readiness and the build
(package and model version) are on `/metrics`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web as aioweb
from faust.web import View

from streams import __version__
from streams.live.bearer import API_TOKEN_REQUIRED, carries_api_token
from streams.live.metrics import WorkerMetrics
from streams.live.readiness import WorkerCondition, liveness, readiness

if TYPE_CHECKING:
    from streams.live.app import Worker

log = logging.getLogger(__name__)

MODEL_SWAP_PATH = "/admin/model"
UNMATCHED = "unmatched"  # the route label of a request no route answers (bounded label values)
Handler = Callable[[aioweb.Request], Awaitable[aioweb.StreamResponse]]


def register_operations(worker: Worker) -> None:
    app = worker.app
    metrics = worker.metrics

    def condition() -> WorkerCondition:
        health, _ = worker.view.health()  # observes the stall detector, as /healthz does
        return WorkerCondition(
            joined=worker.loop.joined,
            restoring=worker.loop.restoring,
            catalog_ready=worker.catalog.ready,
            stalled=health["status"] == "stalled",
        )

    @app.page("/livez")
    async def livez(web: Any, request: Any) -> Any:
        document, status = liveness(condition())
        return web.json(document, status=status)

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        document, status = readiness(condition())
        return web.json(document, status=status)

    @app.page(MODEL_SWAP_PATH)
    class ModelSwap(View):
        async def post(self, request: Any) -> Any:
            if not carries_api_token(request.headers, worker.settings.api_token):
                return self.json({"error": API_TOKEN_REQUIRED}, status=401)
            try:
                body = await request.json()
                path = str(body["path"])
            except (ValueError, KeyError, TypeError):
                return self.json(
                    {"error": 'the body must be JSON: {"path": "<model directory>"}'}, status=400
                )
            status, document = await asyncio.get_running_loop().run_in_executor(
                None, swap_model, worker, path
            )
            return self.json(document, status=status)

    worker.app.web.web_app.middlewares.append(request_counter(metrics))
    metrics.sse_connections.set_function(
        lambda: sum(len(queues) for queues in list(worker.feed.subscribers.values()))
    )
    metrics.ready.set_function(lambda: 1.0 if readiness(condition())[1] == 200 else 0.0)
    set_build_info(metrics, model_version(worker))
    _ = (livez, readyz, ModelSwap)


def model_version(worker: Worker) -> str:
    return str(getattr(worker.processor.recommender, "version", None) or "none")


def set_build_info(metrics: WorkerMetrics, model: str) -> None:
    metrics.build_info.clear()  # one series: the model serving now
    metrics.build_info.labels(__version__, model).set(1)


def swap_model(worker: Worker, path: str) -> tuple[int, dict[str, Any]]:
    """Load the artifact at `path` and serve it from the next batch on; the old one stays on error."""
    recommender = worker.processor.recommender
    swap = getattr(recommender, "swap", None)
    if swap is None:
        return 409, {"error": "this worker serves without a model (--no-model): nothing to swap"}
    previous = model_version(worker)
    try:
        version = swap(path)
    except Exception as exc:  # a missing file, a bad graph, bad metadata: the old model keeps serving
        log.warning("model swap to %s refused: %s", path, exc)
        return 400, {"error": f"{type(exc).__name__}: {exc}", "model_version": previous}
    set_build_info(worker.metrics, version)
    log.info("model swapped: %s -> %s (%s)", previous, version, path)
    return 200, {"model_version": version, "previous": previous, "path": path}


def request_counter(metrics: WorkerMetrics) -> Any:
    @aioweb.middleware
    async def count(request: aioweb.Request, handler: Handler) -> aioweb.StreamResponse:
        resource = request.match_info.route.resource
        route = (resource.canonical if resource is not None else None) or UNMATCHED
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except aioweb.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.http_requests.labels(route, str(status)).inc()
            metrics.http_duration.labels(route).observe(time.perf_counter() - started)

    return count
