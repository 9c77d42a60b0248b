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
from ..format.dtypes import BOOL, INT32, DType, bfloat16_round, from_numpy, is_bfloat16
from .elemwise_modes import BOOL_RESULT, MODES, MULTI_MODES, QUANTIZED_MODES, mode_name
from .dims import RuntimeDimError, Sym, dims_equal, is_static, maximum, minimum, product
from .ir import Graph, Op, Var
from .quant import dequantize, quantize

ShapeRule = Callable[[Op], list[tuple[tuple[int, ...], DType]]]
FoldRule = Callable[[Op, list[np.ndarray]], list[np.ndarray]]

SHAPE_RULES: dict[str, ShapeRule] = {}
FOLD_RULES: dict[str, FoldRule] = {}
# Kinds whose value depends only on static input shapes: always folded.
SHAPE_ONLY = {"GetVarShape"}


def shape_rule(*kinds: str):
    def register(fn):
        for k in kinds:
            SHAPE_RULES[k] = fn
        return fn
    return register


def fold_rule(*kinds: str):
    def register(fn):
        for k in kinds:
            FOLD_RULES[k] = fn
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
    if fold is not None and op.kind in SYM_FOLD and all(v.is_const or v.sym_value is not None or
                                                        (op.kind == "GetVarShape") for v in op.inputs):
        _sym_fold(op, fold)


