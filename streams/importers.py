"""Turn public session datasets into event logs (see `streams.logs`) in the v1 event shapes.

Every importer emits records in global event-time order (ties keep the order of the source file),
gives each event a deterministic id derived from its position in the source, prefixes all ids with
the source name so that imported traffic never collides with other traffic, and validates every
value against its JSON Schema: bad input fails the import with a file:line location instead of
becoming a poison message later.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from streams.errors import SchemaViolation
from streams.logs import LogRecord
from streams.schemas import validate

SCHEMA_VERSION = 1
_DAY_MS = 86_400_000
_TOPIC_KIND = {"clicks": "click", "orders": "order"}

# (ts, tie-break, record): sorting these gives event-time order with ties in source order.
_Timed = tuple[int, tuple[int, ...], LogRecord]


def _open_text(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")  # type: ignore[return-value]
    return open(path, encoding="utf-8", newline="")


def _find_file(path: str | Path, names: Iterable[str]) -> Path:
    """`path` itself if it is a file, else the first of `names` (plain or .gz) inside the folder."""
    path = Path(path)
    if path.is_file():
        return path
    for name in names:
        for candidate in (path / name, path / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"{path}: none of {', '.join(names)} (or .gz) found")


def _checked(record: LogRecord, where: str) -> LogRecord:
    try:
        validate(_TOPIC_KIND[record.topic], record.value)
    except SchemaViolation as exc:
        raise ValueError(f"{where}: imported event is invalid: {exc.message}") from None
    return record


def _in_time_order(timed: list[_Timed]) -> Iterator[LogRecord]:
    timed.sort(key=lambda entry: (entry[0], entry[1]))
    for _, _, record in timed:
        yield record


def _order_value(
    event_id: str, user_id: str, order_id: str, item_ids: Iterable[str], ts: int
) -> dict[str, Any]:
    # Source datasets carry neither prices nor quantities; an item listed twice in one order is a
    # re-logged line (see `import_diginetica`), so each item appears once with quantity 1.
    items = [{"item_id": item_id, "quantity": 1} for item_id in dict.fromkeys(item_ids)]
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": event_id,
        "user_id": user_id,
        "order_id": order_id,
        "status": "placed",
        "items": items,
        "ts": ts,
    }


# --- Diginetica (CIKM Cup 2016) ---------------------------------------------------------------------

_DIGINETICA_EVENTS = "events_merged.csv"
_DIGINETICA_CATEGORIES = "product-categories.csv"


def import_diginetica(path: str | Path) -> Iterator[LogRecord]:
    """Views as `view` clicks, purchases grouped by (session, ordernumber) into one placed order each.

    `path` is the `diginetica-sample-events` folder or its `events_merged.csv[.gz]`. Ids: users
    `dg-u{user}` (or `dg-s{session}` for anonymous rows), sessions `dg-s{session}`, items
    `dg-i{item}`, categories `dg-c{category}`, orders `dg-o{ordernumber}`, events `dg-{row}` with
    row = the 1-based data row of the event's (first) line in the CSV.

    Timestamps: `timeframe` counts milliseconds from the start of the session, while `eventdate` is
    the day of the event itself, so a purchase 20 days into a session carries both the later date and
    a 20-day timeframe. Adding the two would count those days twice. Instead each session gets one
    start time: the earliest one, not before midnight UTC of its first `eventdate`, that puts every
    event of the session on its own `eventdate`; ts = session start + timeframe. For a session within
    one day (all but 34 of the sample's 2,986) this is exactly midnight UTC of `eventdate` + timeframe.

    Two orders of the sample are logged twice, a day apart, under the same ordernumber; their order
    event lists each item once and takes the time of the first line.
    """
    events_file = _find_file(path, [_DIGINETICA_EVENTS])
    with _open_text(events_file) as f:
        rows = list(csv.DictReader(f))
    starts = _diginetica_session_starts(rows, events_file)
    categories = _diginetica_categories(events_file.parent, {row["item_id"] for row in rows})
    timed: list[_Timed] = []
    orders: dict[tuple[str, str], list[int]] = {}
    for index, row in enumerate(rows):
        kind = row["event"]
        if kind == "view":
            ts = starts[row["session_id"]] + int(row["timeframe_ms"])
            record = _diginetica_view(row, index + 1, ts, categories)
            timed.append((ts, (index,), _checked(record, f"{events_file}:{index + 2}")))
        elif kind == "purchase":
            orders.setdefault((row["session_id"], row["ordernumber"]), []).append(index)
        else:
            raise ValueError(f"{events_file}:{index + 2}: unknown event {kind!r}")
    for (session, ordernumber), indexes in orders.items():
        first = rows[indexes[0]]
        # The CSV is sorted by (session, timeframe), so an order's first line is its earliest.
        ts = starts[session] + int(first["timeframe_ms"])
        value = _order_value(
            f"dg-{indexes[0] + 1}",
            _diginetica_user(first),
            f"dg-o{ordernumber}",
            (f"dg-i{rows[i]['item_id']}" for i in indexes),
            ts,
        )
        record = LogRecord("orders", value["user_id"], ts, value)
        timed.append((ts, (indexes[0],), _checked(record, f"{events_file}:{indexes[0] + 2}")))
    return _in_time_order(timed)


def _diginetica_user(row: dict[str, str]) -> str:
    user = row["user_id"].strip()
    # The raw CIKM files write a missing user as `NA`; the merged file leaves it empty.
    return f"dg-u{user}" if user and user != "NA" else f"dg-s{row['session_id']}"


def _diginetica_view(row: dict[str, str], number: int, ts: int, categories: dict[str, str]) -> LogRecord:
    value: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "event_id": f"dg-{number}",
        "user_id": _diginetica_user(row),
        "type": "view",
        "ts": ts,
        "session_id": f"dg-s{row['session_id']}",
        "item_id": f"dg-i{row['item_id']}",
    }
    category = categories.get(row["item_id"])
    if category is not None:
        value["category"] = f"dg-c{category}"
    return LogRecord("clicks", value["user_id"], ts, value)


def _epoch_ms(day: str) -> int:
    return int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp()) * 1000


def _diginetica_session_starts(rows: list[dict[str, str]], where: Path) -> dict[str, int]:
    """Per session, the earliest start (epoch ms) from its first day on that keeps every event on its date."""
    days: dict[str, list[tuple[int, int]]] = {}
    for row in rows:
        days.setdefault(row["session_id"], []).append((_epoch_ms(row["eventdate"]), int(row["timeframe_ms"])))
    starts: dict[str, int] = {}
    for session, events in days.items():
        # An event at `day` with offset `timeframe` needs: day <= start + timeframe < day + 1 day.
        lowest = max(day - timeframe for day, timeframe in events)
        first_day = min(day for day, _ in events)
        start = max(lowest, first_day)
        if any(start + timeframe >= day + _DAY_MS for day, timeframe in events):
            raise ValueError(f"{where}: session {session}: no start time fits all its event dates")
        starts[session] = start
    return starts


def _diginetica_categories(folder: Path, wanted: set[str]) -> dict[str, str]:
    """itemId -> categoryId for the items in `wanted`; empty if the categories file is absent."""
    try:
        source = _find_file(folder, [_DIGINETICA_CATEGORIES])
    except FileNotFoundError:
        return {}
    with _open_text(source) as f:
        reader = csv.reader(f, delimiter=";")
        next(reader, None)
        return {row[0]: row[1] for row in reader if len(row) >= 2 and row[0] in wanted}


# --- OTTO (otto-de/recsys-dataset) ------------------------------------------------------------------

_OTTO_CLICK_TYPES = {"clicks": "view", "carts": "add_to_cart"}


def import_otto(path: str | Path) -> Iterator[LogRecord]:
    """`clicks` -> `view`, `carts` -> `add_to_cart` (quantity 1), `orders` -> placed orders.

    `path` is the folder holding one `.jsonl[.gz]` file, or that file. OTTO logs each ordered item
    as its own event; the items a session orders at the same ts form one order `otto-{session}-{ts}`.
    Ids: users and sessions `otto-{session}`, items `otto-i{aid}`, events `otto-{session}-{n}` with
    n = the position of the event (the first of an order's) in the session's `events` list.
    """
    source = _otto_file(path)
    timed: list[_Timed] = []
    with _open_text(source) as f:
        for line_number, line in enumerate(f, 1):
            if line.strip():
                timed.extend(_otto_session(json.loads(line), line_number, f"{source}:{line_number}"))
    return _in_time_order(timed)


def _otto_file(path: str | Path) -> Path:
    path = Path(path)
    if path.is_file():
        return path
    found = sorted(path.glob("*.jsonl")) + sorted(path.glob("*.jsonl.gz"))
    if len(found) != 1:
        raise FileNotFoundError(f"{path}: expected exactly one .jsonl[.gz] file, found {len(found)}")
    return found[0]


def _otto_session(session: dict[str, Any], line_number: int, where: str) -> Iterator[_Timed]:
    number = session["session"]
    user_id = f"otto-{number}"
    orders: dict[int, list[int]] = {}
    events = session["events"]
    for position, event in enumerate(events):
        kind, ts = event["type"], int(event["ts"])
        if kind == "orders":
            orders.setdefault(ts, []).append(position)
            continue
        if kind not in _OTTO_CLICK_TYPES:
            raise ValueError(f"{where}: unknown event type {kind!r}")
        value: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "event_id": f"{user_id}-{position}",
            "user_id": user_id,
            "type": _OTTO_CLICK_TYPES[kind],
            "ts": ts,
            "session_id": user_id,
            "item_id": f"otto-i{event['aid']}",
        }
        if kind == "carts":
            value["quantity"] = 1
        yield ts, (line_number, position), _checked(LogRecord("clicks", user_id, ts, value), where)
    for ts, positions in orders.items():
        item_ids = (f"otto-i{events[p]['aid']}" for p in positions)
        value = _order_value(f"{user_id}-{positions[0]}", user_id, f"{user_id}-{ts}", item_ids, ts)
        record = LogRecord("orders", user_id, ts, value)
        yield ts, (line_number, positions[0]), _checked(record, where)
