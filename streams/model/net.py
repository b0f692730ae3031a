"""The sequence model (torch; imported only by training and export, never by the live worker).

NARM-style encoder with NISER normalisation, built so that serving costs one recurrent step per
event whatever the shopper's history:
- each event is its item embedding (L2-normalised, tied with the output layer) plus embeddings of its
  kind (view, add_to_cart, ...) and of the time since the previous event, run through a GRU;
- the session is read out from the last GRU state plus an additive attention, queried by that state,
  over the last `attend` events' input embeddings, whose keys also see how far back each event is
  (reverse position). The attention reads inputs, not GRU states, so the only thing a shopper has to
  carry from one event to the next is the GRU state (and the session's event counts): the last
  events themselves are in `UserState.recent` anyway;
- next-item logits are `scale * cos(session, item)` over the whole catalogue. Normalising both sides
  stops popular items from winning by embedding norm alone, the main gain NISER reports on Diginetica;
- purchase intent is a small MLP on the same readout.

Two graphs are exported from one net (`streams.model.export`): the window graph (a whole history in,
scores and the carried state out: what training computes) and the step graph (a carried state and the
newest events in, scores and the next state out). A window graph run on n-1 events followed by a step
on the n-th gives the window graph's answer for n events.

Inputs follow `streams.model.features`: right-padded int64 [batch, T] `items`, `kinds`, `gaps`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from streams.model.features import SESSION_START_BUCKET


@dataclass(frozen=True, slots=True)
class NetConfig:
    n_items: int  # vocabulary size including the reserved indices
    n_kinds: int
    n_gaps: int
    window: int
    dim: int = 100
    dropout: float = 0.1
    scale: float = 16.0
    session_gap_bucket: int = SESSION_START_BUCKET  # gap buckets >= this start a new session
    attend: int = 10  # the readout's attention sees this many of the newest events
    # Repeat-aware next-item head: a learned mixture of "return to one of the attended events'
    # items" and "explore the catalogue" (RepeatNet's repeat/explore mixture).
    repeat: bool = False
    # The readout also reads the newest event's item embedding itself, beside the GRU state and the
    # attention's context (as SR-GNN's and STAMP's readouts do).
    last_item: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def state_size(self) -> int:
        """Floats carried per shopper: the GRU state, then per-kind event counts of the current
        session and the session's event count."""
        return self.dim + self.n_kinds + 1


