"""Image resampling: Padding, Resize, WarpPerspective, WarpAffine and Remap (OpenCV's fixed-point tables where
MegEngine uses them).

Each operator's param table, shape rule, fold rule and lowering (with the modes it declares) sit together.
"""

from __future__ import annotations

import numpy as np

from ..format.params import param_table
from ..graph.infer import const_ints, fail, fold_rule, shape_rule, unsupported
from ..graph.ir import Op, Var
from ..lower.builder import Builder, lowering

param_table(13, "WarpPerspective", [("imode", "u32", 1), ("bmode", "u32", 0), ("format", "u32", 0),
                                    ("border_val", "f32", 0.0)], "WarpPerspective")
param_table(38, "WarpAffine", [("imode", "u32", 1), ("border_mode", "u32", 0), ("border_val", "f32", 0.0),
                               ("format", "u32", 1)])
param_table(40, "Resize", [("imode", "u32", 1), ("format", "u32", 1)], "Resize")
param_table(68, "Remap", [("imode", "u32", 1), ("border_type", "u32", 0), ("format", "u32", 1), ("scalar", "f32", 0.0)])
param_table(82, "Padding", [*[(f"front_offset_dim{i}", "u32", 0) for i in range(7)],
                            *[(f"back_offset_dim{i}", "u32", 0) for i in range(7)],
                            ("padding_val", "f32", 0.0), ("padding_mode", "u32", 2)], "Padding")


NCHW, NHWC = 0, 1


INTERP_MODES = {0: "NEAREST", 1: "LINEAR", 2: "AREA", 3: "CUBIC", 4: "LANCZOS4"}


BORDER_MODES = {0: "REPLICATE", 1: "REFLECT", 2: "REFLECT_101", 3: "WRAP", 4: "CONSTANT", 5: "TRANSPARENT",
                6: "ISOLATED"}


PADDING_MODES = {0: "edge", 1: "reflect", 2: "constant"}  # MegDNN REPLICATE / REFLECT / CONSTANT as numpy modes


def padding_plan(op: Op) -> tuple[str, list[tuple[int, int]]]:
    """(numpy pad mode, (front, back) per axis) of a Padding."""
    p = op.params
    mode = p.get("padding_mode", 2)
    if mode not in PADDING_MODES:
        raise unsupported(op, f"Padding mode {mode}")
    x = op.inputs[0].shape
    pads = [(p.get(f"front_offset_dim{i}", 0), p.get(f"back_offset_dim{i}", 0)) for i in range(len(x))]
    if PADDING_MODES[mode] == "reflect" and any(max(f, b) >= d for (f, b), d in zip(pads, x)):
        raise fail(op, f"reflect padding {pads} needs pads smaller than the input dims {list(x)}")
    return PADDING_MODES[mode], pads


def image_axes(op: Op, fmt: int) -> tuple[int, int, int]:
    """(H axis, W axis, C axis) of a 4-D image in NCHW or NHWC."""
    if fmt == NCHW:
        return 2, 3, 1
    if fmt == NHWC:
        return 1, 2, 3
    raise unsupported(op, f"image format {fmt} (only NCHW and NHWC are supported)")


def image_out_shape(op: Op, src: Var, batch: int, out_hw: Var, fmt: int) -> tuple[int, ...]:
    """The source shape with batch ``batch`` and the spatial dims given by the (constant) ``out_hw`` input."""
    if len(src.shape) != 4:
        raise fail(op, f"the image input must be 4-D, got {list(src.shape)}")
    h, w, _ = image_axes(op, fmt)
    hw = const_ints(op, out_hw, "output size")
    if len(hw) != 2 or min(hw) <= 0:
        raise fail(op, f"bad output size {hw}")
    shape = list(src.shape)
    shape[0], shape[h], shape[w] = batch, hw[0], hw[1]
    return tuple(shape)


