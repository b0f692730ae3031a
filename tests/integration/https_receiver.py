"""A real HTTPS receiver for `streams deliver`: its own self-signed certificate (openssl), answers
scripted by the test, every attempt recorded, and it can go down and come back on the same port."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from streams.live.process import free_port


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key; the certificate is also the CA file to trust."""
    cert, key = folder / "receiver-cert.pem", folder / "receiver-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-nodes", "-days", "2",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass(frozen=True)
class Received:
    status: int
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """`answer(body)` decides each response: (status, extra headers, body)."""

    cert: Path
    key: Path
    port: int = field(default_factory=free_port)
    attempts: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def answer(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        return 200, {}, b"{}"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.monotonic()
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status, headers, reply = receiver.answer(body)
                with receiver.lock:
                    receiver.attempts.append(
                        Received(status, {k.lower(): v for k, v in self.headers.items()}, body, arrived)
                    )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.server = server
        return self

    def stop(self) -> None:
        """Down: the port refuses connections until `start` again."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def taken(self) -> list[Received]:
        """The attempts answered 2xx."""
        with self.lock:
            return [a for a in self.attempts if 200 <= a.status < 300]

    def count(self) -> int:
        with self.lock:
            return len(self.attempts)
