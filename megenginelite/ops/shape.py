"""Shape operators: Reshape, AxisAddRemove, Broadcast, Concat, Split, Dimshuffle, GetVarShape, the Subtensor and
Indexing*MultiAxisVec families and the pass-through kinds; they only move values, and most fold on shapes.

Each operator's param table, shape rule, fold rule and lowering (with the modes it declares) sit together.
"""

from __future__ import annotations

import numpy as np

from ..format.dtypes import INT32
from ..format.params import expect_param, param_table
from ..graph.dims import RuntimeDimError, Sym, dims_equal, is_static, product
from ..graph.infer import (broadcast_shapes, const_ints, fail, fold_rule, norm_axis, same, shape_rule, sym_fold_rule,
                           value_dims)
from ..graph.ir import Op, Var
from ..lower.builder import Builder, lowering

param_table(64, "Dimshuffle", [("pattern", "i32[]", ()), ("ndim", "u32", 0)], "Dimshuffle")
param_table(65, "AxisAddRemove", [("desc", "axisdesc[]", ())], "AxisAddRemove")
param_table(66, "IndexDescMaskDump", [("items", "indexdesc[]", ())], "Subtensor", "IndexingMultiAxisVec")
expect_param(2, "Concat", "Split")
expect_param(54, "Reshape", "GetVarShape")


PASSTHROUGH = ("Identity", "Copy", "MarkNoBroadcastElemwise", "MarkDynamicVar")


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


def dimshuffle_shape(op: Op, shape: tuple[int, ...]) -> tuple[int, ...]:
    pattern = op.params["pattern"]
    kept = [p for p in pattern if p >= 0]
    dropped = [i for i in range(len(shape)) if i not in kept]
    if any(shape[i] != 1 for i in dropped) or any(p >= len(shape) for p in kept):
        raise fail(op, f"pattern {list(pattern)} does not fit input shape {list(shape)}")
    return tuple(1 if p < 0 else shape[p] for p in pattern)


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


INT64_MIN = -(2**63)


INT64_MAX = 2**63 - 1


def _slice_bounds(s: slice, dim) -> tuple[int, int, int]:
    if isinstance(dim, Sym):  # ONNX Slice wraps negative bounds and clamps to the axis, as Python does
        step = 1 if s.step is None else s.step
        start = s.start if s.start is not None else (0 if step > 0 else INT64_MAX)
        return start, s.stop if s.stop is not None else (INT64_MAX if step > 0 else INT64_MIN), step
    start, stop, step = s.indices(dim)
    if step < 0 and stop < 0:
        stop = INT64_MIN
    return start, stop, step


def _slices(b: Builder, value: str, shape: tuple[int, ...], index: list) -> str:
    axes, starts, ends, steps = [], [], [], []
    for axis, entry in enumerate(index):
        if isinstance(entry, slice) and isinstance(entry.stop, Var):  # an end computed at run time (step 1)
            start, _, step = _slice_bounds(slice(entry.start, None, entry.step), shape[axis])
            end = b.reshape(b.cast(b.name(entry.stop), np.int64), [-1])
            axes.append(axis), starts.append(start), ends.append(b.node("Slice", [end, b.ints([0]), b.ints([1])]))
            steps.append(step)
        elif isinstance(entry, slice) and entry != slice(None):
            start, stop, step = _slice_bounds(entry, shape[axis])
            axes.append(axis), starts.append(start), ends.append(stop), steps.append(step)
        elif isinstance(entry, int):
            if isinstance(shape[axis], Sym):  # a negative index counts from the run-time end
                end = INT64_MAX if entry == -1 else entry + 1
                axes.append(axis), starts.append(entry), ends.append(end), steps.append(1)
                continue
            i = entry + shape[axis] if entry < 0 else entry
            axes.append(axis), starts.append(i), ends.append(i + 1), steps.append(1)
    if not axes:
        return value
    if all(isinstance(e, int) for e in ends):
        ends_value = b.ints(ends, "ends")
    else:  # ONNX Slice clamps a computed end to the axis, as Python does
        ends_value = b.node("Concat", [b.ints([e]) if isinstance(e, int) else e for e in ends], axis=0)
    return b.node("Slice", [value, b.ints(starts, "starts"), ends_value, b.ints(axes, "axes"),
                            b.ints(steps, "steps")])