def warp_inputs(op: Op) -> tuple[Var, Var, Var | None, Var]:
    """(src, mat, mat_idx or None, out_hw) of a WarpPerspective/WarpAffine."""
    if len(op.inputs) == 4:
        return op.inputs[0], op.inputs[1], op.inputs[2], op.inputs[3]
    return op.inputs[0], op.inputs[1], None, op.inputs[2]


def warp_border(op: Op) -> tuple[str, float]:
    """(border mode name, border value) of a warp or remap; only bilinear sampling is supported."""
    p = op.params
    imode = p.get("imode", 1)
    if imode != 1:
        raise unsupported(op, f"{op.kind} interpolation mode {INTERP_MODES.get(imode, imode)} (only LINEAR)")
    bmode = p.get("bmode", p.get("border_mode", p.get("border_type", 0)))
    if BORDER_MODES.get(bmode) not in ("REPLICATE", "REFLECT", "REFLECT_101", "WRAP", "CONSTANT"):
        raise unsupported(op, f"{op.kind} border mode {BORDER_MODES.get(bmode, bmode)}")
    return BORDER_MODES[bmode], float(p.get("border_val", p.get("scalar", 0.0)))


def nearest_table(op: Op, in_size: int, out_size: int, opencv: bool) -> np.ndarray:
    """Source index of each output index for NEAREST resizing.

    MegDNN: min(int(i / float(out / in)), in - 1) in float32; its OpenCV path (NHWC with 1 or 3 channels):
    floor(i * (in / out)) in double.
    """
    i = np.arange(out_size)
    if opencv:
        src = np.floor(i * (1.0 / (out_size / in_size)))
    else:
        src = np.float32(i) / (np.float32(out_size) / np.float32(in_size))
    return np.minimum(src.astype(np.int64), in_size - 1)


RESIZE_COEF_BITS = 11  # MegDNN's x86 uint8 bilinear resize works in 11-bit fixed point


