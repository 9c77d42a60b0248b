"""Shape and dtype rules of the neural-network operators (convolution, pooling, matmul, normalization, ...)."""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOperatorError
from ..format.dtypes import FLOAT32, INT32, DType
from .dims import dims_equal
from .infer import const_ints, fail, norm_axis, same, shape_rule
from .ir import Op

NCHW = 0
BYTE = DType("Byte", np.dtype(np.uint8))


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


@shape_rule("RelayoutFormat")
def _relayout_format_shape(op: Op):
    _, dst, shape = relayout_plan(op)
    return [(layout_shape(shape, dst), op.inputs[0].dtype)]


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


@shape_rule("Convolution", "ConvBias")
def _conv_shape(op: Op):
    return [(conv_out_shape(op), op.output_dtype or op.inputs[0].dtype)]


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


@shape_rule("AdaptivePooling")
def _adaptive_pooling_shape(op: Op):
    x = op.inputs[0].shape
    out, _, _ = adaptive_pooling_geometry(op)
    return [((x[0], x[1], *out), op.inputs[0].dtype)]


def matmul_dims(op: Op, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, int, int]:
    ta, tb = op.params.get("transposeA", False), op.params.get("transposeB", False)
    m, k = (a[-1], a[-2]) if ta else (a[-2], a[-1])
    k2, n = (b[-1], b[-2]) if tb else (b[-2], b[-1])
    if dims_equal(k, k2) is False:
        raise fail(op, f"matrix shapes {list(a)} and {list(b)} do not match (transposeA={ta}, transposeB={tb})")
    return m, k, n


def matmul_dtype(op: Op) -> DType:
    """The output dtype of a (batched) matrix multiply: the file's, else MegDNN's deduction: quantized operands
    accumulate in QuantizedS32 of scale a_scale * b_scale."""
    x, y = op.inputs[0].dtype, op.inputs[1].dtype
    if op.output_dtype is not None or not (x.quantized and y.quantized):
        return op.output_dtype or x
    return DType("QuantizedS32", np.dtype(np.int32), float(np.float32(x.scale) * np.float32(y.scale)))


@shape_rule("MatrixMul")
def _matmul_shape(op: Op):
    a, b = op.inputs[0].shape, op.inputs[1].shape
    if len(a) != 2 or len(b) != 2:
        raise fail(op, f"MatrixMul needs 2-D inputs, got {list(a)} and {list(b)}")
    m, _, n = matmul_dims(op, a, b)
    return [((m, n), matmul_dtype(op))]


@shape_rule("BatchedMatrixMul")
def _batched_matmul_shape(op: Op):
    a, b = op.inputs[0].shape, op.inputs[1].shape
    if len(a) != 3 or len(b) != 3 or dims_equal(a[0], b[0]) is False:
        raise fail(op, f"BatchedMatrixMul needs 3-D inputs with one batch, got {list(a)} and {list(b)}")
    m, _, n = matmul_dims(op, a, b)
    return [((a[0], m, n), matmul_dtype(op))]


@shape_rule("Softmax")
def _softmax_shape(op: Op):
    norm_axis(op, op.params.get("axis", -1), len(op.inputs[0].shape))
    return same(op)


@shape_rule("LayerNorm")
def _layernorm_shape(op: Op):
    x = op.inputs[0]
    nd = op.params.get("normalized_dim", 1)
    if not 0 < nd <= len(x.shape):
        raise fail(op, f"normalized_dim {nd} does not fit input {list(x.shape)}")
    lead = x.shape[:-nd] or (1,)
    return [(x.shape, x.dtype), (lead, x.dtype), (lead, x.dtype)]


@shape_rule("Argmax", "Argmin")
def _argmax_shape(op: Op):
    x = op.inputs[0].shape
    a = norm_axis(op, op.params.get("axis", 0), len(x))
    return [(x[:a] + (1,) + x[a + 1:], INT32)]


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


def group_norm_groups(op: Op) -> int:
    """Groups of a GroupNorm (its param) or InstanceNorm (one per channel; its stored param is unreliable)."""
    x = op.inputs[0].shape
    if len(x) != 4 or op.params.get("format", NCHW) != NCHW:
        raise fail(op, f"{op.kind} needs a 4-D NCHW input, got {list(x)}")
    groups = x[1] if op.kind == "InstanceNorm" else op.params.get("group", 1)
    if groups <= 0 or x[1] % groups:
        raise fail(op, f"{x[1]} channels do not split into {groups} groups")
    return groups


@shape_rule("GroupNorm", "InstanceNorm")
def _group_norm_shape(op: Op):
    x = op.inputs[0]
    stats = ((x.shape[0], group_norm_groups(op)), FLOAT32)
    return [(x.shape, x.dtype), stats, stats]


def general_norm_axes(op: Op) -> list[int]:
    x = op.inputs[0].shape
    start, end = op.params.get("axis_start", 0), op.params.get("axis_end", 0)
    if not 0 <= start < end <= len(x):
        raise fail(op, f"normalized axes [{start}, {end}) do not fit input {list(x)}")
    return list(range(start, end))


@shape_rule("GeneralNorm")
def _general_norm_shape(op: Op):
    x = op.inputs[0]
    axes = general_norm_axes(op)
    stats = (tuple(d for i, d in enumerate(x.shape) if i not in axes) or (1,), FLOAT32)
    return [(x.shape, x.dtype), stats, stats]


@shape_rule("LRN")
def _lrn_shape(op: Op):
    if len(op.inputs[0].shape) != 4 or op.params.get("n", 5) % 2 == 0:
        raise fail(op, f"LRN needs a 4-D NCHW input and an odd window, got {list(op.inputs[0].shape)}, "
                       f"n={op.params.get('n')}")
    return same(op)


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


@shape_rule("BatchNorm")
def _batch_norm_shape(op: Op):
    """Outputs (save_mean, save_variance, reserve, y); y is the last."""
    x = op.inputs[0]
    stats = (bn_param_shape(op), op.inputs[1].dtype)
    return [stats, stats, ((0,), BYTE), (x.shape, x.dtype)]
