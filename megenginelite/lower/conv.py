"""Lowerings of Images2Neibs and the less common convolutions: Convolution3D, Local/GroupLocal and
DeformableConv."""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOperatorError
from ..graph.infer_conv import conv3d_geometry, deformable_geometry, local_geometry
from ..graph.infer_nn import conv_geometry
from ..graph.infer_vision import neibs_geometry
from ..graph.ir import Op
from .builder import Builder, lowering
from .image import gather_bilinear


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


@lowering("Convolution3D", modes=["CROSS_CORRELATION", "CONVOLUTION", "DENSE", "GROUP"])
def lower_conv3d(b: Builder, op: Op) -> list[str]:
    """3-D NCDHW convolution, dense or grouped; CONVOLUTION mode flips the kernel."""
    groups, oc, kernel, pads, strides, dilations = conv3d_geometry(op)
    flip = (-3, -2, -1) if op.params.get("mode", 0) == 1 else ()
    weight = _filter(b, op, (oc, op.inputs[0].shape[1] // groups, *kernel), flip)
    return [b.node("Conv", [b.inp(op, 0), weight], group=groups, kernel_shape=kernel, pads=pads * 2, strides=strides,
                   dilations=dilations)]


def unfold(b: Builder, value: str, kernel, pads, strides, dilations, out) -> str:
    """Patches of an NCHW image, zero-padded: (N, C, OH, FH, OW, FW) with
    [.., oh, i, ow, j] = x[.., oh * sh - ph + i * dh, ow * sw - pw + j * dw]."""
    value = b.node("Pad", [value, b.ints([0, 0, pads[0], pads[1], 0, 0, pads[0], pads[1]], "pads")])
    for axis, o, k, s, d in zip((2, 4), out, kernel, strides, dilations):
        value = b.node("Gather", [value, b.const(np.arange(o)[:, None] * s + np.arange(k)[None, :] * d, "index")],
                       axis=axis)
    return value


@lowering("Images2Neibs")
def lower_images2neibs(b: Builder, op: Op) -> list[str]:
    """Sliding windows (N, C, OH, OW, WH, WW) of the zero-padded image, with stride and dilation."""
    out, window, pads, strides, dilations = neibs_geometry(op)
    patches = unfold(b, b.inp(op, 0), window, pads, strides, dilations, out)
    return [b.node("Transpose", [patches], perm=[0, 1, 2, 4, 3, 5])]


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
