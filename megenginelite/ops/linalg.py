"""Linear algebra: MatrixMul, BatchedMatrixMul (float and quantized), Dot, Diag, MatrixInverse and SVD.

Each operator's param table, shape rule, fold rule and lowering (with the modes it declares) sit together.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOperatorError
from ..format.dtypes import DType
from ..format.params import param_table
from ..graph import cpu
from ..graph.dims import dims_equal
from ..graph.infer import fail, fold_rule, same, shape_rule
from ..graph.ir import Op
from ..lower.builder import Builder, lowering, shifted_array, shifted_dtype
from .elemwise import quantize

param_table(20, "MatrixMul", [("transposeA", "bool", False), ("transposeB", "bool", False), ("compute_mode", "u32", 0),
                              ("format", "u32", 0)], "MatrixMul", "BatchedMatrixMul")
param_table(22, "SVD", [("full_matrices", "bool", False), ("compute_uv", "bool", True)])
param_table(91, "Diag", [("k", "i32", 0)])


def diag_table(op: Op) -> np.ndarray:
    """Flat source index of every output element of a Diag (-1 for the zeros around a vector's diagonal)."""
    x, k = op.inputs[0].shape, op.params.get("k", 0)
    if len(x) == 1:
        return np.diag(np.arange(1, x[0] + 1), k) - 1
    if len(x) != 2 or (min(x[1] - k, x[0]) if k >= 0 else min(x[0] + k, x[1])) <= 0:
        raise fail(op, f"Diag needs a vector or a matrix containing diagonal {k}, got {list(x)}")
    return np.diag(np.arange(x[0] * x[1]).reshape(x), k)


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


SVD_MAX_SIZE = 8  # one-sided Jacobi is unrolled into the graph: n (n - 1) / 2 rotations per sweep


SVD_SWEEPS = 8


def _rotate(b: Builder, cols: list[str], p: int, q: int) -> None:
    """One Jacobi rotation making columns p and q orthogonal (Hestenes' one-sided Jacobi), in place."""
    f32 = np.float32
    dot = lambda x, y: b.node("ReduceSum", [b.node("Mul", [x, y]), b.ints([-1], "axes")], keepdims=1)  # noqa: E731
    alpha, beta, gamma = dot(cols[p], cols[p]), dot(cols[q], cols[q]), dot(cols[p], cols[q])
    flat = b.node("Equal", [gamma, b.const(f32(0))])
    zeta = b.node("Div", [b.node("Sub", [beta, alpha]),
                          b.node("Where", [flat, b.const(f32(1)), b.node("Mul", [gamma, b.const(f32(2))])])])
    sign = b.node("Where", [b.node("Less", [zeta, b.const(f32(0))]), b.const(f32(-1)), b.const(f32(1))])
    root = b.node("Sqrt", [b.node("Add", [b.const(f32(1)), b.node("Mul", [zeta, zeta])])])
    t = b.node("Div", [sign, b.node("Add", [b.node("Abs", [zeta]), root])])
    t = b.node("Where", [flat, b.const(f32(0)), t])
    c = b.node("Reciprocal", [b.node("Sqrt", [b.node("Add", [b.const(f32(1)), b.node("Mul", [t, t])])])])
    s = b.node("Mul", [c, t])
    cols[p], cols[q] = (b.node("Sub", [b.node("Mul", [c, cols[p]]), b.node("Mul", [s, cols[q]])]),
                        b.node("Add", [b.node("Mul", [s, cols[p]]), b.node("Mul", [c, cols[q]])]))


def _unsigned(op: Op, i: int) -> bool:
    """Whether input ``i``, an int8 operand of a quantized product, goes to MatMulInteger as uint8 (+ 128): where
    the CPU's uint8 x int8 products saturate (graph/cpu.py), uint8 x uint8 is the exact kernel."""
    return op.inputs[0].dtype.quantized and op.inputs[i].dtype.np_dtype == np.int8 and cpu.int8_products_saturate()


def _transposed(b: Builder, op: Op, i: int, flag: bool, perm) -> str:
    var = op.inputs[i]
    unsigned = _unsigned(op, i)
    if var.is_const and (flag or unsigned):
        value = np.transpose(var.const, perm) if flag else var.const
        value = shifted_array(value) if unsigned else value
        return b.const(np.ascontiguousarray(value), "matrix")
    name = b.shifted(var)[0] if unsigned else b.name(var)
    return b.node("Transpose", [name], perm=perm) if flag else name


def _matmul(b: Builder, op: Op, a: str, c: str) -> str:
    """a @ c; quantized operands multiply in ONNX Runtime's integer kernel (MatMulInteger: exact int32
    accumulators, zero points subtracted), requantized when the output dtype is not the accumulator's."""
    x_dt, y_dt, out_dt = op.inputs[0].dtype, op.inputs[1].dtype, op.outputs[0].dtype
    if not x_dt.quantized:
        return b.node("MatMul", [a, c])
    held = [shifted_dtype(dt) if _unsigned(op, i) else dt for i, dt in enumerate((x_dt, y_dt))]
    zero_points = [b.const(np.asarray(dt.zero_point or 0, dt.np_dtype), "zp") for dt in held]
    acc = b.node("MatMulInteger", [a, c] + zero_points)
    unit = np.float32(x_dt.scale) * np.float32(y_dt.scale)
    if out_dt.name == "QuantizedS32" and np.isclose(out_dt.scale, unit, rtol=1e-6, atol=0):
        return acc
    real = b.node("Mul", [b.cast(acc, np.float32), b.const(unit)])
    return quantize(b, real, out_dt) if out_dt.quantized else b.cast(real, out_dt.np_dtype)


@shape_rule("Dot")
def _dot_shape(op: Op):
    a, b = op.inputs
    if len(a.shape) != 1 or a.shape != b.shape:
        raise fail(op, f"Dot needs two vectors of one length, got {list(a.shape)} and {list(b.shape)}")
    return [((1,), a.dtype)]


@fold_rule("Dot")
def _dot_fold(op: Op, xs):
    return [np.dot(xs[0], xs[1]).reshape(1).astype(xs[0].dtype)]


@lowering("Dot")
def lower_dot(b: Builder, op: Op) -> list[str]:
    """Inner product of two vectors, as a (1,) tensor."""
    return [b.node("ReduceSum", [b.node("Mul", [b.inp(op, 0), b.inp(op, 1)]), b.ints([0], "axes")], keepdims=1)]


@shape_rule("Diag")
def _diag_shape(op: Op):
    return [(diag_table(op).shape, op.inputs[0].dtype)]


@fold_rule("Diag")
def _diag_fold(op: Op, xs):
    return [np.diag(xs[0], op.params.get("k", 0))]


@lowering("Diag")
def lower_diag(b: Builder, op: Op) -> list[str]:
    """np.diag: a vector becomes a square matrix with it on diagonal k, a matrix gives its diagonal k."""
    table = diag_table(op)
    flat = b.reshape(b.inp(op, 0), [-1])
    if len(op.inputs[0].shape) == 1:
        n = op.inputs[0].shape[0]
        zero = b.const(np.zeros(1, op.inputs[0].dtype.np_dtype))
        flat, table = b.node("Concat", [flat, zero], axis=0), np.where(table < 0, n, table)
    return [b.node("Gather", [flat, b.const(table.astype(np.int64), "index")], axis=0)]


@shape_rule("MatrixInverse")
def _matrix_inverse_shape(op: Op):
    x = op.inputs[0].shape
    if len(x) < 2 or x[-1] != x[-2]:
        raise fail(op, f"MatrixInverse needs (..., n, n) matrices, got {list(x)}")
    return same(op)


@fold_rule("MatrixInverse")
def _matrix_inverse_fold(op: Op, xs):
    return [np.linalg.inv(xs[0]).astype(xs[0].dtype)]


@lowering("MatrixInverse")
def lower_matrix_inverse(b: Builder, op: Op) -> list[str]:
    """Inverse of each (n, n) matrix (ONNX Runtime's com.microsoft Inverse)."""
    return [b.node("Inverse", [b.inp(op, 0)], domain="com.microsoft")]


@shape_rule("SVD")
def _svd_shape(op: Op):
    """Outputs (u, s, vt) of the thin or full SVD of (..., m, n) matrices."""
    x = op.inputs[0]
    if len(x.shape) < 2:
        raise fail(op, f"SVD needs (..., m, n) matrices, got {list(x.shape)}")
    *lead, m, n = x.shape
    k = min(m, n)
    full = op.params.get("full_matrices", False)
    lead = tuple(lead)
    return [(lead + (m, m if full else k), x.dtype), (lead + (k,), x.dtype), (lead + (n if full else k, n), x.dtype)]


@fold_rule("SVD")
def _svd_fold(op: Op, xs):
    u, s, vt = np.linalg.svd(xs[0], full_matrices=op.params.get("full_matrices", False))
    return [u.astype(xs[0].dtype), s.astype(xs[0].dtype), vt.astype(xs[0].dtype)]


@lowering("SVD", modes=["singular values (u and vt are not computed)"])
def lower_svd(b: Builder, op: Op) -> list[str]:
    """Singular values (descending) of (..., m, n) matrices by unrolled one-sided Jacobi; u and vt are not made."""
    *lead, m, n = op.inputs[0].shape
    x = b.float32(op, 0)
    if n > m:  # the singular values of the transpose are the same
        x, (m, n) = b.node("Transpose", [x], perm=list(range(len(lead))) + [len(lead) + 1, len(lead)]), (n, m)
    if n > SVD_MAX_SIZE:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: SVD of matrices larger than "
                                       f"{SVD_MAX_SIZE} (the Jacobi sweeps are unrolled)")
    columns = b.node("Transpose", [x], perm=list(range(len(lead))) + [len(lead) + 1, len(lead)])  # (..., n, m)
    cols = list(b.node("Split", [columns], n_out=n, axis=-2, num_outputs=n)) if n > 1 else [columns]
    for _ in range(SVD_SWEEPS):
        for p in range(n):
            for q in range(p + 1, n):
                _rotate(b, cols, p, q)
    norms = [b.node("Sqrt", [b.node("ReduceSum", [b.node("Mul", [c, c]), b.ints([-1], "axes")], keepdims=1)])
             for c in cols]
    stacked = b.node("Concat", norms, axis=-1) if n > 1 else norms[0]
    values = b.node("TopK", [b.reshape(stacked, (*lead, n)), b.ints([n])], n_out=2, axis=-1, largest=1, sorted=1)[0]
    return [None, b.from_float32(values, op.outputs[1].dtype.np_dtype), None]


