"""Large catalogues: candidates from an approximate nearest-neighbour index, then exact scores.

Scoring every item for every event costs `dim` multiply-adds per item: fine for thousands of items,
not for millions. Past `STREAMS_ANN_MIN_ITEMS` items (default 20,000) the runtime serves an
artifact this way instead:

- the graphs are cut just before the catalogue product (`logits = query @ items.T`, the last node of
  a plain SessionNet export): the cut graphs return the query vector, the intent and the state, so
  no `[batch, catalogue]` array is ever made. The cut is made with onnx's public `Extractor` on the
  artifact's own graphs, so any plain artifact can be served this way without a new export;
- an inverted-file index over the graph's own item matrix gives each row's candidates: the items
  of the lists whose centroids are nearest the query, read through 4-bit product-quantized codes
  (faiss `IndexIVFPQFastScan`, inner product: a list is scanned with SIMD table lookups, several
  times faster than reading its float vectors); over-fetched, so that the codes' approximation
  and the excluded items still leave the true best k among them;
- the candidates get their exact logits (`items[c] @ query`, the product the graph would have
  made) and the best k are ranked by them, ties by item id as in the exact path;
- a probability needs the softmax's normaliser over the whole catalogue: it is the candidates' exact
  sum plus the rest estimated from a fixed, evenly spaced sample of the catalogue;
- a repeat-aware graph (`NetConfig.repeat`) mixes "return to one of the newest events' items" into
  its logits after that product. Its cut graphs also return the gate's logit, the return attention
  and the attended items; the attended items join the row's candidates, and each candidate gets the
  mixture `p * P_return + (1 - p) * softmax(explore)` with the estimated normaliser in place of the
  catalogue's log-sum-exp over the explore logits.

Deterministic by construction: the index is built on one thread by k-means with a fixed seed on a
fixed sample, items added in vocabulary order, so the same artifact gives the same index, byte for
byte; each row is searched alone (faiss computes a batch of 20 queries or more with a matrix
product, whose sums can differ in the last bit from a lone query's), so a row's candidates and
scores depend on that row alone (its query, its exclusions), never on the other rows of its
batch. The built index is cached on disk beside the artifact (or in `STREAMS_ANN_CACHE_DIR`), under
a name that holds the artifact version and the build parameters.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.utils import Extractor

if TYPE_CHECKING:
    import faiss

MIN_ITEMS_ENV = "STREAMS_ANN_MIN_ITEMS"
CACHE_DIR_ENV = "STREAMS_ANN_CACHE_DIR"
# the 43,097-item Diginetica model, batch 64: 1,560 events/s scoring every item, about 6,500 from the index
DEFAULT_MIN_ITEMS = 20_000
QUERY_NAME = "query"  # the cut graphs' first output, in place of `logits`
EXPLORE_NAME = "explore"  # a repeat-aware graph's catalogue product, before the returns are mixed in
LOGITS_NAME = "logits"
# What a repeat-aware export names inside its graphs (`streams.model.export`): the gate's logit
# [batch] and the return attention over the input events [batch, time].
GATE_NAME = "repeat_gate"
ATTENTION_NAME = "repeat_attention"
ITEMS_INPUT = "items"
# The attended items travel as float32 beside the query: exact integers up to 2**24
MAX_PACKED_ITEMS = 2**24


@dataclass(frozen=True, slots=True)
class IndexParams:
    """Index build and search parameters. A change of the build ones builds a new index (they are
    part of the cache name); the others apply to a cached index as it is.

    Real item embeddings come in groups (what shoppers view together), and an inverted file reads
    whole groups. Lists of about 500 items, 16 of them read per query, make a query cost about the
    same whatever the catalogue's size (8,000 items read, plus one centroid per list). The lists
    hold product-quantized codes, 4 bits for every `subvector_dims` dimensions (50 bytes for 100
    dimensions, against 400 for the floats): they only choose the candidates, which are then scored
    exactly. Measured on the generated 1,000,000-item catalogue (`streams.model.catalogue`: 500
    noisy copies of each trained item, which codes tell apart worst) with the shipped model's
    queries, recall@20 / events/s at batch 64: two dimensions per code and 5 times k candidates
    0.74 / 6,536; one dimension per code and 5, 8 and 10 times k candidates 0.935 / 6,136, 0.970 /
    5,667 and 0.981 / 5,297. On the Diginetica model's own item embeddings, one dimension per code
    and 8 times k held 0.954 of the exact top 20, the rest being items of lists not read. On a
    generated 43,097-item catalogue, float lists read at 102 µs per query and two-dimension codes
    at 42 µs, and the k-means sample of 256 items per list held 0.971 of the exact top 20 where 64
    per list held 0.923. An HNSW graph (faiss, 16 links, build expansion 64) held 0.77 of a
    100,000-item catalogue's top 20 at search expansion 96 and 0.90 at 256, for more time per
    query."""

    items_per_list: int = 500  # lists = items / this
    training_points_per_list: int = 256  # k-means sample: this many items per list at most
    training_iterations: int = 10
    seed: int = 1234  # k-means' initial centroids and sample
    subvector_dims: int = 1  # dimensions per 4-bit code (1 when the dimension is not a multiple)
    probes: int = 16  # lists read per query
    overfetch: int = 8  # candidates fetched per row: overfetch * k + the row's excluded items
    # catalogue items sampled for the softmax normaliser's tail: 1,024 rows of 100 floats stay in
    # a core's L2 cache, and the estimate only moves probabilities, never the ranking
    tail_sample: int = 1024

    def lists(self, items: int) -> int:
        return max(1, round(items / self.items_per_list))

    def subquantizers(self, dim: int) -> int:
        return dim // self.subvector_dims if dim % self.subvector_dims == 0 else dim

    def digest(self) -> str:
        """Names the index the build parameters make."""
        built = {
            "kind": "ivf-pq4-fastscan-ip",
            "items_per_list": self.items_per_list,
            "subvector_dims": self.subvector_dims,
            "training_points_per_list": self.training_points_per_list,
            "training_iterations": self.training_iterations,
            "seed": self.seed,
        }
        return hashlib.sha256(json.dumps(built, sort_keys=True).encode()).hexdigest()[:12]


def min_items() -> int:
    """The catalogue size from which the runtime serves through the index (`STREAMS_ANN_MIN_ITEMS`)."""
    raw = os.environ.get(MIN_ITEMS_ENV, "").strip()
    if not raw:
        return DEFAULT_MIN_ITEMS
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise ValueError(f"{MIN_ITEMS_ENV}={raw!r}: expected a whole number of items") from None
    if value < 1:
        raise ValueError(f"{MIN_ITEMS_ENV}={raw!r}: expected at least 1")
    return value


class UnnamedRepeatTensors(ValueError):
    """A repeat-aware graph exported without the named gate and attention: it cannot be cut."""


@dataclass(frozen=True, slots=True)
class CutGraph:
    """A graph cut before its catalogue product: serialized ONNX returning `QUERY_NAME` first.

    For a repeat-aware graph `QUERY_NAME` is one row per history of `RepeatLayout.width` floats:
    the query, the gate's logit, the return attention of each input event (zero past the events) and
    each event's item index (`RepeatLayout`)."""

    onnx_bytes: bytes
    outputs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RepeatLayout:
    """Where the repeat head's values sit in a cut graph's row (after the query's `dim` floats)."""

    dim: int
    events: int  # attention columns (and as many item columns): the longest input the graphs take

    @property
    def width(self) -> int:
        return self.dim + 1 + 2 * self.events


