"""Convolutions: Convolution, ConvBias, ConvolutionBackwardData, Convolution3D, Local/GroupLocal, DeformableConv,
Images2Neibs, and the RelayoutFormat layout transforms of the blocked (NCHW44, NCHW88, NHWCD4) formats they use.

Each operator's param table, shape rule, fold rule and lowering (with the modes it declares) sit together.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOperatorError
from ..format.dtypes import is_8bit_quantized
from ..format.params import param_table
from ..graph import cpu
from ..graph.infer import const_ints, fail, shape_rule
from ..graph.ir import Op
from ..graph.quant import dequantize as dequantize_array
from ..lower.builder import Builder, lowering, shifted_array, shifted_dtype
from .elemwise import dequantize, quantize, to_units
from .image import gather_bilinear

_CONV_SPATIAL = [("pad_h", "u32", 0), ("pad_w", "u32", 0), ("stride_h", "u32", 1), ("stride_w", "u32", 1),
                 ("dilate_h", "u32", 1), ("dilate_w", "u32", 1)]
param_table(3, "Convolution", [("mode", "u32", 0), *_CONV_SPATIAL, ("sparse", "u32", 0), ("format", "u32", 0),
                               ("compute_mode", "u32", 0)], "Convolution", "ConvolutionBackwardData")
param_table(6, "ConvBias", [("nonlineMode", "u32", 0), ("mode", "u32", 0), ("sparse", "u32", 0), ("format", "u32", 0),
                            *_CONV_SPATIAL, ("compute_mode", "u32", 0)], "ConvBiasForward")
param_table(8, "Images2Neibs", [*_CONV_SPATIAL, ("window_h", "u32", 3), ("window_w", "u32", 3)])
param_table(41, "Convolution3D", [("mode", "u32", 0), *[(f"pad_{d}", "u32", 0) for d in "dhw"],
                                  *[(f"stride_{d}", "u32", 1) for d in "dhw"],
                                  *[(f"dilate_{d}", "u32", 1) for d in "dhw"],
                                  ("sparse", "u32", 0), ("data_type", "u32", 0), ("format", "u32", 0)])
param_table(45, "RelayoutFormat", [("mode", "u32", 0), ("oc", "u32", 0), ("group", "u32", 1)])


def conv3d_geometry(op: Op) -> tuple[int, int, list[int], list[int], list[int], list[int]]:
    """(groups, out channels, kernel, pads, strides, dilations) of an NCDHW Convolution3D."""
    p = op.params
    x, w = op.inputs[0].shape, op.inputs[1].shape
    if p.get("format", 0) != 0 or len(x) != 5:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: Convolution3D needs NCDHW, got "
                                       f"format {p.get('format')} and input {list(x)}")
    sparse = p.get("sparse", 0)
    if (sparse, len(w)) not in ((0, 5), (1, 6)):
        raise fail(op, f"filter {list(w)} does not fit sparse={sparse}")
    groups, oc, icpg, kernel = (1, w[0], w[1], list(w[2:])) if sparse == 0 else (w[0], w[0] * w[1], w[2], list(w[3:]))
    if x[1] != groups * icpg:
        raise fail(op, f"input has {x[1]} channels, the filter {list(w)} expects {groups * icpg}")
    dims = "dhw"
    return (groups, oc, kernel, [p.get(f"pad_{d}", 0) for d in dims], [p.get(f"stride_{d}", 1) for d in dims],
            [p.get(f"dilate_{d}", 1) for d in dims])


def local_geometry(op: Op) -> tuple[int, int, int, list[int], list[int], list[int], list[int]]:
    """(groups, in channels per group, out channels per group, output size, kernel, pads, strides) of a
    Local/GroupLocal, whose filter is (G, OH, OW, IC/G, FH, FW, OC/G) (Local: without G)."""
    p = op.params
    x, w = op.inputs[0].shape, op.inputs[1].shape
    w = w if len(w) == 7 else (1,) + tuple(w)
    if len(x) != 4 or len(w) != 7 or x[1] != w[0] * w[3] or p.get("format", 0) != 0:
        raise fail(op, f"input {list(x)} and filter {list(op.inputs[1].shape)} do not fit a local convolution")
    if (p.get("dilate_h", 1), p.get("dilate_w", 1)) != (1, 1):
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: dilated local convolution")
    kernel, pads = list(w[4:6]), [p.get("pad_h", 0), p.get("pad_w", 0)]
    strides = [p.get("stride_h", 1), p.get("stride_w", 1)]
    out = spatial_out(op, x[2:], kernel, pads, strides)
    if out != list(w[1:3]):
        raise fail(op, f"the filter is for a {list(w[1:3])} output, the input gives {out}")
    return w[0], w[3], w[6], out, kernel, pads, strides


def deformable_geometry(op: Op) -> tuple[int, list[int], int]:
    """(deformable groups, output size, out channels) of a DeformableConv (inputs x, filter, offset, mask)."""
    x, offset, mask = op.inputs[0].shape, op.inputs[2].shape, op.inputs[3].shape
    groups, oc, kernel, pads, strides, dilations = conv_geometry(op)
    out = spatial_out(op, x[2:], kernel, pads, strides, dilations)
    taps = kernel[0] * kernel[1]
    dg = offset[1] // (2 * taps) if len(offset) == 4 else 0
    if dg <= 0 or offset != (x[0], 2 * dg * taps, *out) or mask != (x[0], dg * taps, *out) or x[1] % dg:
        raise fail(op, f"offset {list(offset)} / mask {list(mask)} do not fit input {list(x)} and kernel {kernel}")
    return dg, out, oc


NCHW = 0




# Channel-blocked image layouts of the layout transforms: format value -> (name, block size). NCHWxx stores
# (N, C/p, H, W, p); NHWCD4 stores (N, H, C/4, W, 4).
LAYOUTS = {0: ("NCHW", 0), 2: ("NHWCD4", 4), 6: ("NCHW88", 8), 7: ("NCHW44", 4), 8: ("NCHW44_DOT", 4)}


# Blocked filter layouts: (layout, sparse, ndim) -> permutation to (OC-major, OC-minor, IC-major, IC-minor, KH, KW)
# order (then reshaped to ONNX's (OC, IC/groups, KH, KW)). NCHW44/NCHW88 blocks are (IC, OC), NCHW44_DOT (OC, IC).
_BLOCKED_FILTERS = {
    ("NCHW44", 0, 6): (0, 5, 1, 4, 2, 3),  # dense (OC/p, IC/p, KH, KW, p, p)
    ("NCHW44_DOT", 0, 6): (0, 4, 1, 5, 2, 3),
    ("NCHW44", 0, 5): (0, 4, 3, 1, 2),  # hybrid first layer (OC/p, KH, KW, IC, p), NCHW input
    ("NCHW44", 1, 6): (0, 5, 1, 2, 3, 4),  # channel-wise (G/p, 1, 1, KH, KW, p)
    ("NCHW44", 1, 7): (0, 1, 6, 2, 5, 3, 4),  # group (G, OCPG/p, ICPG/p, KH, KW, p, p)
    ("NCHW44_DOT", 1, 7): (0, 1, 5, 2, 6, 3, 4),
    ("NHWCD4", 0, 5): (0, 4, 3, 1, 2),  # dense (OC/4, KH, KW, IC, 4)
    ("NHWCD4", 1, 5): (0, 4, 1, 2, 3),  # channel-wise (G/4, 1, KH, KW, 4)
    ("NHWCD4", 1, 6): (0, 1, 5, 4, 2, 3),  # group (G, OCPG/4, KH, KW, ICPG, 4)
}


def conv_layout(op: Op) -> tuple[str, int]:
    """(layout name, block size) of a convolution/pooling format; NCHW88 shares NCHW44's filter layouts."""
    fmt = op.params.get("format", NCHW)
    if fmt not in LAYOUTS:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: format {fmt} (NCHW, NHWCD4, "
                                       f"NCHW44, NCHW44_DOT and NCHW88 are supported)")
    return LAYOUTS[fmt]


