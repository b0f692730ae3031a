"""`streams replay --offline`: the whole pipeline in one process, byte-identical run after run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli import _register, app
from streams.generate import TrafficConfig, generate_traffic
from streams.importers import import_diginetica, import_otto
from streams.logs import LogRecord, write_log
from streams.offline.replay import OUTPUT_FILES, SUMMARY_FILE, Variant, run_offline, write_run
from streams.serving import DEFAULT_MODEL

LOGS = {
    "otto": lambda data: list(import_otto(data / "otto-fixture")),
    "diginetica": lambda data: list(import_diginetica(data / "diginetica-sample-events")),
    "generated-50k": lambda _: list(
        generate_traffic(TrafficConfig(users=2_000, items=5_000, events=50_000, seed=3))
    ),
}


@pytest.mark.parametrize("name", sorted(LOGS))
def test_two_offline_runs_write_byte_identical_files(name: str, shared_data: Path, tmp_path: Path) -> None:
    records = LOGS[name](shared_data)
    variant = Variant(DEFAULT_MODEL)
    first = write_run(run_offline(records, variant, 8), tmp_path / "a", zero_wallclock=True)
    second = write_run(run_offline(records, variant, 8), tmp_path / "b", zero_wallclock=True)
    for kind, path in first.items():
        assert path.read_bytes() == second[kind].read_bytes(), f"{kind} differs between two runs"
    recs = first["recommendations"].read_text().splitlines()
    dead = first["dead-letters"].read_text().splitlines()
    events = sum(r.topic in ("clicks", "orders") for r in records)
    assert len(recs) == events - len(dead) > 0  # one recommendation per valid event


def test_the_cli_writes_the_files_and_a_summary(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl.gz"
    records = list(generate_traffic(TrafficConfig(users=50, items=300, events=2_000, seed=1)))
    bad = LogRecord("clicks", "u-bad", records[-1].ts, value_bytes=b"\xc1not msgpack")
    write_log(log, [*records, bad])
    _register()
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["replay", str(log), "--offline", "--out", str(out), "--model", "none", "--partitions", "4"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted([*OUTPUT_FILES.values(), SUMMARY_FILE])
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert summary["model_version"] == "trending-only" and summary["partitions"] == 4
    assert summary["events"] == 2_001 and summary["dead_letters"] == 1
    assert summary["recommendations"] == 2_000 and summary["events_per_s"] > 0
    [dead] = (out / "dead-letters.jsonl").read_text().splitlines()
    assert json.loads(dead)["error"]["code"]


def test_an_offline_replay_needs_an_output_folder(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    write_log(log, generate_traffic(TrafficConfig(users=5, items=20, events=10, seed=1)))
    _register()
    result = CliRunner().invoke(app, ["replay", str(log), "--offline"])
    assert result.exit_code != 0 and "--out" in result.output
