"""Purchase intent per shopper of an event log, through the serving runtime (`streams predict --intent`).

Each shopper's clicks and orders become the history the worker keeps (`UserState.recent`): event
time, then clicks before orders, then arrival order; impressions left out; an order as its first
line's item with the kind `order_<status>`. `OnnxRecommender.recommend_streamed` then feeds that
history event by event, as a worker receives it, so the intent is the one the worker would serve
after the shopper's last event.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from streams.core.attribution import is_impression_value
from streams.core.events import CLICKS, ORDERS, SOURCE_RANK
from streams.errors import SchemaViolation
from streams.logs import LogRecord, read_log
from streams.model.features import History
from streams.model.runtime import OnnxRecommender
from streams.schemas import validate

_KIND = {CLICKS: "click", ORDERS: "order"}


@dataclass(slots=True)
class ShopperHistories:
    """Per shopper (in order of first appearance) the history the worker would hold, uncut."""

    histories: dict[str, list[tuple[str | None, str, int]]] = field(default_factory=dict)
    skipped: int = 0  # records the worker would dead-letter (no value, or invalid for its schema)


def shopper_histories(records: Iterable[LogRecord]) -> ShopperHistories:
    out = ShopperHistories()
    keyed: dict[str, list[tuple[tuple[int, int, int], tuple[str | None, str, int]]]] = {}
    arrivals: dict[tuple[str, str], int] = {}
    for record in records:
        if record.topic not in _KIND:
            continue
        value = record.value
        if value is None:
            out.skipped += 1
            continue
        try:
            validate(_KIND[record.topic], value)
        except SchemaViolation:
            out.skipped += 1
            continue
        if is_impression_value(value):
            continue
        user = value["user_id"]
        seq = arrivals[(user, record.topic)] = arrivals.get((user, record.topic), 0) + 1
        if record.topic == CLICKS:
            event = (value.get("item_id"), value["type"], value["ts"])
        else:
            event = (value["items"][0]["item_id"], f"order_{value['status']}", value["ts"])
        keyed.setdefault(user, []).append(((value["ts"], SOURCE_RANK[record.topic], seq), event))
    for user, events in keyed.items():
        events.sort(key=lambda entry: entry[0])
        out.histories[user] = [event for _, event in events]
    return out


def read_shopper_histories(path: Path) -> ShopperHistories:
    return shopper_histories(read_log(path))


def streamed_intents(
    recommender: OnnxRecommender, histories: Iterable[tuple[str, History]], batch_size: int = 256
) -> Iterator[tuple[str, float]]:
    """(shopper, intent after the shopper's last event), histories fed event by event."""
    chunk: list[tuple[str, History]] = []
    for entry in histories:
        chunk.append(entry)
        if len(chunk) == batch_size:
            yield from _chunk_intents(recommender, chunk)
            chunk = []
    if chunk:
        yield from _chunk_intents(recommender, chunk)


def _chunk_intents(
    recommender: OnnxRecommender, chunk: list[tuple[str, History]]
) -> Iterator[tuple[str, float]]:
    predictions = recommender.recommend_streamed([history for _, history in chunk], k=1)
    for (user, _), prediction in zip(chunk, predictions, strict=True):
        yield user, prediction.purchase_intent
