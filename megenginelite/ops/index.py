"""Indexing and sorting: IndexingOneHot, IndexingSetOneHot, CondTake, TopK, Argsort, Cumsum and Linspace.

Each operator's param table, shape rule, fold rule and lowering (with the modes it declares) sit together.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOperatorError
from ..format.dtypes import FLOAT32, INT32
from ..format.params import expect_param, param_table
from ..graph.dims import Sym, dims_equal, product, sign
from ..graph.infer import INT_MAX, fail, fold_rule, norm_axis, same, shape_rule, value_dims
from ..graph.ir import Op
from ..lower.builder import Builder, lowering
from .shape import INT64_MIN

param_table(24, "Cumsum", [("axis", "i32", INT_MAX), ("exclusive", "bool", True), ("reverse", "bool", False)], "Cumsum")
param_table(25, "CondTake", [("mode", "u32", 0), ("val", "f32", 0.0), ("eps", "f32", 1e-6)])
param_table(26, "Argsort", [("order", "u32", 0)], "Argsort")
param_table(29, "Linspace", [("endpoint", "bool", True)])
param_table(44, "TopK", [("mode", "u32", 0)], "TopK")
expect_param(2, "IndexingOneHot", "IndexingSetOneHot")


TOPK_MODES = {0: "KTH_ONLY", 1: "VALUE_IDX_NOSORT", 2: "VALUE_IDX_SORTED"}


def one_hot_axis(op: Op) -> int:
    """The indexed axis of IndexingOneHot/IndexingSetOneHot; the index has the data's shape without it."""
    x, idx = op.inputs[0].shape, op.inputs[1].shape
    a = norm_axis(op, op.params.get("axis", 0), len(x))
    rest = x[:a] + x[a + 1:]
    if len(idx) != len(rest) or any(dims_equal(i, d) is False for i, d in zip(idx, rest)):
        raise fail(op, f"index shape {list(idx)} does not match data {list(x)} without axis {a}")
    return a


