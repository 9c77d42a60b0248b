"""File-format layer: detect a model file's format and decode it into plain records."""

from __future__ import annotations

from ..errors import ModelFormatError
from .flatbuf import Buffer
from .mgb1 import mgb1_extent, read_mgb1
from .mgv2 import read_mgv2
from .records import ModelRecord, OprRecord, TensorRecord

__all__ = ["read_model", "detect_format", "describe_unknown", "ModelRecord", "OprRecord", "TensorRecord"]

TESTCASE_MAGIC = b"mgbtest0"
PACKED_MAGIC = b"packed_model"  # a Lite packed model (megenginelite/packed.py)
CONST_OPRS = {"ImmutableTensor", "SharedDeviceTensor", "VolatileSharedDeviceTensor", "MultipleDeviceTensorHolder",
              "SharedDeviceTensorWithFormat", "MultipleDeviceTensorWithFormatHolder"}


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


def _graph_extent(view: memoryview, pos: int, source: str, what: str) -> tuple[str, int]:
    """(format, byte length) of the model graph that starts at ``pos`` inside a container."""
    outer = Buffer(view, 0, len(view), source)
    head = bytes(view[pos:pos + 12])
    if head[:4] in (b"MGBC", b"MGBS"):
        return "mgb1", mgb1_extent(view[pos:], source)
    if head[8:12] == b"mgv2":
        size = outer.scalar("u32", pos, f"{what} size prefix")
        if pos + 4 + size > len(view):
            raise outer.fail(f"{what} at byte {pos} says it has {size} bytes but only {len(view) - pos - 4} follow "
                             f"(truncated file)")
        return "mgv2", 4 + size
    if len(head) < 12:
        raise outer.fail(f"{what} at byte {pos} is cut off ({len(view) - pos} bytes left; truncated file)")
    raise outer.fail(f"{what} at byte {pos} is no MegEngine graph (it starts with {head!r})")


def read_testcase_container(data: bytes | memoryview, source: str) -> ModelRecord:
    """``"mgbtest0"`` + u32 n_cases + the model graph + n graphs whose outputs are the inputs of one case each.

    The values of each case are the outputs of its graph in the order of the model's inputs sorted by name
    (``megengine.jit.trace.dump(input_data=...)``); with asserts, the ``<output>:expect`` inputs are among them.
    """
    view = memoryview(data)
    outer = Buffer(view, 0, len(view), source)
    n_cases = outer.scalar("u32", 8, "test case count")
    pos = 12
    fmt, size = _graph_extent(view, pos, source, "the model graph")
    model_view = view[pos:pos + size]
    model = read_mgv2(model_view, source) if fmt == "mgv2" else read_mgb1(model_view, source)
    pos += size
    input_names = sorted(t.name for op in model.oprs if op.type == "Host2DeviceCopy" for t in op.tensors)
    cases = []
    if n_cases > (len(view) - pos) // 16 + 1:
        raise outer.fail(f"the header says {n_cases} test cases but only {len(view) - pos} bytes follow the model")
    for i in range(n_cases):
        what = f"test case {i}"
        cfmt, csize = _graph_extent(view, pos, source, what)
        case_view = view[pos:pos + csize]
        case = read_mgv2(case_view, source) if cfmt == "mgv2" else read_mgb1(case_view, source)
        pos += csize
        values = _constant_outputs(case, outer, what)
        if len(values) != len(input_names):
            raise outer.fail(f"{what} holds {len(values)} values but the model has {len(input_names)} inputs "
                             f"{input_names}")
        cases.append(dict(zip(input_names, values)))
    model.format = f"mgbtest0+{model.format}"
    model.extra["test_cases"] = cases
    model.extra["container"] = "mgbtest0"
    if pos < len(view):
        model.extra["trailing_bytes"] = len(view) - pos
    return model


def _constant_outputs(case: ModelRecord, outer: Buffer, what: str) -> list:
    producers = {}
    for op in case.oprs:
        if op.type in CONST_OPRS:
            for vid, t in zip(op.outputs, op.tensors):
                producers[vid] = t
    values = []
    for vid, name in case.outputs:
        t = producers.get(vid)
        if t is None or t.data is None:
            raise outer.fail(f"{what}: output {name!r} is not a constant value")
        values.append(t.data)
    return values
