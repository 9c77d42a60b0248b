"""Lowerings of the normalization operators: GroupNorm, InstanceNorm, GeneralNorm, LRN and BatchNorm.

Statistics are computed in float32 (MegDNN accumulates in float32 or double whatever the storage dtype).
"""

from __future__ import annotations

import numpy as np

from ..graph.infer_nn import BN_PARAM_DIMS, bn_param_shape, general_norm_axes, group_norm_groups
from ..graph.ir import Op
from .builder import Builder, lowering


def normalize(b: Builder, x: str, axes: list[int], eps: float) -> tuple[str, str, str]:
    """((x - mean) / sqrt(var + eps), mean, var) over the axes (kept as size 1), with the biased variance."""
    mean = b.node("ReduceMean", [x, b.ints(axes, "axes")], keepdims=1)
    diff = b.node("Sub", [x, mean])
    var = b.node("ReduceMean", [b.node("Mul", [diff, diff]), b.ints(axes, "axes")], keepdims=1)
    std = b.node("Sqrt", [b.node("Add", [var, b.const(np.float32(eps))])])
    return b.node("Div", [diff, std]), mean, var


def _affine(b: Builder, op: Op, y: str, shape) -> str:
    """y * weight + bias with the weight and bias reshaped to broadcast as ``shape``, when the op is affine."""
    if not op.params.get("affine", True):
        return y
    weight, bias = (b.reshape(b.float32(op, i), shape) for i in (1, 2))
    return b.node("Add", [b.node("Mul", [y, weight]), bias])


@lowering("GroupNorm", "InstanceNorm")
def lower_group_norm(b: Builder, op: Op) -> list[str]:
    """Normalize each group of C/G channels (InstanceNorm: G = C), per-channel affine; outputs (y, mean, var)."""
    x = op.inputs[0]
    n, c = x.shape[:2]
    groups = group_norm_groups(op)
    y, mean, var = normalize(b, b.reshape(b.float32(op, 0), (n, groups, -1)), [2], op.params.get("eps", 1e-5))
    y = _affine(b, op, b.reshape(y, x.shape), (1, c, 1, 1))
    # MegDNN's kernel writes the variance (not 1 / std) into its third ("rstd") output
    return [b.from_float32(y, x.dtype.np_dtype), b.reshape(mean, (n, groups)), b.reshape(var, (n, groups))]


@lowering("GeneralNorm")
def lower_general_norm(b: Builder, op: Op) -> list[str]:
    """Normalize over axes [axis_start, axis_end) with an affine over those dims; outputs (y, mean, 1 / std)."""
    x = op.inputs[0]
    axes = general_norm_axes(op)
    eps = op.params.get("eps", 1e-5)
    y, mean, var = normalize(b, b.float32(op, 0), axes, eps)
    y = _affine(b, op, y, tuple(x.shape[axes[0]:axes[-1] + 1]) + (1,) * (len(x.shape) - axes[-1] - 1))
    rstd = b.node("Reciprocal", [b.node("Sqrt", [b.node("Add", [var, b.const(np.float32(eps))])])])
    stats = op.outputs[1].shape
    return [b.from_float32(y, x.dtype.np_dtype), b.reshape(mean, stats), b.reshape(rstd, stats)]


@lowering("LRN")
def lower_lrn(b: Builder, op: Op) -> list[str]:
    """x * (k + alpha * sum of x^2 over the n channels centred on each one)^-beta."""
    p = op.params
    n = p.get("n", 5)
    return [b.node("LRN", [b.inp(op, 0)], size=n, alpha=float(p.get("alpha", 1e-4)) * n,
                   beta=float(p.get("beta", 0.75)), bias=float(p.get("k", 2.0)))]


@lowering("BatchNorm", modes=[f"INFERENCE {d}" for d in BN_PARAM_DIMS.values()])
def lower_batch_norm(b: Builder, op: Op) -> list[str]:
    """Inference batch norm scale * (x - mean) / sqrt(var + eps) + bias; outputs (mean, var, reserve, y)."""
    x = op.inputs[0]
    shape = bn_param_shape(op)
    eps = float(op.params.get("epsilon", 1e-4))
    scale, bias, mean, var = (b.reshape(b.inp(op, i), shape) for i in range(1, 5))
    if BN_PARAM_DIMS[op.params.get("param_dim", 0)] == "DIM_1C11":
        flat = [b.reshape(v, (x.shape[1],)) for v in (scale, bias, mean, var)]
        y = b.node("BatchNormalization", [b.inp(op, 0), *flat], epsilon=eps)
    else:
        std = b.node("Sqrt", [b.node("Add", [var, b.const(np.asarray(eps, x.dtype.np_dtype))])])
        y = b.node("Add", [b.node("Mul", [scale, b.node("Div", [b.node("Sub", [b.inp(op, 0), mean]), std])]), bias])
    return [mean, var, None, y]
