"""Shape, dtype and fold rules of the one-hot indexing, sorting and sequence operators:
IndexingOneHot, IndexingSetOneHot, TopK, Argsort, Cumsum and Linspace."""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOperatorError
from ..format.dtypes import FLOAT32, INT32
from .dims import Sym, dims_equal, product, sign
from .infer import INT_MAX, fail, fold_rule, norm_axis, same, shape_rule, value_dims
from .ir import Op

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


@shape_rule("IndexingOneHot")
def _indexing_one_hot_shape(op: Op):
    x = op.inputs[0]
    a = one_hot_axis(op)
    return [(x.shape[:a] + (1,) + x.shape[a + 1:], x.dtype)]


@fold_rule("IndexingOneHot")
def _indexing_one_hot_fold(op: Op, xs):
    x, idx = xs
    return [np.take_along_axis(x, one_hot_index(op, x, idx), one_hot_axis(op))]


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


def cumsum_axis(op: Op) -> int:
    axis = op.params.get("axis", INT_MAX)
    if axis == INT_MAX:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: Cumsum without an axis")
    return norm_axis(op, axis, len(op.inputs[0].shape))


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
