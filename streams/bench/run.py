"""`streams bench`: every figure of the benchmark issue, measured in one run on this machine.

All numbers come from one run, so ratios between them are meaningful even on a busy machine; the
absolute numbers are what this machine gave at that moment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from streams.bench.config import TARGETS, BenchConfig
from streams.bench.profile import start_sampling, summarize
from streams.bench.recovery import recovery_times
from streams.bench.state import rocksdb_size, state_sizes
from streams.bench.traffic import LoadResult, OutputWatcher, clicks, drive, recommendation_cause
from streams.config import INPUT_TOPICS, Settings
from streams.generate import TrafficConfig, generate_traffic
from streams.kafka.clients import client_options
from streams.kafka.topics import ensure_topics
from streams.live.process import WorkerProcess, free_port
from streams.model.bench import inference_throughput
from streams.offline.replay import Variant, run_offline
from streams.serving import default_model_dir


def isolated(base: Settings, partitions: int, scratch: Path, role: str) -> Settings:
    """Topics, app id, data folder and web port of one run's own, on the given cluster."""
    name = f"bench-{role}-{uuid.uuid4().hex[:8]}"
    return replace(
        base,
        topic_prefix=f"{name}-",
        app_id=name,
        partitions=partitions,
        data_dir=str(scratch / name),
        web_port=free_port(),
    )


def _load_runs(
    settings: Settings,
    traffic: list[Any],
    config: BenchConfig,
    output: str,
    profile: tuple[int, Path] | None = None,
) -> list[LoadResult]:
    """Each offered rate for `config.seconds`, then a backlog at maximum rate (sampled by py-spy
    when `profile` gives the worker's pid and an output file)."""
    producer = KafkaProducer(**client_options(settings), acks=1, linger_ms=1)
    results: list[LoadResult] = []
    at = 0
    try:
        with OutputWatcher(client_options(settings), settings.topic(output), recommendation_cause) as watcher:
            for rate in [*config.offered_rates, None]:
                count = config.max_rate_events if rate is None else int(rate * config.seconds)
                chunk = traffic[at : at + count]
                at += count
                sampler = None
                if rate is None and profile is not None:
                    sampler = start_sampling(profile[0], 15, profile[1].with_suffix(".raw"))
                result = drive(chunk, producer, settings.topic, watcher, rate)
                if sampler is not None and sampler.wait(60) == 0:
                    summarize(profile[1].with_suffix(".raw"), profile[1])
                    profile[1].with_suffix(".raw").unlink()
                print(f"  {'max' if rate is None else rate:>5} offered: {json.dumps(result.as_dict())}")
                results.append(result)
    finally:
        producer.close()
    return results


def _worker_runs(
    base: Settings, config: BenchConfig, traffic: list[Any], scratch: Path, out: Path
) -> list[LoadResult]:
    settings = isolated(base, config.partitions, scratch, "worker")
    ensure_topics(settings)
    worker = WorkerProcess(settings, scratch / f"{settings.app_id}.log", tick_seconds=5.0).start()
    try:
        worker.wait_ready(120)
        assert worker.process is not None
        profile = (worker.process.pid, out / "worker-profile.txt")
        return _load_runs(settings, traffic, config, "recommendations", profile)
    finally:
        worker.stop()