def cut_graph(
    model: onnx.ModelProto, outputs: tuple[str, ...], repeat_events: int = 0, *, keep_explore: bool = False
) -> tuple[CutGraph, np.ndarray]:
    """(the graph returning the query instead of `logits`, its item matrix [vocab + reserved, dim]).

    `logits` must be made by a MatMul of the query with a constant [dim, vocab] matrix (how every
    SessionNet export ends), or, for a repeat-aware graph, by a scatter of the returns into such a
    product; anything else is refused rather than served wrong. `repeat_events`: for a repeat-aware
    graph, the widest input it is given (the attention is padded to it, so every row has one width).
    `keep_explore`: a repeat-aware graph also returns the product itself (`EXPLORE_NAME`) just
    before the packed row, for `mixed_logits`."""
    graph = model.graph
    producer = next((node for node in graph.node if LOGITS_NAME in node.output), None)
    constants = {init.name: init for init in graph.initializer}
    repeat = producer is not None and producer.op_type == "ScatterElements"
    if repeat:
        explore = producer.input[0]  # type: ignore[union-attr]
        producer = next((node for node in graph.node if explore in node.output), None)
    if producer is None or producer.op_type != "MatMul" or producer.input[1] not in constants:
        raise ValueError("the graph's logits are not query @ a constant item matrix: no ANN serving")
    items = numpy_helper.to_array(constants[producer.input[1]]).T
    width = items.shape[1]
    if repeat:
        width = _pack_returns(
            graph, producer.input[0], RepeatLayout(items.shape[1], repeat_events), len(items)
        )
    else:
        # The query has an internal name: an Identity gives it a stable one, declared as an output so
        # that the extractor knows its type.
        graph.node.append(onnx.helper.make_node("Identity", [producer.input[0]], [QUERY_NAME]))
    graph.output.append(
        onnx.helper.make_tensor_value_info(QUERY_NAME, onnx.TensorProto.FLOAT, ["batch", width])
    )
    replaced: tuple[str, ...] = (QUERY_NAME,)
    if repeat and keep_explore:
        graph.node.append(onnx.helper.make_node("Identity", [producer.output[0]], [EXPLORE_NAME]))
        graph.output.append(
            onnx.helper.make_tensor_value_info(EXPLORE_NAME, onnx.TensorProto.FLOAT, ["batch", len(items)])
        )
        replaced = (EXPLORE_NAME, QUERY_NAME)
    served = tuple(part for name in outputs for part in (replaced if name == LOGITS_NAME else (name,)))
    cut = Extractor(model).extract_model([i.name for i in graph.input], list(served))
    return CutGraph(cut.SerializeToString(), served), np.ascontiguousarray(items, dtype=np.float32)


