"""`streams demo` starts its worker with the dashboard's shopper access on (STREAMS_DEMO)."""

from __future__ import annotations

from streams.cli.demo import demo_access_env
from streams.web_access import WebAccess


def test_the_demo_worker_gets_a_fresh_write_key_and_secret_unless_set() -> None:
    env = demo_access_env({})
    access = WebAccess.from_env(env)
    assert access.demo and access.collector_keys and access.shopper_secret
    assert demo_access_env({})["STREAMS_SHOPPER_SECRET"] != env["STREAMS_SHOPPER_SECRET"]
    given = demo_access_env({"STREAMS_COLLECTOR_KEYS": "k1,k2", "STREAMS_SHOPPER_SECRET": "s"})
    assert WebAccess.from_env(given).collector_keys == ("k1", "k2")
    assert given["STREAMS_SHOPPER_SECRET"] == "s"
