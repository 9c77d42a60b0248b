"""Lowerings of the linear-algebra operators: Dot, Diag and MatrixInverse."""

from __future__ import annotations

import numpy as np

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