def _pack_returns(graph: onnx.GraphProto, query: str, layout: RepeatLayout, vocabulary: int) -> int:
    """Nodes making `QUERY_NAME` = [query, gate, attention, items] per row, attention and items padded
    with zeros to `layout.events` columns. Returns the row's width."""
    if layout.events < 1:
        raise ValueError("a repeat-aware graph is cut with the width of its widest input (repeat_events)")
    made = {name for node in graph.node for name in node.output}
    missing = [name for name in (GATE_NAME, ATTENTION_NAME) if name not in made]
    if missing:
        raise UnnamedRepeatTensors(
            f"a repeat-aware graph without the tensors {missing}: exported before they were named"
        )
    if vocabulary > MAX_PACKED_ITEMS:
        raise ValueError(
            f"{vocabulary:,} items: a repeat-aware graph is served from the index up to {MAX_PACKED_ITEMS:,}"
        )
    helper = onnx.helper
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([1], dtype=np.int64), "ann_axis_1"),
            numpy_helper.from_array(np.array([layout.events], dtype=np.int64), "ann_events"),
            numpy_helper.from_array(np.zeros(3, dtype=np.int64), "ann_no_padding"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Unsqueeze", [GATE_NAME, "ann_axis_1"], ["ann_gate"]),
            helper.make_node("Shape", [ATTENTION_NAME], ["ann_time"], start=1, end=2),
            helper.make_node("Sub", ["ann_events", "ann_time"], ["ann_missing"]),
            helper.make_node("Concat", ["ann_no_padding", "ann_missing"], ["ann_pads"], axis=0),
            helper.make_node("Pad", [ATTENTION_NAME, "ann_pads"], ["ann_attention"]),
            helper.make_node("Cast", [ITEMS_INPUT], ["ann_items_float"], to=onnx.TensorProto.FLOAT),
            helper.make_node("Pad", ["ann_items_float", "ann_pads"], ["ann_items"]),
            helper.make_node(
                "Concat", [query, "ann_gate", "ann_attention", "ann_items"], [QUERY_NAME], axis=1
            ),
        ]
    )
    return layout.width


def attended(packed: np.ndarray, layout: RepeatLayout, reserved: int) -> tuple[np.ndarray, ...]:
    """(row, vocabulary index, return probability) of each catalogue item the rows of a cut graph's
    output attend to, one entry per row and item, sorted by row then index; an item's probability
    is the attention of the events holding it, summed in event order. Padding and the reserved
    indices are no catalogue item: dropped, as the exact path drops their columns."""
    attention = packed[:, layout.dim + 1 : layout.dim + 1 + layout.events]
    indices = packed[:, layout.dim + 1 + layout.events : layout.width].astype(np.int64)
    row, event = np.nonzero((attention > 0) & (indices >= reserved))
    keys, where = np.unique(row * MAX_PACKED_ITEMS + indices[row, event], return_inverse=True)
    probabilities = np.bincount(where, weights=attention[row, event].astype(np.float64), minlength=len(keys))
    owner, index = np.divmod(keys, MAX_PACKED_ITEMS)
    return owner, index, probabilities


