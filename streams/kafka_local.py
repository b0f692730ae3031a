"""A single-node Apache Kafka broker (KRaft, broker+controller in one JVM) for development and CI.

The broker is assembled from Maven Central jars (`kafka/pom.xml`) instead of Docker or the Apache
tarball, because Maven Central is the one JVM registry every build box here can reach. All state
(jars, data, logs, pid file) lives under `<repo>/.cache/kafka`, so `rm -rf .cache/kafka` is a reset.

    kafka = LocalKafka()
    kafka.up()       # no-op when a broker already answers on 127.0.0.1:9092
    kafka.status()
    kafka.down()     # only ever stops the broker this cache started

When `KAFKA_BOOTSTRAP` names another cluster, nothing is started or stopped: `up()` only checks that
the cluster answers.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

KAFKA_VERSION = "3.9.2"
REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_DIR = REPO_ROOT / "kafka"
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "kafka"

# Jars whose absence means the copy is unusable even if mvn exited 0 (e.g. a pom edited badly):
# the broker itself, and the slf4j binding without which it starts but logs nothing at all.
_REQUIRED_JAR_PREFIXES = (f"kafka_2.13-{KAFKA_VERSION}", "kafka-clients-", "slf4j-reload4j-", "reload4j-")

Progress = Callable[[str], None]


class LocalKafkaError(RuntimeError):
    """The local broker could not be fetched, formatted, started, stopped or reached."""


@dataclass(frozen=True)
class LocalKafkaConfig:
    cache_dir: Path = DEFAULT_CACHE_DIR
    host: str = "127.0.0.1"
    port: int = 9092
    controller_port: int = 9093
    node_id: int = 1
    num_partitions: int = 8
    heap_min: str = "256m"
    heap_max: str = "1g"
    pom: Path = KAFKA_DIR / "pom.xml"
    log4j_config: Path = KAFKA_DIR / "log4j.properties"
    java: str = "java"
    mvn: str = "mvn"
    # Set when KAFKA_BOOTSTRAP points at a cluster we don't manage; then up/down never touch processes.
    external_bootstrap: str | None = None
    extra_properties: dict[str, str] = field(default_factory=dict)
    # Where the jars are (default: `cache_dir/libs`). A second broker with its own data, ports and
    # logs (a fault test that stops and restarts it) can share another cache's jars.
    jars_dir: Path | None = None

    @classmethod
    def from_env(cls, **changes: Any) -> LocalKafkaConfig:
        """Defaults, plus `external_bootstrap` from KAFKA_BOOTSTRAP unless it is our own address."""
        config = cls(**changes)
        env = os.environ.get("KAFKA_BOOTSTRAP", "").strip()
        if env and not same_bootstrap(env, config.bootstrap):
            config = replace(config, external_bootstrap=env)
        return config

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def libs_dir(self) -> Path:
        return self.jars_dir if self.jars_dir is not None else self.cache_dir / "libs"

    @property
    def data_dir(self) -> Path:
        return self.cache_dir / "data"

    @property
    def logs_dir(self) -> Path:
        return self.cache_dir / "logs"

    @property
    def server_properties(self) -> Path:
        return self.cache_dir / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.cache_dir / "broker.pid"

    @property
    def server_log(self) -> Path:
        return self.logs_dir / "server.log"

    @property
    def stdout_log(self) -> Path:
        return self.logs_dir / "broker.out"

    @property
    def fetch_log(self) -> Path:
        return self.logs_dir / "fetch.log"


@dataclass(frozen=True)
class KafkaStatus:
    bootstrap: str
    up: bool
    pid: int | None = None  # only for a broker this cache started
    external: bool = False
    cluster_id: str | None = None
    started: bool = False  # set by up() when this call launched the process


# --------------------------------------------------------------------------------------------------
# Probing: shared with tests, which wait for the CI broker with `wait_for_broker`.


def _split_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    addresses = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host:  # a bare host means Kafka's default port, as kafka-python assumes
            host, port = port, "9092"
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def same_bootstrap(a: str, b: str) -> bool:
    """True when two bootstrap strings name the same servers (`localhost` == `127.0.0.1`)."""

    def norm(bootstrap: str) -> set[tuple[str, int]]:
        return {
            ("127.0.0.1" if h.lower() == "localhost" else h.lower(), p)
            for h, p in _split_bootstrap(bootstrap)
        }

    return norm(a) == norm(b)


def _port_open(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def probe_broker(bootstrap: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """Cluster description if a broker at `bootstrap` answers a real metadata request, else None."""
    # A plain TCP connect first: it fails in microseconds while nothing listens, and it spares us
    # kafka-python's bootstrap, which logs errors and leaves its IO thread behind when it fails.
    if not any(_port_open(h, p, min(timeout, 1.0)) for h, p in _split_bootstrap(bootstrap)):
        return None
    from kafka import KafkaAdminClient  # deferred: keeps `streams --help` from importing kafka-python

    timeout_ms = max(int(timeout * 1000), 500)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="streams-kafka-local",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
            reconnect_backoff_max_ms=500,
        )
    except Exception as exc:  # any failure to bootstrap just means "not answering yet"
        log.debug("bootstrap to %s failed: %s", bootstrap, exc)
        return None
    try:
        return admin.describe_cluster()
    except Exception as exc:
        log.debug("describe_cluster on %s failed: %s", bootstrap, exc)
        return None
    finally:
        admin.close()


def wait_for_broker(
    bootstrap: str,
    timeout: float = 60.0,
    *,
    interval: float = 0.5,
    give_up: Callable[[], str | None] | None = None,
) -> dict[str, Any]:
    """Block until `bootstrap` answers a metadata request; return the cluster description.

    Raises TimeoutError after `timeout` seconds. `give_up` is polled between attempts; a non-None
    return aborts the wait with LocalKafkaError carrying that reason (e.g. "the broker exited").
    """
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        info = probe_broker(bootstrap, timeout=max(0.5, min(5.0, remaining)))
        if info is not None:
            return info
        if give_up is not None and (reason := give_up()) is not None:
            raise LocalKafkaError(reason)
        if time.monotonic() + interval > deadline:
            raise TimeoutError(
                f"no Kafka broker answered a metadata request at {bootstrap} within {timeout:g}s"
            )
        time.sleep(interval)


# --------------------------------------------------------------------------------------------------
# Process helpers


def _tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


def _alive(pid: int) -> bool:
    # Reap first if the broker is our own child (up() and down() in one process, e.g. a test):
    # an unreaped zombie still passes kill(pid, 0) and down() would wait for nothing.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        # A zombie whose parent is someone else: dead for our purposes.
        return stat.read_text().rpartition(")")[2].split()[0] != "Z"
    return True


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")


def _random_cluster_id() -> str:
    # Same format and rule as Kafka's Uuid.randomUuid(): url-safe base64 without padding, never
    # starting with '-' (the CLI would read it as an option). Saves a JVM start for `random-uuid`.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class LocalKafka:
    """Fetch, format, start, stop and query the single-node broker described by a LocalKafkaConfig."""

    def __init__(self, config: LocalKafkaConfig | None = None, *, progress: Progress | None = None) -> None:
        config = config if config is not None else LocalKafkaConfig.from_env()
        # Absolute, because the JVM runs with cwd=cache_dir and the pid check compares command lines.
        self.config = replace(config, cache_dir=config.cache_dir.resolve())
        self._progress = progress or (lambda message: log.info("%s", message))

    # -- public API ------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return self.config.external_bootstrap or self.config.bootstrap

    def status(self, timeout: float = 2.0) -> KafkaStatus:
        external = self.config.external_bootstrap is not None
        info = probe_broker(self.bootstrap, timeout=timeout)
        return KafkaStatus(
            bootstrap=self.bootstrap,
            up=info is not None,
            pid=None if external else self._our_pid(),
            external=external,
            cluster_id=(info or {}).get("cluster_id"),
        )

    def fetch(self) -> bool:
        """Copy the broker's runtime jars into the cache with Maven; False if they were already there."""
        cfg = self.config
        marker = cfg.libs_dir / ".fetched"
        digest = self._fetch_digest()
        if marker.is_file() and marker.read_text().strip() == digest and not self._missing_jars(cfg.libs_dir):
            return False
        mvn = shutil.which(cfg.mvn)
        if mvn is None:
            raise LocalKafkaError(f"'{cfg.mvn}' is not on PATH; Maven is needed to fetch the Kafka jars")
        cfg.logs_dir.mkdir(parents=True, exist_ok=True)
        # Copy into a scratch directory and swap it in, so an interrupted fetch never leaves a
        # half-filled libs/ that the marker check could later mistake for a good one.
        partial = cfg.libs_dir.with_name(cfg.libs_dir.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        cmd = [
            mvn, "-B", "-ntp", "-Dstyle.color=never", "-f", str(cfg.pom),
            "dependency:copy-dependencies", f"-DoutputDirectory={partial}", "-DincludeScope=runtime",
        ]  # fmt: skip
        self._progress(f"Fetching Kafka {KAFKA_VERSION} jars from Maven Central (first run only)...")
        started = time.monotonic()
        with cfg.fetch_log.open("wb") as out:
            try:
                result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        timeout=1800, check=False)  # fmt: skip
                failure = f"exit status {result.returncode}" if result.returncode else None
            except subprocess.TimeoutExpired:
                failure = "no result after 30 minutes"
        if failure is None and (missing := self._missing_jars(partial)):
            failure = f"exit status 0 but these jars are missing: {', '.join(missing)}"
        if failure is not None:
            shutil.rmtree(partial, ignore_errors=True)
            raise LocalKafkaError(
                f"mvn copy-dependencies failed ({failure}): {' '.join(cmd)}\n"
                f"--- last lines of {cfg.fetch_log} ---\n{_tail(cfg.fetch_log)}"
            )
        shutil.rmtree(cfg.libs_dir, ignore_errors=True)
        partial.rename(cfg.libs_dir)
        marker.write_text(digest + "\n")
        jars = len(list(cfg.libs_dir.glob("*.jar")))
        self._progress(f"Fetched {jars} jars in {time.monotonic() - started:.1f}s into {cfg.libs_dir}")
        return True

    def up(self, timeout: float = 120.0) -> KafkaStatus:
        """Make sure a broker answers at the bootstrap address, starting ours if needed."""
        cfg = self.config
        if cfg.external_bootstrap is not None:
            try:
                info = wait_for_broker(cfg.external_bootstrap, timeout=timeout)
            except TimeoutError as exc:
                raise LocalKafkaError(f"KAFKA_BOOTSTRAP={cfg.external_bootstrap}: {exc}") from None
            return KafkaStatus(cfg.external_bootstrap, True, external=True, cluster_id=info.get("cluster_id"))

        deadline = time.monotonic() + timeout
        with self._lock():
            info = probe_broker(cfg.bootstrap)
            pid = self._our_pid()
            if info is not None:  # ours or someone else's: either way there is nothing to do
                return KafkaStatus(cfg.bootstrap, up=True, pid=pid, cluster_id=info.get("cluster_id"))
            if pid is not None:
                # Ours but not answering yet (another `up` still booting it, or it hangs): don't start a
                # second JVM on the same data dir, wait for this one.
                self._progress(f"Broker pid {pid} is running but not answering yet; waiting...")
                info = self._wait_for_ours(pid, deadline, timeout)
                return KafkaStatus(cfg.bootstrap, up=True, pid=pid, cluster_id=info.get("cluster_id"))
            cfg.pid_file.unlink(missing_ok=True)  # stale: its process is gone
            self._check_ports_free()
            self.fetch()
            java = shutil.which(cfg.java)
            if java is None:
                raise LocalKafkaError(f"'{cfg.java}' is not on PATH; Kafka {KAFKA_VERSION} needs Java 11+")
            self._write_server_properties()
            self._format_storage(java)
            pid = self._start(java)
            self._progress(
                f"Started Kafka {KAFKA_VERSION} (pid {pid}); waiting for {cfg.bootstrap} to answer..."
            )
            info = self._wait_for_ours(pid, deadline, timeout)
            return KafkaStatus(cfg.bootstrap, True, pid=pid, cluster_id=info.get("cluster_id"), started=True)

    def down(self, timeout: float = 30.0) -> bool:
        """Stop the broker this cache started (SIGTERM, SIGKILL after `timeout`); False if none ran."""
        cfg = self.config
        if cfg.external_bootstrap is not None:
            return False
        with self._lock():
            pid = self._our_pid()
            if pid is None:
                cfg.pid_file.unlink(missing_ok=True)
                return False
            os.kill(pid, signal.SIGTERM)  # Kafka's shutdown hook flushes logs and checkpoints
            if not self._wait_exit(pid, timeout):
                log.warning("Kafka pid %s still running after %ss; sending SIGKILL", pid, timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                if not self._wait_exit(pid, 10.0):
                    raise LocalKafkaError(f"Kafka pid {pid} survived SIGKILL")
            cfg.pid_file.unlink(missing_ok=True)
            return True

    # -- internals -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        # Serializes up/down across processes (two terminals, parallel CI steps) sharing one cache.
        self.config.cache_dir.mkdir(parents=True, exist_ok=True)
        with (self.config.cache_dir / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _our_pid(self) -> int | None:
        """The pid from our pid file, if that process is alive and is really our broker."""
        try:
            pid = int(self.config.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not _alive(pid):
            return None
        args = _cmdline(pid)
        # Pids get reused after a reboot or a crash: only trust one still running our kafka.Kafka
        # with our server.properties, so down() can never signal an unrelated process.
        if args is not None and not ("kafka.Kafka" in args and str(self.config.server_properties) in args):
            return None
        return pid

    def _fetch_digest(self) -> str:
        # The pom decides the jar set; editing it (e.g. a version bump) must trigger a new fetch.
        try:
            return hashlib.sha256(self.config.pom.read_bytes()).hexdigest()
        except OSError as exc:
            raise LocalKafkaError(f"cannot read {self.config.pom}: {exc}") from exc

    @staticmethod
    def _missing_jars(libs: Path) -> list[str]:
        names = [p.name for p in libs.glob("*.jar")] if libs.is_dir() else []
        return [prefix for prefix in _REQUIRED_JAR_PREFIXES if not any(n.startswith(prefix) for n in names)]

    def _check_ports_free(self) -> None:
        # Fail with a clear message rather than a BindException buried in server.log.
        cfg = self.config
        for port in (cfg.port, cfg.controller_port):
            if _port_open(cfg.host, port, 0.5):
                raise LocalKafkaError(
                    f"{cfg.host}:{port} is in use, but no Kafka broker answers on {cfg.bootstrap} and none "
                    f"was started from {cfg.cache_dir}; stop whatever holds the port or pick other ports"
                )

    def _write_server_properties(self) -> None:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(cfg.node_id),
            # Static single-voter quorum: no --standalone/dynamic-quorum bootstrap needed at format.
            "controller.quorum.voters": f"{cfg.node_id}@{cfg.host}:{cfg.controller_port}",
            "listeners": f"PLAINTEXT://{cfg.host}:{cfg.port},CONTROLLER://{cfg.host}:{cfg.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{cfg.host}:{cfg.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(cfg.data_dir),
            "num.partitions": str(cfg.num_partitions),
            # One broker: every internal topic must make do with a single replica.
            "default.replication.factor": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "min.insync.replicas": "1",
            # Faust creates its changelog/repartition topics itself; auto-create only helps ad-hoc use.
            "auto.create.topics.enable": "true",
            "delete.topic.enable": "true",
            # The 3 s default only pays off with many consumers joining at once; here it just slows tests.
            "group.initial.rebalance.delay.ms": "0",
            **cfg.extra_properties,
        }
        body = "".join(f"{key}={value}\n" for key, value in props.items())
        header = "# Written by streams/kafka_local.py on every `up`; edits are lost.\n"
        cfg.server_properties.write_text(header + body)

    def _java_base(self, java: str) -> list[str]:
        cfg = self.config
        return [
            java,
            f"-Dlog4j.configuration={cfg.log4j_config.resolve().as_uri()}",
            f"-Dkafka.logs.dir={cfg.logs_dir}",  # read by log4j.properties
            "-cp", str(cfg.libs_dir / "*"),  # the JVM expands the wildcard itself; no shell involved
        ]  # fmt: skip

    def _format_storage(self, java: str) -> None:
        cfg = self.config
        if (cfg.data_dir / "meta.properties").exists():
            return
        cfg.logs_dir.mkdir(parents=True, exist_ok=True)
        cluster_id = _random_cluster_id()
        self._progress(f"Formatting {cfg.data_dir} (cluster id {cluster_id})...")
        cmd = [*self._java_base(java), "kafka.tools.StorageTool", "format",
               "-t", cluster_id, "-c", str(cfg.server_properties)]  # fmt: skip
        result = subprocess.run(
            cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300, check=False
        )
        if result.returncode != 0:
            output = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
            raise LocalKafkaError(f"formatting {cfg.data_dir} failed (exit {result.returncode}):\n{output}")

    def _start(self, java: str) -> int:
        cfg = self.config
        cfg.logs_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            *self._java_base(java),
            f"-Xms{cfg.heap_min}", f"-Xmx{cfg.heap_max}",
            # Die instead of limping on: a crashed broker is noticed by the next `up`, a wedged one isn't.
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            "kafka.Kafka", str(cfg.server_properties),
        ]  # fmt: skip
        with cfg.stdout_log.open("ab") as out:
            out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
            out.flush()
            # New session: the broker must outlive the `streams kafka up` that started it and must not
            # receive the Ctrl-C meant for whatever runs next in that terminal.
            proc = subprocess.Popen(
                cmd, cwd=cfg.cache_dir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
            )  # fmt: skip
        tmp = cfg.pid_file.with_suffix(".tmp")
        tmp.write_text(f"{proc.pid}\n")
        tmp.replace(cfg.pid_file)  # atomic: a concurrent status() never reads a half-written pid
        return proc.pid

    def _wait_for_ours(self, pid: int, deadline: float, timeout: float) -> dict[str, Any]:
        cfg = self.config

        def exited() -> str | None:
            return None if _alive(pid) else f"Kafka (pid {pid}) exited during startup"

        try:
            remaining = max(0.0, deadline - time.monotonic())
            return wait_for_broker(cfg.bootstrap, timeout=remaining, give_up=exited)
        except LocalKafkaError as exc:
            cfg.pid_file.unlink(missing_ok=True)
            raise LocalKafkaError(f"{exc}\n{self._log_tails()}") from None
        except TimeoutError:
            # Left running on purpose: a slow machine may still make it, and the next `up` waits for it.
            raise LocalKafkaError(
                f"Kafka (pid {pid}) did not answer on {cfg.bootstrap} within {timeout:g}s; it is still "
                f"running (`streams kafka down` stops it)\n{self._log_tails()}"
            ) from None

    def _log_tails(self) -> str:
        cfg = self.config
        return (
            f"--- last lines of {cfg.server_log} ---\n{_tail(cfg.server_log)}\n"
            f"--- last lines of {cfg.stdout_log} ---\n{_tail(cfg.stdout_log, 20)}"
        )

    @staticmethod
    def _wait_exit(pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                return True
            time.sleep(0.1)
        return not _alive(pid)
