"""Forecast events (`demand-forecasts`), and the follower that refreshes them as hours close.

The follower reads the `demand` topic (no consumer group: it never takes partitions from a
worker), adds the partitions up, and each time the hours every partition has closed move on,
refits each key's series and sends its forecast. Fitting happens here, never on the worker's
per-event path. A forecast's id comes from its key, measure and `as_of`, so a refit of the same
hours after a restart carries the same id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.codec import decode_value
from streams.config import Settings
from streams.core.config import DAY
from streams.core.events import SCHEMA_VERSION
from streams.core.ids import stable_id
from streams.deadletters import dead_letter_value
from streams.errors import BadMessage
from streams.forecast.model import holt_winters
from streams.forecast.series import HourlyDemand, HourlySeries
from streams.output_encoding import DEAD_LETTERS, encode_output
from streams.schemas import validate

DEMAND_FORECASTS = "demand-forecasts"


def forecast_value(series: HourlySeries, measure: str) -> dict[str, Any]:
    """The forecast of the hours after `series` (which must hold at least one hour)."""
    result = holt_winters(series.values)
    scope, key = series.key.split(":", 1)
    return {
        "schema_version": SCHEMA_VERSION,
        "forecast_id": stable_id("f", series.key, measure, series.end),
        "scope": scope,
        "key": key,
        "measure": measure,
        "as_of": series.end,
        "history_hours": len(series.values),
        "next_hour": round(result.next_hour, 3),
        "next_day": round(result.next_day, 3),
        "method": result.method,
        "ts": series.end,
    }


def forecasts(hourly: HourlyDemand, until: int | None = None) -> list[dict[str, Any]]:
    return [forecast_value(s, hourly.measure) for s in hourly.series(until).values() if len(s.values)]


def follow(
    settings: Settings,
    hourly: HourlyDemand,
    history_days: float = 28,
    until_idle: float | None = None,
    on_sent: Callable[[dict[str, Any]], None] = lambda _: None,
) -> int:
    """Refresh forecasts as hours close until stopped (or `until_idle` seconds without demand
    events); returns how many forecasts were sent. A message that is no demand event goes to
    `dead-letters` with the reason, and the follower goes on."""
    from streams.kafka.produce import make_producer
    from streams.kafka.record import RecordOptions, consume_topics

    producer = make_producer(settings)
    options = RecordOptions(("demand",), from_beginning=True, until_idle=until_idle)
    done_until: int | None = None
    sent = 0
    try:
        for batch in consume_topics(options, settings):
            for message in batch:
                try:
                    value = validate("demand", decode_value(message.value, message.headers))
                except BadMessage as error:
                    where = (message.topic, message.partition, message.offset)
                    dead = dead_letter_value(*where, message.key, message.value, error, message.timestamp)
                    encoded, headers = encode_output(DEAD_LETTERS, dead, settings.output_format)
                    topic = settings.topic(DEAD_LETTERS)
                    producer.send(topic, key=message.key, value=encoded, headers=headers)
                    continue
                hourly.add(value)
            until = hourly.complete_until()
            if until is None or until == done_until:
                continue
            done_until = until
            hourly.forget_before(until - int(history_days * DAY))
            for value in forecasts(hourly, until):
                key = f"{value['scope']}:{value['key']}".encode()
                encoded, headers = encode_output(DEMAND_FORECASTS, value, settings.output_format)
                producer.send(settings.topic(DEMAND_FORECASTS), key=key, value=encoded, headers=headers)
                on_sent(value)
                sent += 1
            producer.flush()
    finally:
        producer.close()
    return sent
