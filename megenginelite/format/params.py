"""Operator param tables: union ids, field slots and schema defaults (MegEngine 1.13 ``OperatorParam``).

Absent FlatBuffers fields mean the schema default, and many defaults are not zero, so each table lists every
field in slot order with its default. Only the tables of operators we execute are described; the others decode
to an empty dict with their name, which is enough to report them.
"""

from __future__ import annotations

from .flatbuf import Buffer, Table

INT_MAX = 2**31 - 1

_CONV_SPATIAL = [("pad_h", "u32", 0), ("pad_w", "u32", 0), ("stride_h", "u32", 1), ("stride_w", "u32", 1),
                 ("dilate_h", "u32", 1), ("dilate_w", "u32", 1)]

# union id -> (table name, [(field, kind, default)]) in slot order
PARAM_TABLES: dict[int, tuple[str, list[tuple[str, str, object]]]] = {
    1: ("Empty", []),
    2: ("Axis", [("axis", "i32", 0)]),
    3: ("Convolution", [("mode", "u32", 0), *_CONV_SPATIAL, ("sparse", "u32", 0), ("format", "u32", 0),
                        ("compute_mode", "u32", 0)]),
    6: ("ConvBias", [("nonlineMode", "u32", 0), ("mode", "u32", 0), ("sparse", "u32", 0), ("format", "u32", 0),
                     *_CONV_SPATIAL, ("compute_mode", "u32", 0)]),
    8: ("Images2Neibs", [*_CONV_SPATIAL, ("window_h", "u32", 3), ("window_w", "u32", 3)]),
    9: ("Pooling", [("mode", "u32", 0), ("pad_h", "u32", 0), ("pad_w", "u32", 0), ("stride_h", "u32", 2),
                    ("stride_w", "u32", 2), ("window_h", "u32", 2), ("window_w", "u32", 2), ("format", "u32", 0)]),
    10: ("LRN", [("n", "u32", 5), ("k", "f32", 2.0), ("alpha", "f32", 1e-4), ("beta", "f32", 0.75)]),
    11: ("BN", [("param_dim", "u32", 0), ("fwd_mode", "u32", 0), ("epsilon", "f64", 1e-4),
                ("avg_factor", "f64", 1.0), ("scale", "f32", 1.0), ("bias", "f32", 0.0)]),
    12: ("ROIPooling", [("mode", "u32", 0), ("scale", "f32", 1.0)]),
    13: ("WarpPerspective", [("imode", "u32", 1), ("bmode", "u32", 0), ("format", "u32", 0),
                             ("border_val", "f32", 0.0)]),
    17: ("Elemwise", [("mode", "u32", 0)]),
    18: ("ElemwiseMultiType", [("mode", "u32", 0)]),
    19: ("PowC", [("exp", "f32", 0.0)]),
    20: ("MatrixMul", [("transposeA", "bool", False), ("transposeB", "bool", False), ("compute_mode", "u32", 0),
                       ("format", "u32", 0)]),
    22: ("SVD", [("full_matrices", "bool", False), ("compute_uv", "bool", True)]),
    23: ("Reduce", [("mode", "u32", 0), ("axis", "i32", INT_MAX), ("data_type", "u32", 0)]),
    24: ("Cumsum", [("axis", "i32", INT_MAX), ("exclusive", "bool", True), ("reverse", "bool", False)]),
    25: ("CondTake", [("mode", "u32", 0), ("val", "f32", 0.0), ("eps", "f32", 1e-6)]),
    26: ("Argsort", [("order", "u32", 0)]),
    29: ("Linspace", [("endpoint", "bool", True)]),
    37: ("CvtColor", [("mode", "u32", 0)]),
    38: ("WarpAffine", [("imode", "u32", 1), ("border_mode", "u32", 0), ("border_val", "f32", 0.0),
                        ("format", "u32", 1)]),
    40: ("Resize", [("imode", "u32", 1), ("format", "u32", 1)]),
    41: ("Convolution3D", [("mode", "u32", 0), *[(f"pad_{d}", "u32", 0) for d in "dhw"],
                           *[(f"stride_{d}", "u32", 1) for d in "dhw"], *[(f"dilate_{d}", "u32", 1) for d in "dhw"],
                           ("sparse", "u32", 0), ("data_type", "u32", 0), ("format", "u32", 0)]),
    44: ("TopK", [("mode", "u32", 0)]),
    45: ("RelayoutFormat", [("mode", "u32", 0), ("oc", "u32", 0), ("group", "u32", 1)]),
    48: ("ROIAlign", [("mode", "u32", 0), ("format", "u32", 0), ("spatial_scale", "f32", 1.0), ("offset", "f32", 0.0),
                      ("pooled_height", "u32", 1), ("pooled_width", "u32", 1), ("sample_height", "u32", 2),
                      ("sample_width", "u32", 2)]),
    54: ("OptionalAxisV1", [("axis", "i32", 7)]),
    55: ("ExecutionPolicy", [("strategy", "u32", 1), ("workspace_limit", "u64", 2**64 - 1)]),
    63: ("Host2DeviceCopy", [("enable_value_infer", "bool", True), ("dump_default_value", "bool", False),
                             ("allow_cpu_mem_fwd", "bool", True)]),
    64: ("Dimshuffle", [("pattern", "i32[]", ()), ("ndim", "u32", 0)]),
    65: ("AxisAddRemove", [("desc", "axisdesc[]", ())]),
    66: ("IndexDescMaskDump", [("items", "indexdesc[]", ())]),
    67: ("DType", [("dtype", "dtype", None)]),
    68: ("Remap", [("imode", "u32", 1), ("border_type", "u32", 0), ("format", "u32", 1), ("scalar", "f32", 0.0)]),
    69: ("NMSKeep", [("iou_thresh", "f32", 0.0), ("max_output", "u32", 0)]),
    70: ("AdaptivePooling", [("mode", "u32", 0), ("format", "u32", 0)]),
    75: ("Correlation", [("format", "u32", 0), ("kernel_size", "u32", 1), ("max_displacement", "u32", 1),
                         ("stride1", "u32", 1), ("stride2", "u32", 1), ("pad_size", "u32", 0),
                         ("is_multiply", "bool", True)]),
    82: ("Padding", [*[(f"front_offset_dim{i}", "u32", 0) for i in range(7)],
                     *[(f"back_offset_dim{i}", "u32", 0) for i in range(7)],
                     ("padding_val", "f32", 0.0), ("padding_mode", "u32", 2)]),
    85: ("LayerNorm", [("affine", "bool", True), ("eps", "f32", 1e-5), ("normalized_dim", "u64", 1),
                      ("normalized_size", "u64", 1)]),
    89: ("LSTM", [("num_layers", "u32", 1), ("bidirectional", "bool", False), ("bias", "bool", True),
                  ("hidden_size", "u32", 128), ("proj_size", "u32", 0), ("dropout", "f32", 0.0), ("fwd_mode", "u32", 0)]),
    90: ("Softmax", [("axis", "i32", -1)]),
    91: ("Diag", [("k", "i32", 0)]),
    92: ("GroupNorm", [("affine", "bool", True), ("eps", "f32", 1e-5), ("group", "u32", 1), ("format", "u32", 0)]),
    94: ("GeneralNorm", [("affine", "bool", True), ("eps", "f32", 1e-5), ("axis_start", "u64", 0), ("axis_end", "u64", 0)]),
    95: ("MultiHeadAttn", [("num_heads", "u32", 1), *[(f, "u32", 0) for f in ("embeding_size", "k_size", "v_size",
                           "qproj_size", "kproj_size", "vproj_size", "oproj_size")],
                           *[(f, "bool", False) for f in ("qbias", "kbias", "vbias", "obias")], ("sm_scaler", "f32", 1.0),
                           ("input_order", "u32", 0), ("attn_mask_type", "u32", 0), ("tensor_combination_type", "u32", 0),
                           ("add_zero_attn", "bool", False), ("need_weights", "bool", False), ("reslink", "bool", False),
                           ("training", "bool", True), ("seed", "u64", 0), ("attn_prob", "f32", 0.0),
                           ("out_prob", "f32", 0.0)]),
}

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


# The param union member each operator kind is written with (type names without their "V<n>" suffix). A file whose
# operator carries another member is corrupted (MegEngine's loader would fail in ``read_param`` as well).
EXPECTED_PARAM: dict[str, int] = {
    "Host2DeviceCopy": 63, "Elemwise": 17, "ElemwiseMultiType": 18, "PowC": 19, "TypeCvt": 67,
    "Convolution": 3, "ConvolutionBackwardData": 3, "ConvBiasForward": 6, "Pooling": 9, "AdaptivePooling": 70,
    "MatrixMul": 20, "BatchedMatrixMul": 20, "Reduce": 23, "Softmax": 90, "LayerNorm": 85, "GroupNorm": 92,
    "InstanceNorm": 92, "BatchNorm": 11, "LRN": 10, "Concat": 2, "Split": 2, "Reshape": 54, "GetVarShape": 54,
    "Dimshuffle": 64, "AxisAddRemove": 65, "Subtensor": 66, "IndexingMultiAxisVec": 66, "IndexingOneHot": 2,
    "IndexingSetOneHot": 2, "Argmax": 2, "Argmin": 2, "TopK": 44, "Argsort": 26, "Cumsum": 24, "Resize": 40,
    "WarpPerspective": 13, "Padding": 82,
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
