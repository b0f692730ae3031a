"""The serving runtime on the shipped default model (onnxruntime only; no torch needed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from streams.core.events import Click, Order
from streams.core.processor import Processor
from streams.core.state import UserState
from streams.generate import TrafficConfig, generate_traffic
from streams.live.malloc import heap_usage
from streams.model.features import RESERVED, history_of
from streams.model.runtime import OnnxRecommender, Prediction, RecommenderRanker

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "onnx" / "default"


@pytest.fixture(scope="module")
def recommender() -> OnnxRecommender:
    assert (DEFAULT_MODEL / "model.onnx").is_file(), f"shipped default model missing in {DEFAULT_MODEL}"
    return OnnxRecommender(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def states() -> list[UserState]:
    """Generated shoppers folded through the real core, so histories are `UserState.recent`."""
    config = TrafficConfig(users=120, items=2_000, events=6_000, seed=11)
    processor = Processor()
    by_user: dict[str, UserState] = {}
    for record in generate_traffic(config):
        if record.topic not in ("clicks", "orders") or record.value is None:
            continue
        event = Click.from_dict(record.value) if record.topic == "clicks" else Order.from_dict(record.value)
        by_user[event.user_id] = processor.process(by_user.get(event.user_id), event).state
    return sorted(by_user.values(), key=lambda s: s.user_id)


def test_metadata_and_size(recommender: OnnxRecommender) -> None:
    metadata = json.loads((DEFAULT_MODEL / "metadata.json").read_text())
    assert recommender.version == metadata["version"]
    assert (DEFAULT_MODEL / "model.onnx").stat().st_size < 20 * 2**20
    assert metadata["parity"]["random"]["logits"] <= 1e-4
    assert metadata["command"].startswith("streams train --events")


def test_recommends_known_items_for_a_generated_shopper(
    recommender: OnnxRecommender, states: list[UserState]
) -> None:
    history = history_of(states[0].recent)
    [prediction] = recommender.recommend([history], k=20)
    assert isinstance(prediction, Prediction)
    ids = [item for item, _ in prediction.items]
    assert len(ids) == 20 == len(set(ids))
    assert all(item.startswith("sku-") and item in recommender.vocab for item in ids)
    scores = [score for _, score in prediction.items]
    assert scores == sorted(scores, reverse=True) and 0.0 < scores[0] <= 1.0
    assert 0.0 <= prediction.purchase_intent <= 1.0


def test_probabilities_are_the_softmax_of_the_logits_over_the_catalogue(
    recommender: OnnxRecommender, states: list[UserState]
) -> None:
    """The repeat-aware model's normaliser is summed by the mixture, not over the mixed logits:
    it must still be theirs."""
    histories = [history_of(state.recent) for state in states[:24]]
    logits, _ = recommender.score(histories)
    for prediction, row in zip(recommender.recommend(histories, k=20), logits, strict=True):
        real = row[RESERVED:].astype(np.float64)
        log_norm = real.max() + np.log(np.exp(real - real.max()).sum())
        expected = [
            float(np.exp(real[recommender.vocab.index(item) - RESERVED] - log_norm))
            for item, _ in prediction.items
        ]
        assert [p for _, p in prediction.items] == pytest.approx(expected, rel=1e-5)


def test_exclude_removes_items_and_still_fills_k(
    recommender: OnnxRecommender, states: list[UserState]
) -> None:
    history = history_of(states[1].recent)
    [plain] = recommender.recommend([history], k=10)
    banned = {item for item, _ in plain.items[:3]} | {"not-in-catalogue"}
    [filtered] = recommender.recommend([history], k=10, exclude=[banned])
    ids = [item for item, _ in filtered.items]
    assert len(ids) == 10 and not banned & set(ids)
    assert ids[:7] == [item for item, _ in plain.items[3:]]
    assert filtered.purchase_intent == plain.purchase_intent


def test_answers_are_bit_identical_whatever_the_batch(
    recommender: OnnxRecommender, states: list[UserState]
) -> None:
    # A live worker runs batches of 1..n, a replay runs 256: online = offline needs exact equality.
    histories = [history_of(s.recent) for s in states[:64]]
    assert len(histories) == 64
    batched = recommender.recommend(histories, k=20)
    for size in (1, 2, 7):
        chunked = [
            p for lo in range(0, 64, size) for p in recommender.recommend(histories[lo : lo + size], k=20)
        ]
        assert chunked == batched, f"batches of {size} differ from one batch of 64"


def test_a_row_scores_the_same_at_every_position_of_an_odd_sized_batch(
    recommender: OnnxRecommender, states: list[UserState]
) -> None:
    # ONNX Runtime's matrix kernels take rows in pairs: the odd last row of a batch went through a
    # one-row path whose float sums differ in the last bit (seen on the intent score of a live run).
    # About one history in 300 lands on such a bit, so every prefix of every shopper is tried.
    histories = [history_of(s.recent[:n]) for s in states for n in range(1, len(s.recent) + 1)]
    assert len(histories) > 3_000
    alone_logits, alone_intent = recommender.score(histories)
    for index, history in enumerate(histories):
        logits, intent = recommender.score([history] * 3)
        assert (intent == alone_intent[index]).all(), f"history {index}: intent moves in a batch of 3"
        assert (logits == alone_logits[index]).all(), f"history {index}: logits move in a batch of 3"


def test_the_shipped_model_serves_in_step_mode(recommender: OnnxRecommender) -> None:
    metadata = json.loads((DEFAULT_MODEL / "metadata.json").read_text())
    assert recommender.steps and metadata["serving"]["mode"] == "step"
    assert (DEFAULT_MODEL / metadata["serving"]["step_file"]).is_file()
    assert max(metadata["parity"]["step"]["logits"], metadata["parity"]["step_real"]["logits"]) <= 1e-4


def _carried_rows(recommender: OnnxRecommender, states: list[UserState]) -> tuple[list, list]:
    histories = [history_of(s.recent) for s in states if len(s.recent) >= 2]
    before = recommender.recommend([h[:-1] for h in histories], k=20)
    return histories, [p.state for p in before]


def test_a_carried_state_answers_what_reading_the_history_whole_answers(
    recommender: OnnxRecommender, states: list[UserState]
) -> None:
    histories, carried = _carried_rows(recommender, states)
    assert len(histories) > 100 and any(len(h) == recommender.window for h in histories)
    stepped = recommender.recommend(histories, k=20, carried=carried)
    whole = recommender.recommend(histories, k=20)
    for one, other in zip(stepped, whole, strict=True):
        assert one.state is not None and other.state is not None
        gap = np.abs(np.frombuffer(one.state[1], np.float32) - np.frombuffer(other.state[1], np.float32))
        assert gap.max() <= 1e-4
        assert abs(one.purchase_intent - other.purchase_intent) <= 1e-4
        scores = dict(other.items)
        assert all(abs(score - scores[item]) <= 1e-4 for item, score in one.items if item in scores)
        assert len({i for i, _ in one.items[:10]} & {i for i, _ in other.items[:10]}) >= 8


def test_a_batch_chain_is_bit_identical_to_carrying_the_state_across_calls(
    recommender: OnnxRecommender, states: list[UserState]
) -> None:
    for state in states[:20]:
        history = history_of(state.recent)
        prefixes = [history[:n] for n in range(1, len(history) + 1)]
        chained = recommender.recommend(prefixes, k=20, after=[None, *range(len(prefixes) - 1)])
        carried = None
        for prefix, expected in zip(prefixes, chained, strict=True):
            [alone] = recommender.recommend([prefix], k=20, carried=[carried])
            assert alone == expected
            carried = alone.state


def test_a_carried_state_holds_the_newest_events_as_reading_them_whole_encodes_them(
    recommender: OnnxRecommender, states: list[UserState]
) -> None:
    """A step encodes only its new event; the older ones come with the state. Past the readout's
    `attend` events the oldest must drop out exactly as the featurizer's window drops it."""
    attend = recommender.metadata["serving"]["attend"]
    state_bytes = 4 * recommender.metadata["serving"]["state_size"]
    history = max((history_of(s.recent) for s in states), key=len)
    assert len(history) > attend + 2
    carried = None
    for n in range(1, len(history) + 1):
        [stepped] = recommender.recommend([history[:n]], k=5, carried=[carried])
        [whole] = recommender.recommend([history[:n]], k=5)
        assert stepped.state is not None and whole.state is not None
        assert stepped.state[1][state_bytes:] == whole.state[1][state_bytes:], f"{n} events"
        carried = stepped.state


