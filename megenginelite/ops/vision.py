"""Vision operators: CvtColor, Correlation, ROIPooling, ROIAlign and NMSKeep.

Each operator's param table, shape rule, fold rule and lowering (with the modes it declares) sit together.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOperatorError
from ..format.dtypes import INT32
from ..format.params import param_table
from ..graph.dims import Sym
from ..graph.infer import const_ints, fail, shape_rule
from ..graph.ir import Op
from ..lower.builder import Builder, lowering
from .elemwise import EMITTERS

param_table(12, "ROIPooling", [("mode", "u32", 0), ("scale", "f32", 1.0)])
param_table(37, "CvtColor", [("mode", "u32", 0)])
param_table(48, "ROIAlign", [("mode", "u32", 0), ("format", "u32", 0), ("spatial_scale", "f32", 1.0),
                             ("offset", "f32", 0.0), ("pooled_height", "u32", 1), ("pooled_width", "u32", 1),
                             ("sample_height", "u32", 2), ("sample_width", "u32", 2)])
param_table(69, "NMSKeep", [("iou_thresh", "f32", 0.0), ("max_output", "u32", 0)])
param_table(75, "Correlation", [("format", "u32", 0), ("kernel_size", "u32", 1), ("max_displacement", "u32", 1),
                                ("stride1", "u32", 1), ("stride2", "u32", 1), ("pad_size", "u32", 0),
                                ("is_multiply", "bool", True)])


# CvtColor modes on NHWC images: value -> (name, input channels, output channels)
CVT_COLOR_MODES = {0: ("RGB2GRAY", 3, 1), 1: ("RGB2YUV", 3, 3), 2: ("YUV2RGB", 3, 3), 3: ("GRAY2RGB", 1, 3),
                   4: ("RGBA2RGB", 4, 3), 5: ("RGBA2BGR", 4, 3), 6: ("RGBA2GRAY", 4, 1), 7: ("RGB2BGR", 3, 3),
                   8: ("BGR2GRAY", 3, 1), 9: ("BGR2RGB", 3, 3)}


def cvt_color_mode(op: Op) -> tuple[str, int, int]:
    mode = op.params.get("mode", 0)
    if mode not in CVT_COLOR_MODES:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: CvtColor mode {mode} "
                                       f"(the YUV420 layouts are not supported)")
    name, cin, cout = CVT_COLOR_MODES[mode]
    x = op.inputs[0].shape
    if len(x) != 4 or x[3] != cin:
        raise fail(op, f"CvtColor {name} needs an NHWC image with {cin} channels, got {list(x)}")
    return name, cin, cout


def correlation_geometry(op: Op) -> tuple[int, int, tuple[int, int]]:
    """(kernel radius, displacement grid radius, output size) of a Correlation."""
    p = op.params
    a, b = op.inputs[0].shape, op.inputs[1].shape
    if len(a) != 4 or a != b or p.get("format", 0) != 0:
        raise fail(op, f"Correlation needs two NCHW inputs of one shape, got {list(a)} and {list(b)}")
    radius = (p.get("kernel_size", 1) - 1) // 2
    border = p.get("max_displacement", 1) + radius
    size = [-(-(d + 2 * p.get("pad_size", 0) - 2 * border) // p.get("stride1", 1)) for d in a[2:]]
    if min(size) < 1:
        raise fail(op, f"input {list(a)} is too small for the displacement and kernel")
    return radius, p.get("max_displacement", 1) // p.get("stride2", 1), (size[0], size[1])


def roi_out_size(op: Op) -> tuple[int, int]:
    """Pooled (height, width) of ROIPooling (its 3rd input) or ROIAlign (its params)."""
    x, rois = op.inputs[0].shape, op.inputs[1].shape
    if len(x) != 4 or len(rois) != 2 or rois[1] != 5:
        raise fail(op, f"{op.kind} needs an NCHW input and (R, 5) rois, got {list(x)} and {list(rois)}")
    if op.kind == "ROIAlign":
        if op.params.get("format", 0) != 0:
            raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: ROIAlign format "
                                           f"{op.params.get('format')}")
        return op.params.get("pooled_height", 1), op.params.get("pooled_width", 1)
    ph, pw = const_ints(op, op.inputs[2], "output size")
    return ph, pw


# Channel-copying CvtColor modes: output channel -> input channel
_CVT_SHUFFLES = {"GRAY2RGB": [0, 0, 0], "RGBA2RGB": [0, 1, 2], "RGBA2BGR": [2, 1, 0], "RGB2BGR": [2, 1, 0],
                 "BGR2RGB": [2, 1, 0]}


_GRAY = {"RGB2GRAY": (0.299, 0.587, 0.114), "BGR2GRAY": (0.114, 0.587, 0.299), "RGBA2GRAY": (0.299, 0.587, 0.114, 0)}


_GRAY_FIXED = {"RGB2GRAY": (4899, 9617, 1868), "BGR2GRAY": (1868, 9617, 4899), "RGBA2GRAY": (4899, 9617, 1868, 0)}


_Y = np.array([0.114, 0.587, 0.299])


# float YUV conversions as (input channels x output channels matrix, offset), following MegDNN's float kernels
_CVT_LINEAR = {
    "RGB2YUV": (np.stack([_Y, 0.492 * (np.eye(3)[0] - _Y), 0.877 * (np.eye(3)[2] - _Y)], 1), [0, 0.5, 0.5]),
    "YUV2RGB": (np.array([[1, 1, 1], [2.032, -0.395, 0], [0, -0.581, 1.140]]),
                [-0.5 * 2.032, 0.5 * (0.395 + 0.581), -0.5 * 1.140]),
}


def _roi_box(b: Builder, op: Op, scale: float, offset: float) -> list[str]:
    """(batch index int64, then x0, y0, x1, y1 as (R, 1) float32 scaled by ``scale`` minus ``offset``)."""
    cols = b.node("Split", [b.float32(op, 1)], n_out=5, axis=1, num_outputs=5)
    coords = [b.node("Sub", [b.node("Mul", [v, b.const(np.float32(scale))]), b.const(np.float32(offset))])
              for v in cols[1:]]
    return [b.cast(b.reshape(cols[0], [-1]), np.int64)] + coords


def _bilinear_taps(b: Builder, coords: str, size: int, shape: tuple) -> tuple[str, str]:
    """The two neighbours of each sample coordinate (R, S) along an axis of ``size``, as (int64 index, float32
    weight) of shape ``shape`` (R, S with the two taps last, reshaped): floor(c) weighs 1 - frac, floor(c) + 1
    weighs frac; a neighbour outside [0, size) weighs 0 (its index is clamped, so that it can still be gathered)."""
    low = b.node("Unsqueeze", [b.node("Floor", [coords]), b.ints([-1], "axes")])
    frac = b.node("Sub", [b.node("Unsqueeze", [coords, b.ints([-1], "axes")]), low])
    index = b.node("Add", [low, b.const(np.array([0, 1], np.float32), "taps")])  # (R, S, 2)
    weight = b.node("Concat", [b.node("Sub", [b.const(np.float32(1)), frac]), frac], axis=-1)
    inside = b.node("And", [b.node("GreaterOrEqual", [index, b.const(np.float32(0))]),
                            b.node("Less", [index, b.const(np.float32(size))])])
    weight = b.node("Where", [inside, weight, b.const(np.float32(0))])
    index = b.cast(b.node("Clip", [index, b.const(np.float32(0)), b.const(np.float32(size - 1))]), np.int64)
    return b.reshape(index, shape), b.reshape(weight, shape)


def _separable(b: Builder, rows: str, image: str, cols: str) -> str:
    """rows (R, P, H) @ image (R, C, H, W) @ cols (R, Q, W)^T: (R, C, P, Q) weighted sums over each roi."""
    left = b.node("MatMul", [b.node("Unsqueeze", [rows, b.ints([1], "axes")]), image])
    right = b.node("Unsqueeze", [b.node("Transpose", [cols], perm=[0, 2, 1]), b.ints([1], "axes")])
    return b.node("MatMul", [left, right])


def _roi_bins(b: Builder, start: str, end: str, bins: int, size: int) -> tuple[str, str]:
    """(membership mask (R, bins, size), bin lengths (R, bins)) of ROIPooling's integer bins along one axis."""
    f32 = np.float32
    start, end = (EMITTERS["ROUND"](b, v, f32) for v in (start, end))  # C round(): half away from zero
    length = b.node("Max", [b.node("Add", [b.node("Sub", [end, start]), b.const(f32(1))]), b.const(f32(1))])
    bin_size = b.node("Div", [length, b.const(f32(bins))])
    edges = []
    for shift, rounding in ((0, "Floor"), (1, "Ceil")):
        steps = b.const(np.arange(shift, bins + shift, dtype=f32))
        edge = b.node("Add", [b.node(rounding, [b.node("Mul", [steps, bin_size])]), start])
        edges.append(b.node("Clip", [edge, b.const(f32(0)), b.const(f32(size))]))
    lo, hi = (b.node("Unsqueeze", [e, b.ints([-1], "axes")]) for e in edges)
    grid = b.const(np.arange(size, dtype=f32), "grid")
    mask = b.node("And", [b.node("GreaterOrEqual", [grid, lo]), b.node("Less", [grid, hi])])
    return mask, b.node("Sub", [edges[1], edges[0]])