SYM_ELEMWISE = {"ADD": lambda a, b: a + b, "SUB": lambda a, b: a - b, "MUL": lambda a, b: a * b,
                "FLOOR_DIV": lambda a, b: a // b, "MIN": minimum, "MAX": maximum, "NEGATE": lambda a: -a}
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
        if op.kind == "GetVarShape":
            shape = broadcast_shapes(op, [v.shape for v in op.inputs])
            axis = op.params.get("axis", 7)
            value = np.array(list(shape) if axis == 7 else [shape[norm_axis(op, axis, len(shape))]], object)
        elif op.kind == "Elemwise":
            fn = SYM_ELEMWISE.get(MODES.get(op.params.get("mode", 0), ("?",))[0])
            if fn is None:
                return
            value = np.frompyfunc(fn, len(xs), 1)(*xs)
        elif op.kind == "TypeCvt":
            value = xs[0]
        else:
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


def same(op: Op) -> list[tuple[tuple[int, ...], DType]]:
    x = op.inputs[0]
    return [(x.shape, op.output_dtype or x.dtype)]


# ---------------------------------------------------------------------------------------------- elementwise

@shape_rule("Elemwise")
def _elemwise_shape(op: Op):
    mode = op.params.get("mode", 0)
    if mode not in MODES:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: Elemwise {mode_name(mode)}")
    name, arity, _ = MODES[mode]
    if len(op.inputs) != arity:
        raise fail(op, f"Elemwise {name} takes {arity} inputs, got {len(op.inputs)}")
    shape = broadcast_shapes(op, [v.shape for v in op.inputs])
    dtype = BOOL if name in BOOL_RESULT else op.inputs[0].dtype
    return [(shape, dtype)]


@fold_rule("Elemwise")
def _elemwise_fold(op: Op, xs):
    mode = op.params.get("mode", 0)
    name, arity, fn = MODES.get(mode, (mode_name(mode), 0, None))
    if fn is None:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: cannot fold Elemwise {name}")
    dt = xs[0].dtype
    with np.errstate(all="ignore"):
        out = np.asarray(fn(*xs))
    return [out if name in BOOL_RESULT or out.dtype == np.bool_ else out.astype(dt, copy=False)]


def quantized_mode(op: Op) -> str | None:
    """The Elemwise mode a quantized ElemwiseMultiType (QADD, QFUSE_ADD_RELU, ...) computes, else None."""
    name = QUANTIZED_MODES.get(op.params.get("mode", 0))
    if name is None:
        return None
    if op.output_dtype is None or not op.output_dtype.quantized:
        raise fail(op, f"quantized ElemwiseMultiType Q{name} without a quantized output dtype")
    arity = next(a for n, a, _ in MODES.values() if n == name)
    if len(op.inputs) != arity:
        raise fail(op, f"ElemwiseMultiType Q{name} takes {arity} inputs, got {len(op.inputs)}")
    return name


def multi_type_mode(op: Op) -> tuple[str, int, object, np.dtype]:
    """The (name, arity, numpy function, output dtype) of a non-quantized ElemwiseMultiType."""
    mode = op.params.get("mode", 0)
    if mode not in MULTI_MODES:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: ElemwiseMultiType mode {mode}")
    entry = MULTI_MODES[mode]
    if len(op.inputs) != entry[1]:
        raise fail(op, f"ElemwiseMultiType {entry[0]} takes {entry[1]} inputs, got {len(op.inputs)}")
    return entry


@shape_rule("ElemwiseMultiType")
def _elemwise_multi_type_shape(op: Op):
    shape = broadcast_shapes(op, [v.shape for v in op.inputs])
    if quantized_mode(op):
        return [(shape, op.output_dtype)]
    return [(shape, op.output_dtype or from_numpy(multi_type_mode(op)[3]))]


@fold_rule("ElemwiseMultiType")
def _elemwise_multi_type_fold(op: Op, xs):
    name = quantized_mode(op)
    with np.errstate(all="ignore"):
        if name:
            fn = next(f for n, _, f in MODES.values() if n == name)
            real = fn(*[dequantize(x, v.dtype) for x, v in zip(xs, op.inputs)])
            return [quantize(np.asarray(real, np.float32), op.output_dtype)]
        _, _, fn, out = multi_type_mode(op)
        return [np.asarray(fn(*xs)).astype(out)]


@shape_rule("PowC")
def _powc_shape(op: Op):
    return same(op)


@fold_rule("PowC")
def _powc_fold(op: Op, xs):
    x = xs[0]
    return [np.power(x, np.asarray(op.params["exp"], x.dtype)).astype(x.dtype)]


PASSTHROUGH = ("Identity", "Copy", "MarkNoBroadcastElemwise", "MarkDynamicVar")
# Kinds that compute shape vectors: folded on symbols too (see the module docstring).
SYM_FOLD = {"GetVarShape", "Elemwise", "Concat", "Subtensor", "Reshape", "AxisAddRemove", "Dimshuffle", "TypeCvt",
            "Broadcast", "Reduce", *PASSTHROUGH}


@shape_rule(*PASSTHROUGH)
def _passthrough_shape(op: Op):
    return same(op)


@fold_rule(*PASSTHROUGH)
def _passthrough_fold(op: Op, xs):
    return [xs[0]]


@shape_rule("TypeCvt")
def _typecvt_shape(op: Op):
    return [(op.inputs[0].shape, op.params["dtype"])]


@fold_rule("TypeCvt")
def _typecvt_fold(op: Op, xs):
    target: DType = op.params["dtype"]
    x = xs[0]
    if target.quantized or op.inputs[0].dtype.quantized:
        real = dequantize(x, op.inputs[0].dtype)
        return [quantize(real, target) if target.quantized else real.astype(target.np_dtype)]
    if target.np_dtype == np.bool_:
        return [x != 0]
    return [x.astype(target.np_dtype)]


# ---------------------------------------------------------------------------------------------- shapes

@fold_rule("GetVarShape")
def _getvarshape_fold(op: Op, xs):
    """The input's static shape (the broadcast shape of several inputs), or one dim of it."""
    shape = broadcast_shapes(op, [v.shape for v in op.inputs])
    axis = op.params.get("axis", 7)
    if axis != 7:
        shape = (shape[norm_axis(op, axis, len(shape))],)
    return [np.asarray(shape, np.int32).reshape(-1) if shape else np.ones(1, np.int32)]


@shape_rule("GetVarShape")
def _getvarshape_shape(op: Op):
    """Only reached when a dim is known only at run time (static shapes fold): the shape as an int32 vector."""
    ndim = len(broadcast_shapes(op, [v.shape for v in op.inputs]))
    return [((ndim if op.params.get("axis", 7) == 7 and ndim else 1,), INT32)]


def reshape_target(op: Op, x: Var, target: list, axis: int) -> tuple:
    size = product(x.shape)
    if axis != 7:
        target = list(target)
        target[norm_axis(op, axis, len(target))] = -1
    if target.count(-1) > 1:
        raise fail(op, f"reshape target {target} has more than one unknown dim")
    if -1 in target:
        rest = product([d for d in target if d != -1])
        if rest == 0 or (isinstance(size, int) and isinstance(rest, int) and size % rest):
            raise fail(op, f"cannot reshape {list(x.shape)} into {target}")
        target = [size // rest if isinstance(d, int) and d == -1 else d for d in target]
    if dims_equal(product(target), size) is False:
        raise fail(op, f"cannot reshape {list(x.shape)} ({size} elements) into {target}")
    return tuple(target)


@shape_rule("Reshape")
def _reshape_shape(op: Op):
    x, t = op.inputs
    return [(reshape_target(op, x, value_dims(op, t, "target shape"), op.params.get("axis", 7)), x.dtype)]


@fold_rule("Reshape")
def _reshape_fold(op: Op, xs):
    return [xs[0].reshape(_reshape_shape(op)[0][0])]


@shape_rule("Broadcast")
def _broadcast_shape(op: Op):
    x, t = op.inputs
    target = tuple(value_dims(op, t, "target shape"))
    if len(target) < len(x.shape) or any(dims_equal(a, b) is False and a != 1
                                         for a, b in zip(x.shape[::-1], target[::-1])):
        raise fail(op, f"cannot broadcast {list(x.shape)} to {list(target)}")
    return [(target, x.dtype)]


@fold_rule("Broadcast")
def _broadcast_fold(op: Op, xs):
    return [np.broadcast_to(xs[0], _broadcast_shape(op)[0][0]).copy()]


@shape_rule("Concat")
def _concat_shape(op: Op):
    shapes = [v.shape for v in op.inputs]
    axis = norm_axis(op, op.params.get("axis", 0), len(shapes[0]))
    for s in shapes:
        if len(s) != len(shapes[0]) or any(dims_equal(a, b) is False
                                           for i, (a, b) in enumerate(zip(s, shapes[0])) if i != axis):
            raise fail(op, f"cannot concatenate shapes {[list(s) for s in shapes]} on axis {axis}")
    out = list(shapes[0])
    for i, d in enumerate(out):  # a symbol where another input has an int: the int
        out[i] = next((s[i] for s in shapes if isinstance(s[i], int)), d)
    out[axis] = 0
    for s in shapes:
        out[axis] = out[axis] + s[axis]
    return [(tuple(out), op.inputs[0].dtype)]


@fold_rule("Concat")
def _concat_fold(op: Op, xs):
    return [np.concatenate(xs, axis=op.params.get("axis", 0))]


@shape_rule("Split")
def _split_shape(op: Op):
    x = op.inputs[0]
    axis = norm_axis(op, op.params.get("axis", 0), len(x.shape))
    sizes = [const_ints(op, v, "split size")[0] for v in op.inputs[1:]]
    if sum(sizes) != x.shape[axis]:
        raise fail(op, f"split sizes {sizes} do not add up to dim {axis} of {list(x.shape)}")
    return [(x.shape[:axis] + (s,) + x.shape[axis + 1:], x.dtype) for s in sizes]


@fold_rule("Split")
def _split_fold(op: Op, xs):
    axis = op.params.get("axis", 0)
    sizes = [int(np.asarray(s).reshape(-1)[0]) for s in xs[1:]]
    return np.split(xs[0], np.cumsum(sizes)[:-1], axis=axis)


def dimshuffle_shape(op: Op, shape: tuple[int, ...]) -> tuple[int, ...]:
    pattern = op.params["pattern"]
    kept = [p for p in pattern if p >= 0]
    dropped = [i for i in range(len(shape)) if i not in kept]
    if any(shape[i] != 1 for i in dropped) or any(p >= len(shape) for p in kept):
        raise fail(op, f"pattern {list(pattern)} does not fit input shape {list(shape)}")
    return tuple(1 if p < 0 else shape[p] for p in pattern)


@shape_rule("Dimshuffle")
def _dimshuffle_shape(op: Op):
    x = op.inputs[0]
    return [(dimshuffle_shape(op, x.shape), x.dtype)]


@fold_rule("Dimshuffle")
def _dimshuffle_fold(op: Op, xs):
    x = xs[0]
    kept = [p for p in op.params["pattern"] if p >= 0]
    perm = kept + [i for i in range(x.ndim) if i not in kept]
    return [np.transpose(x, perm).reshape(dimshuffle_shape(op, x.shape))]


def axis_add_remove_shape(op: Op, shape: tuple[int, ...]) -> tuple[int, ...]:
    out = list(shape)
    for method, axis in op.params["desc"]:
        if method == 0:
            out.insert(norm_axis(op, axis, len(out) + 1), 1)
        else:
            a = norm_axis(op, axis, len(out))
            if out[a] != 1:
                raise fail(op, f"cannot remove axis {axis} of size {out[a]} from {list(shape)}")
            del out[a]
    return tuple(out) or (1,)


@shape_rule("AxisAddRemove")
def _axis_add_remove_shape(op: Op):
    x = op.inputs[0]
    return [(axis_add_remove_shape(op, x.shape), x.dtype)]


@fold_rule("AxisAddRemove")
def _axis_add_remove_fold(op: Op, xs):
    return [xs[0].reshape(axis_add_remove_shape(op, xs[0].shape))]


def subtensor_index(op: Op, ndim: int, values: list[Var]) -> tuple[list, list[int]]:
    """Python index objects per axis from the IndexDescMaskDump items, and the axes an integer index removes.

    Slice bounds come from constant inputs; for ``IndexingMultiAxisVec`` an index entry is a Var
    (possibly non-constant) instead of an int.
    """
    index: list = [slice(None)] * ndim
    removed: list[int] = []
    it = iter(values)
    for axis, has_begin, has_end, has_step, has_idx in op.params["items"]:
        a = norm_axis(op, axis, ndim)
        if has_idx:
            v = next(it)
            if op.kind in SUBTENSOR_KINDS:
                index[a] = const_ints(op, v, "index")[0]
                removed.append(a)
            else:
                index[a] = v
            continue
        b = const_ints(op, next(it), "slice begin")[0] if has_begin else None
        e = next(it) if has_end else None
        s = const_ints(op, next(it), "slice step")[0] if has_step else None
        if s == 0:
            raise fail(op, "slice step is zero")
        if e is not None and (e.is_const or op.kind in SET_KINDS or s not in (None, 1)):
            e = const_ints(op, e, "slice end")[0]
        index[a] = slice(b, e, s)  # a Var end: known at run time (Subtensor, step 1: x[:n] after NMSKeep)
    return index, removed


SUBTENSOR_KINDS = {"Subtensor", "SetSubtensor", "IncrSubtensor"}  # indexed by ints and slices only
SET_KINDS = {"SetSubtensor", "IncrSubtensor", "IndexingSetMultiAxisVec", "IndexingIncrMultiAxisVec"}


def advanced_index(op: Op, x_shape, index: list):
    """numpy index objects, with int vectors as given by constants or zeros (for shape probing)."""
    np_index = []
    for entry in index:
        if isinstance(entry, Var):
            arr = entry.const if entry.const is not None else np.broadcast_to(np.zeros((), np.int64), entry.shape)
            np_index.append(np.asarray(arr).astype(np.int64, copy=False))
        else:
            np_index.append(entry)
    return tuple(np_index)


PROBE_LIMIT = 2**20  # results up to this many elements are probed with numpy itself


def indexed_shape(op: Op, x_shape: tuple, index: list) -> tuple:
    """Shape of x[index] (integer indices remove their axis; a 0-d result is (1,))."""
    if not is_static(x_shape) or runtime_end_axes(index) or any(
            isinstance(e, Var) and not is_static(e.shape) for e in index):
        return _symbolic_indexed_shape(op, x_shape, index)
    shape = _indexed_shape_rule(op, x_shape, index)
    if int(np.prod(shape, dtype=np.float64)) > PROBE_LIMIT:
        # numpy would loop over every element of the result: a huge declared shape must not stall us
        return shape or (1,)
    try:
        # a probe of zero-size elements: neither x nor the indexed result take memory
        shape = np.broadcast_to(np.empty((), np.dtype([])), x_shape)[advanced_index(op, x_shape, index)].shape
    except IndexError as exc:
        raise fail(op, f"bad index for shape {list(x_shape)}: {exc}") from None
    return shape or (1,)


def _symbolic_indexed_shape(op: Op, x_shape: tuple, index: list) -> tuple:
    """``indexed_shape`` when dims are known only at run time: each symbol stands in as a distinct huge int, the
    numpy rule runs, and the stand-ins that come out map back to their symbols; a slice of a symbolic dim (or up to
    a computed end) gets a new symbol, bounded by the dim."""
    stand_in: dict[int, Sym] = {}

    def probe(d):
        if isinstance(d, int):
            return d
        for value, sym in stand_in.items():
            if sym == d:
                return value
        value = 2**40 + 7 * len(stand_in)
        stand_in[value] = d
        return value

    shape = [probe(d) for d in x_shape]
    probed = []
    for axis, e in enumerate(index):
        if isinstance(e, slice) and (isinstance(e.stop, Var) or (not isinstance(x_shape[axis], int) and
                                                                 e != slice(None))):
            dim = x_shape[axis]
            shape[axis] = probe(Sym(bound=dim if isinstance(dim, int) else dim.bound))
            probed.append(slice(None))
        elif isinstance(e, Var) and not is_static(e.shape):
            probed.append(Var(-1, "probe", e.dtype, tuple(probe(d) for d in e.shape)))
        else:
            probed.append(e)
    out = _indexed_shape_rule(op, tuple(shape), probed)
    return tuple(stand_in.get(d, d) for d in out) or (1,)


def _indexed_shape_rule(op: Op, x_shape: tuple[int, ...], index: list) -> tuple[int, ...]:
    """numpy's result shape of x[index] without indexing: slices keep their length; without index vectors, ints
    drop their axis; with them, ints and vectors broadcast together and the result takes their place when they are
    adjacent, else goes first. Constant indices are bounds-checked like numpy does."""
    vectors = any(isinstance(e, Var) for e in index)
    dims: list[int | None] = []
    positions, shapes = [], []
    for axis, entry in enumerate(index):
        dim = x_shape[axis]
        if isinstance(entry, slice):
            dims.append(len(range(*entry.indices(dim))))
            continue
        values = entry.const if isinstance(entry, Var) else np.asarray(entry)
        if values is not None and np.size(values) and (np.min(values) < -dim or np.max(values) >= dim):
            raise fail(op, f"bad index for shape {list(x_shape)}: index out of bounds for axis {axis} of size {dim}")
        if vectors:
            positions.append(axis)
            shapes.append(tuple(entry.shape) if isinstance(entry, Var) else ())
            dims.append(None)
    dims += list(x_shape[len(index):])
    if not positions:
        return tuple(d for d in dims if d is not None)
    try:
        joint = tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise fail(op, f"bad index for shape {list(x_shape)}: index shapes {shapes} do not broadcast") from None
    rest = [d for d in dims if d is not None]
    if positions == list(range(positions[0], positions[-1] + 1)):
        return tuple(rest[:positions[0]]) + joint + tuple(rest[positions[0]:])
    return joint + tuple(rest)


def runtime_end_axes(index: list) -> list[int]:
    """Axes of ``index`` whose slice ends at a value computed at run time."""
    return [a for a, e in enumerate(index) if isinstance(e, slice) and isinstance(e.stop, Var)]


@shape_rule("Subtensor", "IndexingMultiAxisVec")
def _subtensor_shape(op: Op):
    x = op.inputs[0]
    index, _ = subtensor_index(op, len(x.shape), op.inputs[1:])
    return [(indexed_shape(op, x.shape, index), x.dtype)]


@fold_rule("Subtensor", "IndexingMultiAxisVec")
def _subtensor_fold(op: Op, xs):
    index, _ = subtensor_index(op, xs[0].ndim, op.inputs[1:])
    out = np.asarray(xs[0][advanced_index(op, xs[0].shape, index)])
    return [out.reshape(-1) if out.ndim == 0 else out.copy()]


@shape_rule("SetSubtensor", "IncrSubtensor", "IndexingSetMultiAxisVec", "IndexingIncrMultiAxisVec")
def _set_subtensor_shape(op: Op):
    x, value = op.inputs[:2]
    index, _ = subtensor_index(op, len(x.shape), op.inputs[2:])
    target = indexed_shape(op, x.shape, index)
    if broadcast_shapes(op, [value.shape, target]) != tuple(target):
        raise fail(op, f"value shape {list(value.shape)} does not broadcast to the indexed shape {list(target)}")
    return same(op)


@fold_rule("SetSubtensor", "IncrSubtensor", "IndexingSetMultiAxisVec", "IndexingIncrMultiAxisVec")
def _set_subtensor_fold(op: Op, xs):
    x, value = xs[:2]
    index, _ = subtensor_index(op, x.ndim, op.inputs[2:])
    np_index = advanced_index(op, x.shape, index)
    value = np.broadcast_to(value, indexed_shape(op, x.shape, index)).reshape(x[np_index].shape)
    out = x.copy()
    if "Incr" in op.kind:
        np.add.at(out, np_index, value)
    else:
        out[np_index] = value
    return [out]


# ---------------------------------------------------------------------------------------------- reductions

REDUCE_MODES = {0: "SUM", 1: "SUM_SQR", 2: "PRODUCT", 3: "MIN", 4: "MAX", 5: "MEAN"}
INT_MAX = 2**31 - 1


def reduce_plan(op: Op) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(axes reduced, output shape) of a Reduce; the axis form keeps the reduced dim as size 1."""
    x = op.inputs[0]
    axis = op.params.get("axis", INT_MAX)
    if axis != INT_MAX:
        a = norm_axis(op, axis, len(x.shape))
        return (a,), x.shape[:a] + (1,) + x.shape[a + 1:]
    if len(op.inputs) < 2:
        raise fail(op, "Reduce without an axis needs a target shape input")
    target = tuple(value_dims(op, op.inputs[1], "target shape"))
    if target == (1,) or len(target) != len(x.shape):
        if product(target) != 1:
            raise fail(op, f"cannot reduce {list(x.shape)} to {list(target)}")
        return tuple(range(len(x.shape))), target
    axes = tuple(i for i, (a, b) in enumerate(zip(x.shape, target)) if dims_equal(a, b) is not True)
    if any(target[i] != 1 for i in axes):
        raise fail(op, f"cannot reduce {list(x.shape)} to {list(target)}")
    return axes, target


@shape_rule("Reduce")
def _reduce_shape(op: Op):
    mode = op.params.get("mode", 0)
    if mode not in REDUCE_MODES:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: Reduce mode {mode}")
    return [(reduce_plan(op)[1], op.inputs[0].dtype)]


@fold_rule("Reduce")
def _reduce_fold(op: Op, xs):
    axes, shape = reduce_plan(op)
    x = xs[0]
    fn = {0: np.sum, 2: np.prod, 3: np.min, 4: np.max, 5: np.mean}.get(op.params.get("mode", 0))
    value = np.sum(x * x, axis=axes) if fn is None else fn(x, axis=axes)
    return [np.asarray(value).astype(x.dtype).reshape(shape)]
