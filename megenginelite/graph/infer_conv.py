"""Shape rules of the less common convolutions: Convolution3D, Local/GroupLocal (unshared weights) and
DeformableConv."""

from __future__ import annotations

from ..errors import UnsupportedOperatorError
from .infer import fail, shape_rule
from .infer_nn import conv_geometry, spatial_out
from .ir import Op


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


@shape_rule("Convolution3D")
def _conv3d_shape(op: Op):
    x = op.inputs[0].shape
    groups, oc, kernel, pads, strides, dilations = conv3d_geometry(op)
    return [((x[0], oc, *spatial_out(op, x[2:], kernel, pads, strides, dilations)), op.inputs[0].dtype)]


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


@shape_rule("GroupLocal", "Local")
def _local_shape(op: Op):
    groups, _, ocpg, out, _, _, _ = local_geometry(op)
    x = op.inputs[0]
    return [((x.shape[0], groups * ocpg, *out), x.dtype)]


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


@shape_rule("DeformableConv")
def _deformable_conv_shape(op: Op):
    _, out, oc = deformable_geometry(op)
    x = op.inputs[0]
    return [((x.shape[0], oc, *out), x.dtype)]