def test_a_state_without_the_newest_events_is_read_whole(
    recommender: OnnxRecommender, states: list[UserState]
) -> None:
    histories, carried = _carried_rows(recommender, states[:10])
    floats_only = [
        (version, raw[: 4 * recommender.metadata["serving"]["state_size"]]) for version, raw in carried
    ]
    assert recommender.recommend(histories, k=20, carried=floats_only) == recommender.recommend(
        histories, k=20
    )


def test_stepped_rows_are_bit_identical_whatever_the_batch(
    recommender: OnnxRecommender, states: list[UserState]
) -> None:
    histories, carried = _carried_rows(recommender, states)
    batched = recommender.recommend(histories, k=20, carried=carried)
    for size in (1, 2, 7):
        chunked = [
            p
            for lo in range(0, len(histories), size)
            for p in recommender.recommend(histories[lo : lo + size], k=20, carried=carried[lo : lo + size])
        ]
        assert chunked == batched, f"batches of {size} differ from one batch"


def test_a_state_of_another_model_version_is_not_used(
    recommender: OnnxRecommender, states: list[UserState]
) -> None:
    histories, carried = _carried_rows(recommender, states[:10])
    stale = [("another-version", state[1]) for state in carried]
    assert recommender.recommend(histories, k=20, carried=stale) == recommender.recommend(histories, k=20)


