"""Shape rules of the vision operators: CvtColor, Images2Neibs, Correlation, ROIPooling, ROIAlign and NMSKeep."""

from __future__ import annotations

from ..errors import UnsupportedOperatorError
from ..format.dtypes import INT32
from .infer import const_ints, fail, shape_rule
from .infer_nn import spatial_out
from .ir import Op

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


@shape_rule("CvtColor")
def _cvt_color_shape(op: Op):
    _, _, cout = cvt_color_mode(op)
    x = op.inputs[0]
    return [(x.shape[:3] + (cout,), x.dtype)]


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


@shape_rule("Images2Neibs")
def _images2neibs_shape(op: Op):
    x = op.inputs[0]
    out, window, _, _, _ = neibs_geometry(op)
    return [(x.shape[:2] + tuple(out) + tuple(window), x.dtype)]


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


@shape_rule("Correlation")
def _correlation_shape(op: Op):
    _, grid, size = correlation_geometry(op)
    a = op.inputs[0]
    return [((a.shape[0], (2 * grid + 1) ** 2) + size, a.dtype)]


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


@shape_rule("ROIPooling", "ROIAlign")
def _roi_shape(op: Op):
    x, rois = op.inputs[0].shape, op.inputs[1].shape
    shape = (rois[0], x[1]) + roi_out_size(op)
    return [(shape, op.inputs[0].dtype), (shape, INT32)]


@shape_rule("NMSKeep")
def _nms_keep_shape(op: Op):
    boxes = op.inputs[0].shape
    if len(boxes) != 3 or boxes[2] != 4:
        raise fail(op, f"NMSKeep needs (N, M, 4) boxes, got {list(boxes)}")
    return [((boxes[0], op.params.get("max_output", 0)), INT32), ((boxes[0],), INT32)]
