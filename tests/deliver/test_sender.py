from __future__ import annotations

import random
import threading
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
import requests

from streams.deliver.config import DeliverConfig
from streams.deliver.formats import Request, Webhook
from streams.deliver.metrics import DeliverMetrics
from streams.deliver.sender import Answer, Backoff, Sender, Stopped, TokenBucket, retry_after_seconds


class FakeResponse:
    def __init__(self, status: int, text: str = "", headers: dict[str, str] | None = None) -> None:
        self.status_code, self.text, self.headers = status, text, headers or {}

    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *_: object) -> None:
        pass


class ScriptedSession(requests.Session):
    """Answers from a script: a FakeResponse, or an exception to raise."""

    def __init__(self, script: list[Any]) -> None:
        super().__init__()
        self.script = list(script)
        self.sent: list[dict[str, Any]] = []

    def post(self, url: str | bytes, data: Any = None, json: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        self.sent.append({"url": url, "body": data, **kwargs})
        answer = self.script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def sender(
    script: list[Any], stopping: threading.Event | None = None
) -> tuple[Sender, ScriptedSession, list[float]]:
    config = DeliverConfig(
        url="https://hooks.example/in?token=t0k3n",
        secret="s",
        requests_per_second=1000,
        burst=1000,
        backoff_base_seconds=0.5,
        backoff_max_seconds=8,
        ca_file="/etc/ca.pem",
    )
    session = ScriptedSession(script)
    out = Sender(config, Webhook("s"), DeliverMetrics(), stopping, random.Random(7), session)
    waits: list[float] = []
    out._wait = waits.append  # type: ignore[method-assign]  # record the delays instead of sleeping
    return out, session, waits


REQUEST = Request(b"{}", {"content-type": "application/json"}, (0,), "t-1")


def test_5xx_timeouts_and_429_are_retried_until_a_2xx() -> None:
    script = [
        FakeResponse(500),
        requests.ConnectionError("refused"),
        requests.Timeout("slow"),
        FakeResponse(429, headers={"retry-after": "7"}),
        FakeResponse(503),
        FakeResponse(202),
    ]
    s, session, waits = sender(script)
    answer = s.deliver(REQUEST)
    assert answer.taken and answer.status == 202
    assert len(session.sent) == 6
    assert {sent["verify"] for sent in session.sent} == {"/etc/ca.pem"}
    # The rate limiter's waits (zero here) come before each attempt; backoffs after each failure.
    backoffs = [w for w in waits if w > 0]
    assert 0.25 <= backoffs[0] <= 0.5 and 0.5 <= backoffs[1] <= 1.0 and 1.0 <= backoffs[2] <= 2.0
    assert 7.0 <= backoffs[3] <= 7.5  # Retry-After is a floor
    assert 4.0 <= backoffs[4] <= 8.0
    text = s.metrics.render().decode()
    assert 'streams_deliver_retries_total{reason="500"} 1.0' in text
    assert 'streams_deliver_retries_total{reason="timeout"} 1.0' in text
    assert 'streams_deliver_retries_total{reason="connection_error"} 1.0' in text
    assert 'streams_deliver_requests_total{status="202"} 1.0' in text


def test_a_4xx_is_a_final_refusal_with_the_body_excerpt() -> None:
    s, session, _ = sender([FakeResponse(400, text="bad field: " + "x" * 2000)])
    answer = s.deliver(REQUEST)
    assert not answer.taken and answer.status == 400
    assert answer.body.startswith("bad field: ") and len(answer.body) == 512
    assert len(session.sent) == 1
    assert 'streams_deliver_refusals_total{status="400"} 1.0' in s.metrics.render().decode()


def test_each_attempt_is_signed_again_with_the_same_webhook_id() -> None:
    s, session, _ = sender([FakeResponse(500), FakeResponse(200)])
    s.deliver(REQUEST)
    assert [sent["headers"]["webhook-id"] for sent in session.sent] == ["t-1", "t-1"]
    assert all(sent["headers"]["webhook-signature"].startswith("v1,") for sent in session.sent)


def test_a_stop_while_waiting_to_retry_leaves_the_request_unanswered() -> None:
    stopping = threading.Event()
    s, _, _ = sender([FakeResponse(500)], stopping)
    s._wait = lambda seconds: (stopping.set(), Sender._wait(s, seconds))  # type: ignore[method-assign]
    with pytest.raises(Stopped):
        s.deliver(REQUEST)


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (502, True), (408, True), (429, True), (400, False), (404, False)]
)
def test_which_answers_are_retried(status: int, retryable: bool) -> None:
    assert Answer(status).retryable is retryable
    assert Answer(None, error="timeout").retryable


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert retry_after_seconds("30", now) == 30
    assert (
        retry_after_seconds(format_datetime(datetime(2026, 1, 1, 0, 1, tzinfo=UTC), usegmt=True), now) == 60
    )
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_backoff_grows_to_its_cap() -> None:
    backoff = Backoff(1.0, 10.0, random.Random(1))
    for attempt, ceiling in [(0, 1), (1, 2), (2, 4), (3, 8), (4, 10), (9, 10)]:
        assert ceiling / 2 <= backoff.delay(attempt) <= ceiling


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [bucket.wait_time() for _ in range(3)] == [0, 0, 0]
    assert bucket.wait_time() == pytest.approx(0.5)
    assert bucket.wait_time() == pytest.approx(1.0)
    now[0] = 10.0
    assert bucket.wait_time() == 0
