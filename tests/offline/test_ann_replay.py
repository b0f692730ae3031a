"""Offline replay of a catalogue served from the index: the same outputs, byte for byte, every run."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.generate import TrafficConfig, generate_traffic
from streams.model import ann
from streams.offline.replay import Variant, run_offline, write_run
from streams.serving import DEFAULT_MODEL


def test_two_replays_through_indexes_built_apart_write_byte_identical_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    records = list(generate_traffic(TrafficConfig(users=300, items=2_000, events=6_000, seed=5)))
    monkeypatch.setenv(ann.MIN_ITEMS_ENV, "1")  # the shipped model's 2,000 items through the index
    written = []
    for name in ("a", "b"):
        monkeypatch.setenv(ann.CACHE_DIR_ENV, str(tmp_path / f"cache-{name}"))  # a new index each run
        written.append(write_run(run_offline(records, Variant(DEFAULT_MODEL), 8), tmp_path / name, True))
        assert list((tmp_path / f"cache-{name}").glob("ann-*.faiss"))
    first, second = written
    for kind, path in first.items():
        assert path.read_bytes() == second[kind].read_bytes(), f"{kind} differs between two runs"
    assert first["recommendations"].stat().st_size > 0