def _filter_key(op: Op) -> tuple[str, int, int]:
    name, _ = conv_layout(op)
    return ("NCHW44" if name == "NCHW88" else name, op.params.get("sparse", 0), len(op.inputs[1].shape))


def filter_meta(op: Op) -> tuple[int, int, int, list[int]]:
    """(groups, out channels, in channels per group, kernel) of a Convolution/ConvBias filter."""
    w, (name, p) = op.inputs[1].shape, conv_layout(op)
    key = _filter_key(op)
    meta = {
        ("NCHW", 0, 4): lambda: (1, w[0], w[1], w[2:4]),
        ("NCHW", 1, 5): lambda: (w[0], w[0] * w[1], w[2], w[3:5]),
        ("NCHW44", 0, 6): lambda: (1, w[0] * p, w[1] * p, w[2:4]),
        ("NCHW44_DOT", 0, 6): lambda: (1, w[0] * p, w[1] * p, w[2:4]),
        ("NCHW44", 0, 5): lambda: (1, w[0] * p, w[3], w[1:3]),
        ("NCHW44", 1, 6): lambda: (w[0] * p, w[0] * p, 1, w[3:5]),
        ("NCHW44", 1, 7): lambda: (w[0], w[0] * w[1] * p, w[2] * p, w[3:5]),
        ("NCHW44_DOT", 1, 7): lambda: (w[0], w[0] * w[1] * p, w[2] * p, w[3:5]),
        ("NHWCD4", 0, 5): lambda: (1, w[0] * 4, w[3], w[1:3]),
        ("NHWCD4", 1, 5): lambda: (w[0] * 4, w[0] * 4, 1, w[2:4]),
        ("NHWCD4", 1, 6): lambda: (w[0], w[0] * w[1] * 4, w[4], w[2:4]),
    }.get(key)
    if meta is None or (name != "NCHW" and w[-1] != p):
        raise fail(op, f"filter shape {list(w)} does not fit sparse={key[1]} format {name}")
    groups, oc, icpg, kernel = meta()
    return groups, oc, icpg, list(kernel)


