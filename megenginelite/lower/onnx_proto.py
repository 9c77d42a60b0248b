"""A minimal writer of ONNX ``ModelProto`` bytes (protobuf wire format), so running a model needs no ``onnx``.

Only the messages and fields the lowering emits are written: ModelProto, OperatorSetIdProto, GraphProto,
NodeProto, AttributeProto (float, int, string, tensor, floats, ints), TensorProto (dims, data_type, name,
raw_data) and ValueInfoProto with a tensor type and static shape. Weights are written straight from their
numpy buffers. Field numbers are those of onnx/onnx.proto.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# numpy dtype -> TensorProto.DataType
ONNX_DTYPES = {
    np.dtype(np.float32): 1, np.dtype(np.uint8): 2, np.dtype(np.int8): 3, np.dtype(np.uint16): 4,
    np.dtype(np.int16): 5, np.dtype(np.int32): 6, np.dtype(np.int64): 7, np.dtype(np.bool_): 9,
    np.dtype(np.float16): 10, np.dtype(np.float64): 11, np.dtype(np.uint32): 12, np.dtype(np.uint64): 13,
}

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


def onnx_dtype(dtype) -> int:
    try:
        return ONNX_DTYPES[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"numpy dtype {np.dtype(dtype)} has no ONNX tensor type") from None


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 values are written as 10-byte two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _int(number: int, value: int) -> bytes:
    return _key(number, _VARINT) + _varint(int(value))


def _bytes(number: int, value: bytes | str | memoryview) -> list:
    """A length-delimited field as a list of chunks (large payloads are not copied here)."""
    if isinstance(value, str):
        value = value.encode()
    return [_key(number, _BYTES), _varint(len(value)), value]


def _message(number: int, chunks: list) -> list:
    return [_key(number, _BYTES), _varint(sum(len(c) for c in chunks))] + chunks


def _packed_ints(number: int, values) -> list:
    return _bytes(number, b"".join(_varint(int(v)) for v in values))


@dataclass
class Node:
    op_type: str
    inputs: list[str]
    outputs: list[str]
    name: str = ""
    attrs: dict = field(default_factory=dict)
    domain: str = ""


@dataclass
class ValueInfo:
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]


@dataclass
class External:
    """An initializer whose data ONNX Runtime gets from the caller (``add_external_initializers``)."""

    array: np.ndarray


EXTERNAL_LOCATION = "megenginelite-external-initializer"


def _external_tensor(name: str, array: np.ndarray) -> list:
    """Dims, type and name, with data_location EXTERNAL: the model carries no copy of the weights."""
    chunks = _packed_ints(1, array.shape) if array.ndim else []
    chunks.append(_int(2, onnx_dtype(array.dtype)))
    chunks += _bytes(8, name)
    chunks += _message(13, _bytes(1, "location") + _bytes(2, EXTERNAL_LOCATION))
    chunks.append(_int(14, 1))
    return chunks


def _tensor(name: str, array: np.ndarray) -> list:
    shape = np.shape(array)  # np.ascontiguousarray turns 0-d arrays into 1-d ones: keep the real shape
    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    chunks = _packed_ints(1, shape) if len(shape) else []
    chunks.append(_int(2, onnx_dtype(array.dtype)))
    chunks += _bytes(8, name)
    chunks += _bytes(9, memoryview(array).cast("B") if array.size else b"")
    return chunks


def _float32_bytes(values) -> bytes:
    """Little-endian float32s (ONNX float attributes); a value beyond float32's range becomes +-inf, as a C++
    float parameter would."""
    with np.errstate(over="ignore"):
        return np.asarray([float(v) for v in values], dtype="<f8").astype("<f4").tobytes()


def _attribute(name: str, value) -> list:
    chunks = _bytes(1, name)
    if isinstance(value, (bool, int, np.integer)):
        chunks += [_int(3, int(value)), _int(20, 2)]
    elif isinstance(value, (float, np.floating)):
        chunks += [_key(2, _FIXED32), _float32_bytes([value]), _int(20, 1)]
    elif isinstance(value, (str, bytes)):
        chunks += _bytes(4, value) + [_int(20, 3)]
    elif isinstance(value, np.ndarray):
        chunks += _message(5, _tensor("", value)) + [_int(20, 4)]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, np.integer)) for v in value):
        chunks += _packed_ints(8, value) + [_int(20, 7)]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, (float, int, np.number)) for v in value):
        chunks += _bytes(7, _float32_bytes(value)) + [_int(20, 6)]
    else:
        raise TypeError(f"attribute {name!r}: cannot encode {type(value).__name__}")
    return chunks


def _node(node: Node) -> list:
    chunks = []
    for name in node.inputs:
        chunks += _bytes(1, name)
    for name in node.outputs:
        chunks += _bytes(2, name)
    chunks += _bytes(3, node.name) + _bytes(4, node.op_type)
    for key, value in sorted(node.attrs.items()):
        chunks += _message(5, _attribute(key, value))
    if node.domain:
        chunks += _bytes(7, node.domain)
    return chunks


def _value_info(info: ValueInfo) -> list:
    dims = []
    for axis, d in enumerate(info.shape):  # a dim known only at run time (e.g. CondTake's length): a named dim
        dims += _message(1, [_int(1, d)] if isinstance(d, (int, np.integer)) else _bytes(2, f"{info.name}_dim{axis}"))
    tensor_type = [_int(1, onnx_dtype(info.dtype))] + _message(2, dims)
    return _bytes(1, info.name) + _message(2, _message(1, tensor_type))


def encode_model(nodes: list[Node], initializers: list[tuple[str, np.ndarray | External]], inputs: list[ValueInfo],
                 outputs: list[ValueInfo], opsets: list[tuple[str, int]], ir_version: int = 8, name: str = "graph",
                 producer: str = "megenginelite") -> bytes:
    """The serialized ``ModelProto``; ``External`` initializers are declared without their data."""
    graph: list = []
    for node in nodes:
        graph += _message(1, _node(node))
    graph += _bytes(2, name)
    for init_name, array in initializers:
        tensor = _external_tensor(init_name, array.array) if isinstance(array, External) else _tensor(init_name, array)
        graph += _message(5, tensor)
    for info in inputs:
        graph += _message(11, _value_info(info))
    for info in outputs:
        graph += _message(12, _value_info(info))
    model = [_int(1, ir_version)] + _bytes(2, producer) + _message(7, graph)
    for domain, version in opsets:
        model += _message(8, _bytes(1, domain) + [_int(2, version)])
    return b"".join(model)
