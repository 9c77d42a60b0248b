"""Lowerings of the vision operators: CvtColor, Images2Neibs, Correlation, ROIPooling, ROIAlign and NMSKeep."""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOperatorError
from ..graph.infer_vision import (CVT_COLOR_MODES, correlation_geometry, cvt_color_mode, neibs_geometry,
                                  roi_out_size)
from ..graph.ir import Op
from .builder import Builder, lowering
from .elemwise import EMITTERS

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


@lowering("CvtColor", modes=[name for name, _, _ in CVT_COLOR_MODES.values()])
def lower_cvt_color(b: Builder, op: Op) -> list[str]:
    """Colour conversion of NHWC images: channel copies, gray = 0.299 R + 0.587 G + 0.114 B (uint8 in 14-bit
    fixed point, rounded), float YUV <-> RGB."""
    name, cin, _ = cvt_color_mode(op)
    x, dtype = b.inp(op, 0), op.inputs[0].dtype.np_dtype
    if name in _CVT_SHUFFLES:
        return [b.node("Gather", [x, b.const(np.array(_CVT_SHUFFLES[name], np.int64), "index")], axis=3)]
    if name in _GRAY and dtype == np.uint8:
        total = b.node("ReduceSum", [b.node("Mul", [b.cast(x, np.int32), b.const(np.array(_GRAY_FIXED[name], np.int32))]),
                                     b.ints([3], "axes")], keepdims=1)
        return [b.cast(b.node("Div", [b.node("Add", [total, b.const(np.int32(1 << 13))]), b.const(np.int32(1 << 14))]),
                       np.uint8)]
    if dtype != np.float32:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: CvtColor {name} on {dtype}")
    matrix, offset = (np.array(_GRAY[name])[:, None], [0]) if name in _GRAY else _CVT_LINEAR[name]
    out = b.node("MatMul", [x, b.const(np.asarray(matrix, np.float32), "matrix")])
    return [b.node("Add", [out, b.const(np.asarray(offset, np.float32))])]


@lowering("Images2Neibs")
def lower_images2neibs(b: Builder, op: Op) -> list[str]:
    """Sliding windows: out[n, c, oh, ow, i, j] = x[n, c, oh * sh - ph + i * dh, ow * sw - pw + j * dw], zero
    outside the image."""
    out, window, pads, strides, dilations = neibs_geometry(op)
    value = b.node("Pad", [b.inp(op, 0), b.ints([0, 0, pads[0], pads[1], 0, 0, pads[0], pads[1]], "pads")])
    for axis, o, k, s, d in zip((2, 4), out, window, strides, dilations):
        table = np.arange(o)[:, None] * s + np.arange(k)[None, :] * d
        value = b.node("Gather", [value, b.const(table, "index")], axis=axis)
    return [b.node("Transpose", [value], perm=[0, 1, 2, 4, 3, 5])]


@lowering("Correlation")
def lower_correlation(b: Builder, op: Op) -> list[str]:
    """FlowNet correlation: for each displacement (a channel), the mean over the kernel window and channels of
    a * shifted b (or |a - shifted b|), zero outside the images."""
    p = op.params
    radius, grid, (oh, ow) = correlation_geometry(op)
    n, c, h, w = op.inputs[0].shape
    pad, disp, s1, s2 = p.get("pad_size", 0), p.get("max_displacement", 1), p.get("stride1", 1), p.get("stride2", 1)
    margin = pad + disp
    pads = b.ints([0, 0, margin, margin, 0, 0, margin, margin], "pads")
    a, bb = (b.node("Pad", [b.inp(op, i), pads]) for i in (0, 1))
    k = 2 * radius + 1
    span = (h + 2 * pad, w + 2 * pad)  # the padded images seen from displacement 0
    a = b.node("Slice", [a, b.ints([disp, disp]), b.ints([disp + span[0], disp + span[1]]), b.ints([2, 3])])
    ones = b.const(np.ones((1, 1, k, k), np.float32), "box")
    planes = []
    for dy in range(-grid, grid + 1):
        for dx in range(-grid, grid + 1):
            start = [disp + dy * s2, disp + dx * s2]
            shifted = b.node("Slice", [bb, b.ints(start), b.ints([start[0] + span[0], start[1] + span[1]]), b.ints([2, 3])])
            pair = b.node("Mul", [a, shifted]) if p.get("is_multiply", True) else b.node("Abs", [b.node("Sub", [a, shifted])])
            summed = b.node("Conv", [b.node("ReduceSum", [pair, b.ints([1], "axes")], keepdims=1), ones])
            planes.append(b.node("Slice", [summed, b.ints([disp, disp]), b.ints([disp + oh * s1, disp + ow * s1]),
                                           b.ints([2, 3]), b.ints([s1, s1])]))
    total = b.node("Concat", planes, axis=1)
    return [b.node("Div", [total, b.const(np.float32(k * k * c))])]


