"""Lowerings of the shape and indexing operators: reshape, broadcast, concat, split, transposes, slicing."""

from __future__ import annotations

import numpy as np

from ..graph.dims import RuntimeDimError, Sym, is_static
from ..graph.infer import PASSTHROUGH, broadcast_shapes, indexed_shape, norm_axis, subtensor_index
from ..graph.ir import Op, Var
from .builder import Builder, lowering

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


@lowering("Reshape", "AxisAddRemove", moves_values=True)
def lower_reshape(b: Builder, op: Op) -> list[str]:
    """Same data, new (statically known) shape; AxisAddRemove adds or removes size-1 axes."""
    return [b.reshape(b.inp(op, 0), op.outputs[0].shape)]


@lowering(*PASSTHROUGH, moves_values=True)
def lower_identity(b: Builder, op: Op) -> list[str]:
    """The input unchanged (copies and graph markers that compute nothing)."""
    return [b.inp(op, 0)]


@lowering("Broadcast", moves_values=True)
def lower_broadcast(b: Builder, op: Op) -> list[str]:
    """numpy broadcast_to the target shape."""
    return [b.node("Expand", [b.inp(op, 0), b.ints(op.outputs[0].shape)])]


@lowering("Concat", moves_values=True)
def lower_concat(b: Builder, op: Op) -> list[str]:
    """Concatenate along an axis (which may be negative)."""
    return [b.node("Concat", [b.name(v) for v in op.inputs], axis=op.params.get("axis", 0))]


@lowering("Split", moves_values=True)
def lower_split(b: Builder, op: Op) -> list[str]:
    """Split along an axis into pieces of the given sizes."""
    axis = norm_axis(op, op.params.get("axis", 0), len(op.inputs[0].shape))
    sizes = [v.shape[axis] for v in op.outputs]
    outs = b.node("Split", [b.inp(op, 0), b.ints(sizes, "split")], n_out=len(sizes), axis=axis)
    return outs if isinstance(outs, list) else [outs]


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
