"""The cyclic collector for the replay: paused over a batch, what the batch keeps frozen, then as it was."""

from __future__ import annotations

import gc

import pytest

from streams.collector import collections_paused_for_a_run, paused_collections


@pytest.mark.parametrize("enabled", [True, False])
def test_collections_are_paused_for_the_block_then_as_they_were(enabled: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with paused_collections():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError), paused_collections():
            raise RuntimeError("a failing batch")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_what_the_block_leaves_alive_is_out_of_the_collectors_walk() -> None:
    try:
        with paused_collections():
            kept = [{"state": n} for n in range(3)]
            dropped = [{"output": n} for n in range(3)]
            del dropped
        assert gc.get_freeze_count() >= len(kept) + 1
        walked = gc.get_objects()
        assert not any(o is kept or o is kept[0] for o in walked)
    finally:
        gc.unfreeze()
    assert any(o is kept for o in gc.get_objects())  # back in the oldest generation


def test_a_run_hands_what_it_kept_back_to_the_collector() -> None:
    with collections_paused_for_a_run():
        with paused_collections():  # a batch of the run: what it keeps is frozen
            kept = [{"state": n} for n in range(3)]
        assert not any(o is kept for o in gc.get_objects())
    assert gc.get_freeze_count() == 0
    assert any(o is kept for o in gc.get_objects())