def mixed_logits(
    explore: np.ndarray,
    packed: np.ndarray,
    layout: RepeatLayout,
    reserved: int,
    work: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(the logits a repeat-aware graph makes, each row's log of their softmax's normaliser over
    the catalogue items [rows] float64), from its catalogue product `explore` [rows, vocab]
    (reserved indices first) and its packed rows (`RepeatLayout`), in numpy: an attended item gets
    log(exp(explore) + exp(gate + lse) * P_return), lse the row's log-sum-exp of explore over every
    index; every other index keeps its explore logit.

    Made here rather than in the graph because a row's sums must not depend on the row's place in
    its batch: ONNX Runtime's reductions over the catalogue gave one row of 64 on the shipped model
    other last bits at another place in a batch, while numpy sums each row alone, in one order.
    The attended items' columns are written in place in `explore`, which is returned.

    The normaliser comes from the pass that makes lse: the catalogue items' explore terms, plus
    exp(gate + lse) times the row's summed return probability (what the mixed columns add), so
    that a softmax over the mixed logits needs no second pass over them.

    `work`: a float32 array of `explore`'s shape for the exponentiated terms, else a new one."""
    peak = explore.max(axis=1, keepdims=True)
    terms = np.subtract(explore, peak, out=work)
    np.exp(terms, out=terms)
    items = terms[:, reserved:].sum(axis=1, keepdims=True)
    lse = (peak + np.log(items + terms[:, :reserved].sum(axis=1, keepdims=True)))[:, 0].astype(np.float64)
    owner, column, probabilities = attended(packed, layout, reserved)
    boost = packed[:, layout.dim].astype(np.float64) + lse
    log_explore = (peak + np.log(items))[:, 0].astype(np.float64)
    return explore, mix_returns(explore, (owner, column), owner, probabilities, boost, log_explore)


def mix_returns(
    logits: np.ndarray,
    at: np.ndarray | tuple[np.ndarray, np.ndarray],
    owner: np.ndarray,
    probabilities: np.ndarray,
    boost: np.ndarray,
    log_explore: np.ndarray,
) -> np.ndarray:
    """The repeat-aware mixture, shared by the exact path and the index's ranking: each attended
    item's logit (`logits[at]`, its row `owner`) becomes log(exp(logit) + exp(boost) * P_return),
    in place, with `boost` = the row's gate + its log-sum-exp of explore over every index. Returns
    each row's log of the softmax's normaliser over the catalogue: `log_explore`, the explore
    terms, plus exp(boost) times the row's summed return probability."""
    logits[at] = np.logaddexp(logits[at], boost[owner] + np.log(probabilities))
    returned = np.bincount(owner, weights=probabilities, minlength=len(boost))
    with np.errstate(divide="ignore"):  # a row without returns: log 0, and logaddexp keeps its own
        return np.logaddexp(log_explore, boost + np.log(returned))


class AnnCatalogue:
    """The index over a catalogue's item vectors and the exact re-scoring of its candidates."""

    def __init__(
        self,
        items: np.ndarray,
        order: np.ndarray,
        index: faiss.IndexIVFPQFastScan,
        params: IndexParams,
        *,
        reserved: np.ndarray | None = None,
        repeat: RepeatLayout | None = None,
    ) -> None:
        self.items = items  # [n, dim] float32: the graph's item matrix, reserved rows dropped
        self.order = order  # tie-break rank of each item (its id's place in sorted order)
        self.index = index
        self.params = params
        self.stride = max(1, -(-len(items) // params.tail_sample))
        self.sample_items = np.ascontiguousarray(items[:: self.stride])
        # the dropped rows: a repeat-aware graph's log-sum-exp counts them
        self.reserved = np.zeros((0, self.dim), dtype=np.float32) if reserved is None else reserved
        self.repeat = repeat  # a repeat-aware graph's row layout, else None

    def __len__(self) -> int:
        return len(self.items)

    @property
    def dim(self) -> int:
        return int(self.items.shape[1])

    @property
    def width(self) -> int:
        """Floats per row of the cut graphs' first output: the query, and the repeat head's values."""
        return self.dim if self.repeat is None else self.repeat.width

    def queries(self, rows: np.ndarray) -> np.ndarray:
        """The query vectors [n, dim] of rows of the cut graphs' first output."""
        return np.ascontiguousarray(rows[:, : self.dim])

    def candidates(self, queries: np.ndarray, counts: list[int]) -> list[np.ndarray]:
        """Each row's `counts[i]` nearest items by the index, sorted by item position.

        The rows asking for the same count are searched in one call. A row's answer still depends on
        it and its count only: on one thread the fast-scan search quantizes each query's lookup
        tables alone and reads a query's lists in list order whatever the batch, and the result
        handler (heap or reservoir) is chosen by the count, not by the number of queries."""
        import faiss

        faiss.omp_set_num_threads(1)
        asked = np.minimum(np.asarray(counts, dtype=np.int64), len(self.items))
        out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(queries)
        for count in np.unique(asked).tolist():
            rows = np.flatnonzero(asked == count)
            _, keys = self.index.search(np.ascontiguousarray(queries[rows]), count)
            for row, found in zip(rows.tolist(), keys, strict=True):
                out[row] = np.sort(found[found >= 0].astype(np.int64))  # -1: fewer found than asked
        return out

    def rank(
        self, rows: np.ndarray, k: int, banned: list[np.ndarray], candidates: list[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(item positions best first, their probabilities) for each row of the cut graphs' first
        output: the exact scores of the row's `candidates` (and of its attended items, for a
        repeat-aware graph) less its `banned`, ties by item id; every item for a row whose
        candidates leave fewer than k.

        The batch is ranked in whole-batch numpy passes over the rows' candidates laid end to end,
        and a row's answer still depends on that row alone: its scores are its own matrix-vector
        products, and every sum runs over the row's own values in the row's own order (segment
        sums, `bincount`, sums along a row), never across rows."""
        n, count = len(self.items), len(rows)
        queries = rows[:, : self.dim]
        lengths = np.fromiter(map(len, candidates), dtype=np.int64, count=count)
        keys = np.repeat(np.arange(count, dtype=np.int64) * n, lengths) + np.concatenate(
            [*candidates, np.zeros(0, dtype=np.int64)]
        )
        returned = self._returns(rows) if self.repeat is not None else None
        if returned is not None:
            keys = _union(keys, returned[0])  # sorted: row by row, then by position
        row_of = keys // n
        positions = keys - row_of * n
        bounds = np.searchsorted(row_of, np.arange(count + 1))
        scores = np.empty(len(keys), dtype=np.float32)
        sampled = np.empty((count, len(self.sample_items)), dtype=np.float32)
        for row in range(count):
            lo, hi = bounds[row], bounds[row + 1]
            scores[lo:hi] = self.items[positions[lo:hi]] @ queries[row]
            sampled[row] = self.sample_items @ queries[row]
        explore = scores.astype(np.float64)
        log_norm = self._log_normalisers(explore, sampled, positions, row_of, bounds)
        if returned is not None:
            explore, log_norm = self._mixtures(queries, rows, keys, explore, log_norm, returned)
        return self._best(k, banned, keys, row_of, positions, bounds, explore, log_norm, rows)

    def _returns(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the rows' attended items as sorted unique row * n + position keys, each one's return
        probability)."""
        assert self.repeat is not None
        owner, index, probabilities = attended(rows, self.repeat, len(self.reserved))
        return owner * len(self.items) + index - len(self.reserved), probabilities

    def _log_normalisers(
        self,
        scores: np.ndarray,
        sampled: np.ndarray,
        positions: np.ndarray,
        row_of: np.ndarray,
        bounds: np.ndarray,
    ) -> np.ndarray:
        """Each row's log of the softmax's sum over the catalogue: its candidates' exact terms, plus
        the other items' terms estimated by the sample items that are not its candidates."""
        count = len(sampled)
        starts, sizes = bounds[:-1], np.diff(bounds)
        filled = sizes > 0
        peak = sampled.max(axis=1).astype(np.float64)
        if filled.any():
            peak[filled] = np.maximum(peak[filled], np.maximum.reduceat(scores, starts[filled]))
        total = np.zeros(count)
        terms = np.exp(scores - peak[row_of])
        if filled.any():
            total[filled] = np.add.reduceat(terms, starts[filled])
        sample_terms = np.exp(sampled.astype(np.float64) - peak[:, None])
        # sample items among the candidates, counted exactly above: every stride-th item, so found by
        # arithmetic rather than by a lookup table read at random
        slot, offset = np.divmod(positions, self.stride)
        hit = offset == 0
        counted = np.bincount(row_of[hit], weights=sample_terms[row_of[hit], slot[hit]], minlength=count)
        outside = sampled.shape[1] - np.bincount(row_of[hit], minlength=count)
        rest = len(self.items) - sizes
        estimated = (rest > 0) & (outside > 0)
        total[estimated] += (
            rest[estimated] * (sample_terms[estimated].sum(axis=1) - counted[estimated]) / outside[estimated]
        )
        return peak + np.log(total)

    def _mixtures(
        self,
        queries: np.ndarray,
        rows: np.ndarray,
        keys: np.ndarray,
        explore: np.ndarray,
        log_explore: np.ndarray,
        returned: tuple[np.ndarray, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """(the candidates' logits as the repeat-aware graph makes them; each row's log of their
        softmax's normaliser over the catalogue), from the explore logits and normalisers.

        The graph gives an attended item log(exp(explore) + exp(gate + lse) * P_return), lse the
        log-sum-exp of explore over every index (the reserved ones too), and every other item its
        explore logit; the returns add exp(gate + lse) * (their P_return) to the normaliser."""
        assert self.repeat is not None
        n = len(self.items)
        reserved = (queries[:, None, :] * self.reserved[None, :, :]).sum(axis=2).astype(np.float64)
        if reserved.shape[1]:
            top = reserved.max(axis=1)
            lse = np.logaddexp(log_explore, top + np.log(np.exp(reserved - top[:, None]).sum(axis=1)))
        else:
            lse = log_explore
        boost = rows[:, self.repeat.dim].astype(np.float64) + lse
        return_keys, probabilities = returned
        owner = return_keys // n
        at = np.searchsorted(keys, return_keys)
        mixed = explore.copy()
        return mixed, mix_returns(mixed, at, owner, probabilities, boost, log_explore)

    def _best(
        self,
        k: int,
        banned: list[np.ndarray],
        keys: np.ndarray,
        row_of: np.ndarray,
        positions: np.ndarray,
        bounds: np.ndarray,
        scores: np.ndarray,
        log_norm: np.ndarray,
        rows: np.ndarray,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each row's best k kept candidates and their probabilities; a row left with fewer than k
        is ranked over every item. Only a row's few best are sorted: whole-batch sorts cost more
        than the rest of the ranking here."""
        n, count = len(self.items), len(rows)
        wanted = np.minimum(k, n - np.fromiter(map(len, banned), dtype=np.int64, count=count))
        live = scores.copy()
        banned_keys = [b + row * n for row, b in enumerate(banned) if len(b)]
        if banned_keys:
            live[_members(keys, np.sort(np.concatenate(banned_keys)))] = -np.inf
        # each row's k-th best score bounds what it keeps (ties at it are settled by the sort below)
        sizes = np.diff(bounds)
        width = int(sizes.max(initial=0))
        cut = min(k, width)
        floor = np.full(count, np.inf)
        if cut > 0:
            grid = np.full((count, width), -np.inf)
            grid[row_of, np.arange(len(keys)) - bounds[row_of]] = live
            floor = np.partition(grid, width - cut, axis=1)[:, width - cut]
        near = np.flatnonzero((live >= floor[row_of]) & np.isfinite(live))
        ranked = near[np.lexsort((self.order[positions[near]], -live[near], row_of[near]))]
        owner = row_of[ranked]
        chosen = ranked[np.arange(len(ranked)) - np.searchsorted(owner, owner) < wanted[owner]]
        top = positions[chosen]
        probabilities = np.exp(live[chosen] - log_norm[row_of[chosen]])
        ends = np.cumsum(np.bincount(row_of[chosen], minlength=count)).tolist()
        out: list[tuple[np.ndarray, np.ndarray]] = []
        lo = 0
        for row, (hi, need) in enumerate(zip(ends, wanted.tolist(), strict=True)):
            if need <= 0:
                out.append((top[:0], probabilities[:0]))
            elif hi - lo < need:  # the lists read held too few for this row
                out.append(self._rank_everything(rows[row], need, banned[row]))
            else:
                out.append((top[lo:hi], probabilities[lo:hi]))
            lo = hi
        return out

    def _rank_everything(self, row: np.ndarray, k: int, banned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One row ranked over the whole catalogue, its normaliser exact."""
        scores = self.exact_scores(row).astype(np.float64)
        log_norm = _log_sum_exp(scores)
        keep = np.ones(len(scores), dtype=bool)
        keep[banned] = False
        kept = np.flatnonzero(keep)
        ranked = kept[np.lexsort((self.order[kept], -scores[kept]))[:k]]
        return ranked, np.exp(scores[ranked] - log_norm)

    def exact_scores(self, row: np.ndarray) -> np.ndarray:
        """Every item's logit, as the uncut graph makes it, for one row of the cut graphs' output."""
        query = row[: self.dim]
        scores = self.items @ query
        if self.repeat is None:
            return scores
        explore = np.concatenate([self.reserved @ query, scores])[None, :]
        logits, _ = mixed_logits(explore, row[None, :], self.repeat, len(self.reserved))
        return logits[0, len(self.reserved) :]

    def exact_top_k(self, row: np.ndarray, k: int) -> np.ndarray:
        """The true best k by exact scores over the whole catalogue (the index's recall reference)."""
        scores = self.exact_scores(row)
        top = np.argpartition(-scores, k - 1)[:k]
        return top[np.lexsort((self.order[top], -scores[top]))]


def _lookup(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(where each of `keys` sits or would be inserted in `sorted_keys` (sorted, unique), whether
    it is there)."""
    at = np.searchsorted(sorted_keys, keys)
    held = at < len(sorted_keys)
    held[held] = sorted_keys[at[held]] == keys[held]
    return at, held


def _members(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Indices into `sorted_keys` (sorted, unique) of those of `keys` it holds."""
    at, held = _lookup(sorted_keys, keys)
    return at[held]


def _union(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The sorted union of two sorted arrays of unique keys, by insertion: numpy's sort of the joined
    arrays costs several times more (about 25 ns a key on this project's machines)."""
    at, held = _lookup(first, second)
    return np.insert(first, at[~held], second[~held])


def _log_sum_exp(values: np.ndarray) -> float:
    if not len(values):
        return -np.inf
    peak = float(values.max())
    return peak + float(np.log(np.exp(values.astype(np.float64) - peak).sum()))


def build_index(items: np.ndarray, params: IndexParams) -> faiss.IndexIVFPQFastScan:
    """The inverted file over `items`, id = row: the lists' k-means and the codes' k-means on one
    thread from a fixed seed, items added in row order (deterministic)."""
    import faiss  # only a large catalogue needs it

    faiss.omp_set_num_threads(1)  # threads split k-means' sums in an order that varies run to run
    dim = items.shape[1]
    index = faiss.IndexIVFPQFastScan(
        faiss.IndexFlatIP(dim),
        dim,
        params.lists(len(items)),
        params.subquantizers(dim),
        4,
        faiss.METRIC_INNER_PRODUCT,
    )
    index.cp.niter = params.training_iterations
    index.cp.seed = params.seed
    index.cp.max_points_per_centroid = params.training_points_per_list
    index.cp.min_points_per_centroid = 1
    index.train(items)
    index.add(items)
    index.nprobe = params.probes
    return index


def load_or_build_index(
    items: np.ndarray, params: IndexParams, version: str, cache_dir: Path | None
) -> faiss.IndexIVFPQFastScan:
    """The index for this artifact version and these build parameters, from the cache when it is
    there; a new one is written to the cache (atomically) when the folder is writable."""
    if cache_dir is None:
        return build_index(items, params)
    import faiss

    path = cache_dir / f"ann-{version}-{params.digest()}.faiss"
    if path.is_file():
        index = faiss.read_index(str(path))
        if index.ntotal == len(items) and index.d == items.shape[1]:
            faiss.extract_index_ivf(index).nprobe = params.probes
            return index
    index = build_index(items, params)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=cache_dir, prefix=f".{path.name}.", suffix=".tmp")
        os.close(handle)
        faiss.write_index(index, tmp)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only artifact folder: serve from memory, build again next time
    return index


def cache_dir_for(artifact_dir: Path) -> Path:
    configured = os.environ.get(CACHE_DIR_ENV, "").strip()
    return Path(configured) if configured else artifact_dir
