"""`streams bench`: every figure of the benchmark issue, measured in one run on this machine.

All numbers come from one run, so ratios between them are meaningful even on a busy machine; the
absolute numbers are what this machine gave at that moment.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from streams.bench.config import TARGETS, BenchConfig
from streams.bench.contestants import (
    AIOKAFKA,
    CONTESTANTS,
    QUIXSTREAMS,
    WORKER,
    WORKER_NO_MODEL,
    Contestant,
    FastProducer,
    backlog_run,
    start,
)
from streams.bench.recovery import recovery_times
from streams.bench.state import rocksdb_size, state_sizes
from streams.bench.traffic import LoadResult, OutputWatcher, clicks, drive, recommendation_cause
from streams.config import Settings
from streams.generate import TrafficConfig, generate_traffic
from streams.kafka.clients import librdkafka_config
from streams.live.process import free_port
from streams.model.ann_bench import large_catalogue_figures
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


# Unmeasured traffic before the offered rates: a contestant's first seconds (new connections, the
# first produce to each partition, first model calls) are not its steady state. A fresh worker's
# outputs take up to a few hundred ms to reach a consumer for about its first ten seconds (the
# aiokafka passthrough's do not); the warm-up covers them.
WARMUP_SECONDS = 15.0


def _offered_runs(
    contestant: Contestant, base: Settings, config: BenchConfig, traffic: list[Any], scratch: Path
) -> list[LoadResult]:
    """Each offered rate for `config.seconds`, from produce to the output consumed, after a warm-up
    at the lowest rate."""
    settings = isolated(base, config.partitions, scratch, contestant.name.split()[0])
    running = start(contestant, settings, scratch)
    producer = FastProducer(settings)
    results: list[LoadResult] = []
    try:
        running.wait_ready(120)
        with OutputWatcher(
            librdkafka_config(settings), settings.topic("recommendations"), recommendation_cause
        ) as watcher:
            warmup_rate = min(config.offered_rates)
            at = int(warmup_rate * WARMUP_SECONDS)
            drive(traffic[:at], producer, settings.topic, watcher, warmup_rate)
            for rate in config.offered_rates:
                count = int(rate * config.seconds)
                result = drive(traffic[at : at + count], producer, settings.topic, watcher, rate)
                at += count
                print(f"  {rate:>5} offered: {json.dumps(result.as_dict())}")
                results.append(result)
    finally:
        producer.close()
        running.stop()
    return results


def _max_rate_runs(
    base: Settings, config: BenchConfig, traffic: list[Any], scratch: Path, out: Path
) -> dict[str, LoadResult]:
    """Each contestant's median run (by throughput) of `max_rate_repeats`, the contestants taking
    turns so that a busy spell of the machine does not fall on one of them alone."""
    backlog = traffic[: config.max_rate_events]
    runs: dict[str, list[LoadResult]] = {c.name: [] for c in CONTESTANTS}
    for repeat in range(config.max_rate_repeats):
        for contestant in CONTESTANTS:
            settings = isolated(base, config.partitions, scratch, contestant.name.split()[0])
            profiled = contestant is WORKER and repeat == 0
            profile = out / "worker-profile.txt" if profiled else None
            result = backlog_run(contestant, settings, backlog, scratch, profile=profile)
            turn = f"{repeat + 1}/{config.max_rate_repeats}"
            print(f"  {contestant.name} ({turn}): {result.throughput:,.0f} events/s")
            runs[contestant.name].append(result)
    return {name: median_run(results) for name, results in runs.items()}


def median_run(results: list[LoadResult]) -> LoadResult:
    ordered = sorted(results, key=lambda r: r.throughput)
    median = ordered[(len(ordered) - 1) // 2]
    median.runs = [round(r.throughput, 1) for r in results]
    return median


def run_bench(config: BenchConfig, base: Settings, out: Path) -> dict[str, Any]:
    scratch = Path(".cache") / "bench"
    scratch.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    model = default_model_dir()
    results: dict[str, Any] = {"config": asdict(config), "model": str(model) if model else None}

    print("ONNX inference, one thread:")
    results["inference"] = inference_throughput(model, (1, 16, 64), seconds=3.0) if model else None
    results["diginetica_inference"] = _diginetica_inference(Path(config.diginetica_model))
    print(f"a generated {config.catalogue_items:,}-item catalogue, served from its index:")
    results["large_catalogue"] = (
        large_catalogue_figures(model, scratch, config.catalogue_items) if model else None
    )

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
    print(f"maximum rate, a backlog of {config.max_rate_events:,} events written first:")
    results["max_rate"] = {
        name: r.as_dict() for name, r in _max_rate_runs(base, config, traffic, scratch, out).items()
    }
    for contestant, key in ((WORKER, "worker"), (AIOKAFKA, "passthrough")):
        print(f"offered rates, {contestant.name}:")
        results[key] = [r.as_dict() for r in _offered_runs(contestant, base, config, traffic, scratch)]

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


def _diginetica_inference(artifact_dir: Path) -> dict[str, Any] | None:
    """The model at a real catalogue's size (43,097 items), batch 64, full-window histories."""
    if not (artifact_dir / "metadata.json").is_file():
        print(f"Diginetica model: none in {artifact_dir} (`make eval-diginetica` builds it); not measured")
        return None
    print(f"ONNX inference, one thread, the Diginetica model in {artifact_dir}:")
    return inference_throughput(artifact_dir, (64,), seconds=3.0, history_lengths=(None,))


