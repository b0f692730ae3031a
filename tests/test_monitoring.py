"""The monitoring pack (monitoring/, docker-compose.yml): the files parse, the compose file mounts
what exists, and the Grafana dashboard asks only for metrics a worker exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from streams.live.metrics import WorkerMetrics

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "monitoring" / "grafana" / "dashboards" / "streams.json"
COMPOSE = REPO / "docker-compose.yml"
METRIC = re.compile(r"\bstreams_[a-z0-9_]+")
# The series Prometheus' text format gives each metric type (prometheus_client's exposition).
SERIES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def exported_names(exposition: str) -> set[str]:
    """Every series name a `/metrics` text can carry, from its `# TYPE` lines (a labelled metric
    with no child yet has no sample, but its type is declared)."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            base = name.removesuffix("_total") if kind == "counter" else name
            names |= {base + suffix for suffix in SERIES[kind]}
    return names


def dashboard_expressions() -> list[str]:
    def walk(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["expr"]] if isinstance(node.get("expr"), str) else []
            return found + [e for value in node.values() for e in walk(value)]
        if isinstance(node, list):
            return [e for value in node for e in walk(value)]
        return []

    return walk(json.loads(DASHBOARD.read_text(encoding="utf-8")))


def dashboard_metrics() -> set[str]:
    return {name for expr in dashboard_expressions() for name in METRIC.findall(expr)}


def test_the_dashboard_asks_only_for_metrics_a_worker_exports() -> None:
    exported = exported_names(WorkerMetrics().render().decode())
    wanted = dashboard_metrics()
    assert wanted, "the dashboard queries no streams_ metric"
    assert wanted <= exported, f"not exported by a worker: {sorted(wanted - exported)}"


def test_the_dashboard_shows_latency_suppressed_triggers_feeds_requests_and_build() -> None:
    wanted = dashboard_metrics()
    for name in (
        "streams_event_to_output_seconds_bucket",
        "streams_triggers_suppressed_total",
        "streams_sse_connections",
        "streams_http_requests_total",
        "streams_build_info",
        "streams_consumer_lag_records",
        "streams_dead_letters_total",
    ):
        assert name in wanted, name


def test_metric_names_follow_prometheus_conventions() -> None:
    exposition = WorkerMetrics().render().decode()
    types = dict(line.split(" ")[2:4] for line in exposition.splitlines() if line.startswith("# TYPE "))
    for name, kind in types.items():
        assert name.startswith("streams_"), name
        if kind == "histogram":
            assert name.endswith(("_seconds", "_events", "_bytes")), f"{name}: a histogram names its unit"
        assert not name.endswith("_total") or kind == "counter", name
    assert "streams_build_info" in types


def test_the_dashboard_uses_the_provisioned_datasource() -> None:
    provisioned = (REPO / "monitoring/grafana/provisioning/datasources/prometheus.yml").read_text()
    (uid,) = re.findall(r"^\s+uid:\s*(\S+)", provisioned, re.MULTILINE)
    text = DASHBOARD.read_text(encoding="utf-8")
    used = set(re.findall(r'"uid":\s*"([^"]+)"', text)) - {json.loads(text)["uid"]}
    assert used == {uid}


def test_every_file_the_compose_file_mounts_exists() -> None:
    compose = COMPOSE.read_text(encoding="utf-8")
    mounted = re.findall(r"^\s+- (\./[^:]+):", compose, re.MULTILINE)
    assert "./monitoring/prometheus.yml" in mounted
    assert "./monitoring/grafana/dashboards" in mounted
    for path in mounted:
        assert (REPO / path).exists(), path
    home = re.search(r"GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH:\s*(\S+)", compose)
    assert home is not None and home.group(1) == "/var/lib/grafana/dashboards/" + DASHBOARD.name


def test_prometheus_scrapes_the_compose_worker() -> None:
    config = (REPO / "monitoring" / "prometheus.yml").read_text(encoding="utf-8")
    assert re.search(r'targets:\s*\["worker:6066"\]', config)
    assert re.search(r"^  worker:\n", COMPOSE.read_text(encoding="utf-8"), re.MULTILINE)