def select(b: Builder, value: str, shape: tuple[int, ...], index: list) -> str:
    """value[index] for an index from ``subtensor_index``: slices, ints (their axis kept as size 1) and int vectors
    (numpy advanced indexing, broadcast together)."""
    if not any(isinstance(e, Var) for e in index):
        return _slices(b, value, shape, index)
    sliced_index = [e if isinstance(e, slice) else slice(None) for e in index]
    value = _slices(b, value, shape, sliced_index)
    if is_static(shape) and not any(isinstance(e, slice) and isinstance(e.stop, Var) for e in index):
        shape = np.broadcast_to(np.empty((), np.bool_), shape)[tuple(sliced_index)].shape  # zero-stride probe
    # (otherwise: the vector axes, the only dims used below, are not sliced)
    vec_axes = [a for a, e in enumerate(index) if isinstance(e, Var)]
    single = len(vec_axes) == 1  # nothing to broadcast; its length may be known only at run time
    idx_shapes = [index[a].shape for a in vec_axes]
    if single or all(s == idx_shapes[0] for s in idx_shapes):
        idx_shape = idx_shapes[0]
    elif all(is_static(s) for s in idx_shapes):
        idx_shape = tuple(np.broadcast_shapes(*idx_shapes))
    else:
        raise RuntimeDimError(f"index vectors of shapes {idx_shapes} known only at run time, broadcast together")

    def index_value(var: Var, dim) -> str:
        """int64 indices with negative entries wrapped, broadcast to the common index shape."""
        if var.is_const and is_static(idx_shape):
            arr = np.asarray(var.const, np.int64)
            return b.const(np.broadcast_to(np.where(arr < 0, arr + dim, arr), idx_shape).copy(), "index")
        v = b.cast(b.name(var), np.int64)
        v = b.node("Where", [b.node("Less", [v, b.ints([0])]), b.node("Add", [v, b.dim(dim)]), v])
        return v if single else b.node("Expand", [v, b.ints(idx_shape)])

    if single:
        a = vec_axes[0]
        return b.node("Gather", [value, index_value(index[a], shape[a])], axis=a)
    # Several vector axes: move them to the front, gather with stacked coordinates.
    rest = [a for a in range(len(shape)) if a not in vec_axes]
    moved = b.node("Transpose", [value], perm=vec_axes + rest)
    coords = [b.node("Unsqueeze", [index_value(index[a], shape[a]), b.ints([-1])]) for a in vec_axes]
    out = b.node("GatherND", [moved, b.node("Concat", coords, axis=-1)])
    first, k = vec_axes[0], len(idx_shape)
    if vec_axes == list(range(first, first + len(vec_axes))) and first > 0:
        # numpy keeps adjacent index axes in place: move the gathered dims back behind the leading slices.
        n = k + len(rest)
        perm = list(range(k, k + first)) + list(range(k)) + list(range(k + first, n))
        out = b.node("Transpose", [out], perm=perm)
    return out


@shape_rule(*PASSTHROUGH)
def _passthrough_shape(op: Op):
    return same(op)


@fold_rule(*PASSTHROUGH, symbolic=True)
def _passthrough_fold(op: Op, xs):
    return [xs[0]]


@lowering(*PASSTHROUGH, moves_values=True)
def lower_identity(b: Builder, op: Op) -> list[str]:
    """The input unchanged (copies and graph markers that compute nothing)."""
    return [b.inp(op, 0)]


@fold_rule("GetVarShape", shape_only=True)
def _getvarshape_fold(op: Op, xs):
    """The input's static shape (the broadcast shape of several inputs), or one dim of it."""
    shape = broadcast_shapes(op, [v.shape for v in op.inputs])
    axis = op.params.get("axis", 7)
    if axis != 7:
        shape = (shape[norm_axis(op, axis, len(shape))],)
    return [np.asarray(shape, np.int32).reshape(-1) if shape else np.ones(1, np.int32)]