@shape_rule("CvtColor")
def _cvt_color_shape(op: Op):
    _, _, cout = cvt_color_mode(op)
    x = op.inputs[0]
    return [(x.shape[:3] + (cout,), x.dtype)]


@lowering("CvtColor", modes=[name for name, _, _ in CVT_COLOR_MODES.values()])
def lower_cvt_color(b: Builder, op: Op) -> list[str]:
    """Colour conversion of NHWC images: channel copies, gray (uint8 in 14-bit fixed point), float YUV/RGB."""
    name, cin, _ = cvt_color_mode(op)
    x, dtype = b.inp(op, 0), op.inputs[0].dtype.np_dtype
    if name in _CVT_SHUFFLES:
        return [b.node("Gather", [x, b.const(np.array(_CVT_SHUFFLES[name], np.int64), "index")], axis=3)]
    if name in _GRAY and dtype == np.uint8:
        weighted = b.node("Mul", [b.cast(x, np.int32), b.const(np.array(_GRAY_FIXED[name], np.int32))])
        total = b.node("ReduceSum", [weighted, b.ints([3], "axes")], keepdims=1)
        return [b.cast(b.node("Div", [b.node("Add", [total, b.const(np.int32(1 << 13))]), b.const(np.int32(1 << 14))]),
                       np.uint8)]
    if dtype != np.float32:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: CvtColor {name} on {dtype}")
    matrix, offset = (np.array(_GRAY[name])[:, None], [0]) if name in _GRAY else _CVT_LINEAR[name]
    out = b.node("MatMul", [x, b.const(np.asarray(matrix, np.float32), "matrix")])
    return [b.node("Add", [out, b.const(np.asarray(offset, np.float32))])]


