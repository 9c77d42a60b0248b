"""Normalizations: BatchNorm (inference), LayerNorm, GroupNorm, InstanceNorm, GeneralNorm, LRN and Softmax.

Each operator's param table, shape rule, fold rule and lowering (with the modes it declares) sit together.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOperatorError
from ..format.dtypes import BYTE, FLOAT32
from ..format.params import param_table
from ..graph.infer import fail, norm_axis, same, shape_rule
from ..graph.ir import Op
from ..lower.builder import Builder, lowering
from .conv import NCHW

param_table(10, "LRN", [("n", "u32", 5), ("k", "f32", 2.0), ("alpha", "f32", 1e-4), ("beta", "f32", 0.75)], "LRN")
param_table(11, "BN", [("param_dim", "u32", 0), ("fwd_mode", "u32", 0), ("epsilon", "f64", 1e-4),
                       ("avg_factor", "f64", 1.0), ("scale", "f32", 1.0), ("bias", "f32", 0.0)], "BatchNorm")
param_table(85, "LayerNorm", [("affine", "bool", True), ("eps", "f32", 1e-5), ("normalized_dim", "u64", 1),
                              ("normalized_size", "u64", 1)], "LayerNorm")
param_table(90, "Softmax", [("axis", "i32", -1)], "Softmax")
param_table(92, "GroupNorm", [("affine", "bool", True), ("eps", "f32", 1e-5), ("group", "u32", 1), ("format", "u32", 0)],
            "GroupNorm", "InstanceNorm")
param_table(94, "GeneralNorm", [("affine", "bool", True), ("eps", "f32", 1e-5), ("axis_start", "u64", 0),
                                ("axis_end", "u64", 0)])


def group_norm_groups(op: Op) -> int:
    """Groups of a GroupNorm (its param) or InstanceNorm (one per channel; its stored param is unreliable)."""
    x = op.inputs[0].shape
    if len(x) != 4 or op.params.get("format", NCHW) != NCHW:
        raise fail(op, f"{op.kind} needs a 4-D NCHW input, got {list(x)}")
    groups = x[1] if op.kind == "InstanceNorm" else op.params.get("group", 1)
    if groups <= 0 or x[1] % groups:
        raise fail(op, f"{x[1]} channels do not split into {groups} groups")
    return groups


def general_norm_axes(op: Op) -> list[int]:
    x = op.inputs[0].shape
    start, end = op.params.get("axis_start", 0), op.params.get("axis_end", 0)
    if not 0 <= start < end <= len(x):
        raise fail(op, f"normalized axes [{start}, {end}) do not fit input {list(x)}")
    return list(range(start, end))


BN_PARAM_DIMS = {0: "DIM_11HW", 1: "DIM_1CHW", 2: "DIM_1C11", 3: "DIM_111C"}


def bn_param_shape(op: Op) -> tuple[int, ...]:
    """The shape BatchNorm's scale/bias/mean/variance take for its param_dim (they may be stored otherwise)."""
    x = op.inputs[0].shape
    if len(x) != 4 or op.params.get("fwd_mode", 0) != 1:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: BatchNorm needs a 4-D input and "
                                       f"fwd_mode INFERENCE, got {list(x)} and fwd_mode {op.params.get('fwd_mode')}")
    dim = BN_PARAM_DIMS.get(op.params.get("param_dim", 0), "?")
    keep = {"DIM_11HW": (2, 3), "DIM_1CHW": (1, 2, 3), "DIM_1C11": (1,), "DIM_111C": (3,)}.get(dim)
    if keep is None:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: BatchNorm param_dim {dim}")
    return tuple(d if i in keep else 1 for i, d in enumerate(x))


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


@shape_rule("Softmax")
def _softmax_shape(op: Op):
    norm_axis(op, op.params.get("axis", -1), len(op.inputs[0].shape))
    return same(op)


@lowering("Softmax")
def lower_softmax(b: Builder, op: Op) -> list[str]:
    """Softmax along one axis."""
    return [b.node("Softmax", [b.inp(op, 0)], axis=op.params.get("axis", -1))]


@shape_rule("LayerNorm")
def _layernorm_shape(op: Op):
    x = op.inputs[0]
    nd = op.params.get("normalized_dim", 1)
    if not 0 < nd <= len(x.shape):
        raise fail(op, f"normalized_dim {nd} does not fit input {list(x.shape)}")
    lead = x.shape[:-nd] or (1,)
    return [(x.shape, x.dtype), (lead, x.dtype), (lead, x.dtype)]


@lowering("LayerNorm")
def lower_layer_norm(b: Builder, op: Op) -> list[str]:
    """Normalize over the last ``normalized_dim`` dims, optional affine; outputs (y, mean, rstd)."""
    x = op.inputs[0]
    nd = op.params.get("normalized_dim", 1)
    norm_shape = x.shape[-nd:]
    dt = x.dtype.np_dtype
    if op.params.get("affine", True):
        scale, bias = b.inp(op, 1), b.inp(op, 2)
    else:
        scale, bias = b.const(np.ones(norm_shape, dt), "ones"), b.const(np.zeros(norm_shape, dt), "zeros")
    y, mean, rstd = b.node("LayerNormalization", [b.name(x), scale, bias], n_out=3, axis=-nd,
                           epsilon=float(op.params.get("eps", 1e-5)))
    lead = op.outputs[1].shape
    return [y, b.reshape(mean, lead), b.reshape(rstd, lead)]


@shape_rule("GroupNorm", "InstanceNorm")
def _group_norm_shape(op: Op):
    x = op.inputs[0]
    stats = ((x.shape[0], group_norm_groups(op)), FLOAT32)
    return [(x.shape, x.dtype), stats, stats]


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


@shape_rule("GeneralNorm")
def _general_norm_shape(op: Op):
    x = op.inputs[0]
    axes = general_norm_axes(op)
    stats = (tuple(d for i, d in enumerate(x.shape) if i not in axes) or (1,), FLOAT32)
    return [(x.shape, x.dtype), stats, stats]


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


@shape_rule("LRN")
def _lrn_shape(op: Op):
    if len(op.inputs[0].shape) != 4 or op.params.get("n", 5) % 2 == 0:
        raise fail(op, f"LRN needs a 4-D NCHW input and an odd window, got {list(op.inputs[0].shape)}, "
                       f"n={op.params.get('n')}")
    return same(op)


@lowering("LRN")
def lower_lrn(b: Builder, op: Op) -> list[str]:
    """x * (k + alpha * sum of x^2 over the n channels centred on each one)^-beta."""
    p = op.params
    n = p.get("n", 5)
    return [b.node("LRN", [b.inp(op, 0)], size=n, alpha=float(p.get("alpha", 1e-4)) * n,
                   beta=float(p.get("beta", 0.75)), bias=float(p.get("k", 2.0)))]


@shape_rule("BatchNorm")
def _batch_norm_shape(op: Op):
    """Outputs (save_mean, save_variance, reserve, y); y is the last."""
    x = op.inputs[0]
    stats = (bn_param_shape(op), op.inputs[1].dtype)
    return [stats, stats, ((0,), BYTE), (x.shape, x.dtype)]


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
