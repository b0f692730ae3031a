"""HTTP views of the event collector: `POST /events` (streams.live.event_collector) and the
JavaScript snippet a shop's pages load from the worker (`GET /streams.js`)."""

from __future__ import annotations

import asyncio
import hmac
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confluent_kafka import Producer
from faust.web import View

from streams.kafka.clients import librdkafka_config
from streams.live.event_collector import MAX_BATCH_BYTES, BadBatch, EventCollector, read_batch
from streams.live.transport import producer_config

if TYPE_CHECKING:
    from streams.live.app import Worker

SNIPPET = Path(__file__).resolve().parent / "static" / "streams.js"


def write_key_valid(keys: tuple[str, ...], authorization: str) -> bool:
    given = authorization.removeprefix("Bearer ").strip().encode()
    # Every key is compared, so the time taken does not tell which one came close.
    return bool(given) and sum(hmac.compare_digest(given, key.encode()) for key in keys) > 0


def register_collector_views(worker: Worker) -> None:
    settings = worker.settings
    collector: EventCollector | None = None

    def collector_for_requests() -> EventCollector:
        nonlocal collector
        if collector is None:  # the producer connects on the first batch, not at every start
            producer = Producer(producer_config(librdkafka_config(settings), settings.producer_linger_ms))
            collector = EventCollector(settings, producer, lambda: int(time.time() * 1000))
        return collector

    class Events(View):
        async def post(self, request: Any) -> Any:
            keys = settings.web_access.collector_keys
            if not keys:
                return self.json({"error": "the collector is closed (STREAMS_COLLECTOR_KEYS)"}, status=401)
            if not write_key_valid(keys, request.headers.get("Authorization", "")):
                return self.json(
                    {"error": "a valid write key is required (Authorization: Bearer KEY)"}, status=401
                )
            if (request.content_length or 0) > MAX_BATCH_BYTES:
                return self.json({"error": f"the batch is over {MAX_BATCH_BYTES} bytes"}, status=413)
            try:
                batch = read_batch(await request.read())
            except BadBatch as exc:
                return self.json({"error": str(exc)}, status=400)
            running = asyncio.get_running_loop()
            status, answer = await running.run_in_executor(None, collector_for_requests().collect, batch)
            return self.json(answer, status=status)

    class Snippet(View):
        async def get(self, request: Any) -> Any:
            return self.bytes(SNIPPET.read_bytes(), content_type="application/javascript")

    worker.app.page("/events")(Events)
    worker.app.page("/streams.js")(Snippet)
