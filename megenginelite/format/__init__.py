"""File-format layer: detect a model file's format and decode it into plain records."""

from __future__ import annotations

from ..errors import ModelFormatError
from .records import ModelRecord, OprRecord, TensorRecord
from .mgv2 import read_mgv2

__all__ = ["read_model", "detect_format", "ModelRecord", "OprRecord", "TensorRecord"]


def detect_format(data: bytes | memoryview) -> str:
    """Name of the container format of ``data``: mgv2, mgb1 (MGBC/MGBS), mgbtest0, packed_model or onnx."""
    head = bytes(data[:16])
    if head[:4] in (b"MGBC", b"MGBS"):
        return "mgb1"
    if head[8:12] == b"mgv2":
        return "mgv2"
    if head[:8] == b"mgbtest0":
        return "mgbtest0"
    if head[:12] == b"packed_model":
        return "packed_model"
    return "unknown"


def _describe(data: bytes | memoryview) -> str:
    head = bytes(data[:16])
    if not head:
        return "the file is empty"
    return f"it starts with {head!r} ({len(data)} bytes), which is no MegEngine model header"


def read_model(data: bytes | memoryview, source: str = "<memory>") -> ModelRecord:
    """Decode a model file's bytes into a ``ModelRecord``; ``source`` names the file in error messages."""
    fmt = detect_format(data)
    if fmt == "mgv2":
        return read_mgv2(data, source)
    if fmt == "unknown":
        raise ModelFormatError(f"{source}: invalid model format: {_describe(data)}")
    raise ModelFormatError(f"{source}: the {fmt} model format is not supported yet")