@sym_fold_rule("GetVarShape")
def _getvarshape_sym_fold(op: Op, xs):
    """The shape vector itself, symbols included."""
    shape = broadcast_shapes(op, [v.shape for v in op.inputs])
    axis = op.params.get("axis", 7)
    return [np.array(list(shape) if axis == 7 else [shape[norm_axis(op, axis, len(shape))]], object)]


@shape_rule("GetVarShape")
def _getvarshape_shape(op: Op):
    """Only reached when a dim is known only at run time (static shapes fold): the shape as an int32 vector."""
    ndim = len(broadcast_shapes(op, [v.shape for v in op.inputs]))
    return [((ndim if op.params.get("axis", 7) == 7 and ndim else 1,), INT32)]


@lowering("GetVarShape")
def lower_get_var_shape(b: Builder, op: Op) -> list[str]:
    """The input's shape as int32 (or one dim of it; of several inputs, their broadcast shape); reached only when a
    dim is known only at run time (static shapes fold to constants)."""
    axis = op.params.get("axis", 7)
    if len(op.inputs) > 1:
        shape = broadcast_shapes(op, [v.shape for v in op.inputs])
        return [b.cast(b.ints(shape if axis == 7 else [shape[norm_axis(op, axis, len(shape))]]), np.int32)]
    attrs = {} if axis == 7 else {"start": norm_axis(op, axis, len(op.inputs[0].shape)),
                                  "end": norm_axis(op, axis, len(op.inputs[0].shape)) + 1}
    return [b.cast(b.node("Shape", [b.inp(op, 0)], **attrs), np.int32)]


@shape_rule("Reshape")
def _reshape_shape(op: Op):
    x, t = op.inputs
    return [(reshape_target(op, x, value_dims(op, t, "target shape"), op.params.get("axis", 7)), x.dtype)]


@fold_rule("Reshape", symbolic=True)
def _reshape_fold(op: Op, xs):
    return [xs[0].reshape(_reshape_shape(op)[0][0])]


@lowering("Reshape", "AxisAddRemove", moves_values=True)
def lower_reshape(b: Builder, op: Op) -> list[str]:
    """Same data, new (statically known) shape; AxisAddRemove adds or removes size-1 axes."""
    return [b.reshape(b.inp(op, 0), op.outputs[0].shape)]


@shape_rule("Broadcast")
def _broadcast_shape(op: Op):
    x, t = op.inputs
    target = tuple(value_dims(op, t, "target shape"))
    if len(target) < len(x.shape) or any(dims_equal(a, b) is False and a != 1
                                         for a, b in zip(x.shape[::-1], target[::-1])):
        raise fail(op, f"cannot broadcast {list(x.shape)} to {list(target)}")
    return [(target, x.dtype)]


@fold_rule("Broadcast", symbolic=True)
def _broadcast_fold(op: Op, xs):
    return [np.broadcast_to(xs[0], _broadcast_shape(op)[0][0]).copy()]


@lowering("Broadcast", moves_values=True)
def lower_broadcast(b: Builder, op: Op) -> list[str]:
    """numpy broadcast_to the target shape."""
    return [b.node("Expand", [b.inp(op, 0), b.ints(op.outputs[0].shape)])]


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


@fold_rule("Concat", symbolic=True)
def _concat_fold(op: Op, xs):
    return [np.concatenate(xs, axis=op.params.get("axis", 0))]


@lowering("Concat", moves_values=True)
def lower_concat(b: Builder, op: Op) -> list[str]:
    """Concatenate along an axis (which may be negative)."""
    return [b.node("Concat", [b.name(v) for v in op.inputs], axis=op.params.get("axis", 0))]


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


@lowering("Split", moves_values=True)
def lower_split(b: Builder, op: Op) -> list[str]:
    """Split along an axis into pieces of the given sizes."""
    axis = norm_axis(op, op.params.get("axis", 0), len(op.inputs[0].shape))
    sizes = [v.shape[axis] for v in op.outputs]
    outs = b.node("Split", [b.inp(op, 0), b.ints(sizes, "split")], n_out=len(sizes), axis=axis)
    return outs if isinstance(outs, list) else [outs]


@shape_rule("Dimshuffle")
def _dimshuffle_shape(op: Op):
    x = op.inputs[0]
    return [(dimshuffle_shape(op, x.shape), x.dtype)]