@shape_rule("Correlation")
def _correlation_shape(op: Op):
    _, grid, size = correlation_geometry(op)
    a = op.inputs[0]
    return [((a.shape[0], (2 * grid + 1) ** 2) + size, a.dtype)]


@lowering("Correlation")
def lower_correlation(b: Builder, op: Op) -> list[str]:
    """FlowNet correlation: per displacement, the mean over window and channels of a * shifted b (or |a - b|)."""
    p = op.params
    radius, grid, (oh, ow) = correlation_geometry(op)
    n, c, h, w = op.inputs[0].shape
    pad, disp, s1, s2 = p.get("pad_size", 0), p.get("max_displacement", 1), p.get("stride1", 1), p.get("stride2", 1)
    margin = pad + disp
    pads = b.ints([0, 0, margin, margin, 0, 0, margin, margin], "pads")
    a, bb = (b.node("Pad", [b.float32(op, i), pads]) for i in (0, 1))
    k = 2 * radius + 1
    span = (h + 2 * pad, w + 2 * pad)  # the padded images seen from displacement 0
    a = b.node("Slice", [a, b.ints([disp, disp]), b.ints([disp + span[0], disp + span[1]]), b.ints([2, 3])])
    ones = b.const(np.ones((1, 1, k, k), np.float32), "box")
    planes = []
    for dy in range(-grid, grid + 1):
        for dx in range(-grid, grid + 1):
            start = [disp + dy * s2, disp + dx * s2]
            end = [start[0] + span[0], start[1] + span[1]]
            shifted = b.node("Slice", [bb, b.ints(start), b.ints(end), b.ints([2, 3])])
            if p.get("is_multiply", True):
                pair = b.node("Mul", [a, shifted])
            else:
                pair = b.node("Abs", [b.node("Sub", [a, shifted])])
            summed = b.node("Conv", [b.node("ReduceSum", [pair, b.ints([1], "axes")], keepdims=1), ones])
            planes.append(b.node("Slice", [summed, b.ints([disp, disp]), b.ints([disp + oh * s1, disp + ow * s1]),
                                           b.ints([2, 3]), b.ints([s1, s1])]))
    total = b.node("Concat", planes, axis=1)
    return [b.from_float32(b.node("Div", [total, b.const(np.float32(k * k * c))]), op.outputs[0].dtype.np_dtype)]


@shape_rule("ROIPooling", "ROIAlign")
def _roi_shape(op: Op):
    x, rois = op.inputs[0].shape, op.inputs[1].shape
    shape = (rois[0], x[1]) + roi_out_size(op)
    return [(shape, op.inputs[0].dtype), (shape, INT32)]


