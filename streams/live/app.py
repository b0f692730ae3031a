"""The live adapter: a Faust app whose agent feeds `clicks` and `orders` through the pure core.

The agent decodes, validates, loads the user's state from a RocksDB table (changelog-backed),
calls the core, stores the state and sends outputs. Nothing else: rules live in `streams.core`.
Delivery is at-least-once (Faust's exactly_once has open duplicate bugs); the offset watermark in
each user's state makes a re-delivered event a no-op.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from faust.types import EventT, StreamT

from streams.codec import encode_value
from streams.config import INPUT_TOPICS, Settings
from streams.core.events import Position
from streams.core.processor import Processor
from streams.core.state import StateLimits
from streams.deadletters import dead_letter_value
from streams.errors import BadMessage
from streams.ingest import parse_user_event
from streams.live.tables import STATE_TABLE, UserStateTable

log = logging.getLogger(__name__)

RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


class Worker:
    """Builds the Faust app for one worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.processor = Processor(StateLimits(recent_events=settings.recent_events))
        self.app = faust.App(
            settings.app_id,
            broker=f"kafka://{settings.bootstrap}",
            store="rocksdb://",
            datadir=settings.data_dir,
            topic_partitions=settings.partitions,
            topic_replication_factor=settings.replication,
            processing_guarantee="at_least_once",
            producer_acks=-1,
            web_host=settings.web_host,
            web_port=settings.web_port,
            web_in_thread=False,
            autodiscover=False,
            table_cleanup_interval=3600.0,
            broker_commit_interval=1.0,
            # A SIGKILLed worker holds its partitions until the session times out: keep that short.
            broker_session_timeout=10.0,
            broker_heartbeat_interval=2.0,
        )
        self.inputs = self.app.topic(
            *(settings.topic(t) for t in INPUT_TOPICS), partitions=settings.partitions, **RAW
        )
        self.dead_letters = self.app.topic(settings.topic("dead-letters"), **RAW)
        # bytes types make Faust store keys and values untouched ("raw"); the state is msgpack we encode.
        table = self.app.Table(
            STATE_TABLE, default=None, partitions=settings.partitions, key_type=bytes, value_type=bytes
        )
        self.states = UserStateTable(table)
        self.app.agent(self.inputs, name="user-events")(self._consume)
        self.counts = {"events": 0, "applied": 0, "redelivered": 0, "dead_letters": 0}
        self._register_views()

    async def _consume(self, stream: StreamT) -> None:
        async for event in stream.events():
            await self.handle(event)

    async def handle(self, event: EventT) -> None:
        message = event.message
        self.counts["events"] += 1
        logical = self.settings.logical(message.topic) or message.topic
        try:
            user_event = parse_user_event(logical, message.key, message.value, message.headers)
            position = Position(logical, message.partition, message.offset)
            state = self.states.load(user_event.user_id)
            transition = self.processor.process(state, user_event, position)
        except BadMessage as exc:
            await self._dead_letter(event, exc)
            return
        except Exception as exc:  # a bug must not stop the partition; the message is kept for replay
            log.exception("processing failed at %s[%d]@%d", message.topic, message.partition, message.offset)
            await self._dead_letter(event, BadMessage("processing_failed", f"{type(exc).__name__}: {exc}"))
            return
        if transition.applied:
            self.counts["applied"] += 1
        else:
            # A re-delivery after a crash: the local store may hold this state while the changelog
            # never got it (killed before the producer flushed). Writing it again repairs that.
            self.counts["redelivered"] += 1
        self.states.store(transition.state)
        for topic, key, value in transition.outputs:
            await self.app.topic(self.settings.topic(topic), **RAW).send(
                key=key.encode(), value=encode_value(value)
            )

    async def _dead_letter(self, event: EventT, error: BadMessage) -> None:
        message = event.message
        self.counts["dead_letters"] += 1
        log.info("dead letter %s[%d]@%d: %s", message.topic, message.partition, message.offset, error.message)
        value = dead_letter_value(
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            error,
            ts=int(message.timestamp * 1000) if message.timestamp else int(time.time() * 1000),
        )
        await self.dead_letters.send(key=message.key, value=encode_value(value))

    def _register_views(self) -> None:
        app = self.app

        @app.page("/healthz")
        async def healthz(web: Any, request: Any) -> Any:
            return web.json({"status": "ok", "app_id": self.settings.app_id, **self.counts})

        @app.page("/users/{user_id}/state")
        @app.table_route(table=self.states.table, match_info="user_id")
        async def user_state(web: Any, request: Any, user_id: str) -> Any:
            state = self.states.load(user_id)
            if state is None:
                return web.json({"error": "unknown user", "user_id": user_id}, status=404)
            return web.json(state.to_dict())
