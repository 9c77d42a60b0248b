"""What ``megenginelite info`` reports: format, inputs/outputs, operator histograms, parameters, estimated FLOPs."""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..errors import LiteError
from ..format import ModelRecord
from ..format.dtypes import DType
from ..graph import Graph, build_graph, canonical_kind, infer_graph
from ..graph.build import CONST_OPRS
from ..graph.dims import format_dim, is_static
from ..graph.elemwise_modes import mode_name
from ..ops.conv import conv_geometry, deconv_geometry
from ..ops.linalg import matmul_dims
from ..graph.input_order import original_input_order
from ..graph.ir import live_ops

FLOP_KINDS = ("convolution", "deconvolution", "matmul", "batched_matmul", "elementwise")


def mge_version_string(code: int) -> str:
    """MegEngine's version code (major * 100000 + minor * 100 + patch, e.g. 101300) as ``1.13.0``."""
    if code <= 0:
        return "unknown"
    return f"{code // 100000}.{code // 100 % 1000}.{code % 100}"


def dtype_name(dtype: DType | None) -> str:
    """numpy's name for plain dtypes (``float32``), MegEngine's description for quantized ones."""
    if dtype is None:
        return "?"
    return str(dtype) if dtype.quantized else dtype.np_dtype.name


def _numel(shape) -> int:
    """Elements of a shape; a dim known only at run time counts at its upper bound (0 when it has none)."""
    return int(np.prod([d if isinstance(d, int) else d.bound or 0 for d in shape], dtype=np.int64)) if shape else 1


def _bound(d) -> int:
    return d if isinstance(d, int) else d.bound or 0


def estimate_flops(graph: Graph) -> dict[str, int]:
    """Floating-point operations of one forward of an inferred graph, by category.

    A multiply-add counts 2; element-wise ops count 1 per output element (ConvBias's bias, residual and
    activation count as element-wise too). Ops folded to constants and ops whose results reach no output are left
    out; pooling, softmax, normalization and data movement are not counted. Dims known only at run time count at
    their upper bound (``upper_bound`` is then True: the figures are maxima).
    """
    flops = dict.fromkeys(FLOP_KINDS, 0)
    live = live_ops(graph)
    for op in graph.ops:
        if op not in live or all(v.is_const for v in op.outputs):
            continue
        out = op.outputs[0].shape
        if op.kind in ("Convolution", "ConvBias"):
            groups, _, kernel, _, _, _ = conv_geometry(op)
            ic = op.inputs[0].shape[1]
            flops["convolution"] += 2 * _numel(out) * (ic // groups) * _numel(kernel)
            extra = (len(op.inputs) > 2) + (len(op.inputs) > 3) + (op.params.get("nonlineMode", 0) != 0)
            flops["elementwise"] += extra * _numel(out)
        elif op.kind == "ConvolutionBackwardData":
            groups, oc, kernel, _, _, _ = deconv_geometry(op)
            flops["deconvolution"] += 2 * _numel(op.inputs[1].shape) * (oc // groups) * _numel(kernel)
        elif op.kind == "MatrixMul":
            m, k, n = map(_bound, matmul_dims(op, op.inputs[0].shape, op.inputs[1].shape))
            flops["matmul"] += 2 * m * k * n
        elif op.kind == "BatchedMatrixMul":
            m, k, n = map(_bound, matmul_dims(op, op.inputs[0].shape, op.inputs[1].shape))
            flops["batched_matmul"] += 2 * _bound(op.inputs[0].shape[0]) * m * k * n
        elif op.kind in ("Elemwise", "PowC"):
            flops["elementwise"] += _numel(out)
    flops["total"] = sum(flops[k] for k in FLOP_KINDS)
    flops["upper_bound"] = any(not is_static(v.shape) for op in graph.ops if op in live for v in op.outputs)
    return flops


def model_summary(record: ModelRecord) -> dict:
    """Everything ``megenginelite info`` prints, as plain JSON-able data.

    When static inference fails (an operator we cannot run), output shapes and FLOPs are ``None`` and
    ``inference_error`` says why; the rest still describes the file.
    """
    by_type = Counter(rec.type for rec in record.oprs)
    by_kind = Counter(canonical_kind(rec.type) for rec in record.oprs)
    modes = Counter(mode_name(rec.params.get("mode", 0)) for rec in record.oprs
                    if canonical_kind(rec.type) == "Elemwise")
    n_tensors = n_values = n_bytes = 0
    for rec in record.oprs:
        if rec.type in CONST_OPRS:
            for t in rec.tensors:
                n_tensors += 1
                n_values += _numel(t.shape)
                n_bytes += _numel(t.shape) * t.dtype.np_dtype.itemsize

    graph = build_graph(record)
    order = original_input_order(graph.input_names)
    inputs = sorted(graph.inputs, key=lambda v: order.index(v.name))
    input_info = [{"name": v.name, "shape": list(v.shape), "dtype": dtype_name(v.dtype)} for v in inputs]
    error = flops = None
    try:
        infer_graph(graph)
        flops = estimate_flops(graph)
    except LiteError as exc:
        error = str(exc)
    outputs = [{"name": name, "shape": None if error else [d if isinstance(d, int) else format_dim(d) for d in
                                                           var.shape], "dtype": None if error else
                dtype_name(var.dtype)} for name, var in graph.outputs]
    return {
        "model": record.source,
        "format": record.format,
        "mge_version": mge_version_string(record.mge_version),
        "model_version": record.model_version,
        "inputs": input_info,
        "outputs": outputs,
        "operators": {
            "total": sum(by_type.values()),
            "by_type": dict(by_type.most_common()),
            "by_kind": dict(by_kind.most_common()),
            "elemwise_modes": dict(modes.most_common()),
        },
        "parameters": {"tensors": n_tensors, "count": n_values, "bytes": n_bytes},
        "flops": flops,
        "inference_error": error,
    }
