"""Lowerings of the linear-algebra operators: Dot, Diag, MatrixInverse and SVD (singular values)."""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOperatorError
from ..graph.infer_linalg import diag_table
from ..graph.ir import Op
from .builder import Builder, lowering


@lowering("Dot")
def lower_dot(b: Builder, op: Op) -> list[str]:
    """Inner product of two vectors, as a (1,) tensor."""
    return [b.node("ReduceSum", [b.node("Mul", [b.inp(op, 0), b.inp(op, 1)]), b.ints([0], "axes")], keepdims=1)]


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


@lowering("MatrixInverse")
def lower_matrix_inverse(b: Builder, op: Op) -> list[str]:
    """Inverse of each (n, n) matrix (ONNX Runtime's com.microsoft Inverse)."""
    return [b.node("Inverse", [b.inp(op, 0)], domain="com.microsoft")]


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
