"""A deterministic stand-in for the ONNX model, for unit tests of the core."""

from __future__ import annotations

from collections.abc import Sequence

from streams.core.recommend import Prediction, RecRequest


class FakeRecommender:
    """Scores item `sku-N` by closeness of N to the last item's number; intent grows with cart adds."""

    version = "fake-1"

    def __init__(self, items: int = 100) -> None:
        self.items = [f"sku-{n}" for n in range(items)]
        self.calls: list[int] = []

    def knows(self, item_id: str) -> bool:
        return item_id in self.items

    def recommend_batch(self, requests: Sequence[RecRequest]) -> list[Prediction]:
        self.calls.append(len(requests))
        return [self._one(r) for r in requests]

    def _one(self, request: RecRequest) -> Prediction:
        last = next((i for i, _, _ in reversed(request.history) if i is not None and self.knows(i)), "sku-0")
        anchor = int(last.split("-")[1])
        scored = sorted(
            ((item, 1.0 / (1 + abs(int(item.split("-")[1]) - anchor))) for item in self.items),
            key=lambda pair: (-pair[1], pair[0]),
        )
        top = [(item, score) for item, score in scored if item not in request.exclude][: request.k]
        carts = sum(1 for _, kind, _ in request.history if kind == "add_to_cart")
        return Prediction(top, min(0.95, 0.2 * carts))