@lowering("ROIAlign", modes=["MAX", "AVERAGE"])
def lower_roi_align(b: Builder, op: Op) -> list[str]:
    """Per roi bin, the mean (or max, with its index) of bilinear samples at sub-bin centres, zero outside.

    Each sample gathers its four neighbours from the image laid out as (N*H*W, C) rows and one batched MatMul
    mixes them with their weights: the work is per sample (R x bins x samples x 4 x C), not per roi and pixel."""
    p = op.params
    ph, pw = roi_out_size(op)
    sh, sw = p.get("sample_height", 2), p.get("sample_width", 2)
    n, c, h, w = op.inputs[0].shape
    r = op.inputs[1].shape[0]
    batch, x0, y0, x1, y1 = _roi_box(b, op, p.get("spatial_scale", 1.0), p.get("offset", 0.0))
    # taps laid out (R, PH, PW, SH, SW, 2, 2) by broadcasting: rows (R, PH, 1, SH, 1, 2, 1), columns (R, 1, PW, 1, SW, 1, 2)
    axes = []
    for start, end, bins, samples, size, shape in ((y0, y1, ph, sh, h, (r, ph, 1, sh, 1, 2, 1)),
                                                   (x0, x1, pw, sw, w, (r, 1, pw, 1, sw, 1, 2))):
        length = b.node("Max", [b.node("Sub", [end, start]), b.const(np.float32(0))])
        bin_size = b.node("Div", [length, b.const(np.float32(bins))])
        rate = np.float32(1) / np.float32(samples)
        table = (np.arange(bins, dtype=np.float32)[:, None] + rate * (np.arange(samples, dtype=np.float32) + 0.5))
        coords = b.node("Add", [start, b.node("Mul", [bin_size, b.const(table.reshape(1, -1), "samples")])])
        axes.append(_bilinear_taps(b, coords, size, shape))  # from (R, bins * samples), bin-major
    (iy, wy), (ix, wx) = axes
    flat = b.node("Add", [b.node("Mul", [iy, b.const(np.int64(w))]), ix])
    if n != 1:  # rows of the roi's own image
        flat = b.node("Add", [flat, b.reshape(b.node("Mul", [batch, b.const(np.int64(h * w))]), (r, 1, 1, 1, 1, 1, 1))])
    taps = (r, ph, pw, sh * sw, 4)
    rows = b.reshape(b.node("Transpose", [b.float32(op, 0)], perm=[0, 2, 3, 1]), [n * h * w, c])
    values = b.node("Gather", [rows, b.reshape(flat, taps)], axis=0)  # (R, PH, PW, S, 4, C)
    weight = b.reshape(b.node("Mul", [wy, wx]), (r, ph, pw, sh * sw, 1, 4))
    dtype = op.outputs[0].dtype.np_dtype
    if p.get("mode", 0) == 1:  # the mean over samples folds into one weighted sum of all their taps
        weight = b.node("Div", [b.reshape(weight, (r, ph, pw, 1, sh * sw * 4)), b.const(np.float32(sh * sw))])
        mixed = b.node("MatMul", [weight, b.reshape(values, (r, ph, pw, sh * sw * 4, c))])  # (R, PH, PW, 1, C)
        out = b.node("Transpose", [b.reshape(mixed, (r, ph, pw, c))], perm=[0, 3, 1, 2])
        return [b.from_float32(out, dtype), None]
    samples = b.node("Transpose", [b.reshape(b.node("MatMul", [weight, values]), (r, ph, pw, sh * sw, c))],
                     perm=[0, 4, 1, 2, 3])  # (R, C, PH, PW, S)
    index = b.cast(b.node("ArgMax", [samples], axis=4, keepdims=0), np.int32)
    return [b.from_float32(b.node("ReduceMax", [samples, b.ints([4], "axes")], keepdims=0), dtype), index]


