"""``mgbtest0`` test-case containers: a model graph plus graphs holding the input values of bundled test cases
(what ``load_and_run`` reads).  The model inside is read by the mgv2 / mgb1 readers."""

from __future__ import annotations

from .flatbuf import Buffer
from .mgb1 import mgb1_extent, read_mgb1
from .mgv2 import read_mgv2
from .records import ModelRecord

TESTCASE_MAGIC = b"mgbtest0"
#: operators whose output is a stored value (a test case's values are such outputs)
CONST_OPRS = {"ImmutableTensor", "SharedDeviceTensor", "VolatileSharedDeviceTensor", "MultipleDeviceTensorHolder",
              "SharedDeviceTensorWithFormat", "MultipleDeviceTensorWithFormatHolder"}


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
