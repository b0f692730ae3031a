"""A generated large catalogue: an artifact with the weights of a trained one and `items` new items.

`make bench` measures the approximate nearest-neighbour path (`streams.model.ann`) on a million
items; no model of that size is trained here, so one is made from a trained artifact: every new item
is a noisy copy of one of the trained items (cosine about 0.7 to it), unit length like the trained
table. The catalogue so has the shape real item embeddings have (groups of related items around
what shoppers view together), which uniform random vectors in 100 dimensions do not: there every
item is nearly as far from a query as every other, and no index beats reading them all.

The graphs are the trained ones with their per-item constants replaced: the item table, the output
matrix (its transpose) and any other constant computed from the table row by row (the attention's
key of each item, and a repeat-aware model's return-attention key), which is a linear map of the
table and is mapped the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from streams.model.embeddings import METADATA_FILE, TABLE_INITIALIZER
from streams.model.features import RESERVED

NOISE = 1.0  # std of the noise added to a copied item, per unit of vector length


def generated_items(base: np.ndarray, items: int, seed: int) -> np.ndarray:
    """`items` unit vectors, each a noisy copy of a random row of `base` (unit rows)."""
    rng = np.random.default_rng(seed)
    source = rng.integers(0, len(base), size=items)
    vectors = rng.standard_normal((items, base.shape[1]), dtype=np.float32)
    vectors *= np.float32(NOISE / np.sqrt(base.shape[1]))
    vectors += base[source]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def write_large_catalogue(base_dir: Path | str, out_dir: Path | str, items: int, seed: int = 0) -> Path:
    """Write the artifact (graphs + metadata) into `out_dir`, or keep the one already there for the
    same base version, size and seed. Returns `out_dir`."""
    base_dir, out_dir = Path(base_dir), Path(out_dir)
    metadata = json.loads((base_dir / METADATA_FILE).read_text(encoding="utf-8"))
    recipe = {"base_version": metadata["version"], "items": items, "seed": seed, "noise": NOISE}
    done = out_dir / METADATA_FILE
    if done.is_file() and json.loads(done.read_text(encoding="utf-8")).get("generated") == recipe:
        return out_dir
    files = [metadata["model"]["file"]]
    if metadata.get("serving", {}).get("mode") == "step":
        files.append(metadata["serving"]["step_file"])
    graphs = {name: onnx.load(str(base_dir / name)) for name in files}
    table = _constant(graphs[files[0]], TABLE_INITIALIZER)
    new_table = np.concatenate([table[:RESERVED], generated_items(table[RESERVED:], items, seed)])
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    for name, model in graphs.items():
        _replace_item_constants(model, table, new_table)
        data = model.SerializeToString()
        digest.update(data)
        (out_dir / name).write_bytes(data)
    ids = [f"gen-{i:07d}" for i in range(items)]
    digest.update(json.dumps(ids, separators=(",", ":")).encode())
    metadata.update(
        version=digest.hexdigest()[:16],
        command=f"write_large_catalogue({str(base_dir)!r}, items={items}, seed={seed})",
        generated=recipe,
        vocabulary={**metadata["vocabulary"], "items": ids},
        metrics={},
    )
    metadata["model"].update(sha256=None, bytes=(out_dir / files[0]).stat().st_size)
    tmp = out_dir / f".{METADATA_FILE}.tmp"
    tmp.write_text(json.dumps(metadata, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, done)
    return out_dir


def _constant(model: onnx.ModelProto, name: str) -> np.ndarray:
    found = next((init for init in model.graph.initializer if init.name == name), None)
    if found is None:
        raise ValueError(f"the graph has no constant named {name!r}")
    return numpy_helper.to_array(found)


def _replace_item_constants(model: onnx.ModelProto, table: np.ndarray, new_table: np.ndarray) -> None:
    """Every constant with one row (or column) per vocabulary index, rebuilt for `new_table`."""
    rows = len(table)
    for init in model.graph.initializer:
        shape = tuple(init.dims)
        if len(shape) != 2 or rows not in shape:
            continue
        if init.name == TABLE_INITIALIZER:
            value = new_table
        elif shape == (table.shape[1], rows):  # the output matrix: the table transposed
            value = np.ascontiguousarray(new_table.T)
        else:  # a per-item linear function of the table: fit it on the trained rows, apply to the new
            mapping, *_ = np.linalg.lstsq(table, numpy_helper.to_array(init), rcond=None)
            value = (new_table @ mapping.astype(np.float32)).astype(np.float32)
        init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), init.name))
    # shapes recorded at export name the old vocabulary size: let ONNX Runtime infer them anew
    del model.graph.value_info[:]
    for output in model.graph.output:
        for dim in output.type.tensor_type.shape.dim:
            if dim.HasField("dim_value") and dim.dim_value == rows:
                dim.dim_param = "items"
