"""Training: SR-GNN session files or our event logs -> a trained `SessionNet` -> an exported artifact.

Both sources become the same thing: per-history encoded event sequences (through the shared
featurizer) and "prediction points" (history = the first `end` events, the window of the last L of
them is what the model sees; a next-item target and/or a purchase label). A point never looks at
anything after `end`, so training sees exactly what the live worker will see in `UserState.recent`.

Validation is always carved out of the training input (the last fraction of sessions in file or
start-time order): nothing here ever reads a test file.
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import gzip
import hashlib
import math
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from streams.core.attribution import is_impression_value
from streams.logs import read_log
from streams.model.features import EVENT_KINDS, RESERVED, Featurizer, FeaturizerConfig, ItemVocab, views
from streams.model.net import NetConfig, Readout, SessionNet, repeat_probability
from streams.model.sessions import read_sessions, split_validation

# Kinds whose item is a next-item target: what the shopper looks at or wants next.
_TARGET_KINDS = frozenset({"view", "add_to_cart"})
_SESSION_GAP_MS = 30 * 60 * 1000  # same split rule as streams.core.state for clicks without session_id


@dataclass(frozen=True, slots=True)
class TrainConfig:
    dim: int = 100
    dropout: float = 0.25
    scale: float = 16.0
    lr: float = 2e-3
    lr_decay: float = 0.5  # per epoch, after `decay_after` epochs
    decay_after: int = 4  # epochs at the base rate; a time budget may start the decay earlier
    batch_size: int = 512
    epochs: int = 8
    patience: int = 2
    valid_fraction: float = 0.1
    max_valid_points: int = 100_000
    min_count: int = 1
    window: int = 50
    intent_weight: float = 1.0
    repeat: bool = True  # the repeat/explore mixture head (`NetConfig.repeat`)
    last_item: bool = False  # the readout also reads the newest item's embedding (`NetConfig.last_item`)
    # The intent loss reads each batch with its item ids relabelled by a fresh random permutation of
    # the vocabulary, so the intent head learns from what shoppers do (kinds, repeats, time between
    # events) and cannot memorise which items the training sessions bought.
    intent_permuted_items: bool = True
    seed: int = 0
    threads: int = 2
    max_minutes: float = 40.0  # 0 = no budget; else no epoch is started that would end past it
    # bfloat16 for the catalogue-wide matmuls while training (the softmax over every item dominates an
    # epoch); None = on where the CPU has native bfloat16 (AVX512-BF16/AMX). Validation and export are
    # always float32.
    bf16: bool | None = None
    # The last planned epoch also trains on the validation sessions: they are the most recent ones, the
    # closest to whatever the model will serve next. Validation metrics then come from the epoch before.
    refit: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class TrainingData:
    """Encoded sequences stored flat, plus prediction points into them."""

    vocab: ItemVocab
    featurizer: Featurizer
    items: np.ndarray  # flat, all sequences concatenated
    kinds: np.ndarray
    gaps: np.ndarray
    offsets: np.ndarray  # start of each sequence in the flat arrays
    point_seq: np.ndarray  # per point: sequence index
    point_end: np.ndarray  # per point: history = sequence[:end]
    target: np.ndarray  # per point: item index, 0 = no next-item target
    label: np.ndarray  # per point: 1/0 purchase in this session afterwards, -1 = unknown
    valid: np.ndarray  # per point: True = validation
    summary: dict[str, Any] = field(default_factory=dict)
    # Per validation session: (point index of its last pre-order click, label, views, duration ms).
    intent_sessions: list[tuple[int, int, int, int]] = field(default_factory=list)

    def batch(self, points: np.ndarray) -> dict[str, np.ndarray]:
        """Model inputs for some points: the same right-padded layout as `Featurizer.encode`."""
        window = self.featurizer.config.window
        base = self.offsets[self.point_seq[points]]
        stop = base + self.point_end[points]
        start = np.maximum(base, stop - window)
        lengths = stop - start
        steps = np.arange(max(1, int(lengths.max())))[None, :]
        inside = steps < lengths[:, None]
        index = np.where(inside, start[:, None] + steps, 0)
        return {
            name: np.where(inside, flat[index], 0)
            for name, flat in (("items", self.items), ("kinds", self.kinds), ("gaps", self.gaps))
        }

    def lengths(self, points: np.ndarray) -> np.ndarray:
        return np.minimum(self.point_end[points], self.featurizer.config.window)


def _file_digest(path: Path) -> str:
    """sha256 of the content; of the decompressed bytes for .gz, whose header holds a timestamp."""
    digest = hashlib.sha256()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _assemble(
    vocab: ItemVocab,
    featurizer: Featurizer,
    histories: list[list[tuple[str | None, str, int]]],
    points: list[tuple[int, int, int, int, bool]],
    summary: dict[str, Any],
) -> TrainingData:
    encoded = [featurizer.encode_sequence(h) for h in histories]
    lengths = np.array([len(h) for h in histories], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    flat = [np.concatenate([e[i] for e in encoded]) if encoded else np.zeros(0, np.int64) for i in range(3)]
    table = np.array(points, dtype=np.int64).reshape(-1, 5)
    return TrainingData(
        vocab=vocab,
        featurizer=featurizer,
        items=flat[0],
        kinds=flat[1],
        gaps=flat[2],
        offsets=offsets,
        point_seq=table[:, 0],
        point_end=table[:, 1],
        target=table[:, 2],
        label=table[:, 3],
        valid=table[:, 4].astype(bool),
        summary=summary,
    )


def load_session_file(path: Path, config: TrainConfig) -> TrainingData:
    """SR-GNN sessions: every prefix predicts the next item (the usual augmentation); no intent labels."""
    sessions = [s for s in read_sessions(path) if s]
    train_part, valid_part = split_validation(sessions, config.valid_fraction)
    counts = Counter(item for session in sessions for item in session)
    vocab = ItemVocab.from_counts(counts, config.min_count)
    featurizer = Featurizer(vocab, FeaturizerConfig(window=config.window))
    points: list[tuple[int, int, int, int, bool]] = []
    for s, session in enumerate(sessions):
        is_valid = s >= len(train_part)
        for end in range(1, len(session)):
            target = vocab.index(session[end])
            if target >= 2:
                points.append((s, end, target, -1, is_valid))
    summary = {
        "source": "sessions",
        "file": str(path),
        "sha256": _file_digest(path),
        "sessions": len(sessions),
        "train_sessions": len(train_part),
        "valid_sessions": len(valid_part),
        "clicks": int(sum(counts.values())),
        "items": len(vocab.ids),
    }
    return _assemble(vocab, featurizer, [views(s) for s in sessions], points, summary)


@dataclass(slots=True)
class _Event:
    ts: int
    rank: int  # clicks before orders at equal ts, as UserState orders them
    seq: int
    kind: str
    item: str | None
    session: str | None


def load_event_log(path: Path, config: TrainConfig) -> TrainingData:
    """Our event logs: per user, every click and order in event-time order (as `UserState.recent`).

    A prediction point follows each click. Its next-item target is the next click of the same
    session if that is a view or add-to-cart; its purchase label says whether an order is placed in
    that session later on. Orders carry no session id: an order belongs to the session of the
    user's latest click at or before it.
    """
    per_user: dict[str, list[_Event]] = defaultdict(list)
    counts: Counter[str] = Counter()
    n_clicks = n_orders = 0
    for seq, record in enumerate(read_log(path)):
        value = record.value
        if value is None or record.topic not in ("clicks", "orders"):
            continue
        if is_impression_value(value):
            continue  # what was shown, not what the shopper did: never in a served history either
        user = value["user_id"]
        if record.topic == "clicks":
            n_clicks += 1
            item = value.get("item_id")
            per_user[user].append(_Event(value["ts"], 0, seq, value["type"], item, value.get("session_id")))
            if item is not None:
                counts[item] += 1
        else:
            n_orders += 1
            lines = value.get("items") or []
            item = lines[0]["item_id"] if lines else None
            per_user[user].append(_Event(value["ts"], 1, seq, f"order_{value['status']}", item, None))
            for line in lines:
                counts[line["item_id"]] += 1
    vocab = ItemVocab.from_counts(counts, config.min_count)
    featurizer = Featurizer(vocab, FeaturizerConfig(window=config.window))

    histories: list[list[tuple[str | None, str, int]]] = []
    # Per session: (user sequence index, start ts, click positions, positions of placed orders).
    sessions: dict[tuple[int, str], tuple[int, list[int], list[int]]] = {}
    for user in sorted(per_user):
        events = sorted(per_user[user], key=lambda e: (e.ts, e.rank, e.seq))
        u = len(histories)
        histories.append([(e.item, e.kind, e.ts) for e in events])
        current: str | None = None
        last_click_ts: int | None = None
        for i, e in enumerate(events):
            if e.rank == 0:
                if e.session is not None:
                    current = e.session
                elif current is None or last_click_ts is None or e.ts - last_click_ts > _SESSION_GAP_MS:
                    current = f"{user}:{e.ts}"  # no session id sent: split on inactivity
                last_click_ts = e.ts
                entry = sessions.setdefault((u, current), (e.ts, [], []))
                entry[1].append(i)
            elif e.kind == "order_placed" and current is not None:
                sessions[(u, current)][2].append(i)

    # Validation = the sessions that started last, like a time split.
    ordered = sorted(sessions, key=lambda key: (sessions[key][0], key))
    n_valid = round(len(ordered) * config.valid_fraction)
    valid_keys = set(ordered[len(ordered) - n_valid :])
    points: list[tuple[int, int, int, int, bool]] = []
    intent_sessions: list[tuple[int, int, int, int]] = []
    for key in ordered:
        u, _ = key
        _, clicks, orders = sessions[key]
        events = histories[u]
        is_valid = key in valid_keys
        in_session = set(clicks)
        first_order = min(orders) if orders else None
        last_before_order: int | None = None
        for i in clicks:
            target = 0
            nxt = i + 1
            if nxt in in_session and events[nxt][1] in _TARGET_KINDS:
                target = vocab.index(events[nxt][0])
                target = target if target >= 2 else 0
            label = int(any(o > i for o in orders))
            points.append((u, i + 1, target, label, is_valid))
            if first_order is None or i < first_order:
                last_before_order = len(points) - 1
        if is_valid and last_before_order is not None:
            seen = [i for i in clicks if first_order is None or i < first_order]
            n_views = sum(1 for i in seen if events[i][1] == "view")
            duration = events[seen[-1]][2] - events[seen[0]][2]
            intent_sessions.append((last_before_order, int(bool(orders)), n_views, duration))

    summary = {
        "source": "events",
        "file": str(path),
        "sha256": _file_digest(path),
        "users": len(histories),
        "clicks": n_clicks,
        "orders": n_orders,
        "sessions": len(sessions),
        "valid_sessions": n_valid,
        "sessions_with_order": sum(1 for s in sessions.values() if s[2]),
        "items": len(vocab.ids),
    }
    data = _assemble(vocab, featurizer, histories, points, summary)
    data.intent_sessions = intent_sessions
    return data


# -- metrics ---------------------------------------------------------------------------------------


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC-AUC via the rank-sum statistic, ties counted half; NaN when a class is missing."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # Average ranks over tied runs.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


# -- training --------------------------------------------------------------------------------------


@dataclass(slots=True)
class TrainResult:
    model: SessionNet
    data: TrainingData
    config: TrainConfig
    metrics: dict[str, Any]
    history: list[dict[str, float]]


def _batches(data: TrainingData, points: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length: shuffle, sort chunks of 50 batches by length, cut, shuffle.

    Padding to the longest row is what a batch costs, so grouping lengths saves most of the GRU work
    while the chunking keeps the batches random enough.
    """
    shuffled = points[rng.permutation(len(points))]
    chunk = size * 50
    out: list[np.ndarray] = []
    for lo in range(0, len(shuffled), chunk):
        part = shuffled[lo : lo + chunk]
        part = part[np.argsort(data.lengths(part), kind="stable")]
        out.extend(part[i : i + size] for i in range(0, len(part), size))
    rng.shuffle(out)  # type: ignore[arg-type]
    return out


