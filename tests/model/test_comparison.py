"""The dataset x ranker table of `make eval-repeat`: repeat rates from the cases, metrics from the JSON."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from streams.model.comparison import dataset_row, format_comparison, main
from streams.model.evaluate import TEST_FILE


def write_cases(folder: Path, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TEST_FILE).write_bytes(gzip.compress("".join(f"{line}\n" for line in lines).encode()))
    return folder


def metrics(hr: float, mrr: float) -> dict[str, float]:
    return {"HR@10": hr - 1, "HR@20": hr, "MRR@10": mrr - 1, "MRR@20": mrr, "NDCG@20": 0.0, "secs": 1.0}


def write_evaluation(path: Path, cases: int, results: dict[str, dict[str, float]], **extra: object) -> Path:
    path.write_text(json.dumps({**extra, "cases": cases, "results": results}))
    return path


@pytest.fixture
def two_datasets(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    shop = write_cases(tmp_path / "shop", ["a b b\ta", "a b\tb", "a\tb", "c\tc"])
    shop_eval = write_evaluation(
        tmp_path / "shop.json",
        4,
        {"POP": metrics(10, 5), "S-POP": metrics(50, 30), "SessionNet": metrics(60, 35)},
        version="abc",
    )
    research = write_cases(tmp_path / "research", ["x y\tz", "x\ty"])
    # The baselines module's report (no model): its count is `test_cases`.
    research_eval = tmp_path / "research.json"
    research_eval.write_text(json.dumps({"test_cases": 2, "results": {"S-POP": metrics(20, 10)}}))
    return shop, shop_eval, research, research_eval


def test_a_row_holds_the_repeat_rates_and_the_reported_metrics(two_datasets: tuple[Path, ...]) -> None:
    shop, shop_eval, _, _ = two_datasets
    row = dataset_row("shop", shop, shop_eval)
    assert row["cases"] == 4 and row["model_version"] == "abc"
    assert (row["repeat_in_prefix"], row["repeat_last_item"]) == (0.75, 0.5)
    assert row["results"]["SessionNet"] == {"HR@20": 60, "MRR@20": 35}


def test_the_table_puts_s_pop_and_the_model_first_and_marks_what_was_not_scored(
    two_datasets: tuple[Path, ...],
) -> None:
    shop, shop_eval, research, research_eval = two_datasets
    table = format_comparison(
        [dataset_row("shop", shop, shop_eval), dataset_row("research", research, research_eval)]
    )
    lines = table.splitlines()
    assert lines[1].split() == [
        "dataset",
        "cases",
        "in",
        "prefix",
        "last",
        "item",
        "S-POP",
        "SessionNet",
        "POP",
    ]
    assert lines[3].split() == [
        "shop",
        "4",
        "75.0%",
        "50.0%",
        "50.00",
        "/",
        "30.00",
        "60.00",
        "/",
        "35.00",
        "10.00",
        "/",
        "5.00",
    ]
    assert lines[4].split() == ["research", "2", "0.0%", "0.0%", "20.00", "/", "10.00", "-", "-"]


def test_an_evaluation_of_other_cases_is_refused(two_datasets: tuple[Path, ...]) -> None:
    shop, _, _, research_eval = two_datasets
    with pytest.raises(ValueError, match=r"scored 2 cases but .* has 4"):
        dataset_row("shop", shop, research_eval)


def test_main_prints_the_table_and_writes_the_rows(
    two_datasets: tuple[Path, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shop, shop_eval, research, research_eval = two_datasets
    out = tmp_path / "report" / "eval-repeat.json"
    args = [
        "--dataset",
        "shop",
        str(shop),
        str(shop_eval),
        "--dataset",
        "research",
        str(research),
        str(research_eval),
    ]
    assert main([*args, "--json", str(out)]) == 0
    assert "research" in capsys.readouterr().out
    rows = json.loads(out.read_text())["datasets"]
    assert [row["dataset"] for row in rows] == ["shop", "research"]
    assert rows[1]["results"] == {"S-POP": {"HR@20": 20, "MRR@20": 10}}
