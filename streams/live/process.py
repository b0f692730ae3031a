"""`streams worker` as a child process, the way an operator runs it: tests and benchmarks use it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.config import Settings

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class WorkerProcess:
    """One `streams worker` process with its settings passed through the environment."""

    settings: Settings
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    # Event time only by default: a wall-clock tick would fire the log's tail timers, which an
    # offline run (no wall clock) never does. The tick has its own test.
    tick_seconds: float = 0.0
    rules: Path | None = None
    extra_args: tuple[str, ...] = ()  # more `streams worker` options, e.g. ("--no-model",)

    def env(self) -> dict[str, str]:
        s = self.settings
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP": s.bootstrap,
            "STREAMS_TOPIC_PREFIX": s.topic_prefix,
            "STREAMS_APP_ID": s.app_id,
            "STREAMS_PARTITIONS": str(s.partitions),
            "STREAMS_DATA_DIR": s.data_dir,
            "STREAMS_WEB_PORT": str(s.web_port),
            "STREAMS_OUTPUT_FORMAT": s.output_format,
            **({"STREAMS_API_TOKEN": s.api_token} if s.api_token else {}),
            **s.web_access.env(),
        }

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "streams",
            "worker",
            "--loglevel",
            "info",
            "--tick-seconds",
            str(self.tick_seconds),
            *(["--rules", str(self.rules)] if self.rules else []),
            *self.extra_args,
        ]

    def start(self) -> WorkerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.process = subprocess.Popen(
            self.command(),
            cwd=REPO,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.settings.web_port}/healthz", timeout=1) as r:
                return json.load(r)
        except OSError:
            return None

    def metrics(self) -> str:
        """The worker's Prometheus text (`/metrics`); OSError while it does not answer."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.settings.web_port}/metrics", timeout=2) as r:
            return str(r.read().decode())

    def wait_healthy(self, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_running()
            health = self.health()
            if health is not None:
                return health
            time.sleep(0.3)
        raise TimeoutError(f"worker not healthy in {timeout}s\n{self.log_tail()}")

    def wait_ready(self, timeout: float = 120) -> None:
        """Until the worker owns partitions and its tables are restored (`/healthz`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_running()
            health = self.health()
            if health and health.get("partitions") and not health.get("recovering", True):
                return
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready in {timeout}s\n{self.log_tail(20)}")

    def assert_running(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited with {self.process.returncode}\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no final commit, no flush."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