def _roi_box(b: Builder, op: Op, scale: float, offset: float) -> list[str]:
    """(batch index int64, then x0, y0, x1, y1 as (R, 1) float32 scaled by ``scale`` minus ``offset``)."""
    cols = b.node("Split", [b.inp(op, 1)], n_out=5, axis=1, num_outputs=5)
    coords = [b.node("Sub", [b.node("Mul", [v, b.const(np.float32(scale))]), b.const(np.float32(offset))])
              for v in cols[1:]]
    return [b.cast(b.reshape(cols[0], [-1]), np.int64)] + coords


def _one_hot_weights(b: Builder, coords: str, size: int) -> str:
    """Bilinear weights (R, S, size) of sample coordinates (R, S), zero for neighbours outside [0, size)."""
    low = b.node("Floor", [coords])
    frac = b.node("Unsqueeze", [b.node("Sub", [coords, low]), b.ints([-1], "axes")])
    low = b.node("Unsqueeze", [low, b.ints([-1], "axes")])
    grid = b.const(np.arange(size, dtype=np.float32), "grid")
    hit0 = b.cast(b.node("Equal", [grid, low]), np.float32)
    hit1 = b.cast(b.node("Equal", [grid, b.node("Add", [low, b.const(np.float32(1))])]), np.float32)
    return b.node("Add", [b.node("Mul", [hit0, b.node("Sub", [b.const(np.float32(1)), frac])]),
                          b.node("Mul", [hit1, frac])])


@lowering("ROIAlign", modes=["MAX", "AVERAGE"])
def lower_roi_align(b: Builder, op: Op) -> list[str]:
    """Each roi (batch, x0, y0, x1, y1) * scale - offset is split into bins; each bin averages (or takes the max
    of) sample_h x sample_w bilinear samples at the sub-bin centres, zero outside; MAX also gives the sample index."""
    p = op.params
    ph, pw = roi_out_size(op)
    sh, sw = p.get("sample_height", 2), p.get("sample_width", 2)
    _, c, h, w = op.inputs[0].shape
    r = op.inputs[1].shape[0]
    batch, x0, y0, x1, y1 = _roi_box(b, op, p.get("spatial_scale", 1.0), p.get("offset", 0.0))
    weights = []
    for start, end, bins, samples, size in ((y0, y1, ph, sh, h), (x0, x1, pw, sw, w)):
        length = b.node("Max", [b.node("Sub", [end, start]), b.const(np.float32(0))])
        bin_size = b.node("Div", [length, b.const(np.float32(bins))])
        rate = np.float32(1) / np.float32(samples)
        table = (np.arange(bins, dtype=np.float32)[:, None] + rate * (np.arange(samples, dtype=np.float32) + 0.5))
        coords = b.node("Add", [start, b.node("Mul", [bin_size, b.const(table.reshape(1, -1), "samples")])])
        weights.append(_one_hot_weights(b, coords, size))
    image = b.node("Gather", [b.inp(op, 0), batch], axis=0)
    rows = b.node("MatMul", [b.node("Unsqueeze", [weights[0], b.ints([1], "axes")]), image])
    cols = b.node("Unsqueeze", [b.node("Transpose", [weights[1]], perm=[0, 2, 1]), b.ints([1], "axes")])
    samples = b.reshape(b.node("MatMul", [rows, cols]), (r, c, ph, sh, pw, sw))
    if p.get("mode", 0) == 1:
        return [b.node("ReduceMean", [samples, b.ints([3, 5], "axes")], keepdims=0), None]
    grouped = b.reshape(b.node("Transpose", [samples], perm=[0, 1, 2, 4, 3, 5]), (r, c, ph, pw, sh * sw))
    index = b.cast(b.node("ArgMax", [grouped], axis=4, keepdims=0), np.int32)
    return [b.node("ReduceMax", [grouped, b.ints([4], "axes")], keepdims=0), index]


def _round_half_away(b: Builder, x: str) -> str:
    return EMITTERS["ROUND"](b, x, np.float32)


