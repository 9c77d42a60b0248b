"""Lowerings of the neural-network operators: convolution, pooling, matmul, softmax, normalization, arg-reductions."""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOperatorError
from ..format.dtypes import is_8bit_quantized
from ..graph.infer import REDUCE_MODES, reduce_plan
from ..graph.infer_nn import (adaptive_pooling_geometry, conv_geometry, conv_input_layout, conv_layout, deconv_geometry,
                               LAYOUTS, RELAYOUT_MODES, nchw_shape, onnx_filter, relayout_plan)
from ..graph.ir import Op
from ..graph.quant import dequantize as dequantize_array
from .builder import Builder, lowering
from .elemwise import bind_units, dequantize, quantize, to_units

NONLINEARITIES = {0: None, 1: "Relu", 2: "Sigmoid", 3: "HardSwish"}
CONV_MODES = ["CROSS_CORRELATION", "CONVOLUTION", "DENSE", "GROUP"] + [f"format {name}" for name, _ in LAYOUTS.values()]
POOL_NAMES = ["MAX", "AVERAGE", "AVERAGE_COUNT_EXCLUDE_PADDING"]


# layout -> (permutation to NC(H)(W) order before merging the channel blocks, permutation back)
_LAYOUT_PERMS = {"NHWC": ([0, 3, 1, 2], [0, 2, 3, 1]), "NHWCD4": ([0, 2, 4, 1, 3], [0, 3, 1, 4, 2])}
_BLOCKED_PERMS = ([0, 1, 4, 2, 3], [0, 1, 3, 4, 2])


def to_nchw(b: Builder, value: str, shape: tuple[int, ...], layout: str) -> str:
    """An image stored in ``layout`` (NHWC, NHWCD4, NCHWxx) as NCHW."""
    if layout == "NCHW":
        return value
    out = b.node("Transpose", [value], perm=_LAYOUT_PERMS.get(layout, _BLOCKED_PERMS)[0])
    return out if layout == "NHWC" else b.reshape(out, nchw_shape(shape, layout))


