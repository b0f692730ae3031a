"""The acknowledged-write table store on a real RocksDB (no broker: acks are driven by hand)."""

from __future__ import annotations

from pathlib import Path

import faust

from streams.live.context import PartitionContexts
from streams.live.store import AckedTable, AckedWriteStore


def make_table(tmp_path: Path) -> tuple[faust.Table, AckedWriteStore]:
    app = faust.App(
        "store-test", store="rocksdb://", datadir=str(tmp_path), Table=AckedTable, autodiscover=False
    )
    table = app.Table("t", default=None, partitions=2, key_type=bytes, value_type=bytes)
    store = table.data
    assert isinstance(table, AckedTable) and isinstance(store, AckedWriteStore)
    return table, store


def on_disk(store: AckedWriteStore, partition: int) -> dict[bytes, bytes]:
    return dict(store._visible_items(store._db_for_partition(partition)))


def test_a_write_reaches_rocksdb_only_when_its_changelog_record_is_acknowledged(tmp_path: Path) -> None:
    _, store = make_table(tmp_path)
    contexts = PartitionContexts("clicks")
    with contexts.partition(1):
        store[b"u"] = b"v1"
        store[b"u"] = b"v2"
        store[b"w"] = b"x"
        assert store[b"u"] == b"v2" and b"w" in store  # reads see writes still waiting
    assert on_disk(store, 1) == {} and store.unacked() == 3
    assert sorted(store.partition_items(1)) == [(b"u", b"v2"), (b"w", b"x")]
    store.on_changelog_acked(1)  # acknowledgements come in send order: v1 first
    assert on_disk(store, 1) == {b"u": b"v1"}
    with contexts.partition(1):
        assert store[b"u"] == b"v2"  # the newer write still waits, and still wins
    store.on_changelog_acked(1)
    store.on_changelog_acked(1)
    assert on_disk(store, 1) == {b"u": b"v2", b"w": b"x"} and store.unacked() == 0
    with contexts.partition(1):
        assert store[b"u"] == b"v2"
        del store[b"w"]
        assert b"w" not in store
    store.on_changelog_acked(1)
    assert on_disk(store, 1) == {b"u": b"v2"}


def test_partitions_wait_for_their_own_acknowledgements(tmp_path: Path) -> None:
    _, store = make_table(tmp_path)
    contexts = PartitionContexts("clicks")
    with contexts.partition(0):
        store[b"a"] = b"0"
    with contexts.partition(1):
        store[b"b"] = b"1"
    store.on_changelog_acked(1)
    assert on_disk(store, 0) == {} and on_disk(store, 1) == {b"b": b"1"}
    store.on_changelog_acked(0)
    assert on_disk(store, 0) == {b"a": b"0"}
