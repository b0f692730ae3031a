"""What the intent head is trained on: item ids relabelled per batch (`permute_items`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install -e '.[train]')")

from streams.logs import LogRecord, write_log  # noqa: E402
from streams.model.features import INPUT_NAMES, PAD, RESERVED, UNKNOWN, views  # noqa: E402
from streams.model.train import TrainConfig, load_event_log, permute_items, train  # noqa: E402


def test_permute_items_relabels_items_and_keeps_their_pattern() -> None:
    items = torch.tensor([[2, 3, 2, UNKNOWN, PAD], [3, 9, 9, 9, PAD]])
    generator = torch.Generator().manual_seed(0)
    relabelled = permute_items(items, 10, generator)
    assert relabelled.shape == items.shape
    # Padding and unknown stay; a repeated item stays repeated; two items stay two items.
    assert relabelled[0, 3] == UNKNOWN and relabelled[0, 4] == PAD and relabelled[1, 4] == PAD
    assert relabelled[0, 0] == relabelled[0, 2] and relabelled[1, 1] == relabelled[1, 2] == relabelled[1, 3]
    assert relabelled[0, 1] == relabelled[1, 0]  # one mapping for the whole batch
    assert len({int(relabelled[0, 0]), int(relabelled[0, 1]), int(relabelled[1, 1])}) == 3
    assert bool((relabelled[items >= RESERVED] >= RESERVED).all())
    assert int(relabelled.max()) < 10
    # Another batch, another mapping: which item it was carries nothing from batch to batch.
    mappings = {tuple(permute_items(torch.arange(RESERVED, 10), 10, generator).tolist()) for _ in range(20)}
    assert len(mappings) > 15


def _which_item_buys_log(path: Path) -> Path:
    """Shoppers who view `sku-a` then buy it, shoppers who view `sku-b` and leave: the same pace, the
    same number of events; only which item it was tells them apart."""
    records: list[LogRecord] = []
    for n in range(240):
        user, item, ts = f"u{n}", ("sku-a" if n % 2 else "sku-b"), 1_700_000_000_000 + n * 10_000_000
        filler = f"sku-{n % 7}"
        for i, viewed in enumerate([filler, item, filler]):
            value = {
                "event_id": f"c{n}-{i}",
                "user_id": user,
                "type": "view",
                "item_id": viewed,
                "ts": ts + i,
            }
            records.append(LogRecord("clicks", user, ts + i, {**value, "session_id": user}))
        if item == "sku-a":
            value = {"event_id": f"o{n}", "user_id": user, "order_id": f"o{n}", "status": "placed"}
            lines = [{"item_id": item, "quantity": 1}]
            records.append(
                LogRecord("orders", user, ts + 60_000, {**value, "items": lines, "ts": ts + 60_000})
            )
    write_log(path, records)
    return path


@pytest.mark.parametrize("permuted", [False, True])
def test_permuted_items_keep_the_intent_from_learning_which_items_were_bought(
    permuted: bool, tmp_path: Path
) -> None:
    config = TrainConfig(dim=16, epochs=6, batch_size=32, lr=1e-2, patience=6, threads=1, seed=2)
    config = replace(config, intent_permuted_items=permuted)
    data = load_event_log(_which_item_buys_log(tmp_path / "log.jsonl"), config)
    model = train(data, config, progress=False).model
    encoded = data.featurizer.encode([views(["sku-1", "sku-a"]), views(["sku-1", "sku-b"])])
    with torch.no_grad():
        _, logit = model(*(torch.from_numpy(encoded[name]) for name in INPUT_NAMES))
    bought, left = torch.sigmoid(logit).tolist()
    if permuted:
        assert abs(bought - left) < 0.05  # nothing but the item differs: the same intent
    else:
        assert bought - left > 0.1  # the item alone gives it away
