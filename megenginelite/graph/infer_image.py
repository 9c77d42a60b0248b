"""Shape and fold rules of the image operators: Padding, Resize, WarpPerspective, WarpAffine and Remap."""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOperatorError
from .infer import const_ints, fail, fold_rule, shape_rule
from .ir import Op, Var

NCHW, NHWC = 0, 1
INTERP_MODES = {0: "NEAREST", 1: "LINEAR", 2: "AREA", 3: "CUBIC", 4: "LANCZOS4"}
BORDER_MODES = {0: "REPLICATE", 1: "REFLECT", 2: "REFLECT_101", 3: "WRAP", 4: "CONSTANT", 5: "TRANSPARENT",
                6: "ISOLATED"}
PADDING_MODES = {0: "edge", 1: "reflect", 2: "constant"}  # MegDNN REPLICATE / REFLECT / CONSTANT as numpy modes


def unsupported(op: Op, what: str) -> UnsupportedOperatorError:
    return UnsupportedOperatorError(f"unsupported operator {op.describe()}: {what}")


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


@shape_rule("Resize")
def _resize_shape(op: Op):
    x, imode = op.inputs[0], op.params.get("imode", 1)
    if INTERP_MODES.get(imode) not in ("NEAREST", "LINEAR", "CUBIC"):
        raise unsupported(op, f"Resize interpolation mode {INTERP_MODES.get(imode, imode)}")
    return [(image_out_shape(op, x, x.shape[0], op.inputs[1], op.params.get("format", NHWC)), x.dtype)]


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