def test_never_returns_reserved_indices_and_handles_empty_history(recommender: OnnxRecommender) -> None:
    n_items = len(recommender.vocab.ids)
    [everything, empty] = recommender.recommend([[("sku-1", "view", 0)], []], k=n_items + 5)
    assert len(everything.items) == n_items == len({i for i, _ in everything.items})
    assert len(empty.items) == n_items
    assert recommender.recommend([], k=5) == []


def test_swap_is_atomic_and_a_bad_artifact_changes_nothing(
    recommender: OnnxRecommender, tmp_path: Path, states: list[UserState]
) -> None:
    local = OnnxRecommender(DEFAULT_MODEL)
    copy = tmp_path / "copy"
    shutil.copytree(DEFAULT_MODEL, copy)
    history = history_of(states[2].recent)
    before = local.recommend([history], k=5)
    assert local.swap(copy) == recommender.version
    assert local.recommend([history], k=5) == before
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metadata.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError):
        local.swap(broken)
    assert local.version == recommender.version and local.recommend([history], k=5) == before


def test_session_ranker_adapter(recommender: OnnxRecommender) -> None:
    ranker = RecommenderRanker(recommender, batch_size=2)
    ranker.fit([["sku-1", "sku-2"]])
    lists = ranker.topk([["sku-1"], ["sku-2", "sku-3"], ["unknown-item"]], k=5)
    assert len(lists) == 3 and all(len(items) == 5 for items in lists)
    assert lists[0] == [i for i, _ in recommender.recommend([[("sku-1", "view", 0)]], k=5)[0].items]


def test_a_large_batch_leaves_no_memory_behind(recommender: OnnxRecommender) -> None:
    """A backlog batch after a restart must not raise the worker's memory for the rest of its life
    (ONNX Runtime's CPU arena would keep ~70 MiB after this batch)."""
    if heap_usage() is None:
        pytest.skip("needs glibc's mallinfo2")
    items = [f"sku-{n}" for n in range(2_000)]
    big = [[(items[(row * 7 + i) % 2_000], "view", i * 1_000) for i in range(50)] for row in range(256)]
    recommender.score(big[:2])  # the session's lazy set-up is not what is measured
    before = _held()
    recommender.score(big)
    assert _held() - before < 8 * 2**20


def test_calls_of_other_sizes_in_between_change_no_answer(
    recommender: OnnxRecommender, states: list[UserState]
) -> None:
    """A thread's score matrix is kept from call to call and written over (`_scores`); exclusions are
    masked in it: nothing of one call may show in the next."""
    histories = [history_of(s.recent) for s in states[:40]]
    exclude = [frozenset(item for item, _, _ in h[-3:] if item is not None) for h in histories]
    first = recommender.recommend(histories, k=10, exclude=exclude)
    recommender.recommend(histories[:7], k=10)
    recommender.recommend(histories[5:], k=10, exclude=exclude[5:])
    assert recommender.recommend(histories, k=10, exclude=exclude) == first
    assert recommender.recommend(histories[:9], k=10) == OnnxRecommender(DEFAULT_MODEL).recommend(
        histories[:9], k=10
    )


