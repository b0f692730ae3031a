"""Send one request until the receiver takes it or refuses it for good.

A 2xx takes it. Timeouts, connection errors, 408, 429 and 5xx are retried with exponential backoff
and jitter (never sooner than a `Retry-After` asks), for as long as it takes: an output is never
dropped because a receiver was down. Any other answer is a refusal, final: the connector sends the
outputs to `dead-letters` with the status and the start of the body. A token bucket keeps the
request rate under the receiver's limit.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests

from streams.deliver.config import DeliverConfig
from streams.deliver.formats import Format, Request
from streams.deliver.metrics import DeliverMetrics

log = logging.getLogger(__name__)

BODY_EXCERPT_CHARS = 512
RETRIED_STATUSES = frozenset({408, 429})


class Stopped(Exception):
    """The connector was asked to stop while a request was still unanswered."""


@dataclass(frozen=True, slots=True)
class Answer:
    """The receiver's answer to one attempt; `status` None: none came (timeout, connection error)."""

    status: int | None
    body: str = ""
    retry_after: float | None = None
    error: str | None = None

    @property
    def taken(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in RETRIED_STATUSES or self.status >= 500

    @property
    def label(self) -> str:
        return str(self.status) if self.status is not None else (self.error or "no_answer")


def retry_after_seconds(header: str | None, now: float) -> float | None:
    """`Retry-After` as seconds from `now`: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not header:
        return None
    text = header.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class Backoff:
    """Exponential backoff with jitter: attempt n waits between half and all of base * 2**n, capped;
    a `Retry-After` is a floor, plus a little jitter so many connectors do not return at once."""

    def __init__(self, base: float, cap: float, rng: random.Random) -> None:
        self.base, self.cap, self.rng = base, cap, rng

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return retry_after + self.rng.uniform(0, self.base)
        ceiling = min(self.cap, self.base * 2**attempt)
        return self.rng.uniform(ceiling / 2, ceiling)


class TokenBucket:
    """At most `rate` requests a second on average, `burst` at once."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, float(burst), clock
        self.tokens = float(burst)
        self.updated = clock()

    def wait_time(self) -> float:
        """Take a token: how long to wait before using it (0 if one was there)."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class Sender:
    def __init__(
        self,
        config: DeliverConfig,
        format: Format,
        metrics: DeliverMetrics,
        stopping: threading.Event | None = None,
        rng: random.Random | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config
        self.format = format
        self.metrics = metrics
        self.stopping = stopping or threading.Event()
        self.backoff = Backoff(
            config.backoff_base_seconds, config.backoff_max_seconds, rng or random.Random()
        )
        self.bucket = TokenBucket(config.requests_per_second, config.burst)
        self.session = session or requests.Session()
        # Given with each request: requests lets REQUESTS_CA_BUNDLE override a session's `verify`.
        self.verify: str | bool = config.ca_file or True
        self.host = urlsplit(config.url).netloc  # what a log line may name: never the path or query

    def deliver(self, request: Request) -> Answer:
        """Until a 2xx or a final refusal; raises Stopped if asked to stop in between."""
        attempt = 0
        while True:
            self._wait(self.bucket.wait_time())
            answer = self.post(request)
            if answer.taken or not answer.retryable:
                if not answer.taken:
                    self.metrics.refusals.labels(answer.label).inc()
                    # The body may quote the payload: it goes to the dead letter, not to the log.
                    log.warning("%s refused %s with %s", self.host, request.key, answer.label)
                return answer
            delay = self.backoff.delay(attempt, answer.retry_after)
            self.metrics.retries.labels(answer.label).inc()
            what = answer.label if answer.status is not None else f"{answer.label} ({answer.body})"
            log.info("%s answered %s to %s; again in %.1f s", self.host, what, request.key, delay)
            self._wait(delay)
            attempt += 1

    def post(self, request: Request) -> Answer:
        """One attempt."""
        headers = self.format.headers(request, time.time())
        started = time.monotonic()
        try:
            response = self.session.post(
                self.config.url,
                data=request.body,
                headers=headers,
                timeout=self.config.timeout_seconds,
                verify=self.verify,
            )
        except requests.Timeout:
            answer = Answer(None, error="timeout")
        except requests.RequestException as exc:
            answer = Answer(None, error="connection_error", body=type(exc).__name__)
        else:
            with response:
                answer = Answer(
                    response.status_code,
                    body=response.text[:BODY_EXCERPT_CHARS],
                    retry_after=retry_after_seconds(response.headers.get("retry-after"), time.time()),
                )
        self.metrics.request_seconds.observe(time.monotonic() - started)
        self.metrics.requests.labels(answer.label).inc()
        return answer

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.stopping.wait(seconds)
        if self.stopping.is_set():
            raise Stopped