def onnx_filter(op: Op, w: np.ndarray) -> np.ndarray:
    """A constant filter in ONNX Conv layout (OC, IC/groups, KH, KW), unblocked from the op's format."""
    _, oc, icpg, kernel = filter_meta(op)
    perm = _BLOCKED_FILTERS.get(_filter_key(op))
    return np.ascontiguousarray((np.transpose(w, perm) if perm else w).reshape(oc, icpg, *kernel))


BLOCKS = {"NCHW": 0, "NHWC": 0, "NHWCD4": 4, "NCHW4": 4, "NCHW44": 4, "NCHW44_DOT": 4, "NCHW88": 8}


def nchw_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """The NCHW shape of an image stored in ``layout``."""
    if layout == "NCHW":
        return tuple(shape)
    if layout == "NHWC":
        return (shape[0], shape[3], shape[1], shape[2])
    if layout == "NHWCD4":
        return (shape[0], shape[2] * 4, shape[1], shape[3])
    return (shape[0], shape[1] * shape[4], *shape[2:4])


def layout_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """The shape of an NCHW image (N, C, H, W) stored in ``layout`` (C a multiple of the layout's block)."""
    n, c, h, w = shape
    block = BLOCKS[layout]
    if layout == "NHWC":
        return (n, h, w, c)
    if layout == "NHWCD4":
        return (n, h, c // 4, w, 4)
    return (n, c // block, h, w, block) if block else tuple(shape)


def conv_input_layout(op: Op) -> str:
    """The layout of a convolution's input: the op's, except NCHW for the NCHW44 hybrid first layer."""
    return "NCHW" if _filter_key(op) == ("NCHW44", 0, 5) else conv_layout(op)[0]


# RelayoutFormat modes on images (value -> name); channels are zero-padded to the destination layout's block.
# The weight-relayout modes only occur on folded constants.
RELAYOUT_MODES = {0: "NHWC_NHWCD4", 1: "NHWCD4_NHWC", 2: "NHWC_NHWCD4I", 3: "NCHW_NHWCD4", 4: "NCHW_NHWCD4I",
                  5: "NHWCD4I_NCHW", 6: "NHWCD4_NCHW", 20: "NCHW_NCHW88", 21: "NCHW88_NCHW", 22: "NCHW_NCHW4_IC_SMALL",
                  24: "NCHW_NCHW4", 25: "NCHW4_NCHW", 29: "NCHW_NHWC", 30: "NHWC_NCHW", 31: "NHWCD4I_NHWC"}


def relayout_plan(op: Op) -> tuple[str, str, tuple[int, ...]]:
    """(source layout, destination layout, padded NCHW shape) of a RelayoutFormat."""
    mode = op.params.get("mode", 0)
    if mode not in RELAYOUT_MODES:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: RelayoutFormat mode {mode}")
    # "<source>_<destination>"; the image variants (NHWCD4I) and NCHW4_IC_SMALL store like NHWCD4 and NCHW4
    src, dst = (name.replace("_IC_SMALL", "").removesuffix("I") for name in RELAYOUT_MODES[mode].split("_", 1))
    x = op.inputs[0].shape
    if len(x) != (5 if BLOCKS[src] else 4):
        raise fail(op, f"input {list(x)} is not a {src} image")
    n, c, h, w = nchw_shape(x, src)
    block = max(BLOCKS[dst], 1)
    return src, dst, (n, -(-c // block) * block, h, w)


def conv_geometry(op: Op) -> tuple[int, int, list[int], list[int], list[int], list[int]]:
    """(groups, out channels, kernel, pads, strides, dilations) of a Convolution/ConvBias."""
    p = op.params
    groups, oc, _, kernel = filter_meta(op)
    pads = [p.get("pad_h", 0), p.get("pad_w", 0)]
    strides = [p.get("stride_h", 1), p.get("stride_w", 1)]
    dilations = [p.get("dilate_h", 1), p.get("dilate_w", 1)]
    return groups, oc, kernel, pads, strides, dilations


def conv_out_shape(op: Op) -> tuple[int, ...]:
    """Output shape in the op's layout (the NCHW44 hybrid first layer takes an NCHW input)."""
    layout, pack = conv_layout(op)
    x, in_layout = op.inputs[0].shape, conv_input_layout(op)
    if len(x) != (5 if BLOCKS[in_layout] else 4) or (len(x) == 5 and x[4] != pack):
        raise fail(op, f"convolution input {list(x)} does not fit format {layout}")
    x = nchw_shape(x, in_layout)
    groups, oc, kernel, pads, strides, dilations = conv_geometry(op)
    icpg = filter_meta(op)[2]
    if x[1] != icpg * groups:
        raise fail(op, f"input has {x[1]} channels, the filter {list(op.inputs[1].shape)} expects {icpg * groups}")
    return layout_shape((x[0], oc, *spatial_out(op, x[2:], kernel, pads, strides, dilations)), layout)


def spatial_out(op: Op, sizes, kernel, pads, strides, dilations=(1, 1)) -> list[int]:
    """floor((size + 2 pad - dilation (k - 1) - 1) / stride) + 1 per spatial dim, which must be positive."""
    out = [(size + 2 * pad - d * (k - 1) - 1) // s + 1
           for size, k, pad, s, d in zip(sizes, kernel, pads, strides, dilations)]
    if min(out) <= 0:
        raise fail(op, f"input size {list(sizes)} is too small for kernel {kernel} with padding {pads}")
    return out


def deconv_geometry(op: Op) -> tuple[int, int, list[int], list[int], list[int], list[int]]:
    """(groups, out channels, kernel, pads, strides, dilations) of a ConvolutionBackwardData (filter first)."""
    p = op.params
    if p.get("format", NCHW) != NCHW:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: deconvolution format {p.get('format')}")
    w = op.inputs[0].shape
    if p.get("sparse", 0) == 0:
        if len(w) != 4:
            raise fail(op, f"dense filter must be 4-D, got {list(w)}")
        groups, oc, kernel = 1, w[1], list(w[2:])
    else:
        if len(w) != 5:
            raise fail(op, f"group filter must be 5-D, got {list(w)}")
        groups, oc, kernel = w[0], w[0] * w[2], list(w[3:])
    return (groups, oc, kernel, [p.get("pad_h", 0), p.get("pad_w", 0)], [p.get("stride_h", 1), p.get("stride_w", 1)],
            [p.get("dilate_h", 1), p.get("dilate_w", 1)])


def neibs_geometry(op: Op) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    """(output size, window, pads, strides, dilations) of an Images2Neibs on its NCHW input."""
    p = op.params
    x = op.inputs[0].shape
    if len(x) != 4:
        raise fail(op, f"Images2Neibs needs an NCHW input, got {list(x)}")
    window = [p.get("window_h", 3), p.get("window_w", 3)]
    pads, strides = [p.get("pad_h", 0), p.get("pad_w", 0)], [p.get("stride_h", 1), p.get("stride_w", 1)]
    dilations = [p.get("dilate_h", 1), p.get("dilate_w", 1)]
    return spatial_out(op, x[2:], window, pads, strides, dilations), window, pads, strides, dilations


def _filter(b: Builder, op: Op, shape, flip_axes=(), float32: bool = False) -> str:
    """The filter input reshaped to ``shape`` (as float32 if asked); constant filters may be flipped along
    ``flip_axes``."""
    var = op.inputs[1]
    if var.is_const:
        w = np.flip(var.const, flip_axes) if flip_axes else var.const
        return b.const(np.ascontiguousarray(w, np.float32 if float32 else None).reshape(shape), "weight")
    if flip_axes:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: CONVOLUTION mode on a computed filter")
    return b.reshape(b.float32(op, 1) if float32 else b.inp(op, 1), shape)


def unfold(b: Builder, value: str, kernel, pads, strides, dilations, out) -> str:
    """Patches of an NCHW image, zero-padded: (N, C, OH, FH, OW, FW) with
    [.., oh, i, ow, j] = x[.., oh * sh - ph + i * dh, ow * sw - pw + j * dw]."""
    value = b.node("Pad", [value, b.ints([0, 0, pads[0], pads[1], 0, 0, pads[0], pads[1]], "pads")])
    for axis, o, k, s, d in zip((2, 4), out, kernel, strides, dilations):
        value = b.node("Gather", [value, b.const(np.arange(o)[:, None] * s + np.arange(k)[None, :] * d, "index")],
                       axis=axis)
    return value


NONLINEARITIES = {0: None, 1: "Relu", 2: "Sigmoid", 3: "HardSwish"}


CONV_MODES = ["CROSS_CORRELATION", "CONVOLUTION", "DENSE", "GROUP"] + [f"format {name}" for name, _ in LAYOUTS.values()]


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
    w_held = w_var.dtype
    if w_held.np_dtype == np.int8 and cpu.int8_products_saturate():  # uint8 x uint8: exact there (graph/cpu.py)
        w, w_held = shifted_array(w), shifted_dtype(w_held)
    for dtype, value in ((x_held, None), (w_held, np.ascontiguousarray(w)), (out_held, None)):
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


@shape_rule("Convolution3D")
def _conv3d_shape(op: Op):
    x = op.inputs[0].shape
    groups, oc, kernel, pads, strides, dilations = conv3d_geometry(op)
    return [((x[0], oc, *spatial_out(op, x[2:], kernel, pads, strides, dilations)), op.inputs[0].dtype)]


@lowering("Convolution3D", modes=["CROSS_CORRELATION", "CONVOLUTION", "DENSE", "GROUP"])
def lower_conv3d(b: Builder, op: Op) -> list[str]:
    """3-D NCDHW convolution, dense or grouped; CONVOLUTION mode flips the kernel."""
    groups, oc, kernel, pads, strides, dilations = conv3d_geometry(op)
    flip = (-3, -2, -1) if op.params.get("mode", 0) == 1 else ()
    weight = _filter(b, op, (oc, op.inputs[0].shape[1] // groups, *kernel), flip)
    return [b.node("Conv", [b.inp(op, 0), weight], group=groups, kernel_shape=kernel, pads=pads * 2, strides=strides,
                   dilations=dilations)]


@shape_rule("GroupLocal", "Local")
def _local_shape(op: Op):
    groups, _, ocpg, out, _, _, _ = local_geometry(op)
    x = op.inputs[0]
    return [((x.shape[0], groups * ocpg, *out), x.dtype)]


@lowering("GroupLocal", "Local", modes=["CROSS_CORRELATION", "CONVOLUTION"])
def lower_local(b: Builder, op: Op) -> list[str]:
    """Convolution with a separate filter per output position: filter (G, OH, OW, IC/G, FH, FW, OC/G)."""
    groups, icpg, ocpg, out, kernel, pads, strides = local_geometry(op)
    n = op.inputs[0].shape[0]
    positions, taps = out[0] * out[1], icpg * kernel[0] * kernel[1]
    patches = b.reshape(unfold(b, b.inp(op, 0), kernel, pads, strides, (1, 1), out),
                        (n, groups, icpg, out[0], kernel[0], out[1], kernel[1]))
    patches = b.reshape(b.node("Transpose", [patches], perm=[1, 3, 5, 0, 2, 4, 6]), (groups, positions, n, taps))
    flip = (-3, -2) if op.params.get("mode", 0) == 1 else ()
    weight = _filter(b, op, (groups, positions, taps, ocpg), flip)
    result = b.node("Transpose", [b.node("MatMul", [patches, weight])], perm=[2, 0, 3, 1])
    return [b.reshape(result, op.outputs[0].shape)]


@shape_rule("DeformableConv")
def _deformable_conv_shape(op: Op):
    _, out, oc = deformable_geometry(op)
    x = op.inputs[0]
    return [((x.shape[0], oc, *out), x.dtype)]


@lowering("DeformableConv")
def lower_deformable_conv(b: Builder, op: Op) -> list[str]:
    """Modulated deformable conv: each tap samples x bilinearly at its position + learned offset, times the mask."""
    groups, oc, kernel, pads, strides, dilations = conv_geometry(op)
    dg, out, _ = deformable_geometry(op)
    n, ic, h, w = op.inputs[0].shape
    taps, positions = kernel[0] * kernel[1], out[0] * out[1]
    offsets = b.reshape(b.float32(op, 2), (n, dg, taps, 2, positions))
    coords = []
    for axis in (0, 1):
        tap = np.arange(kernel[axis]) * dilations[axis]
        base = np.arange(out[axis]) * strides[axis] - pads[axis]
        grid = (tap[:, None] + base[None, :]).astype(np.float32)  # (FH, OH) or (FW, OW)
        grid = grid[:, None, :, None] if axis == 0 else grid[None, :, None, :]
        base_const = b.const(np.ascontiguousarray(np.broadcast_to(grid, (kernel[0], kernel[1], out[0], out[1]))
                                                  .reshape(taps, positions)), "taps")
        shift = b.node("Gather", [offsets, b.const(np.int64(axis))], axis=3)  # (N, DG, taps, positions)
        coords.append(b.node("Add", [base_const, shift]))
    flat = b.reshape(b.float32(op, 0), (n * dg, ic // dg, h * w))
    samples = gather_bilinear(b, flat, (n * dg, ic // dg, h, w, taps * positions), coords[0], coords[1],
                              "CONSTANT", 0.0)
    samples = b.node("Mul", [samples, b.reshape(b.float32(op, 3), (n * dg, 1, taps * positions))])
    samples = b.reshape(samples, (n, groups, ic // groups * taps, positions))
    weight = _filter(b, op, (groups, oc // groups, ic // groups * taps), float32=True)
    out = b.reshape(b.node("MatMul", [weight, samples]), op.outputs[0].shape)
    return [b.from_float32(out, op.outputs[0].dtype.np_dtype)]


@shape_rule("RelayoutFormat")
def _relayout_format_shape(op: Op):
    _, dst, shape = relayout_plan(op)
    return [(layout_shape(shape, dst), op.inputs[0].dtype)]


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


@shape_rule("Convolution", "ConvBias")
def _conv_shape(op: Op):
    return [(conv_out_shape(op), op.output_dtype or op.inputs[0].dtype)]


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


@shape_rule("ConvolutionBackwardData")
def _deconv_shape(op: Op):
    x = op.inputs[1].shape
    groups, oc, kernel, pads, strides, dilations = deconv_geometry(op)
    w = op.inputs[0].shape
    ic = w[0] if groups == 1 else w[0] * w[1]
    if len(x) != 4 or x[1] != ic:
        raise fail(op, f"input {list(x)} does not match the filter {list(w)}")
    spatial = [(size - 1) * s - 2 * p + d * (k - 1) + 1 for size, k, p, s, d in zip(x[2:], kernel, pads, strides, dilations)]
    if len(op.inputs) > 2:
        spatial = const_ints(op, op.inputs[2], "output shape")[-2:]
    return [((x[0], oc, *spatial), op.output_dtype or op.inputs[1].dtype)]


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


@shape_rule("Images2Neibs")
def _images2neibs_shape(op: Op):
    x = op.inputs[0]
    out, window, _, _, _ = neibs_geometry(op)
    return [(x.shape[:2] + tuple(out) + tuple(window), x.dtype)]


@lowering("Images2Neibs")
def lower_images2neibs(b: Builder, op: Op) -> list[str]:
    """Sliding windows (N, C, OH, OW, WH, WW) of the zero-padded image, with stride and dilation."""
    out, window, pads, strides, dilations = neibs_geometry(op)
    patches = unfold(b, b.inp(op, 0), window, pads, strides, dilations, out)
    return [b.node("Transpose", [patches], perm=[0, 1, 2, 4, 3, 5])]