def from_nchw(b: Builder, value: str, shape: tuple[int, ...], layout: str) -> str:
    """An NCHW image stored as ``layout``; ``shape`` is its shape there."""
    if layout == "NCHW":
        return value
    if layout != "NHWC":
        n, c, h, w = nchw_shape(shape, layout)
        value = b.reshape(value, (n, c // shape[-1], shape[-1], h, w))
    return b.node("Transpose", [value], perm=_LAYOUT_PERMS.get(layout, _BLOCKED_PERMS)[1])


@lowering("RelayoutFormat", modes=RELAYOUT_MODES.values())
def lower_relayout_format(b: Builder, op: Op) -> list[str]:
    """Change an image's layout (NCHW, NHWC, NHWCD4, NCHW4, NCHW88), zero-padding channels to the new block."""
    src, dst, padded = relayout_plan(op)
    x = op.inputs[0].shape
    value = to_nchw(b, b.inp(op, 0), x, src)
    extra = padded[1] - nchw_shape(x, src)[1]
    if extra:
        value = b.node("Pad", [value, b.ints([0, 0, 0, 0, 0, extra, 0, 0], "pads")])
    return [from_nchw(b, value, op.outputs[0].shape, dst)]


def _integers(dtype) -> tuple[np.dtype, float]:
    """(storage dtype, zero point) of a quantized dtype; its values enter convolutions as float32 integers."""
    return dtype.np_dtype, float(dtype.zero_point or 0)


def _conv(b: Builder, op: Op, bias: str | None = None) -> str:
    """The convolution of an input in the op's layout (computed in NCHW with the filter unblocked); quantized
    inputs and filters enter as their integer values minus the zero point (the result is then in units of
    x_scale * w_scale)."""
    groups, oc, kernel, pads, strides, dilations = conv_geometry(op)
    layout, _ = conv_layout(op)
    x_var, w_var = op.inputs[:2]
    flip = op.params.get("mode", 0) == 1
    if w_var.is_const:
        w = onnx_filter(op, w_var.const)
        if w_var.dtype.quantized:
            w = w.astype(np.float32) - _integers(w_var.dtype)[1]
        weight = b.const(np.ascontiguousarray(w[..., ::-1, ::-1] if flip else w), "weight")
    elif flip or layout != "NCHW" or w_var.dtype.quantized:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: a computed filter with "
                                       f"CONVOLUTION mode, a blocked format or a quantized dtype")
    else:
        weight = b.inp(op, 1)
        if groups > 1:
            weight = b.reshape(weight, (oc, w_var.shape[2]) + tuple(kernel))
    x = b.inp(op, 0)
    if x_var.dtype.quantized:
        x = b.cast(x, np.float32)
        if _integers(x_var.dtype)[1]:
            x = b.node("Sub", [x, b.const(np.float32(_integers(x_var.dtype)[1]))])
    inputs = [to_nchw(b, x, x_var.shape, conv_input_layout(op)), weight] + ([bias] if bias else [])
    out = b.node("Conv", inputs, group=groups, kernel_shape=kernel, pads=pads * 2, strides=strides,
                 dilations=dilations)
    return from_nchw(b, out, op.outputs[0].shape, layout)


def _qlinear_conv(b: Builder, op: Op) -> bool:
    """A ConvBias/Convolution from 8-bit quantized tensors to an 8-bit quantized output with a constant filter,
    IDENTITY or RELU, no z, in ONNX Runtime's integer kernel (QLinearConv: exact int32 accumulators), QuantizedS8
    held shifted (``Builder.storage``); False for the other cases, which the float32 lowering takes. ONNX Runtime
    requantizes with acc * (x_scale * w_scale / y_scale) rounded half to even, MegDNN's x86 kernels with
    (acc * (x_scale * w_scale)) * (1 / y_scale) rounded half away from zero: one step apart on values within float
    rounding of a half (docs/compatibility.md)."""
    x_var, w_var = op.inputs[:2]
    out_dtype = op.outputs[0].dtype
    bias_var = op.inputs[2] if len(op.inputs) > 2 else None
    if (not all(is_8bit_quantized(dt) for dt in (x_var.dtype, w_var.dtype, out_dtype)) or not w_var.is_const
            or len(op.inputs) > 3 or op.params.get("nonlineMode", 0) not in (0, 1)
            or (bias_var is not None and not bias_var.is_const)):
        return False
    groups, oc, kernel, pads, strides, dilations = conv_geometry(op)
    w = onnx_filter(op, w_var.const)
    w = w[..., ::-1, ::-1] if op.params.get("mode", 0) == 1 else w
    unit = np.float32(x_var.dtype.scale) * np.float32(w_var.dtype.scale)
    x, x_held = b.shifted(x_var)  # ONNX Runtime's QLinearConv: input and output of one type, u8 the fast one
    out_held = b.storage(out_dtype)
    if x_held.np_dtype != out_held.np_dtype:
        return False
    inputs = [to_nchw(b, x, x_var.shape, conv_input_layout(op))]
    for dtype, value in ((x_held, None), (w_var.dtype, np.ascontiguousarray(w)), (out_held, None)):
        if value is not None:
            inputs.append(b.const(value, "weight"))
        inputs += [b.const(np.float32(dtype.scale)), b.const(np.asarray(dtype.zero_point or 0, dtype.np_dtype))]
    if bias_var is not None:
        bias = np.broadcast_to(dequantize_array(bias_var.const, bias_var.dtype).reshape(-1), (oc,)) / unit
        inputs.append(b.const(np.round(bias.astype(np.float64)).astype(np.int32), "bias"))
    out = b.node("QLinearConv", inputs, group=groups, kernel_shape=kernel, pads=pads * 2, strides=strides,
                 dilations=dilations)
    if op.params.get("nonlineMode", 0) == 1:  # relu in the quantized domain: max(q, zero point)
        out = b.node("Max", [out, b.const(np.asarray(out_held.zero_point or 0, out_held.np_dtype))])
    b.bind_quantized(op.outputs[0], from_nchw(b, out, op.outputs[0].shape, conv_layout(op)[0]), out_held)
    return True


@lowering("Convolution", modes=CONV_MODES)
def lower_convolution(b: Builder, op: Op) -> list[str]:
    """2-D convolution, dense or grouped, NCHW or blocked (NCHW44/88, NHWCD4); CONVOLUTION mode flips the kernel;
    quantized, it is a ConvBias without bias."""
    return lower_conv_bias(b, op) if op.inputs[0].dtype.quantized else [_conv(b, op)]


@lowering("ConvBias", modes=CONV_MODES + [f"nonlineMode {m}" for m in ("IDENTITY", "RELU", "SIGMOID", "H_SWISH")]
          + ["quantized (QuantizedS8 / Quantized8Asymm in, quantized or float out; 8-bit out with IDENTITY / RELU "
             "and no z: ONNX Runtime's QLinearConv)"])
def lower_conv_bias(b: Builder, op: Op) -> list[str]:
    """act(conv(x, w) + bias [+ z]); quantized inputs accumulate in integers and quantize to the output dtype."""
    mode = op.params.get("nonlineMode", 0)
    if mode not in NONLINEARITIES:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: ConvBias nonlineMode {mode}")
    if _qlinear_conv(b, op):
        return [None]
    x_dtype, out_dtype = op.inputs[0].dtype, op.outputs[0].dtype
    unit = np.float32(x_dtype.scale) * np.float32(op.inputs[1].dtype.scale) if x_dtype.quantized else None
    oc = conv_geometry(op)[1]
    bias_var = op.inputs[2] if len(op.inputs) > 2 else None
    conv_bias = None
    if bias_var is not None and bias_var.is_const and int(np.prod(bias_var.shape)) == oc:
        value = dequantize_array(bias_var.const, bias_var.dtype).reshape(oc)
        conv_bias = b.const((value / unit).astype(np.float32) if unit else value.astype(bias_var.const.dtype), "bias")
    out = _conv(b, op, conv_bias)
    if unit:
        out = b.node("Mul", [out, b.const(unit)])
    if bias_var is not None and conv_bias is None:
        out = b.node("Add", [out, dequantize(b, b.name(bias_var), bias_var.dtype) if unit else b.name(bias_var)])
    if len(op.inputs) > 3:
        out = b.node("Add", [out, dequantize(b, b.inp(op, 3), op.inputs[3].dtype) if unit else b.inp(op, 3)])
    act = NONLINEARITIES[mode]
    out = b.node(act, [out]) if act else out
    if out_dtype.quantized:
        return [quantize(b, out, out_dtype)]
    computed = np.float32 if unit else x_dtype.np_dtype
    return [b.cast(out, out_dtype.np_dtype) if out_dtype.np_dtype != computed else out]


POOL_MODES = {0: ("MaxPool", {}), 1: ("AveragePool", {"count_include_pad": 1}),
              2: ("AveragePool", {"count_include_pad": 0})}


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


def _transposed(b: Builder, op: Op, i: int, flag: bool, perm) -> str:
    var = op.inputs[i]
    if not flag:
        return b.name(var)
    if var.is_const:
        return b.const(np.ascontiguousarray(np.transpose(var.const, perm)), "matrix")
    return b.node("Transpose", [b.name(var)], perm=perm)


def _matmul(b: Builder, op: Op, a: str, c: str) -> str:
    """a @ c; quantized operands multiply in ONNX Runtime's integer kernel (MatMulInteger: exact int32
    accumulators, zero points subtracted), requantized when the output dtype is not the accumulator's."""
    x_dt, y_dt, out_dt = op.inputs[0].dtype, op.inputs[1].dtype, op.outputs[0].dtype
    if not x_dt.quantized:
        return b.node("MatMul", [a, c])
    zero_points = [b.const(np.asarray(dt.zero_point or 0, dt.np_dtype), "zp") for dt in (x_dt, y_dt)]
    acc = b.node("MatMulInteger", [a, c] + zero_points)
    unit = np.float32(x_dt.scale) * np.float32(y_dt.scale)
    if out_dt.name == "QuantizedS32" and np.isclose(out_dt.scale, unit, rtol=1e-6, atol=0):
        return acc
    real = b.node("Mul", [b.cast(acc, np.float32), b.const(unit)])
    return quantize(b, real, out_dt) if out_dt.quantized else b.cast(real, out_dt.np_dtype)


@lowering("MatrixMul", modes=["float", "quantized (QuantizedS8 / Quantized8Asymm -> QuantizedS32)"])
def lower_matrix_mul(b: Builder, op: Op) -> list[str]:
    """2-D A @ B with optional transposes of A and B."""
    if op.params.get("format", 0) != 0:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: MatrixMul format {op.params['format']}")
    ta, tb = op.params.get("transposeA", False), op.params.get("transposeB", False)
    if np.issubdtype(op.inputs[0].dtype.np_dtype, np.floating):
        return [b.node("Gemm", [b.inp(op, 0), b.inp(op, 1)], transA=int(ta), transB=int(tb))]
    return [_matmul(b, op, _transposed(b, op, 0, ta, [1, 0]), _transposed(b, op, 1, tb, [1, 0]))]


@lowering("BatchedMatrixMul", modes=["float", "quantized (QuantizedS8 / Quantized8Asymm -> QuantizedS32)"])
def lower_batched_matrix_mul(b: Builder, op: Op) -> list[str]:
    """3-D batched (B,M,K) @ (B,K,N) with optional transposes of the last two axes."""
    ta, tb = op.params.get("transposeA", False), op.params.get("transposeB", False)
    return [_matmul(b, op, _transposed(b, op, 0, ta, [0, 2, 1]), _transposed(b, op, 1, tb, [0, 2, 1]))]


@lowering("Softmax")
def lower_softmax(b: Builder, op: Op) -> list[str]:
    """Softmax along one axis."""
    return [b.node("Softmax", [b.inp(op, 0)], axis=op.params.get("axis", -1))]


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


REDUCE_ONNX = {0: "ReduceSum", 1: "ReduceSumSquare", 2: "ReduceProd", 3: "ReduceMin", 4: "ReduceMax", 5: "ReduceMean"}


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


@lowering("Argmax", "Argmin")
def lower_arg_reduce(b: Builder, op: Op) -> list[str]:
    """Index of the max/min along an axis, kept as size 1, as int32."""
    onnx_op = "ArgMax" if op.kind == "Argmax" else "ArgMin"
    idx = b.node(onnx_op, [b.inp(op, 0)], axis=op.params.get("axis", 0), keepdims=1, select_last_index=0)
    return [b.cast(idx, np.int32)]


@lowering("ConvolutionBackwardData", modes=["float", "quantized (QuantizedS8 / Quantized8Asymm)"])
def lower_deconvolution(b: Builder, op: Op) -> list[str]:
    """Transposed 2-D convolution; inputs are (filter, src), the filter first; quantized inputs accumulate in
    integers and are quantized to the output dtype."""
    groups, _, kernel, pads, strides, dilations = deconv_geometry(op)
    w_var = op.inputs[0]
    if not w_var.is_const:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: deconvolution with a computed filter")
    w = w_var.const
    if groups > 1:
        w = w.reshape((w.shape[0] * w.shape[1],) + w.shape[2:])
    if op.params.get("mode", 0) == 1:
        w = w[..., ::-1, ::-1]
    x_dtype, out_dtype = op.inputs[1].dtype, op.outputs[0].dtype
    x = b.inp(op, 1)
    if x_dtype.quantized:  # integers less zero points; the result is in units of x_scale * w_scale
        w = w.astype(np.float32) - np.float32(w_var.dtype.zero_point or 0)
        x = to_units(b, x, x_dtype)
    x_shape, out_shape = op.inputs[1].shape, op.outputs[0].shape
    natural = [(size - 1) * s - 2 * p + d * (k - 1) + 1
               for size, k, p, s, d in zip(x_shape[2:], kernel, pads, strides, dilations)]
    extra = [o - n for o, n in zip(out_shape[2:], natural)]
    if min(extra) < 0:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: output shape smaller than natural")
    out = b.node("ConvTranspose", [x, b.const(np.ascontiguousarray(w), "weight")], group=groups,
                 kernel_shape=kernel, pads=pads * 2, strides=strides, dilations=dilations, output_padding=extra)
    if not x_dtype.quantized:
        return [out]
    out = b.node("Mul", [out, b.const(np.float32(x_dtype.scale) * np.float32(w_var.dtype.scale))])
    return [quantize(b, out, out_dtype) if out_dtype.quantized else b.cast(out, out_dtype.np_dtype)]
