"""Shape and fold rules of the linear-algebra operators: Dot, Diag, MatrixInverse and SVD."""

from __future__ import annotations

import numpy as np

from .infer import fail, fold_rule, same, shape_rule
from .ir import Op


@shape_rule("Dot")
def _dot_shape(op: Op):
    a, b = op.inputs
    if len(a.shape) != 1 or a.shape != b.shape:
        raise fail(op, f"Dot needs two vectors of one length, got {list(a.shape)} and {list(b.shape)}")
    return [((1,), a.dtype)]


@fold_rule("Dot")
def _dot_fold(op: Op, xs):
    return [np.dot(xs[0], xs[1]).reshape(1).astype(xs[0].dtype)]


def diag_table(op: Op) -> np.ndarray:
    """Flat source index of every output element of a Diag (-1 for the zeros around a vector's diagonal)."""
    x, k = op.inputs[0].shape, op.params.get("k", 0)
    if len(x) == 1:
        return np.diag(np.arange(1, x[0] + 1), k) - 1
    if len(x) != 2 or (min(x[1] - k, x[0]) if k >= 0 else min(x[0] + k, x[1])) <= 0:
        raise fail(op, f"Diag needs a vector or a matrix containing diagonal {k}, got {list(x)}")
    return np.diag(np.arange(x[0] * x[1]).reshape(x), k)


@shape_rule("Diag")
def _diag_shape(op: Op):
    return [(diag_table(op).shape, op.inputs[0].dtype)]


@fold_rule("Diag")
def _diag_fold(op: Op, xs):
    return [np.diag(xs[0], op.params.get("k", 0))]


@shape_rule("MatrixInverse")
def _matrix_inverse_shape(op: Op):
    x = op.inputs[0].shape
    if len(x) < 2 or x[-1] != x[-2]:
        raise fail(op, f"MatrixInverse needs (..., n, n) matrices, got {list(x)}")
    return same(op)


@fold_rule("MatrixInverse")
def _matrix_inverse_fold(op: Op, xs):
    return [np.linalg.inv(xs[0]).astype(xs[0].dtype)]


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
