"""Shape and dtype rules of the neural-network operators (convolution, pooling, matmul, normalization, ...)."""

from __future__ import annotations

from ..errors import UnsupportedOperatorError
from ..format.dtypes import INT32
from .infer import const_ints, fail, norm_axis, same, shape_rule
from .ir import Op

NCHW = 0


def conv_geometry(op: Op) -> tuple[int, int, list[int], list[int], list[int], list[int]]:
    """(groups, out channels, kernel, pads, strides, dilations) of a Convolution/ConvBias in NCHW."""
    p = op.params
    if p.get("format", NCHW) != NCHW:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: convolution format "
                                       f"{p.get('format')} (only NCHW is supported)")
    w = op.inputs[1].shape
    if p.get("sparse", 0) == 0:
        if len(w) != 4:
            raise fail(op, f"dense filter must be 4-D, got {list(w)}")
        groups, oc, kernel = 1, w[0], list(w[2:])
    else:
        if len(w) != 5:
            raise fail(op, f"group filter must be 5-D, got {list(w)}")
        groups, oc, kernel = w[0], w[0] * w[1], list(w[3:])
    pads = [p.get("pad_h", 0), p.get("pad_w", 0)]
    strides = [p.get("stride_h", 1), p.get("stride_w", 1)]
    dilations = [p.get("dilate_h", 1), p.get("dilate_w", 1)]
    return groups, oc, kernel, pads, strides, dilations


def conv_out_shape(op: Op) -> tuple[int, ...]:
    x = op.inputs[0].shape
    if len(x) != 4:
        raise fail(op, f"convolution input must be 4-D NCHW, got {list(x)}")
    groups, oc, kernel, pads, strides, dilations = conv_geometry(op)
    w = op.inputs[1].shape
    ic_per_group = w[1] if groups == 1 else w[2]
    if x[1] != ic_per_group * groups:
        raise fail(op, f"input has {x[1]} channels, the filter {list(w)} expects {ic_per_group * groups}")
    spatial = []
    for size, k, pad, s, d in zip(x[2:], kernel, pads, strides, dilations):
        out = (size + 2 * pad - d * (k - 1) - 1) // s + 1
        if out <= 0:
            raise fail(op, f"input {list(x)} is too small for kernel {kernel} with padding {pads}")
        spatial.append(out)
    return (x[0], oc, *spatial)


@shape_rule("Convolution", "ConvBias")
def _conv_shape(op: Op):
    return [(conv_out_shape(op), op.output_dtype or op.inputs[0].dtype)]


@shape_rule("Pooling")
def _pooling_shape(op: Op):
    p = op.params
    x = op.inputs[0].shape
    if p.get("format", NCHW) != NCHW or len(x) != 4:
        raise fail(op, f"pooling needs a 4-D NCHW input, got {list(x)} format {p.get('format')}")
    out = []
    for size, pad, s, k in zip(x[2:], (p["pad_h"], p["pad_w"]), (p["stride_h"], p["stride_w"]),
                               (p["window_h"], p["window_w"])):
        o = (size + 2 * pad - k) // s + 1
        if o <= 0:
            raise fail(op, f"input {list(x)} is too small for a {k} window with padding {pad}")
        out.append(o)
    return [((x[0], x[1], *out), op.inputs[0].dtype)]


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
    if k != k2:
        raise fail(op, f"matrix shapes {list(a)} and {list(b)} do not match (transposeA={ta}, transposeB={tb})")
    return m, k, n


@shape_rule("MatrixMul")
def _matmul_shape(op: Op):
    a, b = op.inputs[0].shape, op.inputs[1].shape
    if len(a) != 2 or len(b) != 2:
        raise fail(op, f"MatrixMul needs 2-D inputs, got {list(a)} and {list(b)}")
    m, _, n = matmul_dims(op, a, b)
    return [((m, n), op.output_dtype or op.inputs[0].dtype)]


@shape_rule("BatchedMatrixMul")
def _batched_matmul_shape(op: Op):
    a, b = op.inputs[0].shape, op.inputs[1].shape
    if len(a) != 3 or len(b) != 3 or a[0] != b[0]:
        raise fail(op, f"BatchedMatrixMul needs 3-D inputs with one batch, got {list(a)} and {list(b)}")
    m, _, n = matmul_dims(op, a, b)
    return [((a[0], m, n), op.output_dtype or op.inputs[0].dtype)]


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
