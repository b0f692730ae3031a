"""`OnnxRecommender`: the one class that serves the model (stream, replay, predict, evaluate, bench).

It loads an artifact directory (`model.onnx` + `metadata.json`, and `step.onnx` for an artifact in
step mode), featurizes many histories at once with the shared featurizer and runs a few ONNX Runtime
calls per batch. No torch here.

Serving modes (the artifact's metadata says which it has):
- window: every prediction reads the shopper's whole window (up to 50 events) again;
- step: a prediction also returns the model's state after the history; given that state back with
  the next event, the step graph reads one event (plus the few newest for the readout), so an event
  costs the same whatever the history. A row without a usable state (none yet, another model
  version, an event that arrived out of order) is read whole by the window graph, which also returns
  its state.

Hot swap: everything one artifact needs (session, vocabulary, featurizer, metadata) lives in one
immutable `_Loaded` object. `recommend` reads the reference once, so a batch that started on the old
artifact finishes on it; `swap` builds the new object completely before one attribute assignment
publishes it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import onnx
import onnxruntime as ort

from streams.model import ann
from streams.model.features import (
    INPUT_NAMES,
    NEXT_STATE_NAME,
    OUTPUT_NAMES,
    RESERVED,
    STATE_NAME,
    STEP_INPUT_NAMES,
    STEP_OUTPUT_NAMES,
    WINDOW_OUTPUT_NAMES,
    Featurizer,
    FeaturizerConfig,
    History,
    ItemVocab,
    views,
)
from streams.model.step_split import SplitStep, split_step

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
STEP_FILE = "step.onnx"
# Sequence widths a batch is padded to (then the full window). Each width present in a batch costs
# a graph call of its own, and a live round holds a few events: fewer widths, fewer calls, at the
# price of padding short histories further (the graph is causal and masked: same answers).
WIDTH_BUCKETS = (16, 32)
METADATA_FILE = "metadata.json"
PREDICTION_ROWS = 128  # rows ranked per numpy pass
# Rows per call of a cut step graph's readout: its scores over the catalogue stay in cache (a
# 2,000-item catalogue's readout costs about half as much a row at 64 rows as at 256)
READOUT_ROWS = 64
# Largest score matrix ([rows, catalogue] float32) a thread keeps between `recommend` calls and
# fills again: a fresh one that size is, in a worker (`streams.live.malloc`), pages to fault in.
SCRATCH_BYTES = 8 * 2**20
TOP_K_HEAD = 512  # columns (at least) whose k-th best bounds a row's top k (`_top_k`)
LEXSORT_ENTRIES = 512  # `_ranking`: fewer entries than this are ranked by lexsort (~12 µs at 512)
# A `MixtureSession`'s output beside the graph's: each row's log of its softmax's normaliser over
# the catalogue items (float64), which the mixture has summed already
NORMALISER_NAME = "log_normaliser"
FORMAT = "streams-onnx/1"
# Where the state is among a step-mode artifact's graph outputs, whichever form serves them (the
# window graph's `state`, the step graph's `next_state`): after the scores and the intent
STATE_AT = 2


@dataclass(frozen=True, slots=True)
class Prediction:
    items: list[tuple[str, float]]  # (item id, probability over the catalogue), best first
    purchase_intent: float
    # step mode: (artifact version, the model's state after the history as float32 bytes); handed
    # back as `carried` with the shopper's next event
    state: Carried | None = None


Carried = tuple[str, bytes]


class _Outputs(NamedTuple):
    """What the graphs gave a batch, row by row."""

    scores: np.ndarray  # logits [n, vocab]; for a catalogue served from the index, the cut graphs' rows
    intent: np.ndarray
    states: np.ndarray | None  # step mode: each row's carried bytes
    log_norm: np.ndarray | None  # a `MixtureSession`'s normalisers, else None


@dataclass(frozen=True, slots=True)
class _Recurrence:
    """The step graph's recurrence alone (`step_split`): what each wave of a batch runs."""

    session: ort.InferenceSession
    split: SplitStep


@dataclass(frozen=True, slots=True)
class _Step:
    session: Session  # the step graph; with `recurrence`, only its readout
    state_size: int
    attend: int
    outputs: tuple[str, ...] = STEP_OUTPUT_NAMES
    recurrence: _Recurrence | None = None  # None: the whole graph runs in every wave


