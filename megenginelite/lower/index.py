"""Lowerings of the one-hot indexing, sorting and sequence operators: IndexingOneHot, IndexingSetOneHot, TopK,
Argsort, Cumsum and Linspace."""

from __future__ import annotations

import numpy as np

from ..graph.dims import Sym, sign
from ..graph.infer_index import TOPK_MODES, cond_take_mode, cumsum_axis, one_hot_axis, topk_count, topk_plan
from ..graph.ir import Op
from .builder import Builder, lowering
from .shape import INT64_MIN


def _unsqueezed_index(b: Builder, op: Op) -> tuple[str, int]:
    a = one_hot_axis(op)
    return b.node("Unsqueeze", [b.inp(op, 1), b.ints([a], "axes")]), a


@lowering("IndexingOneHot")
def lower_indexing_one_hot(b: Builder, op: Op) -> list[str]:
    """out[..., 0, ...] = x[..., index[...], ...] along the axis, which stays as size 1."""
    index, a = _unsqueezed_index(b, op)
    return [b.node("GatherElements", [b.inp(op, 0), index], axis=a)]


@lowering("IndexingSetOneHot")
def lower_indexing_set_one_hot(b: Builder, op: Op) -> list[str]:
    """A copy of data with data[..., index[...], ...] = value[..., 0, ...] along the axis."""
    index, a = _unsqueezed_index(b, op)
    shape = list(op.inputs[0].shape)
    shape[a] = 1
    value = b.reshape(b.inp(op, 2), shape)
    return [b.node("ScatterElements", [b.inp(op, 0), index, value], axis=a)]


def sorted_topk(b: Builder, x: str, n: int, k: int, largest: bool) -> tuple[str, str]:
    """The k smallest (largest) entries of each row of ``x`` (rows of length n), sorted, with int32 indices.

    Ties follow MegDNN: the lower index first when ascending, the higher one first when descending; ONNX TopK
    always puts the lower index first, so the descending case runs on the reversed row.
    """
    if largest:
        x = b.node("Slice", [x, b.ints([-1]), b.ints([INT64_MIN]), b.ints([-1]), b.ints([-1])])
    values, indices = b.node("TopK", [x, b.ints([k])], n_out=2, axis=-1, largest=int(largest), sorted=1)
    if largest:
        last = b.const(np.int64(n - 1)) if not isinstance(n, Sym) else b.node("Sub", [b.dim(n), b.ints([1])])
        indices = b.node("Sub", [last, indices])
    return values, b.cast(indices, np.int32)


@lowering("TopK", modes=TOPK_MODES.values())
def lower_topk(b: Builder, op: Op) -> list[str]:
    """The |k| smallest (k > 0) or largest (k < 0) entries of each row and their indices; KTH_ONLY: the |k|-th."""
    mode, k = topk_plan(op)
    count = topk_count(k)
    values, indices = sorted_topk(b, b.inp(op, 0), op.inputs[0].shape[1], count, sign(k) < 0)
    if mode == "KTH_ONLY":
        last = b.const(np.int64(count - 1)) if not isinstance(count, Sym) else b.node("Squeeze", [
            b.node("Sub", [b.dim(count), b.ints([1])])])
        return [b.node("Gather", [values, last], axis=1)]
    return [values, indices]


@lowering("Argsort", modes=["ASCENDING", "DESCENDING"])
def lower_argsort(b: Builder, op: Op) -> list[str]:
    """Each row sorted ascending (order 0) or descending (order 1), with the int32 permutation."""
    n = op.inputs[0].shape[1]
    return list(sorted_topk(b, b.inp(op, 0), n, n, op.params.get("order", 0) == 1))


@lowering("Cumsum", modes=["inclusive", "exclusive", "reverse"])
def lower_cumsum(b: Builder, op: Op) -> list[str]:
    """Running sum along an axis; exclusive leaves out the current element, reverse sums from the end."""
    return [b.node("CumSum", [b.inp(op, 0), b.const(np.int64(cumsum_axis(op)))],
                   exclusive=int(op.params.get("exclusive", True)), reverse=int(op.params.get("reverse", False)))]


@lowering("Linspace")
def lower_linspace(b: Builder, op: Op) -> list[str]:
    """start + i * (stop - start) / (num - 1) for i < num (/ num without the endpoint), in double precision."""
    out = op.outputs[0]
    n = out.shape[0]
    start, stop = (b.cast(b.reshape(b.inp(op, i), [1]), np.float64) for i in (0, 1))
    if isinstance(n, Sym):  # a number of points computed at run time
        steps = n - 1 if op.params.get("endpoint", True) else n
        denominator = b.cast(b.node("Max", [b.dim(steps), b.ints([1])]), np.float64)
        arange = b.node("Range", [b.const(np.float64(0)), b.cast(b.scalar(n), np.float64), b.const(np.float64(1))])
    else:
        denominator = b.const(np.float64(max(n - 1 if op.params.get("endpoint", True) else n, 1)))
        arange = b.const(np.arange(n, dtype=np.float64), "arange")
    step = b.node("Div", [b.node("Sub", [stop, start]), denominator])
    values = b.node("Add", [start, b.node("Mul", [arange, step])])
    return [b.cast(values, out.dtype.np_dtype)]


@lowering("CondTake", modes=["EQ", "NEQ", "LT", "LEQ", "GT", "GEQ"])
def lower_cond_take(b: Builder, op: Op) -> list[str]:
    """The data elements (flattened) whose mask element passes the test against ``val``, and their flat
    indices (int32); the result's length is known only at run time."""
    mode = cond_take_mode(op)
    mask_var = op.inputs[1]
    mask = b.inp(op, 1)
    dt = mask_var.dtype.np_dtype
    val = b.const(np.asarray(op.params.get("val", 0.0), np.float32).astype(dt).reshape(()), "val")
    if mode in ("EQ", "NEQ"):
        if dt.kind == "f":
            diff = b.node("Abs", [b.node("Sub", [val, mask])])
            keep = b.node("Less", [diff, b.const(np.asarray(op.params.get("eps", 1e-6), dt).reshape(()), "eps")])
        else:
            keep = b.node("Equal", [mask, val])
        keep = keep if mode == "EQ" else b.node("Not", [keep])
    else:
        keep = b.node({"LT": "Less", "LEQ": "LessOrEqual", "GT": "Greater", "GEQ": "GreaterOrEqual"}[mode],
                      [mask, val])
    keep = b.reshape(keep, [-1])
    # Compress(x, keep) as Gather(x, NonZero(keep)): ONNX Runtime's CUDA Compress fails on an empty input (a
    # CondTake of a CondTake that kept nothing), seen on an H200
    chosen = b.node("Squeeze", [b.node("NonZero", [keep]), b.ints([0], "axes")])
    values = b.node("Gather", [b.reshape(b.inp(op, 0), [-1]), chosen], axis=0)
    return [values, b.cast(chosen, np.int32)]  # the flat positions kept are the indices
