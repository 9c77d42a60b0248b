"""The KServe v2 (Triton) HTTP inference protocol: request bodies to numpy arrays and back, JSON tensors and the
binary tensor data extension (``Inference-Header-Content-Length``) that ``tritonclient.http`` uses.

Pure functions over bytes: every length, shape and datatype a client sends is checked against the body it came
with before anything is allocated, and every mistake is a ``RequestError`` (HTTP 400), so a server built on
them answers bad requests instead of failing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import RequestError

HEADER_LENGTH = "Inference-Header-Content-Length"

DATATYPES = {"BOOL": np.dtype(np.bool_), "UINT8": np.dtype(np.uint8), "UINT16": np.dtype(np.uint16),
             "UINT32": np.dtype(np.uint32), "UINT64": np.dtype(np.uint64), "INT8": np.dtype(np.int8),
             "INT16": np.dtype(np.int16), "INT32": np.dtype(np.int32), "INT64": np.dtype(np.int64),
             "FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32), "FP64": np.dtype(np.float64)}
_NAMES = {dtype: name for name, dtype in DATATYPES.items()}


def datatype(dtype: np.dtype) -> str:
    """The protocol's name of a numpy dtype (``FP32`` for float32)."""
    try:
        return _NAMES[np.dtype(dtype)]
    except KeyError:
        raise RequestError(f"dtype {dtype} has no datatype in the v2 protocol") from None


@dataclass
class InferRequest:
    """A parsed ``infer`` request: its inputs, and for each requested output whether it goes back as binary."""

    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: dict[str, bool] | None = None  # None: every output, binary as ``binary_default`` says
    binary_default: bool = False


def _object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise RequestError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _shape(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in value):
        raise RequestError(f"{what}: 'shape' must be a list of non-negative integers, got {value!r:.80}")
    return tuple(value)


def _json_tensor(data: Any, dtype: np.dtype, shape: tuple[int, ...], what: str) -> np.ndarray:
    if not isinstance(data, list):
        raise RequestError(f"{what}: 'data' must be a JSON array")
    try:
        arr = np.array(data)
    except ValueError:
        raise RequestError(f"{what}: 'data' is a ragged nested array") from None
    if arr.size != math.prod(shape):
        raise RequestError(f"{what}: 'data' holds {arr.size} values, shape {list(shape)} needs {math.prod(shape)}")
    allowed = {"b": "b", "u": "biu", "i": "biu", "f": "biuf"}[dtype.kind]
    if arr.size and arr.dtype.kind not in allowed:
        raise RequestError(f"{what}: 'data' holds {'text' if arr.dtype.kind in 'US' else arr.dtype.name} values, "
                           f"not {datatype(dtype)}")
    try:
        with np.errstate(over="raise", invalid="raise"):
            out = arr.astype(dtype) if dtype.kind == "f" else np.array(arr.tolist() if arr.size else [], dtype)
    except (OverflowError, FloatingPointError, ValueError, TypeError):
        raise RequestError(f"{what}: 'data' has values out of the range of {datatype(dtype)}") from None
    return out.reshape(shape)