def _tensors(data: TrainingData, points: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    arrays = data.batch(points)
    return (
        torch.from_numpy(arrays["items"]),
        torch.from_numpy(arrays["kinds"]),
        torch.from_numpy(arrays["gaps"]),
    )


@torch.no_grad()
def evaluate_points(
    model: SessionNet, data: TrainingData, points: np.ndarray, batch_size: int = 512
) -> dict[str, float]:
    """Next-item HR@20/MRR@20 (x100, full ranking, ties counted pessimistically) and intent AUC."""
    model.eval()
    ranks: list[np.ndarray] = []
    intents: list[np.ndarray] = []
    ordered = points[np.argsort(data.lengths(points), kind="stable")]
    for lo in range(0, len(ordered), batch_size):
        part = ordered[lo : lo + batch_size]
        logits, intent = model(*_tensors(data, part))
        logits[:, :RESERVED] = -torch.inf  # never served, so never ranked
        target = torch.from_numpy(data.target[part])
        has_target = target > 0
        chosen = logits.gather(1, target[:, None])
        rank = 1 + (logits >= chosen).sum(1) - 1  # >= counts the target itself once
        ranks.append(np.where(has_target.numpy(), rank.numpy(), 0))
        intents.append(torch.sigmoid(intent).numpy())
    rank_all = np.concatenate(ranks) if ranks else np.zeros(0)
    rank_all = rank_all[rank_all > 0].astype(np.float64)
    out: dict[str, float] = {}
    if len(rank_all):
        hit = rank_all <= 20
        out["HR@20"] = 100.0 * float(hit.mean())
        out["MRR@20"] = 100.0 * float(np.where(hit, 1.0 / rank_all, 0.0).mean())
    labels = data.label[ordered]
    known = labels >= 0
    if known.any():
        auc = roc_auc(np.concatenate(intents)[known], labels[known])
        if not math.isnan(auc):
            out["intent_auc"] = auc
    return out


def intent_report(model: SessionNet, data: TrainingData) -> dict[str, float]:
    """Per held-out session ROC-AUC: the model (at the session's last click before any order) vs.
    the view-count and session-duration heuristics computed over the same clicks."""
    if not data.intent_sessions:
        return {}
    table = np.array(data.intent_sessions, dtype=np.int64)
    model.eval()
    probs: list[np.ndarray] = []
    with torch.no_grad():
        for lo in range(0, len(table), 512):
            _, intent = model(*_tensors(data, table[lo : lo + 512, 0]))
            probs.append(torch.sigmoid(intent).numpy())
    labels = table[:, 1]
    return {
        "sessions": len(table),
        "positives": int(labels.sum()),
        "model": roc_auc(np.concatenate(probs), labels),
        "view_count": roc_auc(table[:, 2], labels),
        "duration": roc_auc(table[:, 3], labels),
    }


def native_bf16() -> bool:
    """Whether bfloat16 matmuls run natively here (else they are emulated and slower than float32)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _keep_freed_memory() -> None:
    """Stop glibc from handing the big per-batch buffers back to the kernel.

    Each batch allocates several [batch, n_items] float tensors (90 MB at 512 x 43k). Above its mmap
    threshold glibc maps and unmaps them every time, so every page faults in again: a quarter of an
    epoch was kernel time. Serving from the heap and never trimming it reuses the same pages.
    """
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return
    m_trim_threshold, m_mmap_max = -1, -4
    mallopt(m_mmap_max, 0)
    mallopt(m_trim_threshold, 1 << 30)


class _CatalogueLogProbability(torch.autograd.Function):
    """Per row, the log-softmax of `query @ table.T` (the logits over every item) at the row's target,
    fused.

    Same value and gradients as `log_softmax(query @ table.T).gather(1, target)`, with the two
    matmuls optionally in bfloat16 (float32 accumulation) and one [batch, n_items] softmax that
    backward turns into the logit gradient in place, instead of autograd's chain of full-size
    temporaries."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, query: torch.Tensor, table: torch.Tensor, target: torch.Tensor, bf16: bool
    ) -> torch.Tensor:
        q, w = (query.bfloat16(), table.bfloat16()) if bf16 else (query, table)
        log_probs = torch.log_softmax((q @ w.T).float(), dim=1)
        ctx.save_for_backward(q, w, log_probs, target)
        return log_probs.gather(1, target[:, None]).squeeze(1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None, None]:  # type: ignore[override]
        q, w, log_probs, target = ctx.saved_tensors
        g = log_probs.exp_()  # d out / d logits = onehot(target) - softmax
        g.scatter_add_(1, target[:, None], -torch.ones_like(grad)[:, None])
        g.mul_(-grad[:, None])
        g = g.to(q.dtype)
        return (g @ w).float(), (g.T @ q).float(), None, None