def _passthrough_runs(
    base: Settings, config: BenchConfig, traffic: list[Any], scratch: Path
) -> list[LoadResult]:
    settings = isolated(base, config.partitions, scratch, "passthrough")
    ensure_topics(settings)
    log = (scratch / f"{settings.app_id}.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams.bench.passthrough",
            "--bootstrap",
            settings.bootstrap,
            "--inputs",
            ",".join(settings.topic(t) for t in INPUT_TOPICS),
            "--output",
            settings.topic("recommendations"),
            "--group",
            settings.app_id,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_line(scratch / f"{settings.app_id}.log", "ready", process)
        return _load_runs(settings, traffic, config, "recommendations")
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _wait_line(path: Path, text: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"passthrough exited: {path.read_text(errors='replace')[-2000:]}")
        if text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise TimeoutError(f"passthrough not {text} in {timeout}s")


def run_bench(config: BenchConfig, base: Settings, out: Path) -> dict[str, Any]:
    scratch = Path(".cache") / "bench"
    scratch.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    model = default_model_dir()
    results: dict[str, Any] = {"config": asdict(config), "model": str(model) if model else None}

    print("ONNX inference, one thread:")
    results["inference"] = inference_throughput(model, (1, 16, 64), seconds=3.0) if model else None

    print("offline replay:")
    log = list(
        generate_traffic(
            TrafficConfig(
                users=config.users, items=config.items, events=config.offline_events, seed=config.seed
            )
        )
    )
    offline = run_offline(log, Variant(model), config.partitions)
    _profile_offline(log, Variant(model), config.partitions, out / "offline-profile.txt")
    results["offline"] = {
        "events": offline.result.events,
        "seconds": round(offline.seconds, 2),
        "events_per_s": round(offline.result.events / offline.seconds, 1),
    }
    print(f"  {json.dumps(results['offline'])}")

    print("state size:")
    templates = list(offline.result.states.values())
    results["state"] = state_sizes(templates)
    results["rocksdb"] = rocksdb_size(templates, config.state_users, scratch)
    print(f"  {json.dumps(results['state'])}\n  {json.dumps(results['rocksdb'])}")

    traffic = clicks(config.users, config.items, _events_needed(config), config.seed + 1)
    print("through the broker, our worker:")
    ours = _worker_runs(base, config, traffic, scratch, out)
    print("through the broker, bare aiokafka passthrough:")
    ceiling = _passthrough_runs(base, config, traffic, scratch)
    results["worker"] = [r.as_dict() for r in ours]
    results["passthrough"] = [r.as_dict() for r in ceiling]

    print(f"recovery of {config.state_users:,} users:")
    settings = isolated(base, config.partitions, scratch, "recovery")
    results["recovery"] = recovery_times(settings, templates, config.state_users, scratch)
    print(f"  {json.dumps(results['recovery'])}")
    shutil.rmtree(settings.data_dir, ignore_errors=True)

    results["checks"] = checks(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    plot(results, out / "latency.png")
    return results


def _profile_offline(log: list[Any], variant: Variant, partitions: int, path: Path) -> None:
    """Where an offline replay spends its time (cProfile, by own time): the README cites this file."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    run_offline(log[: len(log) // 3], variant, partitions)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.getvalue(), encoding="utf-8")


def _events_needed(config: BenchConfig) -> int:
    return int(sum(r * config.seconds for r in config.offered_rates)) + config.max_rate_events + 1_000


def checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each figure beside its target: (name, measured, target, met)."""
    worker, passthrough = results["worker"], results["passthrough"]
    at_1000 = next((r for r in worker if r["offered_rate"] == 1_000), None)
    rows = [
        (
            "max throughput / passthrough",
            worker[-1]["throughput"] / passthrough[-1]["throughput"]
            if passthrough[-1]["throughput"]
            else 0.0,
            TARGETS["max_throughput_vs_passthrough"],
            ">=",
        ),
        (
            "p99 ms at 1,000 events/s",
            at_1000["p99_ms"] if at_1000 else float("nan"),
            TARGETS["p99_ms_at_offered_rate"],
            "<=",
        ),
        (
            "offline replay events/s",
            results["offline"]["events_per_s"],
            TARGETS["offline_events_per_s"],
            ">=",
        ),
        (
            "state bytes per active user",
            results["state"]["mean_bytes"],
            TARGETS["state_bytes_per_user"],
            "<=",
        ),
        (
            "recovery s (empty disk)",
            results["recovery"]["empty_disk_seconds"],
            TARGETS["recovery_seconds"],
            "<=",
        ),
        (
            "recovery s (after SIGKILL)",
            results["recovery"]["after_sigkill_seconds"],
            TARGETS["recovery_seconds"],
            "<=",
        ),
    ]
    return [
        {
            "figure": name,
            "measured": round(value, 3),
            "target": target,
            "op": op,
            "met": value >= target if op == ">=" else value <= target,
        }
        for name, value, target, op in rows
    ]


def table(results: dict[str, Any]) -> str:
    lines = [f"{'figure':<32} {'measured':>12} {'target':>12}  met"]
    for row in results["checks"]:
        lines.append(
            f"{row['figure']:<32} {row['measured']:>12,.2f} {row['op']:>3} {row['target']:>8,.2f}  "
            f"{'yes' if row['met'] else 'NO'}"
        )
    lines.append("")
    lines.append(
        f"{'offered events/s':<18} {'ours ev/s':>10} {'p50':>8} {'p95':>8} {'p99':>8}   "
        f"{'bare ev/s':>10} {'p50':>8} {'p95':>8} {'p99':>8}"
    )
    for ours, bare in zip(results["worker"], results["passthrough"], strict=True):
        rate = "max" if ours["offered_rate"] is None else f"{ours['offered_rate']:,.0f}"
        lines.append(
            f"{rate:<18} {ours['throughput']:>10,.0f} {ours['p50_ms']:>8.1f} {ours['p95_ms']:>8.1f} "
            f"{ours['p99_ms']:>8.1f}   {bare['throughput']:>10,.0f} {bare['p50_ms']:>8.1f} "
            f"{bare['p95_ms']:>8.1f} {bare['p99_ms']:>8.1f}"
        )
    if results.get("inference"):
        per = ", ".join(
            f"batch {size}: {r['events_per_s']:,.0f}/s" for size, r in results["inference"]["results"].items()
        )
        lines.append(f"\nONNX inference (1 thread): {per}")
    rocks = results["rocksdb"]
    lines.append(
        f"RocksDB for {rocks['users']:,} users: {rocks['disk_bytes'] / 2**20:,.0f} MiB "
        f"({rocks['disk_bytes_per_user']:,.0f} B/user)"
    )
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install -e '.[bench]'): no plot")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, style in (("worker", "-"), ("passthrough", "--")):
        rows = [r for r in results[name] if r["offered_rate"] is not None]
        rates = [r["offered_rate"] for r in rows]
        for q, marker in (("p50_ms", "o"), ("p95_ms", "s"), ("p99_ms", "^")):
            ax.plot(rates, [r[q] for r in rows], style, marker=marker, label=f"{name} {q[:-3]}")
    ax.set_xlabel("offered load (events/s)")
    ax.set_ylabel("produce -> output consumed (ms)")
    ax.set_yscale("log")
    ax.set_title("End-to-end latency percentiles vs offered load")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
