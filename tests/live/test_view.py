"""LiveFeed: the processing thread publishes, the web server's event loop delivers. Messages cross
threads only through call_soon_threadsafe, a user nobody watches costs nothing, and a slow reader
cannot make the worker hold an unbounded backlog for it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, cast

from streams.live.view import FEED_QUEUE_LIMIT, LiveFeed


class SpyLoop:
    """Records each call_soon_threadsafe (and the calling thread) before the real loop takes it."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop
        self.calls: list[tuple[int, str]] = []

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        self.calls.append((threading.get_ident(), args[0]))
        if self.loop is not None:
            self.loop.call_soon_threadsafe(callback, *args)


def attached(feed: LiveFeed, spy: SpyLoop) -> SpyLoop:
    feed.attach(cast(asyncio.AbstractEventLoop, spy))
    return spy


async def settle() -> None:
    """Let the callbacks already scheduled on the running loop run."""
    for _ in range(3):
        await asyncio.sleep(0)


def test_a_message_published_on_another_thread_reaches_the_subscriber() -> None:
    async def scenario() -> None:
        feed = LiveFeed()
        spy = attached(feed, SpyLoop(asyncio.get_running_loop()))
        queue = feed.subscribe("u1")
        publisher = threading.Thread(target=feed.publish, args=("u1", {"topic": "recommendations"}))
        publisher.start()
        publisher.join()
        message = await asyncio.wait_for(queue.get(), timeout=5)
        assert message == {"topic": "recommendations"}
        assert [user for _, user in spy.calls] == ["u1"]
        (caller, _) = spy.calls[0]
        assert caller == publisher.ident  # scheduled from the publisher's thread ...
        assert caller != threading.get_ident()  # ... onto this loop's

    asyncio.run(scenario())


def test_a_user_without_subscribers_costs_nothing() -> None:
    feed = LiveFeed()
    spy = attached(feed, SpyLoop())
    feed.publish("nobody", {"topic": "recommendations"})
    assert spy.calls == []
    assert feed.subscribers == {}  # no key made for a user nobody watches


def test_publishing_before_the_loop_is_attached_is_dropped() -> None:
    feed = LiveFeed()
    feed.subscribe("u1")
    feed.publish("u1", {"topic": "recommendations"})  # must not raise
    assert feed.subscribers["u1"] and next(iter(feed.subscribers["u1"])).empty()


def test_unsubscribing_the_last_queue_removes_the_user() -> None:
    feed = LiveFeed()
    spy = attached(feed, SpyLoop())
    first, second = feed.subscribe("u1"), feed.subscribe("u1")
    assert feed.subscribers["u1"] == {first, second}
    feed.unsubscribe("u1", first)
    assert feed.subscribers["u1"] == {second}
    feed.publish("u1", {"n": 1})
    assert len(spy.calls) == 1  # still watched
    feed.unsubscribe("u1", second)
    assert "u1" not in feed.subscribers
    feed.publish("u1", {"n": 2})
    assert len(spy.calls) == 1  # nobody left: nothing scheduled
    feed.unsubscribe("u2", second)  # unknown user: no error and no key
    assert feed.subscribers == {}


def test_a_queue_stops_receiving_past_the_limit_and_others_still_do() -> None:
    async def scenario() -> None:
        feed = LiveFeed()
        feed.attach(asyncio.get_running_loop())
        slow = feed.subscribe("u1")
        for n in range(FEED_QUEUE_LIMIT + 5):
            feed.publish("u1", {"n": n})
        await settle()
        assert slow.qsize() == FEED_QUEUE_LIMIT
        assert slow.get_nowait() == {"n": 0}  # the oldest are kept, the newest dropped

        fast = feed.subscribe("u1")
        feed.publish("u1", {"n": "next"})
        await settle()
        assert fast.get_nowait() == {"n": "next"}
        assert slow.qsize() == FEED_QUEUE_LIMIT  # one place freed, one message taken
        assert [slow.get_nowait()["n"] for _ in range(slow.qsize())][-1] == "next"

        feed.unsubscribe("u1", fast)
        feed.publish("u2", {"n": "other"})  # another user's message is not ours
        await settle()
        assert slow.empty()

    asyncio.run(scenario())
