"""The sequence model (torch; imported only by training and export, never by the live worker).

NARM-style encoder with NISER normalisation:
- each event is its item embedding (L2-normalised, tied with the output layer) plus embeddings of its
  kind (view, add_to_cart, ...) and of the time since the previous event, run through a GRU;
- the session is read out from the last GRU state plus an additive attention over all states, whose
  keys also see how far back each event is (reverse position), since recency matters more than the
  GRU alone captures on short sessions;
- next-item logits are `scale * cos(session, item)` over the whole catalogue. Normalising both sides
  stops popular items from winning by embedding norm alone, the main gain NISER reports on Diginetica;
- purchase intent is a small MLP on the same readout.

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SessionNet(nn.Module):
    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        d = config.dim
        self.item = nn.Embedding(config.n_items, d, padding_idx=0)
        self.kind = nn.Embedding(config.n_kinds, d, padding_idx=0)
        self.gap = nn.Embedding(config.n_gaps, d, padding_idx=0)
        self.position = nn.Embedding(config.window, d)
        self.drop = nn.Dropout(config.dropout)
        self.gru = nn.GRU(d, d, batch_first=True)
        self.att_last = nn.Linear(d, d)
        self.att_state = nn.Linear(d, d, bias=False)
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
        mask = kinds > 0
        lengths = mask.sum(1).clamp(min=1)
        table = self.item_table() if table is None else table
        x = F.embedding(items, table) + self.kind(kinds) + self.gap(gaps)
        states, _ = self.gru(self.drop(x))
        last_index = (lengths - 1)[:, None, None].expand(-1, 1, states.shape[-1])
        last = states.gather(1, last_index).squeeze(1)
        # Reverse position: 0 for the newest event. Padding slots clamp to 0 and are masked anyway.
        steps = torch.arange(items.shape[1], device=items.device)[None, :]
        reverse = (lengths[:, None] - 1 - steps).clamp(min=0, max=self.config.window - 1)
        keys = self.att_state(states) + self.position(reverse)
        weights = self.att_out(torch.sigmoid(self.att_last(last)[:, None, :] + keys)).squeeze(-1)
        weights = weights * mask.to(weights.dtype)
        context = (weights[:, :, None] * states).sum(1)
        features = torch.cat([last, context], dim=-1)
        return self.readout(self.drop(features)), torch.cat([features, self._session_counts(kinds, gaps)], -1)

    def _session_counts(self, kinds: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
        """log1p of event counts per kind since the current session began (within the window), plus
        log1p of the session's event count."""
        mask = kinds > 0
        steps = torch.arange(kinds.shape[1], device=kinds.device)[None, :]
        starts = mask & ((gaps == 1) | (gaps >= self.config.session_gap_bucket))
        begin = (steps * starts.to(steps.dtype)).amax(1, keepdim=True)
        current = (mask & (steps >= begin)).to(torch.float32)
        kind_ids = torch.arange(self.config.n_kinds, device=kinds.device)[None, None, :]
        one_hot = (kinds[:, :, None] == kind_ids).to(torch.float32)
        counts = (one_hot * current[:, :, None]).sum(1)
        return torch.log1p(torch.cat([counts, current.sum(1, keepdim=True)], -1))

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


class ExportWrapper(nn.Module):
    """The graph that is exported: intent as a probability, so serving needs no post-processing."""

    def __init__(self, net: SessionNet) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, items: torch.Tensor, kinds: torch.Tensor, gaps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits, intent = self.net(items, kinds, gaps)
        return logits, torch.sigmoid(intent)
