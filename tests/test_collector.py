"""The cyclic collector's settings for the replay: paused over one batch, then as it was."""

from __future__ import annotations

import gc

import pytest

from streams.collector import paused_collections


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