def one_hot_index(op: Op, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The index with the indexed axis put back as size 1 (for take/put_along_axis), range-checked."""
    a = one_hot_axis(op)
    if idx.size and (idx.min() < 0 or idx.max() >= x.shape[a]):
        raise fail(op, f"index values must lie in [0, {x.shape[a]}), got [{idx.min()}, {idx.max()}]")
    return np.expand_dims(idx.astype(np.int64), a)


def sort_order(x: np.ndarray, descending: bool) -> np.ndarray:
    """Row-wise sorting permutation with MegDNN's tie rule: ascending puts the lower index first, descending
    (``std::greater`` on (value, index) pairs) the higher one."""
    order = np.argsort(x, axis=-1, kind="stable")
    return order[..., ::-1] if descending else order


def topk_plan(op: Op) -> tuple[str, int | Sym]:
    """(mode name, signed k) of a TopK; k < 0 selects the |k| largest. k may be computed at run time (from a
    shape, e.g. ``min(n, 1000)``), as long as its sign is known."""
    mode = op.params.get("mode", 0)
    if mode not in TOPK_MODES:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: TopK mode {mode}")
    x = op.inputs[0].shape
    k = value_dims(op, op.inputs[1], "k")[0]
    if sign(k) == 0:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: k = {k!r} is computed at run time "
                                       f"with no known sign (largest or smallest)")
    if len(x) != 2 or (isinstance(k, int) and isinstance(x[1], int) and not 0 < abs(k) <= x[1]) or k == 0:
        raise fail(op, f"TopK needs a 2-D input and 0 < |k| <= row length, got {list(x)} and k={k}")
    return TOPK_MODES[mode], k


def topk_count(k: int | Sym) -> int | Sym:
    """|k| of a signed k."""
    return -k if sign(k) < 0 else k


COND_TAKE_MODES = {0: "EQ", 1: "NEQ", 2: "LT", 3: "LEQ", 4: "GT", 5: "GEQ"}


def cond_take_mode(op: Op) -> str:
    mode = op.params.get("mode", 0)
    if mode not in COND_TAKE_MODES:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: CondTake mode {mode}")
    return COND_TAKE_MODES[mode]


def cond_take_keep(op: Op, mask: np.ndarray) -> np.ndarray:
    """Which mask elements pass: EQ is |val - mask| < eps for floats (== for integers), NEQ its negation, the
    others compare the mask with ``val`` (cast to the mask's type)."""
    mode = cond_take_mode(op)
    val = np.asarray(op.params.get("val", 0.0), np.float32).astype(mask.dtype)
    if mode in ("EQ", "NEQ"):
        equal = (np.abs(val - mask) < np.float32(op.params.get("eps", 1e-6)) if mask.dtype.kind == "f"
                 else mask == val)
        return equal if mode == "EQ" else ~equal
    return {"LT": np.less, "LEQ": np.less_equal, "GT": np.greater, "GEQ": np.greater_equal}[mode](mask, val)


def cumsum_axis(op: Op) -> int:
    axis = op.params.get("axis", INT_MAX)
    if axis == INT_MAX:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: Cumsum without an axis")
    return norm_axis(op, axis, len(op.inputs[0].shape))


def _unsqueezed_index(b: Builder, op: Op) -> tuple[str, int]:
    a = one_hot_axis(op)
    return b.node("Unsqueeze", [b.inp(op, 1), b.ints([a], "axes")]), a


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


@shape_rule("IndexingOneHot")
def _indexing_one_hot_shape(op: Op):
    x = op.inputs[0]
    a = one_hot_axis(op)
    return [(x.shape[:a] + (1,) + x.shape[a + 1:], x.dtype)]


@fold_rule("IndexingOneHot")
def _indexing_one_hot_fold(op: Op, xs):
    x, idx = xs
    return [np.take_along_axis(x, one_hot_index(op, x, idx), one_hot_axis(op))]


@lowering("IndexingOneHot")
def lower_indexing_one_hot(b: Builder, op: Op) -> list[str]:
    """out[..., 0, ...] = x[..., index[...], ...] along the axis, which stays as size 1."""
    index, a = _unsqueezed_index(b, op)
    return [b.node("GatherElements", [b.inp(op, 0), index], axis=a)]


@shape_rule("IndexingSetOneHot")
def _indexing_set_one_hot_shape(op: Op):
    x, _, value = op.inputs
    a = one_hot_axis(op)
    if int(np.prod(value.shape)) != int(np.prod(x.shape)) // max(x.shape[a], 1):
        raise fail(op, f"value shape {list(value.shape)} does not match data {list(x.shape)} at axis {a}")
    return same(op)


@fold_rule("IndexingSetOneHot")
def _indexing_set_one_hot_fold(op: Op, xs):
    x, idx, value = xs
    index = one_hot_index(op, x, idx)
    out = x.copy()
    np.put_along_axis(out, index, value.reshape(index.shape).astype(x.dtype), one_hot_axis(op))
    return [out]


@lowering("IndexingSetOneHot")
def lower_indexing_set_one_hot(b: Builder, op: Op) -> list[str]:
    """A copy of data with data[..., index[...], ...] = value[..., 0, ...] along the axis."""
    index, a = _unsqueezed_index(b, op)
    shape = list(op.inputs[0].shape)
    shape[a] = 1
    value = b.reshape(b.inp(op, 2), shape)
    return [b.node("ScatterElements", [b.inp(op, 0), index, value], axis=a)]


@shape_rule("CondTake")
def _cond_take_shape(op: Op):
    data, mask = op.inputs[:2]
    cond_take_mode(op)
    if len(data.shape) != len(mask.shape) or any(dims_equal(a, b) is False for a, b in zip(data.shape, mask.shape)):
        raise fail(op, f"CondTake shape differs: data={list(data.shape)} mask={list(mask.shape)}")
    size = product(data.shape)
    count = Sym(bound=size if isinstance(size, int) else size.bound)
    return [((count,), data.dtype), ((count,), INT32)]


@fold_rule("CondTake")
def _cond_take_fold(op: Op, xs):
    keep = cond_take_keep(op, np.asarray(xs[1])).reshape(-1)
    return [np.asarray(xs[0]).reshape(-1)[keep], np.flatnonzero(keep).astype(np.int32)]


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


@shape_rule("TopK")
def _topk_shape(op: Op):
    mode, k = topk_plan(op)
    x = op.inputs[0]
    if mode == "KTH_ONLY":
        return [(x.shape[:1], x.dtype)]
    return [((x.shape[0], topk_count(k)), x.dtype), ((x.shape[0], topk_count(k)), INT32)]


@fold_rule("TopK")
def _topk_fold(op: Op, xs):
    mode, k = topk_plan(op)
    order = sort_order(xs[0], k < 0)[:, :abs(k)]
    values = np.take_along_axis(xs[0], order, -1)
    if mode == "KTH_ONLY":
        return [values[:, -1]]
    return [values, order.astype(np.int32)]


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


@shape_rule("Argsort")
def _argsort_shape(op: Op):
    x = op.inputs[0]
    if len(x.shape) != 2:
        raise fail(op, f"Argsort needs a 2-D input, got {list(x.shape)}")
    return [(x.shape, x.dtype), (x.shape, INT32)]


@fold_rule("Argsort")
def _argsort_fold(op: Op, xs):
    order = sort_order(xs[0], op.params.get("order", 0) == 1)
    return [np.take_along_axis(xs[0], order, -1), order.astype(np.int32)]


@lowering("Argsort", modes=["ASCENDING", "DESCENDING"])
def lower_argsort(b: Builder, op: Op) -> list[str]:
    """Each row sorted ascending (order 0) or descending (order 1), with the int32 permutation."""
    n = op.inputs[0].shape[1]
    return list(sorted_topk(b, b.inp(op, 0), n, n, op.params.get("order", 0) == 1))


@shape_rule("Cumsum")
def _cumsum_shape(op: Op):
    cumsum_axis(op)
    return same(op)


@fold_rule("Cumsum")
def _cumsum_fold(op: Op, xs):
    a, x, reverse = cumsum_axis(op), xs[0], op.params.get("reverse", False)
    out = np.cumsum(np.flip(x, a) if reverse else x, axis=a, dtype=x.dtype)
    if op.params.get("exclusive", True):
        out = np.roll(out, 1, a)
        out[(slice(None),) * a + (0,)] = 0
    return [np.flip(out, a) if reverse else out]


@lowering("Cumsum", modes=["inclusive", "exclusive", "reverse"])
def lower_cumsum(b: Builder, op: Op) -> list[str]:
    """Running sum along an axis; exclusive leaves out the current element, reverse sums from the end."""
    return [b.node("CumSum", [b.inp(op, 0), b.const(np.int64(cumsum_axis(op)))],
                   exclusive=int(op.params.get("exclusive", True)), reverse=int(op.params.get("reverse", False)))]


@shape_rule("Linspace")
def _linspace_shape(op: Op):
    num = value_dims(op, op.inputs[2], "number of points")[0]
    if isinstance(num, int) and num < 0:
        raise fail(op, f"negative number of points {num}")
    return [((num,), op.output_dtype or FLOAT32)]


@fold_rule("Linspace")
def _linspace_fold(op: Op, xs):
    """start + i * step in double precision, step = (stop - start) / (num - 1) (or / num without the endpoint)."""
    start, stop = (float(np.asarray(v).reshape(-1)[0]) for v in xs[:2])
    (shape, dtype), = _linspace_shape(op)
    n = shape[0]
    step = (stop - start) / max(float(n - 1 if op.params.get("endpoint", True) else n), 1.0)
    return [(start + np.arange(n, dtype=np.float64) * step).astype(dtype.np_dtype)]


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
