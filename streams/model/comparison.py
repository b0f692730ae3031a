"""S-POP beside the model on several datasets: one row per dataset, HR@20 / MRR@20 per ranker, and
each dataset's repeat rates (how often the next item was already in the session, which is all S-POP
can predict).

Reads what the evaluation wrote (`streams evaluate --json`, or `python -m streams.model.evaluate
--json` where no model was trained) and the dataset's test cases; `make eval-repeat` runs it:

    python -m streams.model.comparison --dataset generated build/generated build/generated/evaluation.json \
        --json build/eval-repeat.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streams.model.evaluate import TEST_FILE
from streams.model.log_sessions import repeat_rates
from streams.model.sessions import read_prefix_targets

FIRST_COLUMNS = ("S-POP", "SessionNet")  # the comparison the table exists for, then the others
REPORTED = ("HR@20", "MRR@20")


def dataset_row(name: str, data_dir: Path, evaluation: Path) -> dict[str, Any]:
    """One dataset's repeat rates and the HR@20 / MRR@20 of every ranker its evaluation scored."""
    cases = read_prefix_targets(Path(data_dir) / TEST_FILE)
    report = json.loads(Path(evaluation).read_text(encoding="utf-8"))
    scored = report.get("cases", report.get("test_cases"))  # `streams evaluate`'s key, then the module's
    if scored != len(cases):
        raise ValueError(
            f"{evaluation} scored {scored} cases but {data_dir} has {len(cases)}: not its evaluation"
        )
    return {
        "dataset": name,
        "data": str(data_dir),
        "evaluation": str(evaluation),
        "model_version": report.get("version"),
        "cases": len(cases),
        **repeat_rates(cases),
        "results": {
            ranker: {m: metrics[m] for m in REPORTED} for ranker, metrics in report["results"].items()
        },
    }


def columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    seen = [ranker for row in rows for ranker in row["results"]]
    rest = [ranker for ranker in dict.fromkeys(seen) if ranker not in FIRST_COLUMNS]
    return [*FIRST_COLUMNS, *rest]


def format_comparison(rows: Sequence[dict[str, Any]]) -> str:
    """An aligned text table, HR@20 / MRR@20 per ranker; a ranker a dataset was not scored with shows '-'.

    The repeat columns are the shares of test targets already in their prefix and equal to its last item.
    """
    rankers = columns(rows)
    header = ["dataset", "cases", "in prefix", "last item", *rankers]
    body = [
        [
            row["dataset"],
            f"{row['cases']:,}",
            f"{100 * row['repeat_in_prefix']:.1f}%",
            f"{100 * row['repeat_last_item']:.1f}%",
            *(_cell(row["results"].get(r)) for r in rankers),
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(_aligned(line, widths)) for line in [header, *body]]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(
        ["HR@20 / MRR@20 per ranker; repeats: test targets in their prefix, equal to its last item", *lines]
    )


def _aligned(cells: Sequence[str], widths: Sequence[int]) -> list[str]:
    # The dataset name to the left, every figure to the right.
    return [
        cell.ljust(w) if i == 0 else cell.rjust(w)
        for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
    ]


def _cell(metrics: dict[str, float] | None) -> str:
    return "-" if metrics is None else f"{metrics['HR@20']:.2f} / {metrics['MRR@20']:.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streams.model.comparison", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--dataset",
        nargs=3,
        action="append",
        required=True,
        metavar=("NAME", "DATA_DIR", "EVALUATION_JSON"),
        help=f"a name, the folder holding {TEST_FILE}, and its evaluation's JSON; repeat for each dataset",
    )
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    try:
        rows = [dataset_row(name, Path(data), Path(evaluation)) for name, data, evaluation in args.dataset]
    except (OSError, ValueError, KeyError) as exc:
        parser.error(str(exc))
    print(format_comparison(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"datasets": rows}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
