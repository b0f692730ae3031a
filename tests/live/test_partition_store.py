"""The partition store on a real RocksDB: tables apart, a checkpoint's writes and offsets together."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.config import PARTITION_TABLE, STATE_TABLE
from streams.live.partition_store import PartitionStore, UnknownTable
from streams.live.rocks import MIB, RocksMemory


def open_store(path: Path) -> PartitionStore:
    return PartitionStore(path, RocksMemory(cache_bytes=16 * MIB, write_buffer_bytes=4 * MIB))


def test_tables_share_a_database_without_seeing_each_others_keys(tmp_path: Path) -> None:
    store = open_store(tmp_path / "p0")
    store.write(
        {STATE_TABLE: {b"u1": b"state", b"u2": b"other"}, PARTITION_TABLE: {b"p0": b"partition"}},
        {STATE_TABLE: 7, PARTITION_TABLE: 3},
    )
    assert store.get(STATE_TABLE, b"u1") == b"state"
    assert store.get(PARTITION_TABLE, b"p0") == b"partition"
    assert store.get(PARTITION_TABLE, b"u1") is None and store.get(STATE_TABLE, b"p0") is None
    assert list(store.items(STATE_TABLE)) == [(b"u1", b"state"), (b"u2", b"other")]
    assert list(store.items(PARTITION_TABLE)) == [(b"p0", b"partition")]
    assert store.changelog_offset(STATE_TABLE) == 7 and store.changelog_offset(PARTITION_TABLE) == 3


def test_a_delete_and_the_offsets_survive_reopening(tmp_path: Path) -> None:
    store = open_store(tmp_path / "p1")
    store.write({STATE_TABLE: {b"u1": b"a", b"u2": b"b"}}, {STATE_TABLE: 1})
    store.write({STATE_TABLE: {b"u1": None}}, {STATE_TABLE: 2})
    store.close()
    again = open_store(tmp_path / "p1")
    assert list(again.items(STATE_TABLE)) == [(b"u2", b"b")]
    assert again.changelog_offset(STATE_TABLE) == 2


def test_an_unknown_table_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    store = open_store(tmp_path / "p2")
    with pytest.raises(UnknownTable, match="no table 'nope'"):
        store.write({STATE_TABLE: {b"u1": b"a"}, "nope": {b"k": b"v"}}, {STATE_TABLE: 1})
    assert store.get(STATE_TABLE, b"u1") is None and store.changelog_offset(STATE_TABLE) == -1


def test_a_restore_batch_written_without_the_log_is_there_after_a_flush_and_reopen(tmp_path: Path) -> None:
    store = open_store(tmp_path / "p3")
    store.write({STATE_TABLE: {b"u1": b"restored"}}, {STATE_TABLE: 41}, logged=False)
    store.flush()
    store.write({STATE_TABLE: {b"u2": b"processed"}}, {STATE_TABLE: 42})
    store.close()
    reopened = open_store(tmp_path / "p3")
    assert reopened.get(STATE_TABLE, b"u1") == b"restored"
    assert reopened.get(STATE_TABLE, b"u2") == b"processed"
    assert reopened.changelog_offset(STATE_TABLE) == 42


def test_a_bulk_load_overrides_and_deletes_what_is_there_and_reaches_its_offsets(tmp_path: Path) -> None:
    store = open_store(tmp_path / "p4")
    store.write({STATE_TABLE: {b"u1": b"old", b"u2": b"gone"}}, {STATE_TABLE: 5})
    store.load(
        {STATE_TABLE: {b"u3": b"new", b"u1": b"newer", b"u2": None}, PARTITION_TABLE: {}}, {STATE_TABLE: 9}
    )
    store.load({STATE_TABLE: {}}, {STATE_TABLE: 10})  # nothing to load still moves the offset
    store.flush()
    store.close()
    again = open_store(tmp_path / "p4")
    assert list(again.items(STATE_TABLE)) == [(b"u1", b"newer"), (b"u3", b"new")]
    assert list(again.values(STATE_TABLE)) == [b"newer", b"new"]
    assert again.changelog_offset(STATE_TABLE) == 10 and again.changelog_offset(PARTITION_TABLE) == -1
