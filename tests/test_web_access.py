"""The demo setting hands out a write key and shopper tokens: it needs both to be configured."""

from __future__ import annotations

import pytest

from streams.web_access import WebAccess


def test_demo_reads_from_the_environment_and_back() -> None:
    env = {"STREAMS_DEMO": "true", "STREAMS_COLLECTOR_KEYS": "k", "STREAMS_SHOPPER_SECRET": "s"}
    access = WebAccess.from_env(env)
    assert access.demo
    assert WebAccess.from_env(access.env()) == access
    assert not WebAccess.from_env({}).demo


def test_demo_without_a_write_key_or_a_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="STREAMS_DEMO=true needs"):
        WebAccess(collector_keys=("k",), demo=True)
    with pytest.raises(ValueError, match="STREAMS_DEMO=true needs"):
        WebAccess(shopper_secret="s", demo=True)