def catalogue_log_probability(
    query: torch.Tensor, table: torch.Tensor, target: torch.Tensor, bf16: bool = False
) -> torch.Tensor:
    """log softmax(query @ table.T)[row, target[row]] per row, without autograd's full-size chain."""
    return _CatalogueLogProbability.apply(query, table, target, bf16)


def catalogue_cross_entropy(
    query: torch.Tensor, table: torch.Tensor, target: torch.Tensor, bf16: bool = False
) -> torch.Tensor:
    """Mean cross-entropy of the next item over the rows with a target (`target > 0`)."""
    if bf16:
        rows = (target > 0).to(torch.float32)
        log_p = catalogue_log_probability(query, table, target, True)
        return -(log_p * rows).sum() / rows.sum().clamp(min=1.0)
    # float32: PyTorch's own kernels are as fast as the fused path there.
    if not bool((target > 0).any()):
        return query.new_zeros(()) + 0.0 * query.sum() + 0.0 * table.sum()
    return F.cross_entropy(query @ table.T, target, ignore_index=0)


def next_item_loss(
    model: SessionNet,
    readout: Readout,
    items: torch.Tensor,
    table: torch.Tensor,
    target: torch.Tensor,
    bf16: bool = False,
) -> torch.Tensor:
    """Mean cross-entropy of the next item over the rows with a target (`target > 0`).

    For a repeat-aware net, the probability of the target is the mixture the served scores are the
    log of: p * P_repeat(target) + (1 - p) * softmax(explore)[target], p = sigmoid(gate)."""
    query = model.query(readout.session)
    if readout.gate is None:
        return catalogue_cross_entropy(query, table, target, bf16)
    explore = catalogue_log_probability(query, table, target, bf16)
    repeat = repeat_probability(readout, items, target)
    returned = torch.where(
        repeat > 0, F.logsigmoid(readout.gate) + torch.log(repeat.clamp_min(1e-30)), -torch.inf
    )
    log_p = torch.logaddexp(F.logsigmoid(-readout.gate) + explore, returned)
    rows = (target > 0).to(log_p.dtype)
    return -(log_p * rows).sum() / rows.sum().clamp(min=1.0)


