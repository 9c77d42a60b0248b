"""File-format layer: detect a model file's format and decode it into plain records."""

from __future__ import annotations

from ..errors import ModelFormatError
from .mgb1 import read_mgb1
from .mgv2 import read_mgv2
from .records import ModelRecord, OprRecord, TensorRecord
from .testcase import TESTCASE_MAGIC, read_testcase_container

__all__ = ["read_model", "detect_format", "describe_unknown", "ModelRecord", "OprRecord", "TensorRecord"]

PACKED_MAGIC = b"packed_model"  # a Lite packed model (megenginelite/packed.py)


def detect_format(data: bytes | memoryview) -> str:
    """Name of the container format of ``data``: mgv2, mgb1 (MGBC/MGBS), mgbtest0, packed_model or onnx."""
    head = bytes(data[:16])
    if head[:4] in (b"MGBC", b"MGBS"):
        return "mgb1"
    if head[8:12] == b"mgv2":
        return "mgv2"
    if head[:8] == TESTCASE_MAGIC:
        return "mgbtest0"
    if head[:12] == PACKED_MAGIC:
        return "packed_model"
    return "unknown"


_ONNX_MODEL_FIELDS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2}  # ModelProto tags after ir_version


def looks_like_onnx(head: bytes) -> bool:
    """A serialized ``onnx.ModelProto`` starts with ``ir_version`` (field 1, varint) then another ModelProto field."""
    if len(head) < 3 or head[0] != 0x08 or not 1 <= head[1] <= 20:
        return False
    return head[2] in _ONNX_MODEL_FIELDS


def describe_unknown(data: bytes | memoryview) -> str:
    """What a file that is no MegEngine model looks like: its first bytes, its size and a guess when possible."""
    head = bytes(data[:16])
    if not head:
        return "the file is empty"
    what = f"it starts with {head!r} ({len(data)} bytes), which is no MegEngine model header"
    first = bytes(data[:4096])
    guess = None
    if looks_like_onnx(first):
        guess = "it looks like an ONNX model, not a MegEngine .mge graph (LiteNetwork.load runs ONNX files)"
    elif first[:1] == b"\x80" and first[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        kind = "a TracedModule (.tm) pickle" if b"traced_module" in first else "a pickle"
        guess = (f"it looks like {kind} (megengine.save / TracedModule .tm), not a dumped graph; dump it with "
                 f"megengine.jit.trace(...).dump() or TracedModule tracing + dump first")
    elif first[:4] == b"PK\x03\x04":
        guess = "it looks like a zip archive (e.g. a .npz or a PyTorch checkpoint), not a dumped graph"
    elif first[:6] == b"\x93NUMPY":
        guess = "it looks like a numpy .npy array, not a dumped graph"
    elif len(first) >= 12 and first[8:12] == b"mgb1":
        guess = "it looks like the bare FlatBuffer of a V1 (mgb1) model without its MGBC header"
    elif len(first) >= 8 and first[4:8] == b"mgv2":
        guess = "it looks like an mgv2 FlatBuffer without its 4-byte size prefix"
    elif first[4:8] == b"TFL3":
        guess = "it looks like a TensorFlow Lite model"
    if guess:
        return f"{what}; {guess}"
    return what


def read_model(data: bytes | memoryview, source: str = "<memory>") -> ModelRecord:
    """Decode a model file's bytes into a ``ModelRecord``; ``source`` names the file in error messages.

    ``mgbtest0`` test-case containers give the record of their model with ``extra["test_cases"]``: one dict
    ``{input name: ndarray}`` per bundled case.
    """
    fmt = detect_format(data)
    if fmt == "mgv2":
        return read_mgv2(data, source)
    if fmt == "mgb1":
        return read_mgb1(data, source)
    if fmt == "mgbtest0":
        return read_testcase_container(data, source)
    if fmt == "unknown":
        raise ModelFormatError(f"{source}: invalid model format: {describe_unknown(data)}")
    raise ModelFormatError(f"{source}: the {fmt} model format (MegEngine Lite pack tool) is not supported; "
                           f"use the .mge model it wraps")
