"""The item embeddings of an exported model, read from its ONNX graph.

SessionNet ties its input embeddings to its output layer and L2-normalises them: next-item logits
are `scale * cos(session, item)` against one item table (`streams.model.net.ExportedTables`), which
the export stores in the graph as the constant named `table`, one row per vocabulary index (rows 0
and 1 are the reserved padding and unknown-item rows). The same rows place items near each other
when shoppers move between them, so they also give item-to-item neighbours and the vectors an
approximate nearest-neighbour index is built over.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from streams.model.features import RESERVED

TABLE_INITIALIZER = "table"  # the constant `ExportedTables` registers; every exported graph has it
METADATA_FILE = "metadata.json"


class NoItemTable(ValueError):
    """The artifact's graph has no item table constant (not a SessionNet export)."""


@dataclass(frozen=True)
class ItemEmbeddings:
    """Unit-length item vectors, row i for `ids[i]` (the model's vocabulary order)."""

    ids: list[str]
    vectors: np.ndarray  # [len(ids), dim] float32, rows of length 1
    _row: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_row", {item: i for i, item in enumerate(self.ids)})

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row

    def __len__(self) -> int:
        return len(self.ids)

    def vector(self, item_id: str) -> np.ndarray:
        return self.vectors[self._row[item_id]]

    def neighbours(self, item_id: str, k: int, exclude: Collection[str] = ()) -> list[tuple[str, float]]:
        """The k items most similar to `item_id` by cosine, best first, never the item itself nor an
        excluded one. Equal similarities are ordered by item id, so the answer is deterministic."""
        if k <= 0:
            return []
        similarity = self.vectors @ self.vector(item_id)
        banned = [self._row[item] for item in (item_id, *exclude) if item in self._row]
        similarity[banned] = -np.inf
        wanted = min(k, len(self.ids) - len(set(banned)))
        if wanted <= 0:
            return []
        top = np.argpartition(-similarity, wanted - 1)[:wanted]
        ranked = sorted(top.tolist(), key=lambda row: (-float(similarity[row]), self.ids[row]))
        return [(self.ids[row], float(similarity[row])) for row in ranked]


def load_item_embeddings(artifact_dir: Path | str) -> ItemEmbeddings:
    """The item table of an exported model (`streams train --out DIR`), its reserved rows dropped."""
    directory = Path(artifact_dir)
    metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
    ids = list(metadata["vocabulary"]["items"])
    graph_file = directory / metadata["model"]["file"]
    graph = onnx.load(str(graph_file), load_external_data=False).graph
    table = next((init for init in graph.initializer if init.name == TABLE_INITIALIZER), None)
    if table is None:
        raise NoItemTable(f"{graph_file}: no constant named {TABLE_INITIALIZER!r} (not a SessionNet export)")
    rows = numpy_helper.to_array(table)
    if rows.shape[0] != len(ids) + RESERVED:
        raise NoItemTable(
            f"{graph_file}: item table has {rows.shape[0]} rows for {len(ids)} items + {RESERVED} reserved"
        )
    vectors = np.array(rows[RESERVED:], dtype=np.float32)  # a writable copy
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors /= np.where(norms > 0, norms, 1.0)  # already unit length; guards an all-zero row
    return ItemEmbeddings(ids, vectors)
