"""Prometheus metrics of `streams deliver` (`GET /metrics` on its own port)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, start_http_server


class DeliverMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.outputs = Counter(
            "streams_deliver_outputs",
            "Outputs read, by what became of them: delivered, dead_lettered (refused by the receiver),"
            " bad_input (not an output), skipped_replay (replay: true without --backfill)",
            ["source", "outcome"],
            registry=r,
        )
        self.requests = Counter(
            "streams_deliver_requests",
            "HTTP requests sent, by the receiver's status (or timeout / connection_error)",
            ["status"],
            registry=r,
        )
        self.retries = Counter(
            "streams_deliver_retries",
            "Requests sent again, by why the attempt failed",
            ["reason"],
            registry=r,
        )
        self.refusals = Counter(
            "streams_deliver_refusals",
            "Requests refused for good (a 4xx other than 408 and 429); their outputs went to dead-letters",
            ["status"],
            registry=r,
        )
        self.commits = Counter("streams_deliver_commits", "Input offset commits", registry=r)
        self.request_seconds = Histogram(
            "streams_deliver_request_seconds",
            "Time of one HTTP request, answer included",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, host: str, port: int) -> None:
        """Serve `/metrics` from a daemon thread for the life of the process."""
        start_http_server(port, addr=host, registry=self.registry)
