"""Reductions: Reduce (SUM, SUM_SQR, PRODUCT, MIN, MAX, MEAN over one axis or to a target shape), Argmax, Argmin.

Each operator's param table, shape rule, fold rule and lowering (with the modes it declares) sit together.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOperatorError
from ..format.dtypes import INT32
from ..format.params import expect_param, param_table
from ..graph.dims import dims_equal, product
from ..graph.infer import INT_MAX, fail, fold_rule, norm_axis, shape_rule, value_dims
from ..graph.ir import Op
from ..lower.builder import Builder, lowering

param_table(23, "Reduce", [("mode", "u32", 0), ("axis", "i32", INT_MAX), ("data_type", "u32", 0)], "Reduce")
expect_param(2, "Argmax", "Argmin")


REDUCE_MODES = {0: "SUM", 1: "SUM_SQR", 2: "PRODUCT", 3: "MIN", 4: "MAX", 5: "MEAN"}


def reduce_plan(op: Op) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(axes reduced, output shape) of a Reduce; the axis form keeps the reduced dim as size 1."""
    x = op.inputs[0]
    axis = op.params.get("axis", INT_MAX)
    if axis != INT_MAX:
        a = norm_axis(op, axis, len(x.shape))
        return (a,), x.shape[:a] + (1,) + x.shape[a + 1:]
    if len(op.inputs) < 2:
        raise fail(op, "Reduce without an axis needs a target shape input")
    target = tuple(value_dims(op, op.inputs[1], "target shape"))
    if target == (1,) or len(target) != len(x.shape):
        if product(target) != 1:
            raise fail(op, f"cannot reduce {list(x.shape)} to {list(target)}")
        return tuple(range(len(x.shape))), target
    axes = tuple(i for i, (a, b) in enumerate(zip(x.shape, target)) if dims_equal(a, b) is not True)
    if any(target[i] != 1 for i in axes):
        raise fail(op, f"cannot reduce {list(x.shape)} to {list(target)}")
    return axes, target


REDUCE_ONNX = {0: "ReduceSum", 1: "ReduceSumSquare", 2: "ReduceProd", 3: "ReduceMin", 4: "ReduceMax", 5: "ReduceMean"}


@shape_rule("Reduce")
def _reduce_shape(op: Op):
    mode = op.params.get("mode", 0)
    if mode not in REDUCE_MODES:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: Reduce mode {mode}")
    return [(reduce_plan(op)[1], op.inputs[0].dtype)]


@fold_rule("Reduce", symbolic=True)
def _reduce_fold(op: Op, xs):
    axes, shape = reduce_plan(op)
    x = xs[0]
    fn = {0: np.sum, 2: np.prod, 3: np.min, 4: np.max, 5: np.mean}.get(op.params.get("mode", 0))
    value = np.sum(x * x, axis=axes) if fn is None else fn(x, axis=axes)
    return [np.asarray(value).astype(x.dtype).reshape(shape)]


@lowering("Reduce", modes=REDUCE_MODES.values())
def lower_reduce(b: Builder, op: Op) -> list[str]:
    """SUM / SUM_SQR / PRODUCT / MIN / MAX / MEAN along one axis (kept as size 1) or down to a target shape."""
    mode = op.params.get("mode", 0)
    if mode not in REDUCE_MODES:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: Reduce mode {mode}")
    axes, out_shape = reduce_plan(op)
    out = b.node(REDUCE_ONNX[mode], [b.inp(op, 0), b.ints(axes, "axes")], keepdims=1)
    if tuple(out_shape) != tuple(1 if i in axes else d for i, d in enumerate(op.inputs[0].shape)):
        out = b.reshape(out, out_shape)
    return [out]


@shape_rule("Argmax", "Argmin")
def _argmax_shape(op: Op):
    x = op.inputs[0].shape
    a = norm_axis(op, op.params.get("axis", 0), len(x))
    return [(x[:a] + (1,) + x[a + 1:], INT32)]


@lowering("Argmax", "Argmin")
def lower_arg_reduce(b: Builder, op: Op) -> list[str]:
    """Index of the max/min along an axis, kept as size 1, as int32."""
    onnx_op = "ArgMax" if op.kind == "Argmax" else "ArgMin"
    idx = b.node(onnx_op, [b.inp(op, 0)], axis=op.params.get("axis", 0), keepdims=1, select_last_index=0)
    return [b.cast(idx, np.int32)]