class SessionNet(nn.Module):
    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        d = config.dim
        self.item = nn.Embedding(config.n_items, d, padding_idx=0)
        self.kind = nn.Embedding(config.n_kinds, d, padding_idx=0)
        self.gap = nn.Embedding(config.n_gaps, d, padding_idx=0)
        self.position = nn.Embedding(config.attend, d)
        self.drop = nn.Dropout(config.dropout)
        self.gru = nn.GRU(d, d, batch_first=True)
        self.att_last = nn.Linear(d, d)
        self.att_key = nn.Linear(d, d, bias=False)
        self.att_out = nn.Linear(d, 1, bias=False)
        self.readout = nn.Linear((3 if config.last_item else 2) * d, d, bias=False)
        if config.repeat:
            # Its own additive attention over the attended events (which one is returned to), and a
            # gate on the readout (whether the next item is a return at all).
            self.rep_last = nn.Linear(d, d)
            self.rep_key = nn.Linear(d, d, bias=False)
            self.rep_position = nn.Embedding(config.attend, d)
            self.rep_out = nn.Linear(d, 1, bias=False)
            self.rep_gate = nn.Linear(2 * d, 1)
        # Intent also sees explicit per-kind counts of the current session (log1p), since "has something
        # in the cart right now" is the strongest signal and the GRU state only implies it.
        self.intent_mlp = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(2 * d + config.n_kinds + 1, d), nn.ReLU(), nn.Linear(d, 1)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Uniform(-1/sqrt(d), 1/sqrt(d)) everywhere, as SR-GNN/NISER do; it trains faster than the
        # default N(0, 1) embeddings under normalisation.
        bound = 1.0 / self.config.dim**0.5
        for name, weight in self.named_parameters():
            if "intent_mlp" not in name:
                nn.init.uniform_(weight, -bound, bound)

    def item_table(self) -> torch.Tensor:
        """The L2-normalised item embeddings: input embeddings and output layer at once."""
        return F.normalize(self.item.weight, dim=-1)

    def encode(
        self, items: torch.Tensor, kinds: torch.Tensor, gaps: torch.Tensor, table: torch.Tensor | None = None
    ) -> Readout:
        """The readout of a right-padded batch of whole (windowed) histories. `table` is
        `item_table()`, passed in when the caller needs it too, so it is computed once per batch."""
        mask = kinds > 0
        lengths = mask.sum(1).clamp(min=1)
        table = self.item_table() if table is None else table
        x = self.drop(F.embedding(items, table) + self.kind(kinds) + self.gap(gaps))
        states, _ = self.gru(x)
        last_index = (lengths - 1)[:, None, None].expand(-1, 1, states.shape[-1])
        last = states.gather(1, last_index).squeeze(1)
        # Reverse position: 0 for the newest event. Only the newest `attend` events are read.
        steps = torch.arange(items.shape[1], device=items.device)[None, :]
        reverse = lengths[:, None] - 1 - steps
        seen = mask & (reverse < self.config.attend)
        counts = self._session_counts(kinds, gaps)
        position = reverse.clamp(min=0, max=self.config.attend - 1)
        newest = items.gather(1, (lengths - 1)[:, None]).squeeze(1)
        return self._readout(last, x, position, seen, counts, F.embedding(newest, table))

    def step(
        self,
        state: torch.Tensor,
        items: torch.Tensor,
        kinds: torch.Tensor,
        gaps: torch.Tensor,
        keys: Keys | None = None,
        table: torch.Tensor | None = None,
    ) -> Readout:
        """One event on top of a carried state.

        `items`/`kinds`/`gaps` hold the newest events, right-padded, the new one last: the GRU reads
        only that one; the attention reads them all (at most `attend`). An all-zero state is the state
        before a shopper's first event."""
        d = self.config.dim
        mask = kinds > 0
        lengths = mask.sum(1).clamp(min=1)
        table = self.item_table() if table is None else table
        x = self.drop(F.embedding(items, table) + self.kind(kinds) + self.gap(gaps))
        newest = (lengths - 1)[:, None]
        x_new = x.gather(1, newest[:, :, None].expand(-1, 1, d)).squeeze(1)
        item_new = F.embedding(items.gather(1, newest).squeeze(1), table)
        last = self._gru_cell(x_new, state[:, :d])
        kind_new = kinds.gather(1, newest).squeeze(1)
        gap_new = gaps.gather(1, newest).squeeze(1)
        starts = ((gap_new == 1) | (gap_new >= self.config.session_gap_bucket)).to(state.dtype)[:, None]
        one_hot = F.one_hot(kind_new, self.config.n_kinds).to(state.dtype)
        added = torch.cat([one_hot, torch.ones_like(one_hot[:, :1])], -1)
        counts = state[:, d:] * (1.0 - starts) + added
        steps = torch.arange(items.shape[1], device=items.device)[None, :]
        reverse = lengths[:, None] - 1 - steps
        seen = mask & (reverse < self.config.attend)
        position = reverse.clamp(min=0, max=self.config.attend - 1)
        return self._readout(last, x, position, seen, counts, item_new, keys, (items, kinds, gaps))

    def _gru_cell(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One step of `self.gru` (same weights, same equations as torch's GRU)."""
        gi = F.linear(x, self.gru.weight_ih_l0, self.gru.bias_ih_l0)
        gh = F.linear(h, self.gru.weight_hh_l0, self.gru.bias_hh_l0)
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1.0 - z) * n + z * h

    def _readout(
        self,
        last: torch.Tensor,
        x: torch.Tensor,
        position: torch.Tensor,
        seen: torch.Tensor,
        counts: torch.Tensor,
        item_new: torch.Tensor,
        keys: Keys | None = None,
        inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> Readout:
        key = _project(self.att_key, x, None if keys is None else keys.attention, inputs)
        key = key + self.position(position)
        weights = self.att_out(torch.sigmoid(self.att_last(last)[:, None, :] + key)).squeeze(-1)
        weights = weights * seen.to(weights.dtype)
        context = (weights[:, :, None] * x).sum(1)
        features = torch.cat([last, context], dim=-1)
        intent_features = torch.cat([features, torch.log1p(counts)], -1)
        read = torch.cat([features, item_new], -1) if self.config.last_item else features
        session = self.readout(self.drop(read))
        state = torch.cat([last, counts], -1)
        if not self.config.repeat:
            return Readout(session, intent_features, state, None, None)
        # Which attended event's item is returned to: a softmax over the attended events (an item
        # seen twice gets both its events' weights). Masked with a large finite value, not -inf, so
        # that an all-padding row (never served) stays finite.
        rep_key = _project(self.rep_key, x, None if keys is None else keys.repeat, inputs)
        rep_key = rep_key + self.rep_position(position)
        scores = self.rep_out(torch.tanh(self.rep_last(last)[:, None, :] + rep_key)).squeeze(-1)
        scores = scores.masked_fill(~seen, -1e9)
        attention = torch.softmax(scores, dim=-1)
        gate = self.rep_gate(self.drop(features)).squeeze(-1)
        return Readout(session, intent_features, state, gate, attention)

    def _session_counts(self, kinds: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
        """Event counts per kind since the current session began (within the window), plus the
        session's event count."""
        mask = kinds > 0
        steps = torch.arange(kinds.shape[1], device=kinds.device)[None, :]
        starts = mask & ((gaps == 1) | (gaps >= self.config.session_gap_bucket))
        begin = (steps * starts.to(steps.dtype)).amax(1, keepdim=True)
        current = (mask & (steps >= begin)).to(torch.float32)
        kind_ids = torch.arange(self.config.n_kinds, device=kinds.device)[None, None, :]
        one_hot = (kinds[:, :, None] == kind_ids).to(torch.float32)
        counts = (one_hot * current[:, :, None]).sum(1)
        return torch.cat([counts, current.sum(1, keepdim=True)], -1)

    def forward(
        self, items: torch.Tensor, kinds: torch.Tensor, gaps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(next-item scores [batch, n_items], purchase-intent logit [batch]). The scores are logits:
        their softmax is the model's next-item distribution."""
        table = self.item_table()
        readout = self.encode(items, kinds, gaps, table)
        explore = self.query(readout.session) @ table.T
        return item_scores(explore, readout, items), self.intent_logit(readout.features)

    def query(self, session: torch.Tensor) -> torch.Tensor:
        """scale * normalise(session): its dot product with `item_table()` rows is scale * cos(session,
        item), the logit of every index. The reserved indices (padding, unknown) get scores too: they
        are never targets, so training pushes them down like any wrong item, and serving drops their
        columns. Everything [batch, n_items]-sized is the cost of training, so the scale multiplies
        the session vector, not the logits."""
        return self.config.scale * F.normalize(session, dim=-1)

    def intent_logit(self, features: torch.Tensor) -> torch.Tensor:
        return self.intent_mlp(features).squeeze(-1)


class Readout(NamedTuple):
    """What the encoder reads out of a history."""

    session: torch.Tensor  # [batch, dim]: the explore query's direction
    features: torch.Tensor  # [batch, 2 dim + kinds + 1]: what the intent head reads
    state: torch.Tensor  # [batch, state_size]: what a shopper carries to the next event
    gate: torch.Tensor | None  # [batch]: logit of "the next item is one of the attended events'"
    attention: torch.Tensor | None  # [batch, time]: which attended event's item, summing to 1


class Keys(NamedTuple):
    """Per-table key projections (item, kind, gap) of the attentions, precomputed by the export."""

    attention: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    repeat: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None


def _project(
    linear: nn.Linear,
    x: torch.Tensor,
    tables: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
    inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
) -> torch.Tensor:
    """`linear(x)` (bias-free), or the same sum gathered from per-table projections: no matmul."""
    if tables is None or inputs is None:
        return linear(x)
    return sum(F.embedding(index, table) for index, table in zip(inputs, tables, strict=True))


def repeat_probability(readout: Readout, items: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """P(target | repeat) per row: the attention weight of the attended events holding it."""
    assert readout.attention is not None
    return (readout.attention * (items == target[:, None]).to(readout.attention.dtype)).sum(1)


def item_scores(explore: torch.Tensor, readout: Readout, items: torch.Tensor) -> torch.Tensor:
    """The next-item logits: `explore` itself, or for a repeat-aware net the log of the mixture
    p * P_repeat + (1 - p) * softmax(explore), shifted per row by -log(1 - p) + logsumexp(explore)
    (a shift changes neither the softmax nor the ranking). Only the attended events' items differ
    from `explore`: with g the gate's logit, their score is log(exp(explore) + exp(g + lse) * P_repeat),
    so the whole catalogue is read once (the logsumexp) and written at those few columns."""
    if readout.gate is None or readout.attention is None:
        return explore
    # Spelled out: exported, torch.logsumexp is ONNX's ReduceLogSumExp, which ONNX Runtime computes
    # element by element; max, exp and sum are vectorised kernels (about 2x faster on a 43,097-item
    # catalogue's step graph).
    top = explore.amax(dim=1, keepdim=True).detach()
    lse = top + torch.log(torch.exp(explore - top).sum(dim=1, keepdim=True))
    same = (items[:, :, None] == items[:, None, :]).to(explore.dtype)
    repeat = (same * readout.attention[:, None, :]).sum(-1)  # P_repeat of each event's item
    at_items = explore.gather(1, items)
    boost = readout.gate[:, None] + lse + torch.log(repeat)  # -inf where P_repeat is 0
    peak = torch.maximum(at_items, boost)
    mixed = peak + torch.log(torch.exp(at_items - peak) + torch.exp(boost - peak))
    return explore.scatter(1, items, mixed)


class _Frozen(nn.Module):
    """What every exported graph shares: the normalised item table and the attentions' key
    projections of each embedding table, computed once at export time and stored as constants, not
    per call."""

    def __init__(self, net: SessionNet) -> None:
        super().__init__()
        self.net = net
        with torch.no_grad():
            table = net.item_table().detach().clone()
            self.register_buffer("table", table)
            self.register_buffer("key_item", net.att_key(table).detach().clone())
            self.register_buffer("key_kind", net.att_key(net.kind.weight).detach().clone())
            self.register_buffer("key_gap", net.att_key(net.gap.weight).detach().clone())
            if net.config.repeat:
                self.register_buffer("rep_key_item", net.rep_key(table).detach().clone())
                self.register_buffer("rep_key_kind", net.rep_key(net.kind.weight).detach().clone())
                self.register_buffer("rep_key_gap", net.rep_key(net.gap.weight).detach().clone())

    def keys(self) -> Keys:
        repeat = (self.rep_key_item, self.rep_key_kind, self.rep_key_gap) if self.net.config.repeat else None
        return Keys((self.key_item, self.key_kind, self.key_gap), repeat)

    def answer(self, readout: Readout, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        explore = self.net.query(readout.session) @ self.table.T
        scores = item_scores(explore, readout, items)
        return scores, torch.sigmoid(self.net.intent_logit(readout.features))


class ExportWrapper(_Frozen):
    """The window graph: a whole (windowed) history -> logits, intent as a probability, the state."""

    def forward(
        self, items: torch.Tensor, kinds: torch.Tensor, gaps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        readout = self.net.encode(items, kinds, gaps, self.table)
        logits, intent = self.answer(readout, items)
        return logits, intent, readout.state


class StepWrapper(_Frozen):
    """The step graph: a carried state plus the newest events -> logits, intent, the next state."""

    def forward(
        self, state: torch.Tensor, items: torch.Tensor, kinds: torch.Tensor, gaps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        readout = self.net.step(state, items, kinds, gaps, self.keys(), self.table)
        logits, intent = self.answer(readout, items)
        return logits, intent, readout.state
