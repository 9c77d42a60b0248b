"""Pooling and AdaptivePooling (MAX, AVERAGE, AVERAGE_COUNT_EXCLUDE_PADDING) in the plain and blocked formats.

Each operator's param table, shape rule, fold rule and lowering (with the modes it declares) sit together.
"""

from __future__ import annotations

from ..errors import UnsupportedOperatorError
from ..format.params import param_table
from ..graph.infer import const_ints, fail, shape_rule
from ..graph.ir import Op
from ..lower.builder import Builder, lowering
from .conv import BLOCKS, LAYOUTS, conv_layout, from_nchw, layout_shape, nchw_shape, spatial_out, to_nchw
from .elemwise import bind_units, to_units

param_table(9, "Pooling", [("mode", "u32", 0), ("pad_h", "u32", 0), ("pad_w", "u32", 0), ("stride_h", "u32", 2),
                           ("stride_w", "u32", 2), ("window_h", "u32", 2), ("window_w", "u32", 2), ("format", "u32", 0)],
            "Pooling")
param_table(70, "AdaptivePooling", [("mode", "u32", 0), ("format", "u32", 0)], "AdaptivePooling")


def adaptive_pooling_geometry(op: Op) -> tuple[list[int], list[int], list[int]]:
    """(output size, window, stride): stride = floor(in/out), window = in - (out-1)*stride."""
    x = op.inputs[0].shape
    out = const_ints(op, op.inputs[1], "output size")
    if len(out) == 1:
        out = out * 2
    strides = [i // o for i, o in zip(x[2:], out)]
    if min(strides, default=0) <= 0:
        raise fail(op, f"output size {out} is larger than the input {list(x)}")
    windows = [i - (o - 1) * s for i, o, s in zip(x[2:], out, strides)]
    return out, windows, strides


POOL_NAMES = ["MAX", "AVERAGE", "AVERAGE_COUNT_EXCLUDE_PADDING"]


POOL_MODES = {0: ("MaxPool", {}), 1: ("AveragePool", {"count_include_pad": 1}),
              2: ("AveragePool", {"count_include_pad": 0})}


@shape_rule("Pooling")
def _pooling_shape(op: Op):
    p = op.params
    layout, pack = conv_layout(op)
    x = op.inputs[0].shape
    if len(x) != (5 if BLOCKS[layout] else 4):
        raise fail(op, f"pooling input {list(x)} does not fit format {layout}")
    n, c, h, w = nchw_shape(x, layout)
    out = spatial_out(op, (h, w), (p["window_h"], p["window_w"]), (p["pad_h"], p["pad_w"]),
                      (p["stride_h"], p["stride_w"]))
    return [(layout_shape((n, c, *out), layout), op.inputs[0].dtype)]


@lowering("Pooling", modes=POOL_NAMES + [f"format {name}" for name, _ in LAYOUTS.values()])
def lower_pooling(b: Builder, op: Op) -> list[str]:
    """MAX / AVERAGE (padding counted or not) pooling with floor output size, NCHW or blocked layouts; quantized
    inputs are pooled in units of their scale (the output has the input's dtype) and rounded like MegDNN."""
    p = op.params
    mode = p.get("mode", 0)
    if mode not in POOL_MODES:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: Pooling mode {mode}")
    onnx_op, extra = POOL_MODES[mode]
    layout, _ = conv_layout(op)
    x = nchw_shape(op.inputs[0].shape, layout)
    value, dtype = b.quantized(op.inputs[0]) if op.inputs[0].dtype.quantized else (b.inp(op, 0), None)
    value = to_nchw(b, value, op.inputs[0].shape, layout)
    kernel, pads, strides = [p["window_h"], p["window_w"]], [p["pad_h"], p["pad_w"]], [p["stride_h"], p["stride_w"]]
    glob = kernel == list(x[2:]) and pads == [0, 0]
    if dtype and mode == 0 and not glob:  # a max of stored integers is the stored max (ONNX MaxPool takes 8-bit)
        out = b.node("MaxPool", [value], kernel_shape=kernel, pads=pads * 2, strides=strides)
        b.bind_quantized(op.outputs[0], from_nchw(b, out, op.outputs[0].shape, layout), dtype)
        return [None]
    value = to_units(b, value, dtype) if dtype else value
    if glob:
        out = b.node("GlobalMaxPool" if mode == 0 else "GlobalAveragePool", [value])
    else:
        out = b.node(onnx_op, [value], kernel_shape=kernel, pads=pads * 2, strides=strides, **extra)
    out = from_nchw(b, out, op.outputs[0].shape, layout)
    return [out] if dtype is None else bind_units(b, op.outputs[0], out)


@shape_rule("AdaptivePooling")
def _adaptive_pooling_shape(op: Op):
    x = op.inputs[0].shape
    out, _, _ = adaptive_pooling_geometry(op)
    return [((x[0], x[1], *out), op.inputs[0].dtype)]


@lowering("AdaptivePooling", modes=POOL_NAMES)
def lower_adaptive_pooling(b: Builder, op: Op) -> list[str]:
    """Pooling with stride floor(in/out) and window in-(out-1)*stride (MegEngine's rule, not PyTorch's)."""
    mode = op.params.get("mode", 0)
    if mode not in POOL_MODES:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: AdaptivePooling mode {mode}")
    out, windows, strides = adaptive_pooling_geometry(op)
    value, dtype = b.quantized(op.inputs[0]) if op.inputs[0].dtype.quantized else (b.inp(op, 0), None)
    value = to_units(b, value, dtype) if dtype else value
    if out == [1, 1]:
        value = b.node("GlobalMaxPool" if mode == 0 else "GlobalAveragePool", [value])
    else:
        onnx_op, extra = POOL_MODES[mode]
        value = b.node(onnx_op, [value], kernel_shape=windows, strides=strides, **extra)
    return [value] if dtype is None else bind_units(b, op.outputs[0], value)