@lowering("ROIPooling", modes=["MAX", "AVERAGE"])
def lower_roi_pooling(b: Builder, op: Op) -> list[str]:
    """Per roi (scaled, rounded) integer bin clipped to the image, MAX or AVERAGE; empty bins give 0."""
    ph, pw = roi_out_size(op)
    _, c, h, w = op.inputs[0].shape
    r = op.inputs[1].shape[0]
    batch, x0, y0, x1, y1 = _roi_box(b, op, op.params.get("scale", 1.0), 0.0)
    (mh, count_h), (mw, count_w) = _roi_bins(b, y0, y1, ph, h), _roi_bins(b, x0, x1, pw, w)
    count = b.node("Mul", [b.reshape(count_h, (r, 1, ph, 1)), b.reshape(count_w, (r, 1, 1, pw))])
    image = b.node("Gather", [b.float32(op, 0), batch], axis=0)  # (R, C, H, W)
    if op.params.get("mode", 0) == 1:
        total = _separable(b, b.cast(mh, np.float32), image, b.cast(mw, np.float32))
        value = b.node("Div", [total, b.node("Max", [count, b.const(np.float32(1))])])
    else:  # masked max over W, then over H
        low = b.const(np.float32(-np.inf))
        wide = b.node("Where", [b.reshape(mw, (r, 1, 1, pw, w)), b.node("Unsqueeze", [image, b.ints([3], "axes")]),
                                low])  # (R, C, H, PW, W)
        by_col = b.node("ReduceMax", [wide, b.ints([4], "axes")], keepdims=1)  # (R, C, H, PW, 1)
        tall = b.node("Where", [b.reshape(mh, (r, 1, ph, h, 1)), b.reshape(by_col, (r, c, 1, h, pw)), low])
        value = b.node("ReduceMax", [tall, b.ints([3], "axes")], keepdims=0)  # (R, C, PH, PW)
    value = b.node("Where", [b.node("LessOrEqual", [count, b.const(np.float32(0))]), b.const(np.float32(0)), value])
    return [b.from_float32(value, op.outputs[0].dtype.np_dtype), None]


@shape_rule("NMSKeep")
def _nms_keep_shape(op: Op):
    boxes = op.inputs[0].shape
    if len(boxes) != 3 or boxes[2] != 4:
        raise fail(op, f"NMSKeep needs (N, M, 4) boxes, got {list(boxes)}")
    return [((boxes[0], op.params.get("max_output", 0)), INT32), ((boxes[0],), INT32)]


@lowering("NMSKeep")
def lower_nms_keep(b: Builder, op: Op) -> list[str]:
    """Greedy NMS in the given box order: indices of kept boxes (padded with the last one) and their count."""
    n, m, _ = op.inputs[0].shape
    max_out = op.params.get("max_output", 0)
    if isinstance(m, Sym):  # boxes counted at run time: the same descending priorities, computed
        rank = b.node("Range", [b.const(np.float32(0)), b.cast(b.scalar(m), np.float32), b.const(np.float32(1))])
        scores = b.node("Expand", [b.node("Neg", [rank]), b.ints([n, 1, m])])
    else:
        scores = b.const(np.broadcast_to(np.arange(m, 0, -1, dtype=np.float32), (n, 1, m)).copy(), "priority")
    selected = b.node("NonMaxSuppression", [b.inp(op, 0), scores, b.ints([max_out]),
                                            b.const(np.array([op.params.get("iou_thresh", 0.0)], np.float32))])
    batch, box = (b.node("Gather", [selected, b.const(np.int64(i))], axis=1) for i in (0, 2))
    one_hot = b.cast(b.node("Equal", [b.node("Unsqueeze", [batch, b.ints([1], "axes")]),
                                      b.const(np.arange(n, dtype=np.int64))]), np.int64)  # (K, N)
    rank = b.node("ReduceSum", [b.node("Mul", [b.node("CumSum", [one_hot, b.const(np.int64(0))]), one_hot]),
                                b.ints([1], "axes")], keepdims=0)
    position = b.node("Sub", [rank, b.const(np.int64(1))])
    where = b.node("Concat", [b.node("Unsqueeze", [v, b.ints([1], "axes")]) for v in (batch, position)], axis=1)
    kept = b.node("ScatterND", [b.const(np.zeros((n, max_out), np.int64)), where, box])
    # (N,), kept dims then squeezed: ONNX Runtime's CUDA ReduceSum refuses keepdims=0 over an axis of 0 boxes
    sizes = b.node("Squeeze", [b.node("ReduceSum", [one_hot, b.ints([0], "axes")], keepdims=1), b.ints([0], "axes")])
    last_pos = b.node("Unsqueeze", [b.node("Max", [b.node("Sub", [sizes, b.const(np.int64(1))]), b.const(np.int64(0))]),
                                    b.ints([1], "axes")])
    last = b.node("GatherElements", [kept, last_pos], axis=1)
    positions = b.const(np.arange(max_out, dtype=np.int64))
    inside = b.node("Less", [positions, b.node("Unsqueeze", [sizes, b.ints([1], "axes")])])
    return [b.cast(b.node("Where", [inside, kept, last]), np.int32), b.cast(sizes, np.int32)]
