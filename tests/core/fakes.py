"""A deterministic stand-in for the ONNX model, for unit tests of the core."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

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


class CarryingFake(FakeRecommender):
    """A step-mode stand-in: its state is a hash folded over the events it has read, so a state the
    core hands back with the wrong events (or none when one was due) gives another fold."""

    version = "carrying-1"

    def __init__(self, items: int = 100) -> None:
        super().__init__(items)
        self.whole = 0  # requests read from the whole history
        self.carried = 0  # requests that started from a state

    def recommend_batch(self, requests: Sequence[RecRequest]) -> list[Prediction]:
        self.calls.append(len(requests))
        out: list[Prediction] = []
        for request in requests:
            start = None
            if request.after is not None:
                assert request.after < len(out)
                start = out[request.after].state
            elif request.carried is not None and request.carried[0] == self.version:
                start = request.carried
            if start is None:
                self.whole += 1
                state = fold(b"", request.history)
            else:
                self.carried += 1
                state = fold(start[1], request.history[-1:])
            out.append(replace(self._one(request), state=(self.version, state)))
        return out


def fold(start: bytes, history: Sequence[tuple[str | None, str, int]]) -> bytes:
    state = start
    for entry in history:
        state = hashlib.sha256(state + repr(entry).encode()).digest()
    return state