@dataclass(frozen=True, slots=True)
class _Loaded:
    directory: Path
    session: Session
    vocab: ItemVocab
    featurizer: Featurizer
    metadata: dict[str, Any] = field(repr=False)
    step: _Step | None = None
    # a large catalogue: the graphs return the query (`ann.QUERY_NAME`) in place of the logits
    catalogue: ann.AnnCatalogue | None = None
    # the vocabulary's item ids (`ItemVocab.ids`) as an object array: a batch's winners looked up
    # in one numpy call
    item_ids: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "item_ids", np.array(self.vocab.ids, dtype=object))

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    def outputs(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """The window graph's output names as this artifact serves them."""
        if isinstance(self.session, MixtureSession):
            return (*names, NORMALISER_NAME)
        if self.catalogue is None:
            return names
        return tuple(ann.QUERY_NAME if name == ann.LOGITS_NAME else name for name in names)

    @property
    def score_width(self) -> int:
        """Columns of the graphs' first output: the vocabulary's logits, or the cut graphs' row."""
        return len(self.vocab) if self.catalogue is None else self.catalogue.width


def _load(artifact_dir: Path | str, threads: int, ann_min_items: int | None = None) -> _Loaded:
    directory = Path(artifact_dir)
    metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{directory}: unsupported artifact format {metadata.get('format')!r}")
    if len(metadata["vocabulary"]["items"]) >= (ann.min_items() if ann_min_items is None else ann_min_items):
        try:
            return _load_large(directory, metadata, threads)
        except ann.UnnamedRepeatTensors:
            # The cut needs the repeat head's gate and attention by name, which an older export
            # does not give: such an artifact is scored over the whole catalogue.
            log.warning(
                "%s: a repeat-aware model (%d items) exported without named repeat tensors is served "
                "by scoring every item, not from the index",
                directory,
                len(metadata["vocabulary"]["items"]),
            )
    serving = metadata.get("serving", {"mode": "window"})
    if serving["mode"] not in ("step", "window"):
        raise ValueError(f"{directory}: unknown serving mode {serving['mode']!r}")
    outputs = WINDOW_OUTPUT_NAMES if serving["mode"] == "step" else OUTPUT_NAMES
    mixed = _mixture_sessions(directory, metadata, outputs, threads)
    session: Session
    step = None
    if mixed is not None:
        session, step = mixed
    else:
        session = _session(directory / metadata["model"]["file"], threads)
        _check_names(directory, session, INPUT_NAMES, outputs)
        if serving["mode"] == "step":
            graph = onnx.load(str(directory / serving["step_file"]))
            _check_names(directory, graph, STEP_INPUT_NAMES, STEP_OUTPUT_NAMES)
            step = _step(
                graph,
                STEP_OUTPUT_NAMES,
                STEP_OUTPUT_NAMES,
                serving,
                threads,
                lambda b, arena: _session(b, threads, arena),
            )
    vocab = ItemVocab(metadata["vocabulary"]["items"])
    featurizer = Featurizer(vocab, FeaturizerConfig.from_dict(metadata["featurizer"]))
    return _Loaded(directory, session, vocab, featurizer, metadata, step)


def _load_large(directory: Path, metadata: dict[str, Any], threads: int) -> _Loaded:
    """A catalogue served from an index (`streams.model.ann`): the graphs cut before their catalogue
    product, the index loaded from its cache or built."""
    serving = metadata.get("serving", {"mode": "window"})
    if serving["mode"] not in ("step", "window"):
        raise ValueError(f"{directory}: unknown serving mode {serving['mode']!r}")
    outputs = WINDOW_OUTPUT_NAMES if serving["mode"] == "step" else OUTPUT_NAMES
    events = _repeat_events(metadata)
    window, items = ann.cut_graph(onnx.load(str(directory / metadata["model"]["file"])), outputs, events)
    session = _session(window.onnx_bytes, threads)
    step = None
    if serving["mode"] == "step":
        cut, _ = ann.cut_graph(onnx.load(str(directory / serving["step_file"])), STEP_OUTPUT_NAMES, events)
        graph = onnx.load_from_string(cut.onnx_bytes)
        step = _step(
            graph, cut.outputs, cut.outputs, serving, threads, lambda b, arena: _session(b, threads, arena)
        )
    vocab = ItemVocab(metadata["vocabulary"]["items"])
    featurizer = Featurizer(vocab, FeaturizerConfig.from_dict(metadata["featurizer"]))
    reserved, items = items[:RESERVED], items[RESERVED:]
    params = ann.IndexParams()
    index = ann.load_or_build_index(items, params, str(metadata["version"]), ann.cache_dir_for(directory))
    repeat = ann.RepeatLayout(items.shape[1], events) if events else None
    catalogue = ann.AnnCatalogue(
        items, vocab.order[RESERVED:], index, params, reserved=reserved, repeat=repeat
    )
    return _Loaded(directory, session, vocab, featurizer, metadata, step, catalogue)


class MixtureSession:
    """A repeat-aware graph whose logits are mixed in numpy (`ann.mixed_logits`), so that a row's
    logits do not depend on its place in the batch; `run` answers as the uncut graph's does."""

    def __init__(self, graph: bytes, layout: ann.RepeatLayout, threads: int, arena: bool = False) -> None:
        """`graph`: serialized, cut by `ann.cut_graph` with `keep_explore`; `arena`: as `_session`'s."""
        self.session = _session(graph, threads, arena)
        self.layout = layout
        self._work = threading.local()

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """`names`: the uncut graph's, and `NORMALISER_NAME` for the mixture's normaliser."""
        graph = [name for name in names if name not in (ann.LOGITS_NAME, NORMALISER_NAME)]
        explore, packed, *parts = self.session.run([ann.EXPLORE_NAME, ann.QUERY_NAME, *graph], feeds)
        logits, log_norm = ann.mixed_logits(explore, packed, self.layout, RESERVED, self._terms(explore))
        made = {**dict(zip(graph, parts, strict=True)), ann.LOGITS_NAME: logits, NORMALISER_NAME: log_norm}
        return [made[name] for name in names]

    def _terms(self, explore: np.ndarray) -> np.ndarray | None:
        """This thread's array for the mixture's exponentiated terms, kept from call to call, or
        None above `SCRATCH_BYTES`. A readout call's [64, catalogue] floats made afresh each time
        are pages to fault in, in a worker (`streams/live/malloc.py` maps them on their own)."""
        if explore.dtype != np.float32 or explore.nbytes > SCRATCH_BYTES:
            return None
        kept: np.ndarray | None = getattr(self._work, "terms", None)
        if kept is None or kept.shape[1:] != explore.shape[1:] or len(kept) < len(explore):
            kept = self._work.terms = np.empty(explore.shape, dtype=np.float32)
        return kept[: len(explore)]


Session = ort.InferenceSession | MixtureSession


def _mixture_sessions(
    directory: Path, metadata: dict[str, Any], outputs: tuple[str, ...], threads: int
) -> tuple[MixtureSession, _Step | None] | None:
    """A repeat-aware artifact's graphs with the mixture taken out of them (`MixtureSession`);
    None for any other artifact, or one exported before the repeat tensors were named (its own
    graphs then serve, whose last bits can move with a row's place in the batch)."""
    events = _repeat_events(metadata)
    if not events:
        return None
    serving = metadata.get("serving", {"mode": "window"})
    try:
        window, items = ann.cut_graph(
            onnx.load(str(directory / metadata["model"]["file"])), outputs, events, keep_explore=True
        )
        step = None
        if serving["mode"] == "step":
            step = ann.cut_graph(
                onnx.load(str(directory / serving["step_file"])), STEP_OUTPUT_NAMES, events, keep_explore=True
            )[0]
    except ann.UnnamedRepeatTensors:
        log.warning(
            "%s: a repeat-aware model exported without named repeat tensors: its own graphs serve", directory
        )
        return None
    layout = ann.RepeatLayout(items.shape[1], events)
    if step is None:
        return MixtureSession(window.onnx_bytes, layout, threads), None
    return MixtureSession(window.onnx_bytes, layout, threads), _step(
        onnx.load_from_string(step.onnx_bytes),
        step.outputs,
        (*STEP_OUTPUT_NAMES, NORMALISER_NAME),
        serving,
        threads,
        lambda graph, arena: MixtureSession(graph, layout, threads, arena),
    )


def _step(
    graph: onnx.ModelProto,
    outputs: tuple[str, ...],
    served: tuple[str, ...],
    serving: dict[str, Any],
    threads: int,
    session: Callable[[bytes, bool], Session],
) -> _Step:
    """The step graph (`outputs`: its own output names), served as `served` asks: cut into its
    recurrence and its readout (`step_split`) where it can be, else whole. `session` makes the session
    of the whole graph or of the readout (the bool: whether its calls are bounded, so that it may
    keep an arena: see `_session`)."""
    size, attend = int(serving["state_size"]), int(serving["attend"])
    split = split_step(graph, outputs, NEXT_STATE_NAME)
    if split is None:
        return _Step(session(graph.SerializeToString(), False), size, attend, served)
    recurrence = _Recurrence(_session(split.advance, threads), split)  # a wave: as many rows as it has
    return _Step(session(split.readout, True), size, attend, served, recurrence)


def _repeat_events(metadata: dict[str, Any]) -> int:
    """For a repeat-aware artifact, the widest input either graph is given (the cut graphs pad the
    return attention to it); 0 for any other."""
    net = metadata["model"].get("net", {})
    return max(int(metadata["featurizer"]["window"]), int(net.get("attend", 0))) if net.get("repeat") else 0


def _session(path: Path | bytes, threads: int, arena: bool = False) -> ort.InferenceSession:
    """`arena`: keep ONNX Runtime's CPU arena, for a graph whose calls have a bounded size (a cut
    step graph's readout: `READOUT_ROWS` rows a call)."""
    options = ort.SessionOptions()
    # One intra-op thread by default: the worker runs one partition per process, and batching, not
    # threads, is what buys throughput there.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    # ONNX Runtime's CPU arena keeps, for the life of the session, what the largest batch ever
    # needed: one backlog batch after a restart (256 events of long histories) pinned ~70 MiB in a
    # worker for good. Without it, each call's tensors are allocated afresh, and in a worker
    # (`streams.live.malloc`: 256 KiB and up mapped on their own) a large one is fresh pages to
    # fault in: a readout's scores over the catalogue, every call. Hence the arena for a graph whose
    # calls are bounded: it keeps what one bounded call needs.
    options.enable_cpu_mem_arena = arena
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def _check_names(
    directory: Path,
    graph: ort.InferenceSession | onnx.ModelProto,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
) -> None:
    if isinstance(graph, onnx.ModelProto):
        names = tuple(i.name for i in graph.graph.input), tuple(o.name for o in graph.graph.output)
    else:
        names = tuple(i.name for i in graph.get_inputs()), tuple(o.name for o in graph.get_outputs())
    if names != (inputs, outputs):
        raise ValueError(f"{directory}: graph has inputs/outputs {names}, expected {(inputs, outputs)}")


class OnnxRecommender:
    """Batched next-item recommendations and purchase intent from an exported artifact."""

    def __init__(self, artifact_dir: Path | str, threads: int = 1, ann_min_items: int | None = None) -> None:
        """`ann_min_items`: the catalogue size from which candidates come from an approximate
        nearest-neighbour index (`streams.model.ann`); None reads `STREAMS_ANN_MIN_ITEMS`."""
        self.threads = threads
        self.ann_min_items = ann_min_items
        self._loaded = _load(artifact_dir, threads, ann_min_items)
        self._scratch = threading.local()

    @property
    def version(self) -> str:
        return self._loaded.version

    @property
    def metadata(self) -> dict[str, Any]:
        return self._loaded.metadata

    @property
    def vocab(self) -> ItemVocab:
        return self._loaded.vocab

    @property
    def window(self) -> int:
        return self._loaded.featurizer.config.window

    def swap(self, artifact_dir: Path | str) -> str:
        """Load another artifact, then publish it atomically. Returns the new version."""
        loaded = _load(artifact_dir, self.threads, self.ann_min_items)  # fails here, before anything changes
        self._loaded = loaded
        return loaded.version

    @property
    def steps(self) -> bool:
        """True when the artifact carries a state from event to event (step mode)."""
        return self._loaded.step is not None

    @property
    def catalogue(self) -> ann.AnnCatalogue | None:
        """The approximate nearest-neighbour index a large catalogue is served from, else None."""
        return self._loaded.catalogue

    def score(self, histories: Sequence[History]) -> tuple[np.ndarray, np.ndarray]:
        """Raw graph outputs: logits [batch, vocab] (reserved columns included) and intent [batch];
        for a catalogue served from the index, the cut graphs' rows in place of logits: the query
        vectors [batch, dim], followed by the repeat head's values for a repeat-aware model."""
        outputs = self._run(self._loaded, histories)
        return outputs.scores, outputs.intent

    def recommend(
        self,
        histories: Sequence[History],
        k: int,
        exclude: Sequence[AbstractSet[str]] | None = None,
        carried: Sequence[Carried | None] | None = None,
        after: Sequence[int | None] | None = None,
    ) -> list[Prediction]:
        """Top-k items (best first, ties by item id) and purchase intent for each history.

        `exclude[i]` is removed from row i before the top-k, so a row still gets k items when the
        catalogue allows. Item scores are probabilities under the model's softmax over the whole
        catalogue (before exclusion).

        Step mode: `carried[i]` is the state a prediction returned for `histories[i][:-1]`, and
        `after[i]` names an earlier row of this batch whose history is `histories[i][:-1]` (its state
        is not known before this call). A state of another artifact version is not used.
        """
        for name, given in (("exclude", exclude), ("carried", carried), ("after", after)):
            if given is not None and len(given) != len(histories):
                raise ValueError(f"{len(given)} {name} entries for {len(histories)} histories")
        if not histories:
            return []
        loaded = self._loaded  # one read: the whole batch uses one artifact even if swap() runs now
        outputs = self._run(loaded, histories, carried, after, self._scores(loaded, len(histories)))
        return _predictions(loaded, outputs, range(len(histories)), k, exclude)

    def recommend_streamed(self, histories: Sequence[History], k: int) -> list[Prediction]:
        """What a worker would answer after each history's last event, the events fed one by one
        from the first: in step mode, one step per event, each from the state of the one before."""
        if not histories:
            return []
        loaded = self._loaded
        if loaded.step is None:
            return self.recommend(histories, k)
        rows: list[History] = []
        after: list[int | None] = []
        last: list[int] = []
        for history in histories:
            for n in range(1, len(history) + 1):
                after.append(len(rows) - 1 if n > 1 else None)
                rows.append(history[:n])
            if not history:
                after.append(None)
                rows.append(history)
            last.append(len(rows) - 1)
        outputs = self._run(loaded, rows, None, after, self._scores(loaded, len(rows)))
        return _predictions(loaded, outputs, last, k, None)

    def _scores(self, loaded: _Loaded, rows: int) -> np.ndarray | None:
        """This thread's score matrix for `rows` rows, kept from call to call (its contents are
        overwritten: every row is some graph's), or None above `SCRATCH_BYTES`. Only for a call
        whose scores do not leave it (`_predictions` reads them; `score` returns them)."""
        width = loaded.score_width
        if rows * width * 4 > SCRATCH_BYTES:
            return None
        kept: np.ndarray | None = getattr(self._scratch, "scores", None)
        if kept is None or kept.shape[1] != width or len(kept) < rows:
            kept = self._scratch.scores = np.empty((rows, width), dtype=np.float32)
        return kept[:rows]

    @staticmethod
    def _run(
        loaded: _Loaded,
        histories: Sequence[History],
        carried: Sequence[Carried | None] | None = None,
        after: Sequence[int | None] | None = None,
        scores: np.ndarray | None = None,
    ) -> _Outputs:
        """`scores`: the array the score rows are written into (`_scores`), else a new one."""
        if loaded.step is None:
            names = loaded.outputs(OUTPUT_NAMES)
            made = _run_window(loaded, histories, range(len(histories)), names, (scores,))
            return _Outputs(made[0], made[1], None, _normalisers(names, made))
        step = loaded.step
        n = len(histories)
        # Row n of the arrays below is all padding: the row an odd wave (or readout call) is made
        # even with (`_run_window` explains why).
        states = np.zeros((n + 1, step.state_size), dtype=np.float32)  # each row's state
        # Each row's step inputs [name, row, event]: its newest `attend` events encoded, right-padded,
        # newest last. They travel with the state, so a step encodes one new event, not the `attend`
        # newest again. Name first: a row's inputs of one name are what a graph is fed.
        inputs = np.zeros((len(INPUT_NAMES), n + 1, step.attend), dtype=np.int64)
        whole: list[int] = []  # rows the window graph reads whole
        ready: list[int] = []  # rows the step graph can take now
        waiting: dict[int, int] = {}  # row -> the earlier row whose state it starts from
        given_rows: list[int] = []  # rows that start from a usable carried state
        given_bytes: list[bytes] = []
        usable = (loaded.version, _carried_width(step))  # a state of this artifact, in this layout
        for row in range(n):
            earlier = after[row] if after is not None else None
            given = carried[row] if carried is not None else None
            if earlier is not None:
                if not 0 <= earlier < row:
                    raise ValueError(f"row {row} cannot start from row {earlier}")
                waiting[row] = earlier
            elif histories[row] and given is not None and (given[0], len(given[1])) == usable:
                given_rows.append(row)
                given_bytes.append(given[1])
                ready.append(row)
            elif len(histories[row]) == 1:
                ready.append(row)  # a first event: the state before it is all zeros
            else:
                whole.append(row)
        if given_rows:
            states[given_rows], inputs[:, given_rows] = _decode_carried(step, b"".join(given_bytes))
        names = loaded.outputs(WINDOW_OUTPUT_NAMES)
        # The step graph's outputs, in order. The window graph writes its rows' states into `states`,
        # unless it reads every row (then it hands its own array over, and no row steps).
        made = _run_window(loaded, histories, whole, names, (scores, None, states[:n]))
        if whole:
            encoded = loaded.featurizer.encode(
                [histories[row] for row in whole], pad_to=step.attend, window=step.attend
            )
            for at, name in enumerate(INPUT_NAMES):
                inputs[at, whole] = encoded[name]
        stepped = sorted([*ready, *waiting])
        newest = np.zeros((len(INPUT_NAMES), n + 1), dtype=np.int64)  # each stepped row's event
        if stepped:
            newest[:, stepped] = loaded.featurizer.encode_newest([histories[row] for row in stepped])
        followers: dict[int, list[int]] = {}  # row -> the rows that start from its state
        for row, earlier in waiting.items():
            followers.setdefault(earlier, []).append(row)
        ready += [row for earlier in whole for row in followers.get(earlier, ())]
        wave = _Wave(states, inputs, newest, step.attend)
        while ready:  # one step call per wave: a shopper's k-th event of the batch is in wave k
            ready.sort()
            count = len(ready)
            rows = wave.index(ready)
            feeds = wave.feeds(rows, wave.index([waiting.get(row, row) for row in ready]), count)
            if step.recurrence is None:
                _run_step(step, rows[:count], feeds, states, made)
            else:
                states[rows[:count]] = step.recurrence.session.run([NEXT_STATE_NAME], feeds)[0][:count]
            ready = [row for earlier in ready for row in followers.get(earlier, ())]
        if step.recurrence is not None and stepped:
            _read_out(step, step.recurrence.split, stepped, wave, made)
        carried_bytes = _encode_carried(made[STATE_AT], inputs[:, :n])
        return _Outputs(made[0], made[1], carried_bytes, _normalisers(names, made))


class _Wave:
    """A batch's step inputs and states, with a last row of padding, and what a step graph is fed
    from them. Index arrays and `take`, not lists and fancy indexing: a wave is a few dozen rows,
    and numpy's cost per call is most of what it costs."""

    def __init__(self, states: np.ndarray, inputs: np.ndarray, newest: np.ndarray, attend: int) -> None:
        """`states` [n + 1, state_size], `inputs` [names, n + 1, attend], `newest` [names, n + 1]:
        each row's newest event (`_append_event`); row n of each all padding."""
        self.states = states
        self.inputs = inputs
        self.newest = newest
        self.padding = len(states) - 1
        self.placement = _placement(attend)
        # where each row of a wave starts in its inputs and newest event laid end to end
        self.starts = np.arange(0, len(states) * (attend + 1), attend + 1)[:, np.newaxis]

    def index(self, rows: list[int]) -> np.ndarray:
        """`rows` as an index array, with the padding row after an odd count (`_run_window` explains
        why a graph call has an even number of rows)."""
        return np.array([*rows, self.padding] if len(rows) % 2 else rows)

    def feeds(self, rows: np.ndarray, sources: np.ndarray, count: int) -> dict[str, np.ndarray]:
        """The feeds of one wave (`index`: `count` rows, ascending, then any padding): each row steps
        from the state and inputs of its source (the earlier row its history continues, or itself),
        with its newest event appended. The appended inputs are kept as the row's own."""
        inputs = _append_event(
            self.inputs.take(sources, axis=1),
            self.newest.take(rows, axis=1),
            self.placement,
            self.starts[: len(rows)],
        )
        self.inputs[:, rows[:count]] = inputs[:, :count]
        return {STATE_NAME: self.states.take(sources, axis=0), **dict(zip(INPUT_NAMES, inputs, strict=True))}

    def readout_feeds(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """A step graph's feeds for `rows` (`index`) from their own state and inputs."""
        inputs = self.inputs.take(rows, axis=1)
        return {STATE_NAME: self.states.take(rows, axis=0), **dict(zip(INPUT_NAMES, inputs, strict=True))}


def _normalisers(names: tuple[str, ...], made: list[np.ndarray]) -> np.ndarray | None:
    return made[names.index(NORMALISER_NAME)] if NORMALISER_NAME in names else None


def _carried_width(step: _Step) -> int:
    """Bytes of a carried state: the model's float32 state, then the step inputs it was computed
    with (item indices as int32, kind and gap indices as one byte each)."""
    return 4 * step.state_size + 6 * step.attend


def _encode_carried(states: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Each row's carried bytes [n, carried_width] (a row's `.tobytes()` is what it hands back), from
    its state and its step inputs ([names, n, attend])."""
    items, kinds, gaps = inputs
    return np.concatenate(
        [
            np.ascontiguousarray(states, dtype="<f4").view(np.uint8),
            np.ascontiguousarray(items, dtype="<i4").view(np.uint8),
            kinds.astype(np.uint8),
            gaps.astype(np.uint8),
        ],
        axis=1,
    )


def _decode_carried(step: _Step, joined: bytes) -> tuple[np.ndarray, np.ndarray]:
    """States [m, state_size] and step inputs [names, m, attend] of m carried states joined end to end."""
    raw = np.frombuffer(joined, dtype=np.uint8).reshape(-1, _carried_width(step))
    floats, attend = 4 * step.state_size, step.attend
    states = raw[:, :floats].copy().view("<f4")
    items = raw[:, floats : floats + 4 * attend].copy().view("<i4")
    kinds = raw[:, floats + 4 * attend : floats + 5 * attend]
    gaps = raw[:, floats + 5 * attend :]
    return states, np.stack([items, kinds, gaps]).astype(np.int64)


def _placement(attend: int) -> np.ndarray:
    """[attend + 1, attend]: for a row with r real events (padding after them), where each of its
    step inputs comes from once its newest event is put after its `attend` (column `attend`):
    the newest at position r, or, with all `attend` real, the oldest dropped."""
    table = np.tile(np.arange(attend), (attend + 1, 1))
    table[np.arange(attend), np.arange(attend)] = attend
    table[attend] = np.arange(1, attend + 1)
    return table


def _append_event(
    before: np.ndarray, newest: np.ndarray, placement: np.ndarray, starts: np.ndarray
) -> np.ndarray:
    """Step inputs [names, m, attend] with one more event (`newest` [names, m]): appended after the
    real events, or the oldest dropped when all `attend` are real (the encoding of the newest
    `attend` events). `placement`: `_placement(attend)`; `starts`: [m, 1], row i's at
    i * (attend + 1). One gather of each row's inputs and newest event laid end to end."""
    names = len(before)
    real = np.add.reduce(before[1] > 0, axis=1, dtype=np.int64)  # kind 0 is padding
    extended = np.concatenate([before, newest[:, :, np.newaxis]], axis=2)  # [names, m, attend + 1]
    return extended.reshape(names, -1).take(placement[real] + starts, axis=1)


def _predictions(
    loaded: _Loaded,
    outputs: _Outputs,
    rows: Sequence[int],
    k: int,
    exclude: Sequence[AbstractSet[str]] | None,
) -> list[Prediction]:
    """Top-k and intent of `rows` of the graph outputs (`exclude` is indexed like `rows`)."""
    if loaded.catalogue is not None:
        return _catalogue_predictions(loaded, loaded.catalogue, outputs, rows, k, exclude)
    logits, intent, states, log_norms = outputs
    order = loaded.vocab.order[RESERVED:]
    carried = _carried_of(loaded.version, states)
    out: list[Prediction] = []
    # A few hundred rows at a time: the arrays of one chunk stay in cache through the passes below.
    for lo in range(0, len(rows), PREDICTION_ROWS):
        chunk = rows[lo : lo + PREDICTION_ROWS]
        # the rows of a whole batch in order: a view (exclusions are masked in it)
        at = slice(chunk.start, chunk.stop) if isinstance(chunk, range) and chunk.step == 1 else chunk
        scores = logits[at, RESERVED:]
        # Softmax over real items only. Ranking uses the logits (same order); only the k winners are
        # exponentiated, so a 40k-item catalogue costs one float32 pass per row, not a float64 one,
        # and none when the mixture has summed the row already.
        if log_norms is None:
            peak = scores.max(axis=1, keepdims=True)
            shifted = scores - peak
            np.exp(shifted, out=shifted)
            log_norm = (peak + np.log(shifted.sum(axis=1, keepdims=True)))[:, 0].astype(np.float64)
        else:
            log_norm = log_norms[at]
        if exclude:  # masked in place: the scores are this call's own (`recommend`)
            _ban(scores, loaded.vocab, exclude[lo : lo + PREDICTION_ROWS])
        row_of, top = _top_k(scores, order, k)
        probabilities = np.exp(scores[row_of, top].astype(np.float64) - log_norm[row_of])
        # plain Python strs and floats, made by numpy for the whole chunk
        pairs = list(zip(loaded.item_ids[top].tolist(), probabilities.tolist(), strict=True))
        ends = np.cumsum(np.bincount(row_of, minlength=len(chunk))).tolist()
        items = [pairs[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]
        chunk_states = repeat(None) if carried is None else map(carried, chunk)
        out.extend(map(Prediction, items, intent[at].tolist(), chunk_states))
    return out


def _carried_of(version: str, states: np.ndarray | None) -> Callable[[int], Carried] | None:
    """What a row's prediction carries (`Prediction.state`), from the rows' carried bytes
    [n, carried_width]: one copy of them all, then one slice a row."""
    if states is None:
        return None
    joined, width = states.tobytes(), states.shape[1]
    return lambda row: (version, joined[row * width : (row + 1) * width])


def _ban(scores: np.ndarray, vocab: ItemVocab, exclude: Sequence[AbstractSet[str]]) -> None:
    """Sets each row's excluded items (those in the vocabulary) to -inf in `scores` [rows, items]."""
    banned = [vocab.known_indices(e) if e else [] for e in exclude]
    if any(banned):
        lengths = np.fromiter(map(len, banned), dtype=np.int64, count=len(banned))
        columns = np.fromiter((i for b in banned for i in b), dtype=np.int64, count=int(lengths.sum()))
        scores[np.repeat(np.arange(len(banned)), lengths), columns - RESERVED] = -np.inf


def _catalogue_predictions(
    loaded: _Loaded,
    catalogue: ann.AnnCatalogue,
    outputs: _Outputs,
    rows: Sequence[int],
    k: int,
    exclude: Sequence[AbstractSet[str]] | None,
) -> list[Prediction]:
    """`_predictions` for a catalogue served from the index: each row's candidates, scored exactly."""
    scored, intent, states, _ = outputs
    scored = np.ascontiguousarray(scored[list(rows)])  # each row's query (and repeat head's values)
    banned = [
        np.array(loaded.vocab.known_indices(exclude[position]), dtype=np.int64) - RESERVED
        if exclude is not None and exclude[position]
        else np.zeros(0, dtype=np.int64)
        for position in range(len(rows))
    ]
    counts = [catalogue.params.overfetch * k + len(b) for b in banned]
    candidates = catalogue.candidates(catalogue.queries(scored), counts)
    ids = loaded.vocab.ids
    out: list[Prediction] = []
    ranked = catalogue.rank(scored, k, banned, candidates)
    for row, (top, probabilities) in zip(rows, ranked, strict=True):
        items = list(zip(map(ids.__getitem__, top.tolist()), probabilities.tolist(), strict=True))
        state = None if states is None else (loaded.version, states[row].tobytes())
        out.append(Prediction(items=items, purchase_intent=float(intent[row]), state=state))
    return out


def _run_window(
    loaded: _Loaded,
    histories: Sequence[History],
    rows: Sequence[int],
    outputs: tuple[str, ...],
    kept: Sequence[np.ndarray | None] = (),
) -> list[np.ndarray]:
    """The window graph's `outputs` on `histories[rows]`: arrays for all of `histories`, filled at
    `rows` (the `at`-th in `kept[at]` when given: the scores `_scores` keeps, the states of a step).

    Bit-identical answers whatever the batch: a replay batches differently from a live worker and
    must still give the same ids and scores. ONNX Runtime's kernels give a row the same floats only
    when the shapes are the same. So a row's width is chosen by its own length alone (the smallest
    bucket that holds it: short histories stay cheap), rows of one width run together, and every
    group has an even number of rows: the matrix kernels take rows in pairs, and an odd last row goes
    a one-row path whose sums differ in the last bit."""
    window = loaded.featurizer.config.window
    n = len(histories)
    arrays = [
        given if (given := kept[at] if at < len(kept) else None) is not None else _blank(loaded, name, at, n)
        for at, name in enumerate(outputs)
    ]
    buckets = [b for b in WIDTH_BUCKETS if b < window] + [window]
    groups: dict[int, list[int]] = {}
    for index in rows:
        length = min(len(histories[index]), window)
        groups.setdefault(next(b for b in buckets if b >= length), []).append(index)
    for width, members in sorted(groups.items()):
        batch = [histories[i] for i in members]
        if len(batch) % 2:
            batch.append([])
        parts = loaded.session.run(list(outputs), loaded.featurizer.encode(batch, pad_to=width))
        _fill(arrays, members, parts)
    return arrays


def _fill(out: list[np.ndarray], rows: Sequence[int], parts: list[np.ndarray]) -> None:
    """Writes a graph call's `parts` (one row per `rows`, ascending, then any padding row) into
    `out` at `rows`. A call that made every row of the batch hands its own arrays over: the scores
    are [rows, catalogue] floats, which a copy would read and write once more."""
    for at, part in enumerate(parts):
        if len(rows) == len(out[at]):
            out[at] = part[: len(rows)]
        else:
            out[at][rows] = part[: len(rows)]


def _blank(loaded: _Loaded, name: str, at: int, n: int) -> np.ndarray:
    """Zeros for n rows of the graph output `name`, the `at`-th asked (the first: the scores)."""
    if name == NORMALISER_NAME:
        return np.zeros(n, dtype=np.float64)
    if at == 0:
        return np.zeros((n, loaded.score_width), dtype=np.float32)
    if name == OUTPUT_NAMES[1]:  # the intent
        return np.zeros(n, dtype=np.float32)
    return np.zeros((n, loaded.step.state_size if loaded.step is not None else 0), dtype=np.float32)


def _run_step(
    step: _Step, rows: np.ndarray, feeds: dict[str, np.ndarray], states: np.ndarray, out: list[np.ndarray]
) -> None:
    """The whole step graph on one wave (`_Wave.feeds`): the next state of `rows` (ascending) into
    `states`, its other outputs into `out` at those rows (`_fill`)."""
    parts = step.session.run(list(step.outputs), feeds)
    states[rows] = parts[STATE_AT][: len(rows)]
    _fill_others(out, rows, [part for at, part in enumerate(parts) if at != STATE_AT])


def _read_out(step: _Step, split: SplitStep, rows: list[int], wave: _Wave, out: list[np.ndarray]) -> None:
    """The readout of every stepped row (ascending), from the next state the waves made, `READOUT_ROWS`
    rows a call: the step graph's other outputs, into `out` at their places."""
    names = [name for at, name in enumerate(step.outputs) if at != STATE_AT]
    for lo in range(0, len(rows), READOUT_ROWS):
        chunk = rows[lo : lo + READOUT_ROWS]
        feeds = wave.readout_feeds(wave.index(chunk))
        state = feeds.pop(STATE_NAME)
        # no name for the outputs: they sit in the session's arena, which would have to hold this
        # call's and the next's
        _fill_others(out, chunk, step.session.run(names, {**split.feeds(state), **feeds}))


def _fill_others(out: list[np.ndarray], rows: Sequence[int], parts: list[np.ndarray]) -> None:
    """`_fill` of the step graph's outputs but the state (`STATE_AT`), which the waves write into
    their own array: `parts` are the others, in order."""
    places = [at for at in range(len(out)) if at != STATE_AT]
    made = [out[at] for at in places]
    _fill(made, rows, parts)
    for at, array in zip(places, made, strict=True):
        out[at] = array


def _top_k(values: np.ndarray, order: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best finite values of each row of `values` (2-D), best first; equal values ordered by
    item id (`order`: each column's rank, no two alike). Returns (row, column) index arrays, row by
    row (a row has fewer than k when it has fewer finite values). One pass over the whole batch:
    numpy per row costs more than the sort."""
    rows, n = values.shape
    k = min(k, n)
    if k <= 0 or not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    # The k-th best of a row's first `head` columns bounds its k-th best from below: whatever ranks
    # in the row's top k is at or above it. The vocabulary lists frequent items first, and they
    # score high, so the bound is tight: ~k values a row pass it, and a partition of a quarter of
    # the row is what it costs (of all of it, when head is the whole row).
    head = min(n, max(TOP_K_HEAD, n // 4))
    if k < head:
        floor = np.partition(values[:, :head], head - k, axis=1)[:, head - k : head - k + 1]
        flat = np.flatnonzero(values >= floor)  # NaN fails it, and -inf unless the floor is -inf
    else:
        flat = np.arange(values.size)
    row_of, column = np.divmod(flat, n)
    picked = values[row_of, column]
    finite = np.isfinite(picked)  # on the few that passed, not on the whole batch
    row_of, column, picked = row_of[finite], column[finite], picked[finite]
    ranked = _ranking(row_of, picked, order[column], rows, n)
    row_of, column = row_of[ranked], column[ranked]
    # Ties at the threshold can leave more than k in a row: keep each row's first k.
    starts = np.searchsorted(row_of, np.arange(rows))
    keep = np.arange(len(row_of)) - starts[row_of] < k
    return row_of[keep], column[keep]


def _ranking(row_of: np.ndarray, values: np.ndarray, ranks: np.ndarray, rows: int, n: int) -> np.ndarray:
    """The order of entries by row, then value (best first), then rank (each below `n`, unique in a
    row). Many float32 values and a key that fits 64 bits: one sort of one integer key per entry
    (row, the value's bits flipped to sort best first, rank), a third of a three-key lexsort's time
    on a batch of 64 rows. A few hundred entries (a small batch) sort faster than the key is made:
    lexsort, whose order is the same."""
    rank_bits = max(n - 1, 1).bit_length()
    wide = max(rows - 1, 1).bit_length() + 32 + rank_bits > 64
    if len(values) < LEXSORT_ENTRIES or values.dtype != np.float32 or wide:
        return np.lexsort((ranks, -values, row_of))
    # + 0: -0.0 becomes +0.0, equal to it as a float, so that the two also tie in the key
    bits = (values + np.float32(0)).view(np.uint32)
    # IEEE order as unsigned integers: negatives' bits all flipped, positives' sign bit set; then
    # all flipped again, best first
    ascending = bits ^ ((bits >> np.uint32(31)) * np.uint32(0x7FFFFFFF) | np.uint32(0x80000000))
    key = row_of.astype(np.uint64) << np.uint64(32 + rank_bits)
    key |= (~ascending).astype(np.uint64) << np.uint64(rank_bits)
    key |= ranks.astype(np.uint64)
    return np.argsort(key)


class RecommenderRanker:
    """A `SessionRanker` for the evaluation harness: item histories are fed as views."""

    def __init__(self, recommender: OnnxRecommender, name: str = "SessionNet", batch_size: int = 256) -> None:
        self.recommender = recommender
        self.name = name
        self.batch_size = batch_size

    def fit(self, train_sessions: list[list[str]]) -> None:
        """Nothing to do: the artifact was trained offline and is evaluated as it will be served."""

    def topk(self, prefixes: Sequence[Sequence[str]], k: int) -> list[list[str]]:
        out: list[list[str]] = []
        for lo in range(0, len(prefixes), self.batch_size):
            chunk = [views(p) for p in prefixes[lo : lo + self.batch_size]]
            out.extend([item for item, _ in p.items] for p in self.recommender.recommend_streamed(chunk, k))
        return out