def test_a_large_stepped_batch_leaves_little_memory_behind(recommender: OnnxRecommender) -> None:
    """The cut step graph's readout keeps an arena: what one call of `READOUT_ROWS` rows needs,
    whatever the batch (about 2 MiB for the shipped model)."""
    if heap_usage() is None:
        pytest.skip("needs glibc's mallinfo2")
    items = [f"sku-{n}" for n in range(2_000)]
    big = [[(items[(row * 7 + i) % 2_000], "view", i * 1_000) for i in range(12)] for row in range(256)]
    recommender.recommend_streamed(big[:2], k=20)
    before = _held()
    recommender.recommend_streamed(big, k=20)  # 3,072 stepped rows, 12 waves of 256
    assert _held() - before < 4 * 2**20


def _held() -> int:
    """Bytes of the C heap held by live allocations, in the arenas or mapped on their own."""
    heap = heap_usage()
    assert heap is not None
    return heap["in_use"] + heap["mapped"]


def _top_k_of_one_row(values: np.ndarray, order: np.ndarray, k: int) -> list[int]:
    """The definition: the k best finite values, best first, equal values by item-id rank."""
    finite = [i for i in range(len(values)) if np.isfinite(values[i])]
    return sorted(finite, key=lambda i: (-values[i], order[i]))[:k]


# 0: every batch ranked by the one-key sort, which a batch this small would leave to lexsort
SORTS = pytest.mark.parametrize("lexsort_entries", [512, 0])


@SORTS
@pytest.mark.parametrize("head", [512, 8])  # 8: the first columns' k-th best bounds the ranking
def test_top_k_of_a_batch_is_each_rows_own_top_k(
    head: int, lexsort_entries: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streams.model import runtime
    from streams.model.runtime import _top_k

    monkeypatch.setattr(runtime, "TOP_K_HEAD", head)
    monkeypatch.setattr(runtime, "LEXSORT_ENTRIES", lexsort_entries)
    rng = np.random.default_rng(3)
    values = rng.integers(0, 6, size=(9, 40)).astype(np.float32)  # many ties at every threshold
    values[2, :37] = -np.inf  # fewer finite values than k
    values[5, :] = -np.inf  # none
    values[6, :10] = -np.inf  # nothing finite among the first columns
    values[7, :10] = 0  # the first columns' k-th best is far below the row's
    order = rng.permutation(40).astype(np.int64)
    for k in (1, 5, 40, 60):
        rows, columns = _top_k(values, order, k)
        got = [columns[rows == r].tolist() for r in range(len(values))]
        assert got == [_top_k_of_one_row(row, order, k) for row in values], f"k={k}"
    assert [len(c) for c in _top_k(values, order, 0)] == [0, 0]


@SORTS
def test_top_k_orders_signed_values_and_zeros_as_floats_compare(
    lexsort_entries: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ranking sorts float32 values by their bits: negatives, -0.0 against 0.0 (equal: the tie
    goes to the item-id rank), tiny and huge magnitudes must come out in float order. (-inf: what
    an exclusion writes; logits are never NaN or +inf.)"""
    from streams.model import runtime
    from streams.model.runtime import _top_k

    monkeypatch.setattr(runtime, "LEXSORT_ENTRIES", lexsort_entries)
    rng = np.random.default_rng(5)
    pool = np.array([-0.0, 0.0, -1e-40, 1e-40, -3.5, 3.5, -1e30, 1e30, -np.inf], np.float32)
    values = np.concatenate([rng.choice(pool, size=(6, 30)), rng.standard_normal((6, 30))]).astype(np.float32)
    order = rng.permutation(30).astype(np.int64)
    for k in (1, 7, 30):
        rows, columns = _top_k(values, order, k)
        got = [columns[rows == r].tolist() for r in range(len(values))]
        assert got == [_top_k_of_one_row(row, order, k) for row in values], f"k={k}"
