"""Inference over the IR: output dtypes and shapes of every op, and constant folding.

Graph inputs get concrete shapes (the ones the user feeds), so a shape sub-graph (GetVarShape -> Subtensor ->
Concat -> Reshape ...) folds to constants here unless it starts from a dim known only at run time (``dims.Sym``:
CondTake's length, ...). Then the same fold rules run on object arrays of ints and symbols, which gives the shape
vector's ``sym_value`` (so the shapes it makes stay known symbolically), and the sub-graph is lowered to ONNX shape
arithmetic. Each rule is a small function registered for an op kind; ``fold`` rules evaluate an op with numpy when
all its inputs are constant.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import InvalidInputError, UnsupportedOperatorError
from ..format.dtypes import DType, bfloat16_round, from_numpy, is_bfloat16
from .dims import RuntimeDimError, Sym, is_static, maximum
from .ir import Graph, Op, Var

ShapeRule = Callable[[Op], list[tuple[tuple[int, ...], DType]]]
FoldRule = Callable[[Op, list[np.ndarray]], list[np.ndarray]]

SHAPE_RULES: dict[str, ShapeRule] = {}
FOLD_RULES: dict[str, FoldRule] = {}
# Kinds whose value depends only on static input shapes: always folded.
SHAPE_ONLY: set[str] = set()
# Kinds that compute shape vectors: folded on symbols too (see the module docstring), by these rules.
SYM_FOLD_RULES: dict[str, FoldRule] = {}


def _register(table: dict, kinds: tuple[str, ...], fn, what: str) -> None:
    for k in kinds:
        if k in table:
            raise ValueError(f"two {what} for {k}")
        table[k] = fn


def shape_rule(*kinds: str):
    """Register the function giving the output (shape, dtype) pairs of operators of these kinds."""
    def register(fn):
        _register(SHAPE_RULES, kinds, fn, "shape rules")
        return fn
    return register


def fold_rule(*kinds: str, shape_only: bool = False, symbolic: bool = False):
    """Register the numpy function evaluating operators of these kinds on constant inputs. ``shape_only``: the
    value depends only on the input shapes, so it folds whenever they are static; ``symbolic``: the same function
    also computes shape vectors on object arrays of ints and symbols."""
    def register(fn):
        _register(FOLD_RULES, kinds, fn, "fold rules")
        if shape_only:
            SHAPE_ONLY.update(kinds)
        if symbolic:
            _register(SYM_FOLD_RULES, kinds, fn, "symbolic fold rules")
        return fn
    return register


def sym_fold_rule(*kinds: str):
    """Register how operators of these kinds compute a shape vector on symbols, where their numeric fold rule
    cannot; the function raises ``RuntimeDimError`` for what it cannot express."""
    def register(fn):
        _register(SYM_FOLD_RULES, kinds, fn, "symbolic fold rules")
        return fn
    return register


class ShapeError(InvalidInputError):
    """The graph cannot take the input shapes it is given."""


def fail(op: Op, msg: str) -> ShapeError:
    return ShapeError(f"{op.describe()}: {msg}")


def const_ints(op: Op, var: Var, what: str) -> list[int]:
    """A shape-like input (int32 or float32) that must be known before running."""
    if var.const is None:
        raise UnsupportedOperatorError(f"{op.describe()}: its {what} ({var.name!r}) is computed at run time from "
                                       f"data, which is not supported")
    return [int(v) for v in np.asarray(var.const).reshape(-1)]


def value_dims(op: Op, var: Var, what: str) -> list:
    """The entries of a shape-like input (a target shape, a count): ints when constant, else ints and symbols.
    Entries nothing tells us about become new symbols, which the lowering reads from the var itself."""
    if var.const is not None:
        return const_ints(op, var, what)
    if var.sym_value is None:
        if len(var.shape) != 1 or not isinstance(var.shape[0], int):
            raise UnsupportedOperatorError(f"{op.describe()}: its {what} ({var.name!r}) has a length known only "
                                           f"at run time")
        var.sym_value = np.array([Sym() for _ in range(var.shape[0])] or np.zeros(0, object), object)
    return list(var.sym_value.reshape(-1))


def broadcast_shapes(op: Op, shapes: list[tuple]) -> tuple:
    """numpy's broadcast of shapes whose dims may be symbols: a symbol against an int n > 1 is n (the run fails
    otherwise, as MegEngine does), two different symbols broadcast to their max."""
    if all(is_static(s) for s in shapes):
        try:
            return tuple(int(d) for d in np.broadcast_shapes(*shapes))
        except ValueError:
            raise fail(op, f"input shapes {[list(s) for s in shapes]} do not broadcast") from None
    ndim = max(len(s) for s in shapes)
    out = []
    for axis in range(ndim):
        dims = {s[axis - ndim + len(s)] for s in shapes if axis - ndim + len(s) >= 0} - {1}
        ints = {d for d in dims if isinstance(d, int)}
        if len(ints) > 1:
            raise fail(op, f"input shapes {[list(s) for s in shapes]} do not broadcast")
        if ints or not dims:
            out.append(ints.pop() if ints else 1)
            continue
        dim = dims.pop()
        for other in dims:
            dim = maximum(dim, other)
        out.append(dim)
    return tuple(out)


def norm_axis(op: Op, axis: int, ndim: int) -> int:
    a = axis + ndim if axis < 0 else axis
    if not 0 <= a < ndim:
        raise fail(op, f"axis {axis} is out of range for {ndim} dims")
    return a


def infer_graph(graph: Graph, input_shapes: dict[str, tuple[int, ...]] | None = None,
                input_dtypes: dict[str, DType] | None = None) -> None:
    """Set dtype, shape and (where possible) constant value on every var, in place."""
    for var in graph.inputs:
        if input_shapes and var.name in input_shapes:
            var.shape = tuple(int(d) for d in input_shapes[var.name])
        if input_dtypes and var.name in input_dtypes:
            var.dtype = input_dtypes[var.name]
    for op in graph.ops:
        infer_op(op)


# What a shape or fold rule raises on an operator that is not what its kind promises (corrupted files).
MALFORMED = (ValueError, IndexError, KeyError, TypeError, OverflowError, ZeroDivisionError, MemoryError,
             StopIteration)


def infer_op(op: Op) -> None:
    fold = FOLD_RULES.get(op.kind)
    static = all(v.shape is None or is_static(v.shape) for v in op.inputs)
    if fold is not None and ((op.kind in SHAPE_ONLY and static) or all(v.is_const for v in op.inputs)):
        try:
            results = fold(op, [v.const for v in op.inputs])
        except MALFORMED as exc:
            raise fail(op, f"cannot evaluate on its constant inputs: {type(exc).__name__}: {exc}") from None
        for var, value in zip(op.outputs, results):
            value = np.asarray(value)
            var.const = value if value.ndim else value.reshape(1)
            var.shape = var.const.shape
            var.dtype = var.dtype or _dtype_of(op, var.const)
            if is_bfloat16(var.dtype):  # carried as float32, rounded like MegDNN's bfloat16 results
                var.const = bfloat16_round(var.const)
        return
    rule = SHAPE_RULES.get(op.kind)
    if rule is None:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: no lowering for {op.kind!r}")
    try:
        results = rule(op)
    except RuntimeDimError as exc:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: {exc}") from None
    except MALFORMED as exc:
        if not static:
            raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: it cannot take inputs of sizes "
                                           f"known only at run time ({[v.shape for v in op.inputs]}): "
                                           f"{type(exc).__name__}: {exc}") from None
        # A corrupted file can give an op too few inputs or absurd params: report it, never crash.
        raise fail(op, f"malformed operator ({len(op.inputs)} inputs, params {op.params}): "
                       f"{type(exc).__name__}: {exc}") from None
    if len(results) < len(op.outputs):
        raise fail(op, f"the file lists {len(op.outputs)} outputs, the operator has {len(results)}")
    for var, (shape, dtype) in zip(op.outputs, results):
        var.shape = tuple(d if isinstance(d, Sym) else int(d) for d in shape)
        var.dtype = dtype
    sym_fold = SYM_FOLD_RULES.get(op.kind)
    if sym_fold is not None and (op.kind in SHAPE_ONLY or all(v.is_const or v.sym_value is not None
                                                              for v in op.inputs)):
        _sym_fold(op, sym_fold)


SYM_VALUE_LIMIT = 16  # shape vectors are short; longer integer tensors are data


def _sym_fold(op: Op, fold: FoldRule) -> None:
    """Set ``sym_value`` (or ``const``, when the symbols cancel out) on the outputs of a shape computation on
    symbols; anything this arithmetic cannot express leaves the outputs plain run-time values."""
    out = op.outputs[0]
    if len(op.outputs) != 1 or len(out.shape) > 1 or not is_static(out.shape) or \
            int(np.prod(out.shape)) > SYM_VALUE_LIMIT or out.dtype is None or out.dtype.np_dtype.kind not in "iu":
        return
    xs = [np.asarray(v.const).astype(object) if v.is_const else v.sym_value for v in op.inputs]
    try:
        value = fold(op, xs)[0]
        value = np.asarray(value, object).reshape(out.shape)
    except (RuntimeDimError, *MALFORMED):
        return
    if not all(isinstance(v, (int, np.integer, Sym)) for v in value.reshape(-1)):
        return
    if any(isinstance(v, Sym) for v in value.reshape(-1)):
        out.sym_value = value
    else:
        out.const = value.astype(out.dtype.np_dtype)


def _dtype_of(op: Op, value: np.ndarray) -> DType:
    if op.output_dtype is not None:
        return op.output_dtype
    if op.kind == "TypeCvt":  # the value's numpy type cannot tell e.g. BFloat16 (carried as float32) from Float32
        return op.params["dtype"]
    if op.inputs and op.inputs[0].dtype is not None and op.inputs[0].dtype.np_dtype == value.dtype:
        return op.inputs[0].dtype
    try:
        return from_numpy(value.dtype)
    except TypeError:  # e.g. a Concat of int32 and float32 constants (a corrupted dtype) folds to float64
        raise fail(op, f"its constant inputs {[str(v.dtype) for v in op.inputs]} fold to a {value.dtype} value, "
                       f"which has no MegEngine dtype") from None


def unsupported(op: Op, what: str) -> UnsupportedOperatorError:
    return UnsupportedOperatorError(f"unsupported operator {op.describe()}: {what}")


def same(op: Op) -> list[tuple[tuple[int, ...], DType]]:
    x = op.inputs[0]
    return [(x.shape, op.output_dtype or x.dtype)]


INT_MAX = 2**31 - 1  # MegEngine's "no axis" param value


