"""Reader for the FlatBuffers ``mgv2`` format, MegEngine 1.13's default dump format."""

from __future__ import annotations

import math

import numpy as np

from .dtypes import DTYPE_ENUM, FLOAT32, LOW_BIT, DType
from .flatbuf import Buffer, Table
from .params import check_param_type, decode_param, param_name
from .records import ModelRecord, OprRecord, TensorRecord

IDENTIFIER = b"mgv2"
MAX_NDIM = 7
# No real tensor has more elements than this (2**40 float32 values are 4 TiB); a larger shape is corruption, and
# refusing it here keeps element counts far from int64 overflow everywhere downstream.
MAX_ELEMENTS = 2**40
MAX_DIM = 2**31 - 1  # shapes travel through the graph as int32 tensors (GetVarShape)


def decode_dtype(buf: Buffer, table: Table | None) -> DType:
    """A ``DType`` table: enum value plus an optional LinearQuantizationParam {scale, zero_point}."""
    if table is None:
        return FLOAT32
    code = table.scalar(0, "i8", 0)
    if code not in DTYPE_ENUM:
        raise buf.fail(f"unknown dtype enum value {code}")
    name, np_dtype = DTYPE_ENUM[code]
    np_dtype = LOW_BIT[name][0] if name in LOW_BIT else np_dtype
    if np_dtype is None:
        raise buf.fail(f"dtype {name} (packed low-bit) is not supported")
    scale = zero_point = None
    if table.scalar(1, "u8", 0) == 1:
        qp = table.table(2, "LinearQuantizationParam")
        if qp is not None:
            scale = qp.scalar(0, "f32", 0.0)
            zero_point = qp.scalar(1, "u8", 0) if name.endswith("Asymm") else None
    elif name.startswith("Quantized"):
        raise buf.fail(f"quantized dtype {name} has no scale")
    return DType(name, np_dtype, scale, zero_point)


def refuse_packed(buf: Buffer, name: str, dtype: DType) -> None:
    """4-bit values travel through the graph one per byte; constants stored packed are not read."""
    if dtype.name in LOW_BIT:
        raise buf.fail(f"tensor {name!r}: {dtype.name} constants (packed two per byte) are not supported")


def decode_shape(buf: Buffer, table: Table, slot: int) -> tuple[int, ...]:
    shape = table.scalar_vector(slot, "u4")
    if len(shape) > MAX_NDIM:
        raise buf.fail(f"{table.name} has {len(shape)} dims, more than {MAX_NDIM}")
    dims = tuple(int(d) for d in shape)
    if math.prod(dims) > MAX_ELEMENTS or any(d > MAX_DIM for d in dims):
        raise buf.fail(f"{table.name} has an impossible shape {list(dims)}")
    return dims


def decode_tensor(buf: Buffer, t: Table, data_slot: int | None) -> TensorRecord:
    name = t.string(0, "") or ""
    shape = decode_shape(buf, t, 1)
    dtype = decode_dtype(buf, t.table(3, "DType"))
    data = None
    raw = t.bytes_vector(data_slot) if data_slot is not None else None
    if raw is not None and len(raw):
        refuse_packed(buf, name, dtype)
        count = math.prod(shape)
        expected = count * dtype.np_dtype.itemsize
        if len(raw) != expected:
            raise buf.fail(f"tensor {name!r} of shape {list(shape)} {dtype} needs {expected} bytes, "
                           f"the file holds {len(raw)}")
        data = np.frombuffer(raw, dtype.np_dtype.newbyteorder("<"), count).reshape(shape)
    return TensorRecord(name, shape, dtype, data)


def _decode_params(buf: Buffer, op: Table) -> tuple[str | None, dict]:
    union_id = op.scalar(3, "u8", 0)
    if union_id == 0:
        return None, {}
    member = op.table(4, param_name(union_id))
    return param_name(union_id), decode_param(union_id, member, lambda t: decode_dtype(buf, t))


def read_mgv2(data: bytes | memoryview, source: str) -> ModelRecord:
    """Decode an ``mgv2`` file: ``[u32 size][FlatBuffer with identifier mgv2]``."""
    view = memoryview(data)
    outer = Buffer(view, 0, len(view), source)
    size = outer.scalar("u32", 0, "size prefix")
    if size + 4 > len(view):
        raise outer.fail(f"the size prefix says {size} bytes but only {len(view) - 4} follow (truncated file)")
    buf = Buffer(view, 4, 4 + size, source)
    model = buf.root()
    model.name = "Model"
    oprs: list[OprRecord] = []
    for index, op in enumerate(model.table_vector(2, "Operator")):
        type_name = op.string(0)
        if not type_name:
            raise buf.fail(f"{op.name} has no type name")
        check_param_type(buf, type_name, op.scalar(3, "u8", 0), f"operator #{index}")
        pname, params = _decode_params(buf, op)
        otype = op.table(10, "output_dtype")
        oprs.append(OprRecord(
            type=type_name,
            name=op.string(2),
            param_name=pname,
            params=params,
            inputs=[int(i) for i in op.scalar_vector(7, "u4")],
            outputs=[int(i) for i in op.scalar_vector(8, "u4")],
            tensors=[decode_tensor(buf, t, 6) for t in op.table_vector(11, "Tensor")],
            output_dtype=decode_dtype(buf, otype) if otype is not None else None,
        ))
    var_names: dict[int, str] = {}
    var_shapes: dict[int, tuple[int, ...]] = {}
    for i, mt in enumerate(model.table_vector(3, "MiddleTensor")):
        var_names[i] = mt.string(0, "") or ""
        var_shapes[i] = decode_shape(buf, mt, 1)
    outputs = []
    for ov in model.table_vector(4, "OutputVar"):
        vid = ov.scalar(0, "u32", 0)
        outputs.append((vid, var_names.get(vid, f"var{vid}")))
    for alias in model.table_vector(5, "OutputAlias"):
        vid, name = alias.scalar(0, "u32", 0), alias.string(1, "")
        outputs = [(v, name if v == vid and name else n) for v, n in outputs]
    meta = model.table(7, "Metadata")
    return ModelRecord(
        source=source,
        format="mgv2",
        model_version=model.scalar(1, "u32", 0),
        mge_version=model.scalar(0, "u32", 0),
        oprs=oprs,
        var_names=var_names,
        var_shapes=var_shapes,
        outputs=outputs,
        optimize_options=meta.scalar(2, "u64", 0) if meta else 0,
        user_info=bytes(meta.bytes_vector(3)) if meta and meta.has(3) else None,
    )
