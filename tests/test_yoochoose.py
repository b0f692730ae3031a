"""`streams import yoochoose` on tiny R data files written here with `rdata` (the train extra)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

rdata = pytest.importorskip("rdata", reason="rdata is not installed (pip install -e '.[train]')")
pd = pytest.importorskip("pandas")

from streams.cli import _register, app  # noqa: E402
from streams.logs import LogRecord, read_log  # noqa: E402
from streams.schemas import validate  # noqa: E402
from streams.yoochoose import BUYS_FILE, CLICKS_FILE, import_yoochoose, order_line  # noqa: E402

T0 = 1_396_321_306.083  # seconds, as the files hold them (2014-04-01)

# (session, seconds, item, category); written out of time order, as the real files are.
CLICKS = [
    ("7", T0 + 50.0, "100", "S"),
    ("5", T0, "100", "0"),
    ("5", T0 + 10.5, "200", "3"),
    ("7", T0 + 5.0, "300", "2089046251"),
    ("5", T0 + 20.25, "100", "S"),
    ("5", T0 + 90.0, "300", "0"),  # a click after the buy
]
# (session, seconds, item, price, quantity)
BUYS = [
    ("5", T0 + 60.0, "100", 1046, 2),
    ("5", T0 + 60.0, "200", 0, 0),  # price and quantity not recorded
    ("5", T0 + 60.0, "200", 0, 0),  # the same row again: its own line, as given
    ("7", T0 + 70.0, "300", 0, 4),  # a zero price beside a real quantity
]


def _write(folder: Path, clicks: Sequence[tuple], buys: Sequence[tuple]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = pd.StringDtype()
    click_frame = pd.DataFrame(
        {
            "Session_ID": pd.array([c[0] for c in clicks], dtype=text),
            "Timestamp": [c[1] for c in clicks],
            "Item_ID": pd.array([c[2] for c in clicks], dtype=text),
            "Category": pd.array([c[3] for c in clicks], dtype=text),
        },
        index=pd.RangeIndex(1, len(clicks) + 1),
    )
    buy_frame = pd.DataFrame(
        {
            "Session_ID": pd.array([b[0] for b in buys], dtype=text),
            "Timestamp": [b[1] for b in buys],
            "Item_ID": pd.array([b[2] for b in buys], dtype=text),
            "Price": pd.array([b[3] for b in buys], dtype="Int32"),
            "Quantity": pd.array([b[4] for b in buys], dtype="Int32"),
        },
        index=pd.RangeIndex(1, len(buys) + 1),
    )
    rdata.write_rda(folder / CLICKS_FILE, {"sample_clicks": click_frame})
    rdata.write_rda(folder / BUYS_FILE, {"sample_buys": buy_frame})
    return folder


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("yoochoose"), CLICKS, BUYS)


@pytest.fixture(scope="module")
def records(sample: Path) -> list[LogRecord]:
    return list(import_yoochoose(sample))


def test_every_event_is_valid_and_in_event_time_order(records: list[LogRecord]) -> None:
    assert [r.topic for r in records].count("clicks") == len(CLICKS)
    for record in records:
        assert record.value is not None
        validate("click" if record.topic == "clicks" else "order", record.value)
        assert record.key == record.value["user_id"] and record.ts == record.value["ts"]
    assert [r.ts for r in records] == sorted(r.ts for r in records)
    assert records[0].value == {
        "schema_version": 1,
        "event_id": "yc-c2",
        "user_id": "yc-s5",
        "type": "view",
        "ts": 1_396_321_306_083,
        "session_id": "yc-s5",
        "item_id": "yc-i100",
    }


def test_categories_are_kept_except_the_unknown_one(records: list[LogRecord]) -> None:
    clicks = {r.value["event_id"]: r.value for r in records if r.topic == "clicks" and r.value}
    assert clicks["yc-c1"]["category"] == "yc-cS"  # special offer
    assert clicks["yc-c3"]["category"] == "yc-c3"
    assert clicks["yc-c4"]["category"] == "yc-c2089046251"  # a brand
    assert "category" not in clicks["yc-c2"] and "category" not in clicks["yc-c6"]  # "0" = unknown


def test_buys_of_a_session_at_one_timestamp_are_one_order(records: list[LogRecord]) -> None:
    orders = [r.value for r in records if r.topic == "orders" and r.value]
    assert [(o["event_id"], o["order_id"], o["user_id"], o["status"]) for o in orders] == [
        ("yc-b1", "yc-o5-1396321366083", "yc-s5", "placed"),
        ("yc-b4", "yc-o7-1396321376083", "yc-s7", "placed"),
    ]
    assert orders[0]["items"] == [
        {"item_id": "yc-i100", "quantity": 2, "price": 1046},
        {"item_id": "yc-i200", "quantity": 1},
        {"item_id": "yc-i200", "quantity": 1},
    ]
    assert orders[1]["items"] == [{"item_id": "yc-i300", "quantity": 4, "price": 0}]
    # The buy sits between the session's clicks by time: the click after it comes after it.
    session = [r.value["event_id"] for r in records if r.key == "yc-s5" and r.value]
    assert session == ["yc-c2", "yc-c3", "yc-c5", "yc-b1", "yc-c6"]


@pytest.mark.parametrize(
    ("price", "quantity", "line"),
    [
        (1046, 2, {"item_id": "yc-i9", "quantity": 2, "price": 1046}),
        (0, 0, {"item_id": "yc-i9", "quantity": 1}),
        (0, 3, {"item_id": "yc-i9", "quantity": 3, "price": 0}),
        (500, 0, {"item_id": "yc-i9", "quantity": 1, "price": 500}),
    ],
)
def test_order_line_mapping(price: int, quantity: int, line: dict) -> None:
    assert order_line("9", price, quantity) == line
    validate(
        "order",
        {"event_id": "e", "user_id": "u", "order_id": "o", "status": "placed", "items": [line], "ts": 1},
    )


def test_clicks_before_a_buy_at_the_same_ms_come_first(tmp_path: Path) -> None:
    folder = _write(tmp_path, [("1", T0, "1", "0"), ("1", T0 + 1, "2", "0")], [("1", T0 + 1, "2", 5, 1)])
    assert [r.topic for r in import_yoochoose(folder)] == ["clicks", "clicks", "orders"]


def test_a_missing_file_or_object_is_a_clear_error(sample: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=CLICKS_FILE):
        list(import_yoochoose(tmp_path))
    (tmp_path / CLICKS_FILE).write_bytes((sample / BUYS_FILE).read_bytes())
    (tmp_path / BUYS_FILE).write_bytes((sample / BUYS_FILE).read_bytes())
    with pytest.raises(ValueError, match="no R object 'sample_clicks'"):
        list(import_yoochoose(tmp_path))


def test_cli_import_yoochoose(sample: Path, tmp_path: Path, records: list[LogRecord]) -> None:
    _register()
    out = tmp_path / "yc.jsonl.gz"
    result = CliRunner().invoke(app, ["import", "yoochoose", str(sample), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "clicks=6, orders=2" in result.output
    assert [json.loads(r.to_json()) for r in read_log(out)] == [json.loads(r.to_json()) for r in records]
