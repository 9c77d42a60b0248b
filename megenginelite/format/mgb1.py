"""Reader for the V1 FlatBuffers format (``dump_format="FBS"``, identifier ``mgb1``) and the legacy ``MGBS`` files.

Layout (``src/serialization/impl/serializer_oss.cpp``, MegEngine 1.13)::

    "MGBC"  u64 feature bits  u32 reserved  u64 offset_to_fbs   tensor blobs ...   u32 size  FlatBuffer "mgb1"
    "MGBS"  u32 reserved                    u64 offset_to_fbs   tensor blobs ...   u32 size  FlatBuffer "mgb1"

The blob region starts right after ``offset_to_fbs`` and holds the tensor values back to back, in operator order and
then tensor order; each ``Tensor`` says how many bytes it owns (``data_size``, 0 = no value) and where inside them its
value starts (``offset``). Operators carry no type string, only ``type_id`` = XXH64 (seed 20160701) of the registry
name (``MGBC``: name with its NUL; ``MGBS``/"compat 8.14" files: name without a ``V<digit>`` suffix and without NUL),
and no output var ids: each operator's non-volatile outputs take the next ids, so the reader must know how many
outputs every operator has.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelFormatError, UnsupportedOperatorError
from .dtypes import DType
from .flatbuf import Buffer, Table
from .mgv2 import decode_dtype, decode_shape, refuse_packed
from .params import check_param_type, decode_param, param_name
from .records import ModelRecord, OprRecord, TensorRecord
from .xxh64 import mgb_type_id

IDENTIFIER = b"mgb1"
MAGIC_MGBC = b"MGBC"  # MegEngine >= 1.x: feature bits follow the magic; ids hash the full name with NUL
MAGIC_MGBS = b"MGBS"  # legacy (MegBrain 8.x): no feature bits; ids are "unversioned"


class UnknownOperatorTypeError(ModelFormatError, UnsupportedOperatorError):
    """An operator whose type id matches no registry name we know: a corrupted file or an unknown operator."""


# Registry names of MegEngine 1.13 (the first argument of every MGB_SEREG_OPR* in the V1 registry), plus the names
# the V2 registry uses, which a V1 file cannot contain but cost nothing to recognise.
REGISTRY_NAMES: tuple[str, ...] = (
    # io / constants
    "Host2DeviceCopy", "ImmutableTensor", "SharedDeviceTensor", "VolatileSharedDeviceTensor",
    "SharedDeviceTensorWithFormat", "MultipleDeviceTensorHolder", "MultipleDeviceTensorWithFormatHolder",
    "Copy", "PersistentOutputStorage", "InputMaker", "Alloc",
    # arithmetic
    "Elemwise", "ElemwiseMultiType", "PowC", "TypeCvtV2", "TypeCvt", "AddUpdate", "AffineInt", "ReduceV2",
    "Reduce", "Dot", "MatrixMulV2", "MatrixMul", "BatchedMatrixMulV2", "BatchedMatrixMul", "MatrixInverse", "SVD",
    "CumsumV1", "Cumsum",
    # tensor manipulation
    "GetVarShapeV1", "GetVarShape", "ReshapeV1", "Reshape", "Broadcast", "Dimshuffle", "AxisAddRemove", "Concat",
    "Split", "Subtensor", "SetSubtensor", "IncrSubtensor", "IndexingMultiAxisVec", "IndexingSetMultiAxisVec",
    "IndexingIncrMultiAxisVec", "MeshIndexing", "SetMeshIndexing", "IncrMeshIndexing", "BatchedMeshIndexing",
    "BatchedSetMeshIndexing", "BatchedIncrMeshIndexing", "IndexingOneHot", "IndexingSetOneHot", "IndexingRemap",
    "IndexingRemapBackward", "RelayoutFormatV1", "RelayoutFormat", "ParamPackConcat", "ParamPackSplit",
    "Padding", "PaddingBackward", "Diag", "DiagBackward", "MaskedFill", "Linspace", "Eye", "CondTake",
    # nn
    "ConvolutionV2", "Convolution", "ConvolutionBackwardDataV2", "ConvolutionBackwardData",
    "ConvolutionBackwardFilterV2", "ConvolutionBackwardFilter", "ConvBiasForwardV4", "ConvBiasForward",
    "ConvBias", "BatchConvBiasForwardV1", "BatchConvBiasForward", "Convolution3D", "Convolution3DBackwardData",
    "Convolution3DBackwardFilter", "MaskConvolutionV2", "MaskPropagate", "LocalV2", "LocalBackwardDataV2",
    "LocalBackwardFilterV2", "GroupLocalV2", "GroupLocalBackwardDataV2", "GroupLocalBackwardFilterV2",
    "LocalShareForwardV1", "LocalShareForward", "LocalShareBackwardDataV1", "LocalShareBackwardFilterV1",
    "DeformableConvForwardV1", "DeformableConvForward", "DeformableConvBackwardDataV1",
    "DeformableConvBackwardFilterV1", "RegionRestrictedConvolution", "RegionRestrictedConvolutionBackwardData",
    "RegionRestrictedConvolutionBackwardFilter", "PoolingV1", "Pooling", "PoolingBackwardV1",
    "AdaptivePoolingV1", "AdaptivePooling", "AdaptivePoolingBackwardV1", "ROIPooling", "ROIPoolingBackward",
    "ROIAlignV1", "ROIAlign", "ROIAlignBackwardV1", "DeformablePSROIPoolingForward",
    "DeformablePSROIPoolingBackward", "BatchNormV1", "BatchNorm", "BatchNormBackwardV1", "LRN", "LRNBackward",
    "LayerNorm", "LayerNormBackward", "GeneralNorm", "GeneralNormBackward", "GroupNorm", "GroupNormBackward",
    "InstanceNorm", "InstanceNormBackward", "Softmax", "SoftmaxBackward", "Images2Neibs", "Images2NeibsBackward",
    "SlidingWindowTranspose", "SlidingWindowTransposeBackward", "CorrelationForward", "CorrelationBackwardData1",
    "CorrelationBackwardData2", "FakeQuant", "FakeQuantBackward", "TQT", "TQTBackward", "LSQ", "LSQBackward",
    "Dropout", "DropoutBackward", "RNNCellForward", "LSTMCellForward", "RNNForward", "RNNBackward", "LSTMForward",
    "LSTMBackward", "MultiHeadAttn", "MultiHeadAttnBackward", "DctChannelSelectV1",
    # misc / imgproc
    "Argmax", "Argmin", "Argsort", "ArgsortBackward", "TopK", "CheckNonFinite", "NMSKeepMGB", "ResizeV2", "Resize",
    "ResizeBackward", "Resize3D", "WarpPerspectiveV2", "WarpPerspective", "WarpPerspectiveBackwardDataV2",
    "WarpPerspectiveBackwardMatV2", "WarpAffineV2", "WarpAffine", "RemapV1", "Remap", "RemapBackwardDataV1",
    "RemapBackwardMatV1", "Rotate", "CvtColor", "GaussianBlur", "NvOf",
    # random
    "UniformRNGV1", "GaussianRNGV1", "GammaRNG", "PoissonRNG", "BetaRNG", "PermutationRNG", "ShuffleRNG",
    "ShuffleRNGBackward",
    # control / utility
    "AssertEqual", "Identity", "MarkDynamicVar", "MarkNoBroadcastElemwise", "VirtualDep", "VirtualGrad", "Sleep",
    "CondExecPred", "CondExecPredLogical", "CondExecMark", "CondExecMarkIfNeed", "CondExecMerge", "Loop",
    "LoopGrad", "ExternCOprRunner", "TensorRTRuntimeOpr", "AtlasRuntimeOpr", "CambriconRuntimeOpr",
    "MagicMindRuntimeOpr", "JITExecutor", "ShapeHint", "CallbackInjector",
)


def _unversioned(name: str) -> str:
    """``MGB_HASH_STR_WITHOUT_TAIL_0_AND_VERSION``: drop a trailing ``V<digit>`` (one digit only)."""
    if len(name) > 2 and name[-1].isdigit() and name[-2] == "V":
        return name[:-2]
    return name


def _build_type_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for name in REGISTRY_NAMES:
        table.setdefault(mgb_type_id(name), name)
    for name in REGISTRY_NAMES:
        # MGBS / compat-8.14 files: the unversioned id of the V1 registry entry ("ConvolutionV2" -> "Convolution").
        table.setdefault(mgb_type_id(_unversioned(name), nul=False), name)
    return table


TYPE_IDS: dict[int, str] = _build_type_table()

# Kinds whose output count is fixed and not 1 (canonical names without the Vn suffix).
_FIXED_ARITY = {
    "Argsort": 2, "CondTake": 2, "ROIAlign": 2, "ROIPooling": 2, "DeformablePSROIPoolingForward": 2,
    "NMSKeepMGB": 2, "ShuffleRNG": 2, "Dropout": 2, "LayerNorm": 3, "GroupNorm": 3, "InstanceNorm": 3,
    "GeneralNorm": 3, "RNNForward": 3, "LSTMForward": 4, "LSTMCellForward": 3,
}
# Kinds whose output count depends on the file contents and that we cannot compute without output names.
_VARIABLE_ARITY = {"ParamPackSplit", "CondExecPred", "CondExecPredLogical", "CondExecMark", "CondExecMerge",
                   "Loop", "ExternCOprRunner", "TensorRTRuntimeOpr", "AtlasRuntimeOpr", "CambriconRuntimeOpr",
                   "MagicMindRuntimeOpr", "MultiHeadAttn", "JITExecutor"}

_HOLDERS = {"MultipleDeviceTensorHolder", "MultipleDeviceTensorWithFormatHolder"}


def output_arity(type_name: str, n_inputs: int, n_tensors: int, params: dict) -> int | None:
    """Number of non-volatile outputs of an operator, or None when it cannot be known from the file alone."""
    kind = _unversioned(type_name)
    if kind in _HOLDERS:
        return n_tensors
    if kind == "Split":
        return n_inputs - 1
    if kind == "TopK":
        return 1 if params.get("mode", 0) == 0 else 2  # KTH_ONLY leaves the indices output volatile
    if kind == "BatchNorm":
        # 6 outputs (running mean/var, saved mean/var, reserve, y); inference mode and the 3-input form mark the
        # running mean/var volatile, so they take no id.
        return 4 if params.get("fwd_mode", 0) == 1 or n_inputs == 3 else 6
    if kind == "CheckNonFinite":
        return n_inputs + 1
    if kind == "SVD":
        return 3 if params.get("compute_uv", True) else 1
    if kind in _VARIABLE_ARITY:
        return None
    return _FIXED_ARITY.get(kind, 1)


def _param_fields(union_id: int, member: Table | None, buf: Buffer) -> dict:
    params = decode_param(union_id, member, lambda t: decode_dtype(buf, t))
    if union_id == 22 and member is not None:  # SVD {0 full_matrices bool [false], 1 compute_uv bool [true]}
        params = {"full_matrices": member.scalar(0, "bool", False), "compute_uv": member.scalar(1, "bool", True)}
    return params


class _Blobs:
    """The out-of-band tensor value region, consumed sequentially like ``GraphLoaderOSS::load_tensor_value``."""

    def __init__(self, view: memoryview, begin: int, end: int, buf: Buffer):
        self.view = view
        self.cursor = begin
        self.end = end
        self.buf = buf

    def take(self, name: str, shape: tuple[int, ...], dtype: DType, data_size: int, offset: int) -> np.ndarray:
        refuse_packed(self.buf, name, dtype)
        count = math.prod(shape)
        nbytes = count * dtype.np_dtype.itemsize
        if offset + nbytes > data_size:
            raise self.buf.fail(f"tensor {name!r} of shape {list(shape)} {dtype} needs {nbytes} bytes at offset "
                                f"{offset}, but owns only {data_size} bytes of the blob region")
        if self.cursor + data_size > self.end:
            raise self.buf.fail(f"tensor {name!r} owns {data_size} bytes at file offset {self.cursor}, past the end "
                                f"of the tensor blob region ({self.end}); truncated file or bad data_size")
        start = self.cursor + offset
        self.cursor += data_size
        return np.frombuffer(self.view[start:start + nbytes], dtype.np_dtype.newbyteorder("<"), count).reshape(shape)


def _decode_tensor(buf: Buffer, t: Table, blobs: _Blobs) -> TensorRecord:
    name = t.string(0, "") or ""
    shape = decode_shape(buf, t, 1)
    dtype = decode_dtype(buf, t.table(3, "DType"))
    data_size = t.scalar(4, "u32", 0)
    offset = t.scalar(5, "u32", 0)
    data = blobs.take(name, shape, dtype, data_size, offset) if data_size else None
    return TensorRecord(name, shape, dtype, data)


def mgb1_extent(data: bytes | memoryview, source: str) -> int:
    """The number of bytes the V1 model at the start of ``data`` occupies (header, blobs and FlatBuffer)."""
    _, _, fbs_pos, size = _header(memoryview(data), source)
    return fbs_pos + 4 + size


def _header(view: memoryview, source: str) -> tuple[bytes, int, int, int]:
    """(magic, blob region start, FlatBuffer size-prefix position, FlatBuffer size); everything bounds-checked."""
    outer = Buffer(view, 0, len(view), source)
    magic = bytes(view[:4])
    if magic == MAGIC_MGBC:
        outer.check(0, 24, "MGBC header (magic, feature bits, reserved, offset_to_fbs)")
        offset_to_fbs = outer.scalar("u64", 16, "offset_to_fbs")
        blob_start = 24
    elif magic == MAGIC_MGBS:
        outer.check(0, 16, "MGBS header (magic, reserved, offset_to_fbs)")
        offset_to_fbs = outer.scalar("u64", 8, "offset_to_fbs")
        blob_start = 16
    else:
        raise outer.fail(f"not a V1 (MGBC/MGBS) model: it starts with {magic!r}")
    fbs_pos = blob_start + offset_to_fbs
    if fbs_pos + 4 > len(view):
        raise outer.fail(f"offset_to_fbs={offset_to_fbs} puts the graph at byte {fbs_pos}, but the file has only "
                         f"{len(view)} bytes (truncated file?)")
    size = outer.scalar("u32", fbs_pos, "graph size prefix")
    if fbs_pos + 4 + size > len(view):
        raise outer.fail(f"the graph at byte {fbs_pos} says it has {size} bytes but only {len(view) - fbs_pos - 4} "
                         f"follow (truncated file)")
    if size < 8:
        raise outer.fail(f"the graph at byte {fbs_pos} has only {size} bytes")
    return magic, blob_start, fbs_pos, size


def read_mgb1(data: bytes | memoryview, source: str) -> ModelRecord:
    """Decode a V1 ``MGBC``/``MGBS`` file into the same ``ModelRecord`` shape the mgv2 reader produces."""
    view = memoryview(data)
    magic, blob_start, fbs_pos, size = _header(view, source)
    buf = Buffer(view, fbs_pos + 4, fbs_pos + 4 + size, source)
    ident = bytes(view[fbs_pos + 8: fbs_pos + 12])
    if ident != IDENTIFIER:
        raise buf.fail(f"the graph at byte {fbs_pos} has file identifier {ident!r}, expected {IDENTIFIER!r}")
    graph = buf.root()
    graph.name = "Graph"
    blobs = _Blobs(view, blob_start, fbs_pos, buf)

    oprs: list[OprRecord] = []
    var_names: dict[int, str] = {}
    next_id = 0
    for index, op in enumerate(graph.table_vector(3, "Operator")):
        type_id = op.scalar(0, "u64", 0)
        type_name = TYPE_IDS.get(type_id)
        if type_name is None:
            raise UnknownOperatorTypeError(
                f"{source}: operator #{index} has type id {type_id:#018x} ({type_id}), which is no MegEngine 1.13 "
                f"operator this reader knows (an unknown or custom operator, or a corrupted file)")
        union_id = op.scalar(1, "u8", 0)
        check_param_type(buf, type_name, union_id, f"operator #{index}")
        pname, params = None, {}
        if union_id:
            pname = param_name(union_id)
            params = _param_fields(union_id, op.table(2, pname), buf)
        inputs = [int(i) for i in op.scalar_vector(3, "u4")]
        for i in inputs:
            if i >= next_id:
                raise buf.fail(f"operator #{index} {type_name} reads var {i}, but only {next_id} vars exist so far")
        tensors = [_decode_tensor(buf, t, blobs) for t in op.table_vector(7, "Tensor")]
        if _unversioned(type_name) in _HOLDERS:
            _check_holder_count(buf, op, index, type_name, len(tensors))
        names = op.string_vector(5) if op.has(5) else None
        arity = output_arity(type_name, len(inputs), len(tensors), params)
        if names is not None:
            if arity is not None and arity != len(names):
                raise buf.fail(f"operator #{index} {type_name} lists {len(names)} output names but has {arity} "
                               f"outputs")
            arity = len(names)
        if arity is None:
            raise UnknownOperatorTypeError(
                f"{source}: operator #{index} {type_name} has a variable number of outputs that a V1 file does not "
                f"record (dump with keep_var_name=2 or in the default FBS_V2 format)")
        if arity < 0 or (arity == 0 and _unversioned(type_name) not in _HOLDERS):
            raise buf.fail(f"operator #{index} {type_name} would have no outputs (bad input count)")
        outputs = list(range(next_id, next_id + arity))
        next_id += arity
        if names is not None:
            var_names.update(zip(outputs, names))
        otype = op.table(6, "output_dtype")
        oprs.append(OprRecord(
            type=type_name,
            name=op.string(12),
            param_name=pname,
            params=params,
            inputs=inputs,
            outputs=outputs,
            tensors=tensors,
            output_dtype=decode_dtype(buf, otype) if otype is not None else None,
        ))

    def _output_var(b: Buffer, pos: int) -> tuple[int, int]:
        return b.scalar("u32", pos, "OutputVar.compact_id"), b.scalar("u32", pos + 4, "OutputVar.original_id")

    outputs = []
    for compact_id, _ in graph.struct_vector(4, 8, _output_var):
        if compact_id >= next_id:
            raise buf.fail(f"graph output refers to var {compact_id}, but the operators define only {next_id} vars")
        outputs.append((compact_id, var_names.get(compact_id, f"var{compact_id}")))
    meta = graph.table(5, "Metadata")
    return ModelRecord(
        source=source,
        format="mgb1",
        model_version=1,
        mge_version=graph.scalar(0, "u32", 0),
        oprs=oprs,
        var_names=var_names,
        var_shapes={},
        outputs=outputs,
        optimize_options=meta.scalar(3, "u64", 0) if meta else 0,
        user_info=bytes(meta.bytes_vector(2)) if meta and meta.has(2) else None,
        extra={"magic": magic.decode("ascii"), "graph_hash": graph.scalar(1, "u64", 0),
               "feature_bits": int.from_bytes(bytes(view[4:12]), "little") if magic == MAGIC_MGBC else 0},
    )


def _check_holder_count(buf: Buffer, op: Table, index: int, type_name: str, n_tensors: int) -> None:
    """A V1 MultipleDeviceTensor(WithFormat)Holder stores its value count as a u32 in its first blob."""
    blobs = op.table_vector(9, "Blob")
    if not blobs:
        raise buf.fail(f"operator #{index} {type_name} has no blob with its value count")
    count = blobs[0].bytes_vector(0)
    if count is None or len(count) != 4:
        raise buf.fail(f"operator #{index} {type_name}: the value-count blob is not 4 bytes")
    nr = int.from_bytes(bytes(count), "little")
    if nr != n_tensors:
        raise buf.fail(f"operator #{index} {type_name} says it holds {nr} values but has {n_tensors} tensors")