@fold_rule("Dimshuffle", symbolic=True)
def _dimshuffle_fold(op: Op, xs):
    x = xs[0]
    kept = [p for p in op.params["pattern"] if p >= 0]
    perm = kept + [i for i in range(x.ndim) if i not in kept]
    return [np.transpose(x, perm).reshape(dimshuffle_shape(op, x.shape))]


@lowering("Dimshuffle", moves_values=True)
def lower_dimshuffle(b: Builder, op: Op) -> list[str]:
    """Permute axes (out axis i = in axis pattern[i]); -1 inserts a size-1 axis, size-1 axes may be dropped."""
    x = op.inputs[0]
    kept = [p for p in op.params["pattern"] if p >= 0]
    perm = kept + [i for i in range(len(x.shape)) if i not in kept]
    out = b.node("Transpose", [b.inp(op, 0)], perm=perm) if perm != list(range(len(perm))) else b.inp(op, 0)
    if len(op.outputs[0].shape) != len(x.shape) or out == b.inp(op, 0):
        out = b.reshape(out, op.outputs[0].shape)
    return [out]


@shape_rule("AxisAddRemove")
def _axis_add_remove_shape(op: Op):
    x = op.inputs[0]
    return [(axis_add_remove_shape(op, x.shape), x.dtype)]


@fold_rule("AxisAddRemove", symbolic=True)
def _axis_add_remove_fold(op: Op, xs):
    return [xs[0].reshape(axis_add_remove_shape(op, xs[0].shape))]


@shape_rule("Subtensor", "IndexingMultiAxisVec")
def _subtensor_shape(op: Op):
    x = op.inputs[0]
    index, _ = subtensor_index(op, len(x.shape), op.inputs[1:])
    return [(indexed_shape(op, x.shape, index), x.dtype)]


@fold_rule("Subtensor", symbolic=True)
@fold_rule("IndexingMultiAxisVec")
def _subtensor_fold(op: Op, xs):
    index, _ = subtensor_index(op, xs[0].ndim, op.inputs[1:])
    out = np.asarray(xs[0][advanced_index(op, xs[0].shape, index)])
    return [out.reshape(-1) if out.ndim == 0 else out.copy()]


@lowering("Subtensor", "IndexingMultiAxisVec", moves_values=True)
def lower_subtensor(b: Builder, op: Op) -> list[str]:
    """Python/numpy indexing: constant slices, integer indices (removing their axis) and int vectors."""
    x = op.inputs[0]
    index, removed = subtensor_index(op, len(x.shape), op.inputs[1:])
    out = select(b, b.inp(op, 0), x.shape, index)
    plain = not removed and all(isinstance(entry, slice) for entry in index)
    if plain:
        return [out]
    if is_static(op.outputs[0].shape):
        return [b.reshape(out, op.outputs[0].shape)]
    if removed:  # integer indices (no vectors then): their axes, kept as size 1, go
        return [b.reshape(out, [1]) if len(removed) == len(x.shape) else b.node("Squeeze", [out, b.ints(removed, "axes")])]
    return [out]  # one index vector: numpy's result has the gathered axis in place


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


@lowering("SetSubtensor", "IncrSubtensor", "IndexingSetMultiAxisVec", "IndexingIncrMultiAxisVec")
def lower_set_subtensor(b: Builder, op: Op) -> list[str]:
    """A copy of x with x[index] set to (Set*) or incremented by (Incr*) the value broadcast to the indexed shape."""
    x, value = op.inputs[:2]
    index, _ = subtensor_index(op, len(x.shape), op.inputs[2:])
    positions = b.const(np.arange(int(np.prod(x.shape)), dtype=np.int64).reshape(x.shape), "positions")
    positions = b.reshape(select(b, positions, x.shape, index), [-1])
    value = b.reshape(b.node("Expand", [b.name(value), b.ints(indexed_shape(op, x.shape, index))]), [-1])
    out = b.node("ScatterElements", [b.reshape(b.inp(op, 0), [-1]), positions, value], axis=0,
                 reduction="add" if "Incr" in op.kind else "none")
    return [b.reshape(out, x.shape)]
