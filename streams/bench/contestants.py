"""The processes `streams bench` measures side by side, and the maximum-rate run on a backlog.

Each contestant reads the same generated clicks from its own topics and writes one output per event
that names its cause (`cause_event_id`). Maximum rate is measured on a backlog written before the
contestant starts, so the load generator never shares the cores with it, and timed from the first
output to the last (a process's start-up is not part of it).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.bench.profile import start_sampling, summarize
from streams.bench.traffic import LoadResult, OutputWatcher, recommendation_cause
from streams.codec import encode_key
from streams.config import INPUT_TOPICS, Settings
from streams.kafka.clients import librdkafka_config
from streams.kafka.topics import ensure_topics
from streams.live.process import WorkerProcess
from streams.logs import LogRecord


@dataclass(frozen=True)
class Contestant:
    """`argv(settings, scratch, backlog)`: a command that reads the inputs (from their start when
    `backlog`, else what is sent after it says "ready") and writes `recommendations`; None for our
    own worker, started through `WorkerProcess` with `worker_args`."""

    name: str
    argv: Callable[[Settings, Path, bool], list[str]] | None = None
    worker_args: tuple[str, ...] = ()
    offered_rates: bool = False  # also measured at the offered rates (latency percentiles)


def _peer(module: str, *extra: str) -> Callable[[Settings, Path, bool], list[str]]:
    def argv(settings: Settings, scratch: Path, backlog: bool) -> list[str]:
        args = [
            *(sys.executable, "-m", module, "--bootstrap", settings.bootstrap),
            *("--inputs", ",".join(settings.topic(t) for t in INPUT_TOPICS)),
            *("--output", settings.topic("recommendations"), "--group", settings.app_id),
        ]
        args += [a.replace("{scratch}", str(scratch / settings.app_id)) for a in extra]
        return [*args, "--from-start"] if backlog else args

    return argv


WORKER = Contestant("worker", offered_rates=True)
WORKER_NO_MODEL = Contestant("worker --no-model", worker_args=("--no-model",))
AIOKAFKA = Contestant("aiokafka passthrough", _peer("streams.bench.passthrough"), offered_rates=True)
CONFLUENT = Contestant("confluent-kafka passthrough", _peer("streams.bench.ckafka_passthrough"))
QUIXSTREAMS = Contestant(
    "quixstreams reference", _peer("streams.bench.quix_reference", "--state-dir", "{scratch}")
)
CONTESTANTS = (WORKER, WORKER_NO_MODEL, AIOKAFKA, CONFLUENT, QUIXSTREAMS)


class FastProducer:
    """librdkafka behind kafka-python's `send`/`flush`, so that the load generator, not the
    contestant, is never what limits a run (murmur2_random: keys land where the workers expect)."""

    def __init__(self, settings: Settings) -> None:
        from confluent_kafka import Producer

        self._producer = Producer(
            {**librdkafka_config(settings), "acks": "1", "linger.ms": 1, "partitioner": "murmur2_random"}
        )

    def send(self, topic: str, key: bytes, value: bytes, timestamp_ms: int | None = None) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key, timestamp=timestamp_ms or 0)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.05)
        self._producer.poll(0)

    def flush(self) -> None:
        self._producer.flush()

    def close(self) -> None:
        self._producer.flush()


def write_backlog(settings: Settings, records: Sequence[LogRecord]) -> None:
    producer = FastProducer(settings)
    for record in records:
        producer.send(settings.topic(record.topic), encode_key(record.key), record.wire_value(), record.ts)
    producer.flush()


@dataclass
class Started:
    """A running contestant: a `WorkerProcess`, or a peer's process and its log."""

    worker: WorkerProcess | None = None
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    _files: list[Any] = field(default_factory=list)

    def pid(self) -> int:
        process = self.worker.process if self.worker is not None else self.process
        assert process is not None
        return process.pid

    def assert_running(self) -> None:
        if self.worker is not None:
            self.worker.assert_running()
        elif self.process is not None and self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log else ""
            raise RuntimeError(f"contestant exited with {self.process.returncode}: {tail}")

    def wait_ready(self, timeout: float = 120) -> None:
        """Until a worker owns its partitions, or a peer printed "ready"."""
        if self.worker is not None:
            self.worker.wait_ready(timeout)
            return
        assert self.log is not None
        deadline = time.monotonic() + timeout
        while "ready" not in self.log.read_text(errors="replace"):
            self.assert_running()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.log} not ready in {timeout}s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for f in self._files:
            f.close()


def start(contestant: Contestant, settings: Settings, scratch: Path, backlog: bool = False) -> Started:
    ensure_topics(settings)
    log = scratch / f"{settings.app_id}.log"
    if contestant.argv is None:
        worker = WorkerProcess(settings, log, tick_seconds=5.0, extra_args=contestant.worker_args)
        return Started(worker=worker.start(), log=log)
    handle = log.open("wb")
    process = subprocess.Popen(
        contestant.argv(settings, scratch, backlog), stdout=handle, stderr=subprocess.STDOUT
    )
    return Started(process=process, log=log, _files=[handle])


def backlog_run(
    contestant: Contestant,
    settings: Settings,
    records: Sequence[LogRecord],
    scratch: Path,
    timeout: float = 600.0,
    profile: Path | None = None,
) -> LoadResult:
    """Write `records` first, then start the contestant and time its outputs, first to last;
    `profile`: where py-spy's tables of the contestant under that load go."""
    ensure_topics(settings)
    write_backlog(settings, records)
    causes = {r.value["event_id"] for r in records if r.value is not None}
    result = LoadResult(None, sent=len(records))
    topic = settings.topic("recommendations")
    with OutputWatcher(librdkafka_config(settings), topic, recommendation_cause) as watcher:
        running = start(contestant, settings, scratch, backlog=True)
        sampler = None
        try:
            deadline = time.monotonic() + timeout
            while len(watcher.arrived.keys() & causes) < len(causes) and time.monotonic() < deadline:
                running.assert_running()
                if profile is not None and sampler is None and watcher.arrived:
                    sampler = start_sampling(running.pid(), 15, profile.with_suffix(".raw"))
                    sampler = sampler or False  # py-spy missing: asked once
                time.sleep(0.2)
            if sampler and sampler.wait(60) == 0 and profile is not None:
                summarize(profile.with_suffix(".raw"), profile)
                profile.with_suffix(".raw").unlink()
        finally:
            running.stop()
        arrived = [t for cause, t in watcher.arrived.items() if cause in causes]
    result.received = len(arrived)
    result.seconds = max(arrived) - min(arrived) if len(arrived) > 1 else 0.0
    return result
