"""The peer reference: quixstreams doing a job comparable to the worker's state keeping.

Per user (the message key), a RocksDB state of the last 50 items and counters per event kind,
changelogged by quixstreams, and one output of a recommendation's size per input event carrying
the cause's event id. Clicks and orders are read as one co-partitioned stream (like the worker's).

    python -m streams.bench.quix_reference --bootstrap HOST:PORT --inputs a,b --output c --group g \
        --state-dir DIR
"""

from __future__ import annotations

from typing import Any

import msgpack
from quixstreams import Application, State

from streams.bench.peer_cli import peer_arguments

RECENT = 50


def remember(raw: bytes, state: State, padding: bytes) -> bytes:
    event: dict[str, Any] = msgpack.unpackb(raw, raw=False)
    recent: list[Any] = state.get("recent", [])
    recent.append(event.get("item_id"))
    state.set("recent", recent[-RECENT:])
    counters: dict[str, int] = state.get("counters", {})
    kind = str(event.get("type") or event.get("status") or "order")
    counters[kind] = counters.get(kind, 0) + 1
    state.set("counters", counters)
    return msgpack.packb({"cause_event_id": event.get("event_id"), "items": padding})


def run(bootstrap: str, inputs: list[str], output: str, group: str, state_dir: str, size: int) -> None:
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        processing_guarantee="at-least-once",
        commit_interval=1.0,
        producer_extra_config={"linger.ms": 1, "partitioner": "murmur2_random"},
        loglevel="WARNING",
    )
    topics = [app.topic(name, key_deserializer="bytes", value_deserializer="bytes") for name in inputs]
    out = app.topic(output, key_serializer="bytes", value_serializer="bytes")
    stream = app.dataframe(topics[0])
    for topic in topics[1:]:
        stream = stream.concat(app.dataframe(topic))
    padding = b"x" * size
    stream = stream.apply(lambda raw, state: remember(raw, state, padding), stateful=True)
    stream.to_topic(out)
    print("ready", flush=True)
    app.run()


def main() -> None:
    args = peer_arguments(__doc__, state_dir=True)  # it always reads from the start
    run(args.bootstrap, args.inputs, args.output, args.group, args.state_dir, args.size)


if __name__ == "__main__":
    main()