@lowering("ROIPooling", modes=["MAX", "AVERAGE"])
def lower_roi_pooling(b: Builder, op: Op) -> list[str]:
    """Each roi (batch, x0, y0, x1, y1), scaled and rounded, is split into integer bins [floor(i * size / bins),
    ceil((i + 1) * size / bins)) clipped to the image; MAX or AVERAGE over each bin, 0 for empty bins."""
    ph, pw = roi_out_size(op)
    _, c, h, w = op.inputs[0].shape
    r = op.inputs[1].shape[0]
    batch, x0, y0, x1, y1 = _roi_box(b, op, op.params.get("scale", 1.0), 0.0)
    masks, counts = [], []
    for start, end, bins, size in ((y0, y1, ph, h), (x0, x1, pw, w)):
        start, end = _round_half_away(b, start), _round_half_away(b, end)
        length = b.node("Max", [b.node("Add", [b.node("Sub", [end, start]), b.const(np.float32(1))]),
                                b.const(np.float32(1))])
        bin_size = b.node("Div", [length, b.const(np.float32(bins))])
        edges = []
        for shift, rounding in ((0, "Floor"), (1, "Ceil")):
            edge = b.node(rounding, [b.node("Mul", [b.const(np.arange(shift, bins + shift, dtype=np.float32)), bin_size])])
            edges.append(b.node("Clip", [b.node("Add", [edge, start]), b.const(np.float32(0)), b.const(np.float32(size))]))
        lo, hi = (b.node("Unsqueeze", [e, b.ints([-1], "axes")]) for e in edges)
        grid = b.const(np.arange(size, dtype=np.float32), "grid")
        masks.append(b.node("And", [b.node("GreaterOrEqual", [grid, lo]), b.node("Less", [grid, hi])]))
        counts.append(b.node("Sub", [edges[1], edges[0]]))
    count = b.node("Mul", [b.node("Unsqueeze", [counts[0], b.ints([2], "axes")]),
                           b.node("Unsqueeze", [counts[1], b.ints([1], "axes")])])  # (R, PH, PW)
    count = b.node("Unsqueeze", [count, b.ints([1], "axes")])
    image = b.node("Gather", [b.inp(op, 0), batch], axis=0)  # (R, C, H, W)
    mh, mw = masks
    if op.params.get("mode", 0) == 1:
        rows = b.node("MatMul", [b.node("Unsqueeze", [b.cast(mh, np.float32), b.ints([1], "axes")]), image])
        cols = b.node("Unsqueeze", [b.node("Transpose", [b.cast(mw, np.float32)], perm=[0, 2, 1]), b.ints([1], "axes")])
        total = b.node("MatMul", [rows, cols])
        safe = b.node("Max", [count, b.const(np.float32(1))])
        value = b.node("Div", [total, safe])
    else:
        low = b.const(np.float32(-np.inf))
        wide = b.node("Where", [b.reshape(mw, (r, 1, 1, pw, w)),
                                b.node("Unsqueeze", [image, b.ints([3], "axes")]), low])  # (R, C, H, PW, W)
        by_col = b.node("ReduceMax", [wide, b.ints([4], "axes")], keepdims=0)  # (R, C, H, PW)
        tall = b.node("Where", [b.reshape(mh, (r, 1, ph, h, 1)), b.node("Unsqueeze", [by_col, b.ints([2], "axes")]), low])
        value = b.node("ReduceMax", [tall, b.ints([3], "axes")], keepdims=0)  # (R, C, PH, PW)
    empty = b.node("LessOrEqual", [count, b.const(np.float32(0))])
    return [b.node("Where", [empty, b.const(np.float32(0)), value]), None]


@lowering("NMSKeep")
def lower_nms_keep(b: Builder, op: Op) -> list[str]:
    """Greedy NMS over boxes (x0, y0, x1, y1) already in priority order: a box is kept unless its IoU with a kept
    earlier box exceeds the threshold; indices padded with the last kept one, and the number kept."""
    n, m, _ = op.inputs[0].shape
    max_out = op.params.get("max_output", 0)
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
    sizes = b.node("ReduceSum", [one_hot, b.ints([0], "axes")], keepdims=0)  # (N,)
    last_pos = b.node("Unsqueeze", [b.node("Max", [b.node("Sub", [sizes, b.const(np.int64(1))]), b.const(np.int64(0))]),
                                    b.ints([1], "axes")])
    last = b.node("GatherElements", [kept, last_pos], axis=1)
    inside = b.node("Less", [b.const(np.arange(max_out, dtype=np.int64)), b.node("Unsqueeze", [sizes, b.ints([1], "axes")])])
    return [b.cast(b.node("Where", [inside, kept, last]), np.int32), b.cast(sizes, np.int32)]
