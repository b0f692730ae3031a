"""`streams send`, `streams tail` and `streams model swap` against the real broker and worker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from typer.testing import CliRunner

from streams.cli import _register, app
from streams.config import Settings
from streams.kafka.topics import ensure_topics
from streams.live.process import REPO
from streams.serving import DEFAULT_MODEL
from tests.integration.harness import WorkerProcess, get, wait_until


def cli(settings: Settings, *args: str) -> tuple[int, str]:
    _register()
    flags = ["--bootstrap", settings.bootstrap, "--topic-prefix", settings.topic_prefix]
    result = CliRunner().invoke(app, [*args, *flags])
    return result.exit_code, result.output


class Tail(threading.Thread):
    """`streams tail` as a child process, its lines collected as they come."""

    def __init__(self, settings: Settings, *args: str) -> None:
        super().__init__(daemon=True)
        command = [sys.executable, "-m", "streams", "tail", *args]
        command += ["--bootstrap", settings.bootstrap, "--topic-prefix", settings.topic_prefix]
        self.process = subprocess.Popen(
            command, cwd=REPO, env=os.environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[dict[str, Any]] = []
        self.start()

    def run(self) -> None:
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        for line in stdout:
            self.lines.append(json.loads(line))

    def stop(self) -> str:
        self.process.terminate()
        self.process.wait(30)
        return self.process.stderr.read() if self.process.stderr else ""


def test_send_writes_one_checked_event_and_tail_follows_the_topic_decoded(settings: Settings) -> None:
    ensure_topics(settings)
    code, output = cli(settings, "send", "clicks", '{"user_id": "u1", "type": "view", "item_id": "sku-1"}')
    assert code == 0, output
    tail = Tail(settings, "clicks", "--from-beginning")
    try:
        wait_until(lambda: len(tail.lines) == 1, 60, "tail to print the first click")
        first = tail.lines[0]
        assert (first["topic"], first["key"]) == ("clicks", "u1")
        assert first["value"]["type"] == "view" and first["value"]["event_id"].startswith("cli-")
        # It follows: what is sent later shows up too.
        code, output = cli(
            settings, "send", "clicks", '{"user_id": "u2", "type": "add_to_cart", "item_id": "sku-2"}'
        )
        assert code == 0, output
        wait_until(lambda: len(tail.lines) == 2, 60, "tail to follow with the second click")
        assert tail.lines[1]["key"] == "u2" and tail.lines[1]["value"]["type"] == "add_to_cart"
        # A mistake is refused before it is sent, with the reason; the topic is unchanged.
        code, output = cli(settings, "send", "clicks", '{"user_id": "u3", "type": "teleport"}')
        assert code == 2 and "not sent" in output and "type" in output
        time.sleep(2)
        assert len(tail.lines) == 2
    finally:
        tail.stop()


def test_tail_shows_an_undecodable_message_with_its_reason(settings: Settings) -> None:
    ensure_topics(settings)
    code, output = cli(settings, "send", "clicks", '{"user_id": "u1", "type": "teleport"}', "--no-validate")
    assert code == 0, output
    code, output = cli(settings, "tail", "clicks", "--from-beginning", "--limit", "1", "--idle-timeout", "30")
    assert code == 0, output
    (line,) = [json.loads(x) for x in output.splitlines()]
    assert line["value"] == {"user_id": "u1", "type": "teleport"}  # decodes; the worker would refuse it
    code, output = cli(settings, "tail", "no-such-topic", "--idle-timeout", "5")
    assert code == 1 and "no-such-topic" in output


def post(url: str, body: bytes, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_model_swap_makes_a_running_worker_serve_another_model(settings: Settings, tmp_path: Path) -> None:
    settings = replace(settings, api_token="s3cret")
    other = tmp_path / "other-model"
    shutil.copytree(DEFAULT_MODEL, other)
    metadata = json.loads((other / "metadata.json").read_text())
    old_version = metadata["version"]
    metadata["version"] = f"{old_version}-copy"
    (other / "metadata.json").write_text(json.dumps(metadata))
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    base = f"http://127.0.0.1:{settings.web_port}"
    try:
        worker.wait_ready(timeout=180)
        assert f'model_version="{old_version}"' in worker.metrics()
        # The endpoint is closed without the token, and a bad artifact changes nothing.
        assert post(f"{base}/admin/model", json.dumps({"path": str(other)}).encode(), None) == 401
        assert post(f"{base}/admin/model", b"not json", "s3cret") == 400
        _register()
        swap = ["model", "swap", "--worker", base, "--token", "s3cret"]
        result = CliRunner().invoke(app, [*swap[:2], str(tmp_path / "absent"), *swap[2:]])
        assert result.exit_code == 1 and "FileNotFoundError" in result.output, result.output
        assert (worker.health() or {})["model_version"] == old_version

        result = CliRunner().invoke(app, [*swap[:2], str(other), *swap[2:]])
        assert result.exit_code == 0, result.output
        assert f"{old_version} -> {old_version}-copy" in result.output
        assert (worker.health() or {})["model_version"] == f"{old_version}-copy"
        metrics = worker.metrics()
        assert (
            f'model_version="{old_version}-copy"' in metrics
            and f'model_version="{old_version}"' not in metrics
        )

        # The next recommendation comes from the new model, without a restart.
        code, output = cli(
            settings, "send", "clicks", '{"user_id": "u1", "type": "view", "item_id": "sku-1"}'
        )
        assert code == 0, output
        wait_until(lambda: get(f"{base}/users/u1/recommendations")[0] == 200, 60, "a recommendation for u1")
        assert get(f"{base}/users/u1/recommendations")[1]["model_version"] == f"{old_version}-copy"
        worker.assert_running()
    finally:
        worker.stop()
