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
from typing import Any

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
        self.readout = nn.Linear(2 * d, d, bias=False)
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
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(session embedding, unnormalised; readout features) for a right-padded batch. `table` is
        `item_table()`, passed in when the caller needs it too, so it is computed once per batch."""
        session, features, _ = self.encode_with_state(items, kinds, gaps, table)
        return session, features

    def encode_with_state(
        self, items: torch.Tensor, kinds: torch.Tensor, gaps: torch.Tensor, table: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`encode` plus the state to carry: [GRU state after the last event, session counts]."""
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
        session, features = self._readout(last, x, position, seen, counts)
        return session, features, torch.cat([last, counts], -1)

    def step(
        self,
        state: torch.Tensor,
        items: torch.Tensor,
        kinds: torch.Tensor,
        gaps: torch.Tensor,
        keys: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
        table: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One event on top of a carried state: (session, features, next state).

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
        session, features = self._readout(last, x, position, seen, counts, keys, (items, kinds, gaps))
        return session, features, torch.cat([last, counts], -1)

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
        keys: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
        inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if keys is None or inputs is None:
            key = self.att_key(x)
        else:  # the key projection of each table, precomputed by the export: gathers, no matmul
            key = sum(F.embedding(index, table) for index, table in zip(inputs, keys, strict=True))
        key = key + self.position(position)
        weights = self.att_out(torch.sigmoid(self.att_last(last)[:, None, :] + key)).squeeze(-1)
        weights = weights * seen.to(weights.dtype)
        context = (weights[:, :, None] * x).sum(1)
        features = torch.cat([last, context], dim=-1)
        intent_features = torch.cat([features, torch.log1p(counts)], -1)
        return self.readout(self.drop(features)), intent_features

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
        """(next-item logits [batch, n_items], purchase-intent logit [batch])."""
        table = self.item_table()
        session, features = self.encode(items, kinds, gaps, table)
        logits = self.query(session) @ table.T
        return logits, self.intent_mlp(features).squeeze(-1)

    def query(self, session: torch.Tensor) -> torch.Tensor:
        """scale * normalise(session): its dot product with `item_table()` rows is scale * cos(session,
        item), the logit of every index. The reserved indices (padding, unknown) get scores too: they
        are never targets, so training pushes them down like any wrong item, and serving drops their
        columns. Everything [batch, n_items]-sized is the cost of training, so the scale multiplies
        the session vector, not the logits."""
        return self.config.scale * F.normalize(session, dim=-1)

    def intent_logit(self, features: torch.Tensor) -> torch.Tensor:
        return self.intent_mlp(features).squeeze(-1)

    def item_logits(self, session: torch.Tensor) -> torch.Tensor:
        return self.query(session) @ self.item_table().T


class _Frozen(nn.Module):
    """What every exported graph shares: the normalised item table and the attention's key projection
    of each embedding table, computed once at export time and stored as constants, not per call."""

    def __init__(self, net: SessionNet) -> None:
        super().__init__()
        self.net = net
        with torch.no_grad():
            table = net.item_table().detach().clone()
            self.register_buffer("table", table)
            self.register_buffer("key_item", net.att_key(table).detach().clone())
            self.register_buffer("key_kind", net.att_key(net.kind.weight).detach().clone())
            self.register_buffer("key_gap", net.att_key(net.gap.weight).detach().clone())

    def answer(self, session: torch.Tensor, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net.query(session) @ self.table.T
        return logits, torch.sigmoid(self.net.intent_logit(features))


class ExportWrapper(_Frozen):
    """The window graph: a whole (windowed) history -> logits, intent as a probability, the state."""

    def forward(
        self, items: torch.Tensor, kinds: torch.Tensor, gaps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        session, features, state = self.net.encode_with_state(items, kinds, gaps, self.table)
        logits, intent = self.answer(session, features)
        return logits, intent, state


class StepWrapper(_Frozen):
    """The step graph: a carried state plus the newest events -> logits, intent, the next state."""

    def forward(
        self, state: torch.Tensor, items: torch.Tensor, kinds: torch.Tensor, gaps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        keys = (self.key_item, self.key_kind, self.key_gap)
        session, features, next_state = self.net.step(state, items, kinds, gaps, keys, self.table)
        logits, intent = self.answer(session, features)
        return logits, intent, next_state