def parse_infer(body: bytes, header_length: str | None) -> InferRequest:
    """Parse an ``infer`` request body: all JSON, or (``header_length`` given) a JSON header of that many bytes
    followed by the binary data of the inputs that carry ``binary_data_size``, in their order."""
    if header_length is None:
        header, binary = body, b""
    else:
        try:
            size = int(header_length)
        except ValueError:
            raise RequestError(f"{HEADER_LENGTH} must be an integer, got {header_length!r:.40}") from None
        if not 0 <= size <= len(body):
            raise RequestError(f"{HEADER_LENGTH} {size} is outside the body's {len(body)} bytes")
        header, binary = body[:size], memoryview(body)[size:]
    try:
        request = _object(json.loads(header), "the request")
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"malformed JSON in the request: {exc}") from None
    raw_inputs = request.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise RequestError("the request needs 'inputs': a non-empty list of tensors")
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for i, raw in enumerate(raw_inputs):
        raw = _object(raw, f"inputs[{i}]")
        name = raw.get("name")
        if not isinstance(name, str):
            raise RequestError(f"inputs[{i}] needs a 'name' string")
        what = f"input {name!r}"
        if name in inputs:
            raise RequestError(f"{what} given twice")
        dtype = DATATYPES.get(raw.get("datatype"))
        if dtype is None:
            raise RequestError(f"{what}: unknown or unsupported datatype {raw.get('datatype')!r:.40} "
                               f"(supported: {', '.join(DATATYPES)})")
        shape = _shape(raw.get("shape"), what)
        params = _object(raw.get("parameters", {}), f"{what} 'parameters'")
        if "binary_data_size" in params:
            size = params["binary_data_size"]
            want = math.prod(shape) * dtype.itemsize
            if not isinstance(size, int) or size != want:
                raise RequestError(f"{what}: binary_data_size {size!r:.40} does not match shape {list(shape)} of "
                                   f"{datatype(dtype)} ({want} bytes)")
            if offset + size > len(binary):
                raise RequestError(f"{what}: binary data ends at byte {offset + size}, the body has "
                                   f"{len(binary)} bytes after the JSON header")
            chunk = binary[offset:offset + size]
            offset += size
            inputs[name] = np.frombuffer(chunk, dtype.newbyteorder("<")).astype(dtype, copy=False).reshape(shape)
        elif "data" in raw:
            inputs[name] = _json_tensor(raw["data"], dtype, shape, what)
        else:
            raise RequestError(f"{what} has neither 'data' nor parameters.binary_data_size")
    if offset != len(binary):
        raise RequestError(f"{len(binary) - offset} bytes of binary data follow the inputs' binary_data_size")
    params = _object(request.get("parameters", {}), "'parameters'")
    result = InferRequest(request.get("id") if isinstance(request.get("id"), str) else None, inputs,
                          binary_default=bool(params.get("binary_data_output", False)))
    if "outputs" in request:
        raw_outputs = request["outputs"]
        if not isinstance(raw_outputs, list):
            raise RequestError("'outputs' must be a list")
        result.outputs = {}
        for i, raw in enumerate(raw_outputs):
            raw = _object(raw, f"outputs[{i}]")
            if not isinstance(raw.get("name"), str):
                raise RequestError(f"outputs[{i}] needs a 'name' string")
            out_params = _object(raw.get("parameters", {}), f"output {raw['name']!r} 'parameters'")
            result.outputs[raw["name"]] = bool(out_params.get("binary_data", result.binary_default))
    return result


def encode_infer(model: str, request: InferRequest, outputs: dict[str, np.ndarray],
                 version: str = "1") -> tuple[bytes, dict[str, str]]:
    """The response body and headers for ``outputs`` (all of them, or those the request asked for, in its order):
    JSON ``data``, or binary data after the JSON header where asked (then ``Inference-Header-Content-Length``)."""
    wanted = request.outputs if request.outputs is not None else {n: request.binary_default for n in outputs}
    unknown = [n for n in wanted if n not in outputs]
    if unknown:
        raise RequestError(f"unknown output {unknown[0]!r} (the model's outputs: {', '.join(outputs)})")
    tensors, chunks = [], []
    for name, binary in wanted.items():
        arr = outputs[name]
        entry: dict[str, Any] = {"name": name, "datatype": datatype(arr.dtype), "shape": list(arr.shape)}
        if binary:
            chunk = np.ascontiguousarray(arr, arr.dtype.newbyteorder("<")).tobytes()
            entry["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            entry["data"] = arr.reshape(-1).tolist()
        tensors.append(entry)
    response: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": tensors}
    if request.id is not None:
        response["id"] = request.id
    header = json.dumps(response, separators=(",", ":")).encode()
    if not chunks:
        return header, {"Content-Type": "application/json"}
    return b"".join([header, *chunks]), {"Content-Type": "application/octet-stream",
                                          HEADER_LENGTH: str(len(header))}


def model_metadata(name: str, inputs: list[tuple[str, np.dtype, list[int]]],
                   outputs: list[tuple[str, np.dtype, list[int]]], version: str = "1") -> dict:
    """The ``GET /v2/models/NAME`` answer from (name, dtype, shape) triples (-1 marks the batch dim)."""
    def tensors(specs):
        return [{"name": n, "datatype": datatype(d), "shape": list(s)} for n, d, s in specs]
    return {"name": name, "versions": [version], "platform": "megenginelite", "inputs": tensors(inputs),
            "outputs": tensors(outputs)}


def error_body(message: str) -> bytes:
    """The v2 error body: ``{"error": "..."}``."""
    return json.dumps({"error": message}).encode()
