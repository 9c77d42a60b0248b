"""Operator param tables: union ids, field slots and schema defaults (MegEngine 1.13 ``OperatorParam``).

Absent FlatBuffers fields mean the schema default, and many defaults are not zero, so each table lists every
field in slot order with its default. Only the tables of operators we execute are described; the others decode
to an empty dict with their name, which is enough to report them.
"""

from __future__ import annotations

from .flatbuf import Buffer, Table

INT_MAX = 2**31 - 1

# union id -> (table name, [(field, kind, default)]) in slot order. The operator modules (``megenginelite.ops``)
# register the tables of their operators with ``param_table``; the tables several families share are here.
PARAM_TABLES: dict[int, tuple[str, list[tuple[str, str, object]]]] = {}
# The param union member each operator kind is written with (type names without their "V<n>" suffix). A file whose
# operator carries another member is corrupted (MegEngine's loader would fail in ``read_param`` as well).
EXPECTED_PARAM: dict[str, int] = {}


def param_table(union_id: int, name: str, fields: list[tuple[str, str, object]], *kinds: str) -> None:
    """Register how to decode one param union member, and the operator kinds written with it."""
    if union_id in PARAM_TABLES:
        raise ValueError(f"two param tables for union id {union_id}")
    PARAM_TABLES[union_id] = (name, fields)
    expect_param(union_id, *kinds)


def expect_param(union_id: int, *kinds: str) -> None:
    """Declare that operators of these kinds are written with param union member ``union_id``."""
    for kind in kinds:
        if kind in EXPECTED_PARAM:
            raise ValueError(f"two param types for {kind}")
        EXPECTED_PARAM[kind] = union_id


param_table(1, "Empty", [])
param_table(2, "Axis", [("axis", "i32", 0)])
param_table(54, "OptionalAxisV1", [("axis", "i32", 7)])
param_table(55, "ExecutionPolicy", [("strategy", "u32", 1), ("workspace_limit", "u64", 2**64 - 1)])
param_table(63, "Host2DeviceCopy", [("enable_value_infer", "bool", True), ("dump_default_value", "bool", False),
                                    ("allow_cpu_mem_fwd", "bool", True)], "Host2DeviceCopy")
param_table(67, "DType", [("dtype", "dtype", None)])

# Names of the union members we do not decode, for messages.
OTHER_PARAM_NAMES = {
    4: "MaskPropagate", 5: "ConvPooling", 7: "SeparableConv",
    14: "SpatialTfGridGenerator", 15: "SpatialTfSampler", 16: "MGBAddUpdate",
    27: "IndexingRemap", 28: "MGBSleep", 30: "LinspaceFull", 31: "Eye", 32: "UniformRNG",
    33: "GaussianRNG", 34: "Flip", 35: "Rotate", 36: "ROICopy",
    39: "GaussianBlur", 42: "Conv3DBias", 43: "SeparableConv3D", 46: "SeparableFilter",
    47: "LocalShare", 49: "DeformablePSROIPooling", 50: "BatchConvBias", 51: "DType",
    52: "PersistentOutputStorage", 53: "OptionalAxis", 56: "AssertEqual", 58: "CollectiveComm",
    59: "CondExecPred", 60: "CondExecPredLogical", 61: "CondExecMark", 62: "CondExecMerge",
    71: "NvOf", 72: "DctChannelSelect", 73: "FakeQuant", 74: "TQT", 76: "LSQ",
    77: "GammaRNG", 78: "PoissonRNG", 79: "PermutationRNG", 80: "BetaRNG", 81: "SlidingWindowTranspose",
    83: "ShuffleRNG", 84: "CheckNonFinite", 86: "Dropout", 87: "RNNCell", 88: "RNN",
    93: "Fill", 96: "Resize3D", 97: "Cross", 98: "ExponentialRNG",
    99: "MultinomialRNG",
}


def check_param_type(buf: Buffer, type_name: str, union_id: int, where: str) -> None:
    """Fail on a param union id that no schema defines, or that the operator kind is never written with."""
    if union_id and union_id not in PARAM_TABLES and union_id not in OTHER_PARAM_NAMES:
        raise buf.fail(f"{where} {type_name} has an unknown param type {union_id}")
    base = type_name[:-2] if len(type_name) > 2 and type_name[-1].isdigit() and type_name[-2] == "V" else type_name
    expected = EXPECTED_PARAM.get(base)
    if expected is not None and union_id != expected:
        got = param_name(union_id) if union_id else "no param"
        raise buf.fail(f"{where} {type_name} carries {got} instead of its {param_name(expected)} param")


def param_name(union_id: int) -> str:
    if union_id in PARAM_TABLES:
        return PARAM_TABLES[union_id][0]
    return OTHER_PARAM_NAMES.get(union_id, f"param#{union_id}")


def _axis_desc(buf: Buffer, pos: int) -> tuple[int, int]:
    """AxisDesc struct: i8 method (0 ADD_1, 1 REMOVE) at 0, i32 axis at 4."""
    return buf.scalar("i8", pos), buf.scalar("i32", pos + 4)


def _index_desc(buf: Buffer, pos: int) -> tuple[int, bool, bool, bool, bool]:
    """IndexDescMaskItem struct: i8 axis, then begin/end/step/idx flags."""
    return (buf.scalar("i8", pos), buf.scalar("bool", pos + 1), buf.scalar("bool", pos + 2),
            buf.scalar("bool", pos + 3), buf.scalar("bool", pos + 4))


def decode_param(union_id: int, table: Table | None, decode_dtype) -> dict:
    """Decode one param union member into a dict of field -> value, with schema defaults for absent fields."""
    if union_id not in PARAM_TABLES:
        return {}
    _, fields = PARAM_TABLES[union_id]
    out: dict = {}
    for slot, (field, kind, default) in enumerate(fields):
        if table is None:
            out[field] = default
        elif kind == "i32[]":
            out[field] = tuple(int(v) for v in table.scalar_vector(slot, "i4"))
        elif kind == "axisdesc[]":
            out[field] = tuple(table.struct_vector(slot, 8, _axis_desc))
        elif kind == "indexdesc[]":
            out[field] = tuple(table.struct_vector(slot, 5, _index_desc))
        elif kind == "dtype":
            # The DType union member is itself the dtype table.
            out[field] = decode_dtype(table)
        else:
            out[field] = table.scalar(slot, kind, default)
    return out