def train(data: TrainingData, config: TrainConfig, progress: bool = True) -> TrainResult:
    _keep_freed_memory()
    bf16 = native_bf16() if config.bf16 is None else config.bf16
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    net_config = NetConfig(
        n_items=len(data.vocab),
        n_kinds=len(EVENT_KINDS),
        n_gaps=data.featurizer.config.gap_vocab,
        window=data.featurizer.config.window,
        dim=config.dim,
        dropout=config.dropout,
        scale=config.scale,
        repeat=config.repeat,
        last_item=config.last_item,
    )
    model = SessionNet(net_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    train_points = np.flatnonzero(~data.valid)
    valid_points = np.flatnonzero(data.valid)
    if len(valid_points) > config.max_valid_points:
        valid_points = np.sort(rng.choice(valid_points, config.max_valid_points, replace=False))
    has_labels = bool((data.label >= 0).any())
    all_points = np.arange(len(data.point_seq))
    history: list[dict[str, float]] = []
    best_score, best_state, best_epoch, stale = -math.inf, None, 0, 0
    started = time.monotonic()
    decay_after = config.decay_after
    planned = config.epochs  # the budget may lower it after each epoch
    held_out_intent: dict[str, float] = {}
    epoch = 0
    while epoch < planned:
        epoch += 1
        refit = config.refit and epoch == planned and epoch > 1 and len(valid_points) > 0
        if refit:  # the last moment the validation sessions are held out
            held_out_intent = intent_report(model, data)
            if held_out_intent:
                held_out_intent["after_epoch"] = epoch - 1
        lr = config.lr * config.lr_decay ** max(0, epoch - decay_after)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        epoch_start = time.monotonic()
        batches = _batches(data, all_points if refit else train_points, config.batch_size, rng)
        label = f"epoch {epoch}/{planned}" + (" (train + validation)" if refit else "")
        bar = tqdm(batches, desc=label, unit="batch", disable=not progress)
        running = 0.0
        for step, points in enumerate(bar, 1):
            weight = config.intent_weight if has_labels else 0.0
            table = model.item_table()
            items, kinds, gaps = _tensors(data, points)
            readout = model.encode(items, kinds, gaps, table)
            target = torch.from_numpy(data.target[points])
            loss = next_item_loss(model, readout, items, table, target, bf16)
            if weight > 0:
                features = readout.features
                if config.intent_permuted_items:
                    relabelled = permute_items(items, len(data.vocab), generator)
                    features = model.encode(relabelled, kinds, gaps, table).features
                loss = loss + weight * _intent_loss(model.intent_logit(features), data.label[points])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = loss.item()
            running = 0.98 * running + 0.02 * value if step > 1 else value
            if step % 20 == 0:
                bar.set_postfix(loss=f"{running:.3f}", lr=f"{lr:.1e}")
        epoch_seconds = time.monotonic() - epoch_start
        metrics = evaluate_points(model, data, valid_points) if len(valid_points) else {}
        row = {"epoch": epoch, "loss": running, "seconds": round(epoch_seconds, 1), "lr": lr, **metrics}
        if refit:
            row["refit"] = 1.0  # its validation metrics are not held out
        history.append(row)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch")
        tqdm.write(f"epoch {epoch}: {shown}")
        if refit:  # the planned last epoch: kept whatever its (no longer held-out) score says
            best_epoch, best_state = epoch, None
            break
        # Early stopping on HR@20 + MRR@20 (both are bars we report), or intent AUC if no targets.
        score = metrics.get("HR@20", 0.0) + metrics.get("MRR@20", 0.0) + metrics.get("intent_auc", 0.0)
        if not len(valid_points) or score > best_score:
            best_score, best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= config.patience:
                tqdm.write(f"early stop: no gain for {stale} epochs, best epoch {best_epoch}")
                break
        # The cap is a budget: stop when one more epoch (at the mean pace so far) would overrun it.
        if config.max_minutes:
            spent = time.monotonic() - started
            pace = spent / epoch
            fit = epoch + int((config.max_minutes * 60 - spent) // pace)
            if config.refit and epoch < fit < config.epochs:
                # A refit epoch also runs over the validation sessions: check that the shortened last
                # epoch, now the refit one, still fits with its extra share of points.
                extra = pace * len(valid_points) / max(1, len(train_points))
                fit = epoch + int((config.max_minutes * 60 - spent - extra) // pace)
            if fit <= epoch:
                tqdm.write(f"time budget of {config.max_minutes} min: stopping after epoch {epoch}")
                break
            planned = min(config.epochs, fit)
            decay_after = schedule_decay_after(decay_after, config.decay_after, epoch, planned)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    honest = [row for row in history if "refit" not in row]
    best = next((row for row in honest if row["epoch"] == best_epoch), honest[-1] if honest else history[-1])
    final: dict[str, Any] = {
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "seconds_per_epoch": round(float(np.mean([r["seconds"] for r in history])), 1),
        "train_minutes": round((time.monotonic() - started) / 60, 2),
        "validation": {k: v for k, v in best.items() if k not in ("epoch", "loss", "seconds", "lr")},
    }
    refitted = [row["epoch"] for row in history if "refit" in row]
    if refitted:
        final["refit_epoch"] = refitted[0]
    # Held-out sessions only: after a refit, the report of the model just before it.
    report = held_out_intent if refitted else intent_report(model, data)
    if report:
        final["intent_validation_sessions"] = report
    return TrainResult(model, data, config, final, history)


def schedule_decay_after(current: int, configured: int, epoch: int, planned: int) -> int:
    """The epoch after which the learning rate starts halving, once `planned` epochs are known to fit.

    The low rates at the end are where most of the last gains come from, so when the budget (a busy
    machine) cuts the schedule short, the decay starts earlier: the last three epochs that fit still
    anneal. While every epoch so far ran at the base rate, the start may also move back towards the
    configured one (the machine came free and more epochs fit again); once the decay has begun it only
    moves earlier, so the rate never goes back up.
    """
    latest = max(1, planned - 3)
    if epoch <= current:
        return min(configured, latest)
    return min(current, latest)


def permute_items(items: torch.Tensor, n_items: int, generator: torch.Generator) -> torch.Tensor:
    """`items` with every real item index mapped through one random permutation of the real indices
    (padding and unknown stay): the same item stays the same item within the batch, but which one
    it is carries nothing across batches."""
    mapping = torch.cat(
        [torch.arange(RESERVED), RESERVED + torch.randperm(n_items - RESERVED, generator=generator)]
    )
    return mapping[items]


def _intent_loss(intent: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
    label = torch.from_numpy(labels)
    known = label >= 0
    if not bool(known.any()):
        return intent.new_zeros(())
    return F.binary_cross_entropy_with_logits(intent[known], label[known].to(intent.dtype))


def run_training(
    data: TrainingData, config: TrainConfig, out_dir: Path, command: str = "", progress: bool = True
) -> dict[str, Any]:
    """Train, then export the best epoch's model with its metadata; returns the metadata."""
    from streams.model.export import export_model  # onnx export pulls in more of torch; only here

    result = train(data, config, progress=progress)
    valid = np.flatnonzero(data.valid)
    sample = valid[:256] if len(valid) else np.arange(min(256, len(data.point_seq)))
    has_labels = bool((data.label >= 0).any())
    return export_model(
        result.model,
        data.vocab,
        data.featurizer.config,
        out_dir,
        real_inputs=data.batch(sample),
        training={"config": config.to_dict(), "data": data.summary, "history": result.history},
        metrics=result.metrics,
        command=command,
        intent_trained=has_labels,
    )
