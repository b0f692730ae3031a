from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import shutil
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
from typer.testing import CliRunner

import streams.cli.data  # noqa: F401  (registers the data commands on the app)
from streams.cli import app
from streams.importers import import_diginetica, import_otto
from streams.logs import LogRecord
from streams.schemas import validate

KIND = {"clicks": "click", "orders": "order"}
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def otto_dir(shared_data: Path) -> Path:
    return shared_data / "otto-fixture"


@pytest.fixture(scope="module")
def diginetica_dir(shared_data: Path) -> Path:
    return shared_data / "diginetica-sample-events"


@pytest.fixture(scope="module")
def otto(otto_dir: Path) -> list[LogRecord]:
    return list(import_otto(otto_dir))


@pytest.fixture(scope="module")
def diginetica(diginetica_dir: Path) -> list[LogRecord]:
    return list(import_diginetica(diginetica_dir))


@pytest.fixture(scope="module")
def diginetica_rows(diginetica_dir: Path) -> list[dict[str, str]]:
    with open(diginetica_dir / "events_merged.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _kinds(records: list[LogRecord]) -> Counter[tuple[str, str]]:
    return Counter((r.topic, r.value["type"] if r.topic == "clicks" else r.value["status"]) for r in records)


def _assert_well_formed(records: list[LogRecord]) -> None:
    for record in records:
        assert record.value is not None
        validate(KIND[record.topic], record.value)
        assert record.ts == record.value["ts"]
        assert record.key == record.value["user_id"]
    assert all(a.ts <= b.ts for a, b in pairwise(records))
    assert len({r.value["event_id"] for r in records if r.value}) == len(records)


def _as_json(records: list[LogRecord]) -> list[str]:
    return [r.to_json() for r in records]


# --- OTTO ---------------------------------------------------------------------------------------------


def test_otto_counts_match_the_readme(otto: list[LogRecord]) -> None:
    assert _kinds(otto) == {("clicks", "view"): 800, ("clicks", "add_to_cart"): 52, ("orders", "placed"): 5}
    assert sum(len(r.value["items"]) for r in otto if r.topic == "orders" and r.value) == 10
    assert len({r.key for r in otto}) == 20
    carts = [r.value for r in otto if r.topic == "clicks" and r.value and r.value["type"] == "add_to_cart"]
    assert all(c["quantity"] == 1 for c in carts)


def test_otto_orders_group_the_items_a_session_orders_at_one_ts(
    otto: list[LogRecord], otto_dir: Path
) -> None:
    expected: dict[str, list[str]] = {}
    for path in otto_dir.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            session = json.loads(line)
            for event in session["events"]:
                if event["type"] == "orders":
                    key = f"otto-{session['session']}-{event['ts']}"
                    expected.setdefault(key, []).append(f"otto-i{event['aid']}")
    got = {
        r.value["order_id"]: [i["item_id"] for i in r.value["items"]]
        for r in otto
        if r.value and r.topic == "orders"
    }
    assert got == expected
    assert all(r.value and r.value["items"][0]["quantity"] == 1 for r in otto if r.topic == "orders")


def test_otto_is_valid_ordered_and_deterministic(otto: list[LogRecord], otto_dir: Path) -> None:
    _assert_well_formed(otto)
    assert _as_json(list(import_otto(otto_dir))) == _as_json(otto)


def test_otto_reads_a_gzipped_file_directly(otto: list[LogRecord], otto_dir: Path, tmp_path: Path) -> None:
    (source,) = otto_dir.glob("*.jsonl")
    packed = tmp_path / f"{source.name}.gz"
    with open(source, "rb") as f, gzip.open(packed, "wb") as g:
        shutil.copyfileobj(f, g)
    assert _as_json(list(import_otto(packed))) == _as_json(otto)
    assert _as_json(list(import_otto(tmp_path))) == _as_json(otto)


# --- Diginetica ---------------------------------------------------------------------------------------


def test_diginetica_counts_match_the_readme(
    diginetica: list[LogRecord], diginetica_rows: list[dict[str, str]]
) -> None:
    purchases = [row for row in diginetica_rows if row["event"] == "purchase"]
    assert len(purchases) == 256
    orders = {(row["session_id"], row["ordernumber"]) for row in purchases}
    assert _kinds(diginetica) == {("clicks", "view"): 12_391, ("orders", "placed"): len(orders)}
    assert len({r.value["session_id"] for r in diginetica if r.value and r.topic == "clicks"}) == 2_986


def test_diginetica_orders_group_purchases_by_ordernumber(
    diginetica: list[LogRecord], diginetica_rows: list[dict[str, str]]
) -> None:
    expected: dict[str, set[str]] = {}
    for row in diginetica_rows:
        if row["event"] == "purchase":
            expected.setdefault(f"dg-o{row['ordernumber']}", set()).add(f"dg-i{row['item_id']}")
    orders = [r.value for r in diginetica if r.value and r.topic == "orders"]
    assert {o["order_id"]: {i["item_id"] for i in o["items"]} for o in orders} == expected
    # A re-logged line must not list an item twice.
    assert all(len(o["items"]) == len({i["item_id"] for i in o["items"]}) for o in orders)
    assert all("price" not in i and i["quantity"] == 1 for o in orders for i in o["items"])


def test_diginetica_ids_and_categories(diginetica: list[LogRecord]) -> None:
    first_view = next(r.value for r in diginetica if r.value and r.value["event_id"] == "dg-1")
    # Row 1 of events_merged.csv: session 1, anonymous, item 9654, timeframe 75848, 2016-05-09.
    assert first_view["user_id"] == "dg-s1" and first_view["session_id"] == "dg-s1"
    assert first_view["item_id"] == "dg-i9654"
    midnight = int(dt.datetime(2016, 5, 9, tzinfo=dt.UTC).timestamp()) * 1000
    assert first_view["ts"] == midnight + 75_848
    assert first_view["category"].startswith("dg-c")
    assert any(r.key and r.key.startswith("dg-u") for r in diginetica)


def test_diginetica_events_land_on_their_eventdate(
    diginetica: list[LogRecord], diginetica_rows: list[dict[str, str]]
) -> None:
    # Checks the timestamp reconstruction for multi-day sessions, where `timeframe` exceeds a day.
    by_id = {r.value["event_id"]: r.ts for r in diginetica if r.value}
    for number, row in enumerate(diginetica_rows, 1):
        ts = by_id.get(f"dg-{number}")
        if ts is not None:
            day = dt.datetime.fromtimestamp(ts / 1000, dt.UTC).date().isoformat()
            assert day == row["eventdate"], row


def test_diginetica_is_valid_ordered_and_deterministic(
    diginetica: list[LogRecord], diginetica_dir: Path
) -> None:
    _assert_well_formed(diginetica)
    assert _as_json(list(import_diginetica(diginetica_dir))) == _as_json(diginetica)


def test_diginetica_reads_a_gzipped_events_file(
    diginetica: list[LogRecord], diginetica_dir: Path, tmp_path: Path
) -> None:
    packed = tmp_path / "events_merged.csv.gz"
    with open(diginetica_dir / "events_merged.csv", "rb") as f, gzip.open(packed, "wb") as g:
        shutil.copyfileobj(f, g)
    imported = list(import_diginetica(packed))
    # Without the categories file beside it, the same events come out without categories.
    assert [r.ts for r in imported] == [r.ts for r in diginetica]
    assert not any(r.value and "category" in r.value for r in imported)


# --- CLI ----------------------------------------------------------------------------------------------


def test_cli_import_writes_the_log_and_a_summary(
    otto: list[LogRecord], otto_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "otto.jsonl"
    result = CliRunner().invoke(app, ["import", "otto", str(otto_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "clicks=852, orders=5" in result.output
    assert out.read_text(encoding="utf-8").splitlines() == _as_json(otto)
