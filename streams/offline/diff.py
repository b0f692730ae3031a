"""`streams diff`: two variants (model and/or rules) replayed offline over one log, compared.

Recommendations are matched by the event that caused them. Quality is measured the way replay-based
offline evaluation does it: a recommendation made after an event is a hit if it holds the item the
shopper touched next in the log (their next view or cart add).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from streams.core.events import SOURCE_RANK
from streams.logs import LogRecord
from streams.offline.replay import OfflineRun


@dataclass(slots=True)
class Quality:
    cases: int = 0
    hits: int = 0
    reciprocal_ranks: float = 0.0

    def add(self, items: Sequence[str], target: str) -> None:
        self.cases += 1
        if target in items:
            self.hits += 1
            self.reciprocal_ranks += 1.0 / (items.index(target) + 1)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.cases if self.cases else 0.0

    @property
    def mrr(self) -> float:
        return self.reciprocal_ranks / self.cases if self.cases else 0.0


@dataclass(slots=True)
class DiffReport:
    n: int
    events: int  # recommendations compared (caused by the same event in both runs)
    changed: int  # ... whose top-N differs (items or order)
    overlap: float  # mean |top-N(A) ∩ top-N(B)| / N
    rank_correlation: float  # mean Kendall tau over the items both top-N lists hold (>= 2 of them)
    triggers_added: dict[str, int] = field(default_factory=dict)
    triggers_removed: dict[str, int] = field(default_factory=dict)
    triggers: dict[str, dict[str, int]] = field(default_factory=dict)  # per side, per kind
    quality: dict[str, dict[str, float]] = field(default_factory=dict)  # per side: HR@N, MRR@N, cases
    sides: dict[str, str] = field(default_factory=dict)

    @property
    def changed_share(self) -> float:
        return self.changed / self.events if self.events else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "changed_share": self.changed_share}

    def table(self) -> str:
        n = self.n
        rows = [
            ("baseline", self.sides.get("baseline", "")),
            ("candidate", self.sides.get("candidate", "")),
            ("events compared", f"{self.events:,}"),
            (f"top-{n} changed", f"{self.changed:,} ({100 * self.changed_share:.2f}%)"),
            (f"overlap@{n}", f"{self.overlap:.4f}"),
            ("rank correlation (Kendall tau)", f"{self.rank_correlation:.4f}"),
        ]
        for side in ("baseline", "candidate"):
            q = self.quality.get(side, {})
            rows.append(
                (
                    f"{side} HR@{n} / MRR@{n}",
                    f"{q.get('hr', 0):.4f} / {q.get('mrr', 0):.4f} ({q.get('cases', 0):,} cases)",
                )
            )
        kinds = sorted(set(self.triggers.get("baseline", {})) | set(self.triggers.get("candidate", {})))
        for kind in kinds:
            a = self.triggers.get("baseline", {}).get(kind, 0)
            b = self.triggers.get("candidate", {}).get(kind, 0)
            added, removed = self.triggers_added.get(kind, 0), self.triggers_removed.get(kind, 0)
            rows.append((f"triggers {kind}", f"{a:,} -> {b:,} (+{added:,} -{removed:,})"))
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)


def next_items(records: Iterable[LogRecord]) -> dict[str, str]:
    """event id -> the item the same user touched next (view or cart add), in event-time order."""
    by_user: dict[str, list[tuple[int, int, int, str, str | None]]] = {}
    for position, record in enumerate(records):
        value = record.value
        if record.topic not in SOURCE_RANK or not isinstance(value, dict):
            continue
        user, event_id, ts = value.get("user_id"), value.get("event_id"), value.get("ts")
        if not isinstance(user, str) or not isinstance(event_id, str) or not isinstance(ts, int):
            continue
        touched = value.get("item_id") if value.get("type") in ("view", "add_to_cart") else None
        by_user.setdefault(user, []).append((ts, SOURCE_RANK[record.topic], position, event_id, touched))
    out: dict[str, str] = {}
    for events in by_user.values():
        events.sort()
        upcoming: str | None = None
        for *_, event_id, touched in reversed(events):
            if upcoming is not None:
                out[event_id] = upcoming
            if touched is not None:
                upcoming = touched
    return out


def kendall_tau(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Kendall's tau between the orders two lists give to the items they share (None: < 2 shared)."""
    rank_b = {item: r for r, item in enumerate(b)}
    shared = [item for item in a if item in rank_b]
    if len(shared) < 2:
        return None
    concordant = discordant = 0
    for i in range(len(shared)):
        for j in range(i + 1, len(shared)):
            if rank_b[shared[i]] < rank_b[shared[j]]:
                concordant += 1
            else:
                discordant += 1
    return (concordant - discordant) / (concordant + discordant)


def diff_runs(
    records: Sequence[LogRecord], baseline: OfflineRun, candidate: OfflineRun, n: int = 10
) -> DiffReport:
    targets = next_items(records)
    a = {r["cause_event_id"]: [i["item_id"] for i in r["items"]][:n] for r in baseline.recommendations}
    b = {r["cause_event_id"]: [i["item_id"] for i in r["items"]][:n] for r in candidate.recommendations}
    common = sorted(set(a) & set(b))
    changed = sum(a[e] != b[e] for e in common)
    overlap = sum(len(set(a[e]) & set(b[e])) / n for e in common) / len(common) if common else 0.0
    taus = [t for e in common if (t := kendall_tau(a[e], b[e])) is not None]
    quality: dict[str, dict[str, float]] = {}
    for side, recs in (("baseline", a), ("candidate", b)):
        q = Quality()
        for event_id, items in recs.items():
            if (target := targets.get(event_id)) is not None:
                q.add(items, target)
        quality[side] = {"hr": q.hit_rate, "mrr": q.mrr, "cases": q.cases}
    ids_a = {t["trigger_id"]: t["kind"] for t in baseline.triggers}
    ids_b = {t["trigger_id"]: t["kind"] for t in candidate.triggers}
    return DiffReport(
        n=n,
        events=len(common),
        changed=changed,
        overlap=overlap,
        rank_correlation=sum(taus) / len(taus) if taus else 1.0,
        triggers_added=dict(sorted(Counter(k for t, k in ids_b.items() if t not in ids_a).items())),
        triggers_removed=dict(sorted(Counter(k for t, k in ids_a.items() if t not in ids_b).items())),
        triggers={
            "baseline": dict(sorted(Counter(ids_a.values()).items())),
            "candidate": dict(sorted(Counter(ids_b.values()).items())),
        },
        quality=quality,
        sides={"baseline": baseline.variant.describe(), "candidate": candidate.variant.describe()},
    )
