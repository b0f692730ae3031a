"""YOOCHOOSE (RecSys Challenge 2015) -> an event log in the v1 event shapes (`streams import yoochoose`).

A separate module from `streams.importers` because it reads R data files: `rdata` is part of the
`train` extra, imported only when a YOOCHOOSE folder is converted.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streams.importers import SCHEMA_VERSION, _checked, _in_time_order, _Timed
from streams.logs import LogRecord

CLICKS_FILE = "sample_clicks.rda"
BUYS_FILE = "sample_buys.rda"
CLICKS_OBJECT = "sample_clicks"
BUYS_OBJECT = "sample_buys"
UNKNOWN_CATEGORY = "0"
SPECIAL_OFFER = "yc-cS"  # what the category "S" (a special-offer click) becomes
_CLICK_RANK, _BUY_RANK = 0, 1  # at equal ts a click comes first, as `UserState.recent` orders them


def user_id(session: str) -> str:
    return f"yc-s{session}"


def import_yoochoose(path: str | Path) -> Iterator[LogRecord]:
    """Clicks as `view` clicks, buys as placed orders; one shopper per session.

    `path` is the folder holding `sample_clicks.rda` and `sample_buys.rda` (R data files with the
    data frames `sample_clicks`: Session_ID, Timestamp, Item_ID, Category and `sample_buys`:
    Session_ID, Timestamp, Item_ID, Price, Quantity). Ids: users and sessions `yc-s{session}`, items
    `yc-i{item}`, categories `yc-c{category}`, click events `yc-c{row}` and order events `yc-b{row}`
    (row = the 1-based row of the click, or of the order's first buy, in its data frame), orders
    `yc-o{session}-{ts}`. ts = the Timestamp (seconds, UTC, millisecond precision) in milliseconds.

    - Category: kept in the click's `category` ("S", a special offer, becomes `yc-cS`), except "0",
      YOOCHOOSE's "unknown", which leaves the field out.
    - The buys of one session at one timestamp are one order, one line per buy row in file order
      (a row repeated with the same item stays its own line, as given).
    - Prices and quantities as given, with one exception: YOOCHOOSE writes a buy whose price and
      quantity were not recorded as Price 0 and Quantity 0 (every zero quantity in the sample has a
      zero price). Our order schema requires a quantity of at least 1, so such a line gets quantity 1
      (one item was bought: the least it can be) and no price (unknown, not free: a price of 0
      would count the line as revenue of 0). A zero price beside a real quantity is kept as 0.
    """
    folder = Path(path)
    clicks = _read_frame(folder / CLICKS_FILE, CLICKS_OBJECT)
    buys = _read_frame(folder / BUYS_FILE, BUYS_OBJECT)
    where_clicks, where_buys = folder / CLICKS_FILE, folder / BUYS_FILE
    timed: list[_Timed] = []
    columns = (clicks[name].tolist() for name in ("Session_ID", "Timestamp", "Item_ID", "Category"))
    for row, (session, seconds, item, category) in enumerate(zip(*columns, strict=True), 1):
        ts = _ms(seconds)
        value: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "event_id": f"yc-c{row}",
            "user_id": user_id(session),
            "type": "view",
            "ts": ts,
            "session_id": user_id(session),
            "item_id": f"yc-i{item}",
        }
        if category != UNKNOWN_CATEGORY:
            value["category"] = f"yc-c{category}"
        record = LogRecord("clicks", value["user_id"], ts, value)
        timed.append((ts, (_CLICK_RANK, row), _checked(record, f"{where_clicks}: row {row}")))
    orders: dict[tuple[str, int], list[tuple[int, dict[str, Any]]]] = {}
    columns = (buys[name].tolist() for name in ("Session_ID", "Timestamp", "Item_ID", "Price", "Quantity"))
    for row, (session, seconds, item, price, quantity) in enumerate(zip(*columns, strict=True), 1):
        orders.setdefault((session, _ms(seconds)), []).append((row, order_line(item, price, quantity)))
    for (session, ts), lines in orders.items():
        first_row = lines[0][0]
        value = {
            "schema_version": SCHEMA_VERSION,
            "event_id": f"yc-b{first_row}",
            "user_id": user_id(session),
            "order_id": f"yc-o{session}-{ts}",
            "status": "placed",
            "items": [line for _, line in lines],
            "ts": ts,
        }
        record = LogRecord("orders", value["user_id"], ts, value)
        timed.append((ts, (_BUY_RANK, first_row), _checked(record, f"{where_buys}: row {first_row}")))
    return _in_time_order(timed)


def order_line(item: str, price: int, quantity: int) -> dict[str, Any]:
    """One buy row as an order line (see `import_yoochoose` for the zero price and quantity)."""
    line: dict[str, Any] = {"item_id": f"yc-i{item}"}
    if quantity == 0:
        line["quantity"] = 1
        if price != 0:
            line["price"] = price
    else:
        line["quantity"] = quantity
        line["price"] = price
    return line


def _ms(seconds: float) -> int:
    # The files hold seconds as doubles with three decimals: rounding, not truncating, recovers the ms.
    return round(seconds * 1000)


def _read_frame(path: Path, name: str) -> Any:
    """The data frame `name` of the R data file `path` (a pandas DataFrame)."""
    import rdata  # the train extra; only this importer needs it

    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: not found (the YOOCHOOSE folder holds {CLICKS_FILE} and {BUYS_FILE})"
        )
    with warnings.catch_warnings():
        # rdata has no constructor for the R classes POSIXct and tbl_df and says so; the values
        # come through as seconds and a plain data frame, which is what is read here.
        warnings.simplefilter("ignore", UserWarning)
        frames = rdata.read_rda(path)
    if name not in frames:
        raise ValueError(f"{path}: no R object {name!r} (found {', '.join(sorted(frames)) or 'none'})")
    return frames[name]
