"""``megenginelite convert``: a ``.mge`` model as a standalone ONNX file, optionally with a symbolic batch dim.

The lowering produces fully static graphs: every shape computation of the model is folded into constants for the
input shapes it was inferred with. For a dynamic batch we lower the model at two batch sizes and compare the two
ONNX graphs. They must be identical except for int64 vectors (Reshape/Expand targets, Slice bounds, Split sizes)
whose entries are each ``k * batch``; those become ``Shape(first input)[0:1] * k + base`` computed in the graph.
Anything else that depends on the batch (a constant folded at the batch size, a different node structure, an
entry with an offset) makes us refuse rather than write a graph that is wrong at other batch sizes.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..base import version
from ..errors import LiteError, UnsupportedOperatorError
from ..format import ModelRecord
from ..graph import Graph, build_graph, cpu, infer_graph
from ..graph.passes import optimize
from ..lower import OPSET, Builder
from ..lower.builder import rejection_error
from ..graph.ir import live_ops
from .summary import mge_version_string

Progress = Callable[[int, int], None]

# Batch sizes the model is lowered at to find what depends on the batch; unusual values, so that a shape vector
# of the batch-size graph is unlikely to coincide with an unrelated constant (the lowering shares equal ones).
PROBE_BATCHES = ((13, 17), (19, 23))
BATCH_DIM = "batch"


class ExportError(LiteError):
    """The model cannot be exported as asked (e.g. its graph bakes the batch size in)."""


class _CountingBuilder(Builder):
    """The standard ONNX builder, reporting each lowered op to a progress callback."""

    def __init__(self, graph: Graph, progress: Progress | None):
        super().__init__(graph)
        self._progress = progress
        self._total = sum(1 for op in live_ops(graph) if not all(v.is_const for v in op.outputs))
        self._done = 0

    def lower(self, op) -> None:
        super().lower(op)
        self._done += 1
        if self._progress:
            self._progress(self._done, self._total)


def lower_model(record: ModelRecord, shapes: dict[str, tuple[int, ...]] | None = None,
                progress: Progress | None = None) -> tuple[onnx.ModelProto, Graph]:
    """The ONNX model of ``record`` for these input shapes (the file's own when not given), and its inferred graph.
    The MegBrain-level rewrites apply, except the channel padding, which suits only this machine's CPU."""
    graph = build_graph(record)
    infer_graph(graph, shapes)
    optimize(graph, pad_channels=False)
    model = onnx.load_from_string(_CountingBuilder(graph, progress).build(graph_name(record)))
    try:  # types too: a node ONNX Runtime would refuse must not reach the file
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # checker and shape-inference errors
        raise rejection_error(graph, record.source, exc) from None
    return model, graph


def graph_name(record: ModelRecord) -> str:
    name = record.source.replace("\\", "/").rsplit("/", 1)[-1]
    return name[:-4] if name.endswith(".mge") else name or "megengine"


def _strip_names(model: onnx.ModelProto) -> list:
    """Nodes without their (debug) names, for a structural comparison."""
    nodes = []
    for node in model.graph.node:
        n = onnx.NodeProto()
        n.CopyFrom(node)
        n.ClearField("name")
        nodes.append(n)
    return nodes


def _batch_coefficients(a: np.ndarray, b: np.ndarray, batch_a: int, batch_b: int) -> np.ndarray | None:
    """``k`` with ``a == base + k*batch_a`` and ``b == base + k*batch_b`` where every varying entry has base 0."""
    if a.dtype != np.int64 or a.ndim != 1 or a.shape != b.shape:
        return None
    diff = a != b
    ka, kb = a // batch_a, b // batch_b
    if np.any(diff & ((a % batch_a != 0) | (b % batch_b != 0) | (ka != kb))):
        return None
    return np.where(diff, ka, 0)


def _dynamic_batch(record: ModelRecord, progress: Progress | None) -> onnx.ModelProto:
    graph = build_graph(record)
    if not graph.inputs or any(len(v.shape) == 0 for v in graph.inputs):
        raise ExportError(f"{record.source}: --dynamic-batch needs inputs with a batch dim (dim 0)")
    for batch_a, batch_b in PROBE_BATCHES:
        try:
            return _dynamic_batch_at(record, graph, batch_a, batch_b, progress)
        except _Mismatch as exc:
            reason = exc
            if not exc.retry:
                break
    raise ExportError(f"{record.source}: cannot make the batch dim dynamic: {reason}; "
                      f"convert without --dynamic-batch (fixed shapes) instead")


class _Mismatch(Exception):
    """The two lowerings differ in a way we cannot turn into a batch computation. ``retry``: the difference might
    come from a coincidence of the probe batch sizes (constants the lowering shares by value), so try other sizes."""

    def __init__(self, message: str, retry: bool = False):
        super().__init__(message)
        self.retry = retry


def _dynamic_batch_at(record: ModelRecord, graph: Graph, batch_a: int, batch_b: int,
                      progress: Progress | None) -> onnx.ModelProto:
    lowered = []
    for batch in (batch_a, batch_b):
        shapes = {v.name: (batch,) + tuple(v.shape[1:]) for v in graph.inputs}
        try:
            lowered.append(lower_model(record, shapes, progress if batch == batch_a else None))
        except UnsupportedOperatorError:
            raise  # not about the batch: the model cannot be lowered at all
        except LiteError as exc:
            raise _Mismatch(f"the model does not take batch {batch} ({exc})") from None
    (model, g_a), (other, g_b) = lowered
    for (name, va), (_, vb) in zip(g_a.outputs, g_b.outputs):
        if (not va.shape or va.shape[0] != batch_a or vb.shape[0] != batch_b
                or tuple(va.shape[1:]) != tuple(vb.shape[1:])):
            raise _Mismatch(f"output {name!r} does not carry the batch on dim 0 "
                            f"(shape {list(va.shape)} at batch {batch_a}, {list(vb.shape)} at batch {batch_b})")
    if _strip_names(model) != _strip_names(other):
        raise _Mismatch("the lowered graph's structure depends on the batch size", retry=True)
    inits_b = {t.name: numpy_helper.to_array(t) for t in other.graph.initializer}
    if set(inits_b) != {t.name for t in model.graph.initializer}:
        raise _Mismatch("the lowered graph's constants depend on the batch size", retry=True)

    g = model.graph
    batch_value = "dynamic_batch/batch"
    new_nodes, keep = [], []
    for init in g.initializer:
        a, b = numpy_helper.to_array(init), inits_b[init.name]
        if a.shape == b.shape and np.array_equal(a, b):
            keep.append(init)
            continue
        k = _batch_coefficients(a, b, batch_a, batch_b)
        if k is None:
            raise _Mismatch(f"constant {init.name!r} (shape {list(a.shape)}, {a.dtype}) depends on the batch "
                            f"size in a way we cannot express", retry=True)
        base = np.where(k != 0, 0, a).astype(np.int64)
        coeff_name, base_name = f"dynamic_batch/{init.name}/k", f"dynamic_batch/{init.name}/base"
        keep += [numpy_helper.from_array(k.astype(np.int64), coeff_name),
                 numpy_helper.from_array(base, base_name)]
        scaled = f"dynamic_batch/{init.name}/scaled"
        new_nodes += [helper.make_node("Mul", [batch_value, coeff_name], [scaled], name=scaled),
                      helper.make_node("Add", [scaled, base_name], [init.name], name=f"dynamic_batch/{init.name}")]
    if new_nodes:
        new_nodes.insert(0, helper.make_node("Shape", [g.input[0].name], [batch_value], name=batch_value,
                                             start=0, end=1))
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = new_nodes + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    for value in list(g.input) + list(g.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = BATCH_DIM
    return model


def export_onnx(record: ModelRecord, opset: int = OPSET, dynamic_batch: bool = False,
                progress: Progress | None = None, warn: Callable[[str], None] | None = None) -> onnx.ModelProto:
    """A standalone ONNX model of ``record``: the model's input and output names, static shapes (or a symbolic
    ``batch`` dim 0 with ``dynamic_batch``), opset ``opset`` (>= ``OPSET``)."""
    if opset < OPSET:
        raise ValueError(f"opset {opset} is older than the opset the lowering targets ({OPSET})")
    with cpu.portable():  # the file may run on another CPU: integer kernels exact on all of them
        if dynamic_batch:
            model = _dynamic_batch(record, progress)
        else:
            model, _ = lower_model(record, progress=progress)
    if opset > OPSET:
        model = _set_opset(model, opset, warn)
    model.producer_name = "megenginelite"
    model.producer_version = version
    helper.set_model_props(model, {"source": record.source.replace("\\", "/").rsplit("/", 1)[-1],
                                   "mge_version": mge_version_string(record.mge_version)})
    return model


def _set_opset(model: onnx.ModelProto, opset: int, warn: Callable[[str], None] | None) -> onnx.ModelProto:
    """Convert to a newer opset with onnx's version converter; if that fails, only raise the opset import (the
    operators we emit keep their meaning in later opsets), after checking the model against that opset."""
    from onnx import version_converter  # noqa: PLC0415

    try:
        converted = version_converter.convert_version(model, opset)
        onnx.checker.check_model(converted)
    except Exception as exc:  # the converter raises assorted errors for adapters it lacks
        if warn:
            warn(f"onnx.version_converter failed ({' '.join(str(exc).split())[:200]}); "
                 f"setting the opset import to {opset} without conversion")
        converted = onnx.ModelProto()
        converted.CopyFrom(model)
        for imp in converted.opset_import:
            if imp.domain in ("", "ai.onnx"):
                imp.version = opset
    converted.ir_version = max(converted.ir_version, helper.find_min_ir_version_for(list(converted.opset_import)))
    return converted
