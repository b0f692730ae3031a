"""The step graph cut in two: the recurrence, which a batch runs once per wave, and the readout,
which it runs once for all its stepped rows.

A shopper with k events in a batch needs k steps one after the other: each starts from the state the
one before made. Only the recurrence (the GRU cell and the session counts) is in that chain. The
readout (attention, scores over the catalogue, intent) of an event depends on nothing but the state
after it and its newest events, so it waits until every wave is done and runs for all rows at once:
a wave then pays for about half the graph's operators, and the heavy part runs on big batches.

The cut is found in the graph itself: the state output is a Concat of the readout's parts (the GRU
state and the counts); the readout is extracted with those parts as its inputs. A graph where that
does not hold is refused (`None`), and served whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import shape_inference
from onnx.utils import Extractor

from streams.model.features import INPUT_NAMES, STATE_NAME


@dataclass(frozen=True, slots=True)
class SplitStep:
    advance: bytes  # state + newest events -> the next state
    readout: bytes  # the next state's parts + newest events -> the step graph's other outputs
    parts: tuple[str, ...]  # the readout's inputs made from the next state, in its column order
    widths: tuple[int, ...]  # columns of each part
    outputs: tuple[str, ...]  # the readout's outputs

    def feeds(self, state: np.ndarray) -> dict[str, np.ndarray]:
        """The readout's state inputs: the next state's columns, part by part."""
        bounds = np.cumsum((0, *self.widths))
        return {
            name: np.ascontiguousarray(state[:, lo:hi])
            for name, lo, hi in zip(self.parts, bounds[:-1], bounds[1:], strict=True)
        }


def split_step(model: onnx.ModelProto, outputs: tuple[str, ...], state_output: str) -> SplitStep | None:
    """`model`'s step graph (its outputs `outputs`, one of them `state_output`) cut in two, or None
    when its state is not a Concat of parts of known width that the readout can start from.
    Declares the parts' types in `model` (the extractor looks its inputs up there)."""
    graph = model.graph
    producer = next((node for node in graph.node if state_output in node.output), None)
    if producer is None or producer.op_type != "Concat" or state_output not in outputs:
        return None
    inferred = shape_inference.infer_shapes(model)
    known = {v.name: v for v in (*inferred.graph.value_info, *inferred.graph.output)}
    widths: list[int] = []
    for part in producer.input:
        dims = known[part].type.tensor_type.shape.dim if part in known else ()
        if len(dims) != 2 or not dims[1].dim_value:
            return None
        widths.append(dims[1].dim_value)
    axis = next((a.i for a in producer.attribute if a.name == "axis"), None)
    if axis not in (1, -1):
        return None
    parts = tuple(producer.input)
    if len(set(parts)) != len(parts):
        return None  # one tensor twice in the state: it would be fed twice
    readout_outputs = tuple(name for name in outputs if name != state_output)
    declared = {v.name for v in graph.value_info}
    for part, width in zip(parts, widths, strict=True):
        if part not in declared:
            graph.value_info.append(
                onnx.helper.make_tensor_value_info(part, onnx.TensorProto.FLOAT, ["batch", width])
            )
    extractor = Extractor(model)
    advance = extractor.extract_model([i.name for i in graph.input], [state_output])
    readout = extractor.extract_model([*parts, *INPUT_NAMES], list(readout_outputs))
    read = {name for node in readout.graph.node for name in node.input}
    if STATE_NAME in read:  # the readout reads the carried state itself: no cut
        return None
    return SplitStep(
        advance.SerializeToString(), readout.SerializeToString(), parts, tuple(widths), readout_outputs
    )