def opencv_linear_table(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(first source index, fixed-point weight of the second) per output index of MegDNN's x86 uint8 NHWC bilinear
    resize: src = (dst + 0.5) / (out / in) - 0.5 in float32, clamped like the float kernels, weight truncated."""
    i = np.arange(out_size, dtype=np.float32)
    src = (i + np.float32(0.5)) * (np.float32(1) / (np.float32(out_size) / np.float32(in_size))) - np.float32(0.5)
    first = np.floor(src)
    frac = src - first
    first = first.astype(np.int64)
    low, high = first < 0, first + 1 >= in_size
    first = np.where(low, 0, np.where(high, in_size - 2, first))
    frac = np.where(low, np.float32(0), np.where(high, np.float32(1), frac)).astype(np.float32)
    return first, (frac * np.float32(1 << RESIZE_COEF_BITS)).astype(np.int64)


INTER_TAB_SIZE = 32  # OpenCV's fixed-point coordinate resolution, used by MegDNN's x86 NHWC warp kernels


WARP_MODES = ["LINEAR", "border REPLICATE", "border REFLECT", "border REFLECT_101", "border WRAP", "border CONSTANT",
              "format NCHW", "format NHWC"]


def _resize_linear_u8(b: Builder, x: str, in_shape, out_shape) -> str:
    """MegDNN's x86 bilinear resize of 1- or 3-channel uint8 NHWC images: 11-bit fixed-point weights, int32
    accumulation, result truncated (no rounding)."""
    one = 1 << RESIZE_COEF_BITS
    corners, weights = [x], []
    for axis in (1, 2):
        first, weight = opencv_linear_table(in_shape[axis], out_shape[axis])
        shape = [1, 1, 1, 1]
        shape[axis] = out_shape[axis]
        corners = [b.node("Gather", [v, b.const(first + k, "index")], axis=axis) for v in corners for k in (0, 1)]
        weights.append([b.const((one - weight).reshape(shape).astype(np.int32)),
                        b.const(weight.reshape(shape).astype(np.int32))])
    total = None
    for i, corner in enumerate(corners):  # (h0, w0), (h0, w1), (h1, w0), (h1, w1)
        term = b.node("Mul", [b.node("Mul", [b.cast(corner, np.int32), weights[1][i % 2]]), weights[0][i // 2]])
        total = term if total is None else b.node("Add", [total, term])
    return b.cast(b.node("Div", [total, b.const(np.int32(one * one))]), np.uint8)


def _f32(b: Builder, value: float) -> str:
    return b.const(np.float32(value))


def _border_index(b: Builder, p: str, size: int, mode: str) -> tuple[str, str | None]:
    """int64 coordinates mapped into [0, size) by the border mode; for CONSTANT also the in-range mask."""
    i64 = np.int64
    if mode in ("REPLICATE", "CONSTANT") or size == 1:
        index = b.node("Min", [b.node("Max", [p, b.const(i64(0))]), b.const(i64(size - 1))])
        if mode != "CONSTANT":
            return index, None
        inside = [b.node("GreaterOrEqual", [p, b.const(i64(0))]), b.node("Less", [p, b.const(i64(size))])]
        return index, b.node("And", inside)
    if mode == "WRAP":
        return b.node("Mod", [p, b.const(i64(size))]), None
    period = 2 * size if mode == "REFLECT" else 2 * size - 2
    q = b.node("Mod", [p, b.const(i64(period))])
    mirrored = b.node("Sub", [b.const(i64(period - 1 if mode == "REFLECT" else period)), q])
    return b.node("Where", [b.node("GreaterOrEqual", [q, b.const(i64(size))]), mirrored, q]), None


def gather_bilinear(b: Builder, flat: str, shape: tuple[int, int, int, int, int], ah: str, aw: str, mode: str,
                    border_val: float, nchw: bool = True) -> str:
    """Bilinear samples of a float32 image flattened to (N, C, H*W) (or (N, H*W, C) when not ``nchw``) at k source
    rows ``ah`` and columns ``aw`` per image (N x k values in any shape); ``shape`` is (N, C, H, W, k). Returns
    (N, C, k) (or (N, k, C)); neighbours outside the image follow the border mode."""
    n, ch, ih, iw, k = shape
    per_pixel, full = ((n, 1, k), (n, ch, k)) if nchw else ((n, k, 1), (n, k, ch))
    border = _f32(b, border_val)
    corners = []
    for coord in (ah, aw):
        low = b.node("Floor", [coord])
        frac = b.node("Sub", [coord, low])
        p0 = b.cast(low, np.int64)
        corners.append([(p0, b.node("Sub", [_f32(b, 1), frac])), (b.node("Add", [p0, b.const(np.int64(1))]), frac)])
    total = None
    for (hp, hweight) in corners[0]:
        hi, hmask = _border_index(b, hp, ih, mode)
        for (wp, wweight) in corners[1]:
            wi, wmask = _border_index(b, wp, iw, mode)
            index = b.node("Expand", [b.reshape(b.node("Add", [b.node("Mul", [hi, b.const(np.int64(iw))]), wi]),
                                                per_pixel), b.ints(full)])
            value = b.node("GatherElements", [flat, index], axis=2 if nchw else 1)
            if hmask is not None:
                value = b.node("Where", [b.reshape(b.node("And", [hmask, wmask]), per_pixel), value, border])
            term = b.node("Mul", [value, b.reshape(b.node("Mul", [wweight, hweight]), per_pixel)])
            total = term if total is None else b.node("Add", [total, term])
    return total


def sample_bilinear(b: Builder, op: Op, src: str, src_shape: tuple[int, ...], ah: str, aw: str,
                    check_finite: bool = False) -> str:
    """Bilinear samples of a float32 NCHW/NHWC image at source rows ``ah`` and columns ``aw`` (one per output
    pixel, N x OH*OW values in any shape), with the op's border mode; returns the op's output."""
    mode, border_val = warp_border(op)
    out_shape = op.outputs[0].shape
    h, w, c = image_axes(op, op.params.get("format", NHWC if op.kind != "WarpPerspective" else NCHW))
    n, ih, iw, ch, k = src_shape[0], src_shape[h], src_shape[w], src_shape[c], out_shape[h] * out_shape[w]
    flat = b.reshape(src, (n, ch, ih * iw) if c == 1 else (n, ih * iw, ch))
    total = gather_bilinear(b, flat, (n, ch, ih, iw, k), ah, aw, mode, border_val, nchw=c == 1)
    if check_finite and mode == "CONSTANT":
        bad = b.node("Or", [b.node("IsNaN", [total]), b.node("IsInf", [total])])
        total = b.node("Where", [bad, _f32(b, border_val), total])
    return b.from_float32(b.reshape(total, out_shape), op.outputs[0].dtype.np_dtype)


def _opencv_coords(b: Builder, op: Op, src_shape, coords: list[str]) -> list[str]:
    """MegDNN's x86 NHWC kernels for 1-3 channel float32/uint8 images (OpenCV code) round coordinates to 1/32."""
    _, _, c = image_axes(op, op.params.get("format", NHWC if op.kind != "WarpPerspective" else NCHW))
    if c != 3 or src_shape[3] > 3 or op.inputs[0].dtype.np_dtype not in (np.float32, np.uint8):
        return coords
    scale = _f32(b, INTER_TAB_SIZE)
    return [b.node("Div", [b.node("Round", [b.node("Mul", [v, scale])]), scale]) for v in coords]


@shape_rule("Padding")
def _padding_shape(op: Op):
    _, pads = padding_plan(op)
    x = op.inputs[0]
    return [(tuple(d + f + b for d, (f, b) in zip(x.shape, pads)), x.dtype)]


@fold_rule("Padding")
def _padding_fold(op: Op, xs):
    mode, pads = padding_plan(op)
    extra = {"constant_values": op.params.get("padding_val", 0.0)} if mode == "constant" else {}
    return [np.pad(xs[0], pads, mode=mode, **extra)]


@lowering("Padding", modes=["REPLICATE", "REFLECT", "CONSTANT"])
def lower_padding(b: Builder, op: Op) -> list[str]:
    """Pad each axis by (front, back): CONSTANT value, REPLICATE the edge, or REFLECT without repeating the edge."""
    mode, pads = padding_plan(op)
    inputs = [b.inp(op, 0), b.ints([f for f, _ in pads] + [k for _, k in pads], "pads")]
    if mode == "constant":
        inputs.append(b.const(np.asarray(op.params.get("padding_val", 0.0), op.inputs[0].dtype.np_dtype), "pad"))
    return [b.node("Pad", inputs, mode=mode)]


@shape_rule("Resize")
def _resize_shape(op: Op):
    x, imode = op.inputs[0], op.params.get("imode", 1)
    if INTERP_MODES.get(imode) not in ("NEAREST", "LINEAR", "CUBIC"):
        raise unsupported(op, f"Resize interpolation mode {INTERP_MODES.get(imode, imode)}")
    return [(image_out_shape(op, x, x.shape[0], op.inputs[1], op.params.get("format", NHWC)), x.dtype)]


@lowering("Resize", modes=["NEAREST", "LINEAR", "CUBIC", "format NCHW", "format NHWC"])
def lower_resize(b: Builder, op: Op) -> list[str]:
    """Resize H, W: LINEAR/CUBIC on the half-pixel grid with clamped edges; NEAREST takes floor(dst * in / out)."""
    x, out = op.inputs[0], op.outputs[0]
    fmt = op.params.get("format", NHWC)
    h, w, c = image_axes(op, fmt)
    mode = INTERP_MODES[op.params.get("imode", 1)]
    opencv = fmt == NHWC and x.shape[c] in (1, 3)
    if mode == "CUBIC" and fmt == NHWC and not opencv:
        mode = "LINEAR"  # MegDNN's NHWC fallback kernel builds bilinear tables whatever the mode
    if mode == "LINEAR" and opencv and x.dtype.np_dtype == np.uint8 and min(x.shape[h], x.shape[w]) >= 2:
        return [_resize_linear_u8(b, b.inp(op, 0), x.shape, out.shape)]
    if mode != "NEAREST":  # computed in float32, then rounded like MegDNN's converters
        value = b.node("Resize", [b.float32(op, 0), "", "", b.ints([out.shape[h], out.shape[w]], "sizes")],
                       axes=[h, w], mode=mode.lower(), coordinate_transformation_mode="half_pixel", cubic_coeff_a=-0.75)
        return [b.from_float32(value, x.dtype.np_dtype)]
    value = b.inp(op, 0)
    for axis in (h, w):
        table = nearest_table(op, x.shape[axis], out.shape[axis], opencv)
        if not np.array_equal(table, np.arange(x.shape[axis])):
            value = b.node("Gather", [value, b.const(table, "index")], axis=axis)
    return [value]


@shape_rule("WarpPerspective", "WarpAffine")
def _warp_shape(op: Op):
    src, mat, mat_idx, out_hw = warp_inputs(op)
    warp_border(op)
    rows = 3 if op.kind == "WarpPerspective" else 2
    if len(mat.shape) != 3 or mat.shape[1:] != (rows, 3):
        raise fail(op, f"the matrices must be (N, {rows}, 3), got {list(mat.shape)}")
    if mat_idx is None and mat.shape[0] != src.shape[0]:
        raise fail(op, f"{mat.shape[0]} matrices for a batch of {src.shape[0]} without mat_idx")
    fmt = op.params.get("format", NCHW if op.kind == "WarpPerspective" else NHWC)
    return [(image_out_shape(op, src, mat.shape[0], out_hw, fmt), src.dtype)]


@lowering("WarpPerspective", "WarpAffine", modes=WARP_MODES)
def lower_warp(b: Builder, op: Op) -> list[str]:
    """Each output pixel samples the source bilinearly at mat @ (x, y, 1) (perspective: divided by the 3rd row)."""
    src, mat, mat_idx, _ = warp_inputs(op)
    out = op.outputs[0].shape
    h, w, _ = image_axes(op, op.params.get("format", NHWC if op.kind != "WarpPerspective" else NCHW))
    image, shape = b.float32(op, 0), src.shape
    if mat_idx is not None:
        image = b.node("Gather", [image, b.cast(b.name(mat_idx), np.int64)], axis=0)
        shape = (mat.shape[0],) + shape[1:]
    ys, xs = np.divmod(np.arange(out[h] * out[w]), out[w])
    grid = b.const(np.stack([xs, ys, np.ones_like(xs)]).astype(np.float32), "grid")
    rows = b.node("Split", [b.node("MatMul", [b.float32(op, 1), grid])], n_out=mat.shape[1], axis=1,
                      num_outputs=mat.shape[1])
    aw, ah = rows[0], rows[1]
    if op.kind == "WarpPerspective":
        aw, ah = b.node("Div", [aw, rows[2]]), b.node("Div", [ah, rows[2]])
    ah, aw = _opencv_coords(b, op, shape, [ah, aw])
    return [sample_bilinear(b, op, image, shape, ah, aw, check_finite=True)]


@shape_rule("Remap")
def _remap_shape(op: Op):
    src, xy = op.inputs
    warp_border(op)
    if len(xy.shape) != 4 or xy.shape[3] != 2 or xy.shape[0] != src.shape[0]:
        raise fail(op, f"the map must be (N, OH, OW, 2) with the source's batch, got {list(xy.shape)}")
    h, w, _ = image_axes(op, op.params.get("format", NHWC))
    shape = list(src.shape)
    shape[h], shape[w] = xy.shape[1], xy.shape[2]
    return [(tuple(shape), src.dtype)]


@lowering("Remap", modes=WARP_MODES)
def lower_remap(b: Builder, op: Op) -> list[str]:
    """Output pixel (x, y) samples the source bilinearly at map[n, y, x] = (column, row)."""
    aw, ah = b.node("Split", [b.float32(op, 1)], n_out=2, axis=3, num_outputs=2)
    return [sample_bilinear(b, op, b.float32(op, 0), op.inputs[0].shape, ah, aw)]
