"""`streams attribution LOG`: the figures of a log run through the pipeline in this process."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from streams.cli import _register, app
from streams.core.ids import stable_id
from streams.logs import LogRecord, write_log

T0 = 1_700_000_000_000


def click(n: int, ts: int, kind: str, **fields: object) -> LogRecord:
    return LogRecord(
        "clicks", "u1", ts, {"event_id": f"c{n}", "user_id": "u1", "type": kind, "ts": ts, **fields}
    )


def test_the_figures_of_a_log_as_a_table_and_as_json(tmp_path: Path) -> None:
    rec_id = stable_id("r", "c1", "trending-only")  # the recommendation the first view causes
    line = {"item_id": "sku-2", "quantity": 3, "price": 4.5}
    records = [
        click(1, T0, "view", item_id="sku-1"),
        click(2, T0 + 1000, "impression", rec_id=rec_id, placement="home", items=["sku-2"]),
        click(3, T0 + 2000, "view", item_id="sku-2", rec_id=rec_id, position=1, placement="home"),
        LogRecord(
            "orders",
            "u1",
            T0 + 3000,
            {
                "event_id": "o1",
                "user_id": "u1",
                "order_id": "x",
                "status": "placed",
                "items": [line],
                "ts": T0 + 3000,
            },
        ),
    ]
    log = tmp_path / "log.jsonl"
    write_log(log, records)
    _register()
    result = CliRunner().invoke(
        app, ["attribution", str(log), "--model", "none", "--partitions", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["complete"] and document["partitions"] == [0, 1]
    (row,) = document["rows"]
    assert (row["model_version"], row["placement"]) == ("trending-only", "home")
    assert [row[k] for k in ("impressions", "clicks", "add_to_carts", "orders", "revenue")] == [
        1,
        1,
        0,
        1,
        13.5,
    ]
    table = CliRunner().invoke(app, ["attribution", str(log), "--model", "none"])
    assert table.exit_code == 0, table.output
    assert "trending-only  home" in table.output and "13.50" in table.output and "100.00%" in table.output