def _profile_offline(log: list[Any], variant: Variant, partitions: int, path: Path) -> None:
    """Where an offline replay spends its time (cProfile, by own time); docs/performance.md cites it."""
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
    offered = sum(r * config.seconds for r in config.offered_rates)
    warmup = min(config.offered_rates) * WARMUP_SECONDS
    return max(int(offered + warmup), config.max_rate_events) + 1_000


def checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each figure beside its target: (name, measured, target, met)."""
    max_rate = results["max_rate"]
    reference = max_rate[QUIXSTREAMS.name]["throughput"]

    def versus_reference(name: str) -> float:
        return max_rate[name]["throughput"] / reference if reference else 0.0

    def model_rate(history: int | None) -> float:
        """Model events/s at batch 64 for a `history`-event history (None: the full window)."""
        inference = results.get("inference") or {}
        length = history if history is not None else inference.get("window")
        by_length = {str(k): v for k, v in inference.get("by_history", {}).items()}  # JSON keys are strings
        run = {str(k): v for k, v in by_length.get(str(length), {}).items()}.get("64")
        return run["events_per_s"] if run else float("nan")

    def diginetica_rate() -> float:
        run = (results.get("diginetica_inference") or {}).get("results", {})
        return float({str(k): v for k, v in run.items()}.get("64", {}).get("events_per_s", float("nan")))

    def catalogue(figure: str) -> float:
        return float((results.get("large_catalogue") or {}).get(figure, float("nan")))

    def p99_at(rate: int) -> float:
        run = next((r for r in results["worker"] if r["offered_rate"] == rate), None)
        return run["p99_ms"] if run else float("nan")

    rows = [
        ("max rate: worker / quixstreams", versus_reference(WORKER.name), TARGETS["max_vs_reference"], ">="),
        (
            "max rate: --no-model / quixstreams",
            versus_reference(WORKER_NO_MODEL.name),
            TARGETS["max_no_model_vs_reference"],
            ">=",
        ),
        ("p99 ms at 1,000 events/s", p99_at(1_000), TARGETS["p99_ms_at_1000"], "<="),
        ("p99 ms at 250 events/s", p99_at(250), TARGETS["p99_ms_at_250"], "<="),
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
        ("model events/s, batch 64", model_rate(None), TARGETS["model_events_per_s_at_64"], ">="),
        (
            "model cost, full window / 1 event",
            model_rate(1) / model_rate(None) if model_rate(None) else float("nan"),
            TARGETS["long_history_cost"],
            "<=",
        ),
        (
            "Diginetica model events/s, b64",
            diginetica_rate(),
            TARGETS["diginetica_model_events_per_s_at_64"],
            ">=",
        ),
        (
            "1M-item catalogue events/s, b64",
            catalogue("events_per_s"),
            TARGETS["large_catalogue_events_per_s"],
            ">=",
        ),
        (
            "1M-item catalogue recall@20",
            catalogue("recall_at_20"),
            TARGETS["large_catalogue_recall_at_20"],
            ">=",
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
    reference = results["max_rate"][QUIXSTREAMS.name]["throughput"]
    lines.append(f"{'maximum rate (backlog)':<32} {'events/s':>10} {'/ quixstreams':>14}")
    for name, run in results["max_rate"].items():
        ratio = run["throughput"] / reference if reference else float("nan")
        lines.append(f"{name:<32} {run['throughput']:>10,.0f} {ratio:>14.2f}")
    lines.append("")
    lines.append(
        f"{'offered events/s':<18} {'ours ev/s':>10} {'p50':>8} {'p95':>8} {'p99':>8}   "
        f"{'bare ev/s':>10} {'p50':>8} {'p95':>8} {'p99':>8}"
    )
    for ours, bare in zip(results["worker"], results["passthrough"], strict=True):
        rate = f"{ours['offered_rate']:,.0f}"
        lines.append(
            f"{rate:<18} {ours['throughput']:>10,.0f} {ours['p50_ms']:>8.1f} {ours['p95_ms']:>8.1f} "
            f"{ours['p99_ms']:>8.1f}   {bare['throughput']:>10,.0f} {bare['p50_ms']:>8.1f} "
            f"{bare['p95_ms']:>8.1f} {bare['p99_ms']:>8.1f}"
        )
    if results.get("inference"):
        lines.append("\nONNX inference (1 thread), events/s:")
        for events, sizes in results["inference"]["by_history"].items():
            per = ", ".join(f"batch {size}: {r['events_per_s']:,.0f}" for size, r in sizes.items())
            lines.append(f"  {events}-event history: {per}")
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