@shape_rule("MatrixMul")
def _matmul_shape(op: Op):
    a, b = op.inputs[0].shape, op.inputs[1].shape
    if len(a) != 2 or len(b) != 2:
        raise fail(op, f"MatrixMul needs 2-D inputs, got {list(a)} and {list(b)}")
    m, _, n = matmul_dims(op, a, b)
    return [((m, n), matmul_dtype(op))]


@lowering("MatrixMul", modes=["float", "quantized (QuantizedS8 / Quantized8Asymm -> QuantizedS32)"])
def lower_matrix_mul(b: Builder, op: Op) -> list[str]:
    """2-D A @ B with optional transposes of A and B."""
    if op.params.get("format", 0) != 0:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: MatrixMul format {op.params['format']}")
    ta, tb = op.params.get("transposeA", False), op.params.get("transposeB", False)
    if np.issubdtype(op.inputs[0].dtype.np_dtype, np.floating):
        return [b.node("Gemm", [b.inp(op, 0), b.inp(op, 1)], transA=int(ta), transB=int(tb))]
    return [_matmul(b, op, _transposed(b, op, 0, ta, [1, 0]), _transposed(b, op, 1, tb, [1, 0]))]


@shape_rule("BatchedMatrixMul")
def _batched_matmul_shape(op: Op):
    a, b = op.inputs[0].shape, op.inputs[1].shape
    if len(a) != 3 or len(b) != 3 or dims_equal(a[0], b[0]) is False:
        raise fail(op, f"BatchedMatrixMul needs 3-D inputs with one batch, got {list(a)} and {list(b)}")
    m, _, n = matmul_dims(op, a, b)
    return [((a[0], m, n), matmul_dtype(op))]


@lowering("BatchedMatrixMul", modes=["float", "quantized (QuantizedS8 / Quantized8Asymm -> QuantizedS32)"])
def lower_batched_matrix_mul(b: Builder, op: Op) -> list[str]:
    """3-D batched (B,M,K) @ (B,K,N) with optional transposes of the last two axes."""
    ta, tb = op.params.get("transposeA", False), op.params.get("transposeB", False)
    return [_matmul(b, op, _transposed(b, op, 0, ta, [0, 2, 1]), _transposed(b, op, 1, tb, [0, 2, 1]))]
