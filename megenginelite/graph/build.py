"""Build the graph IR from decoded file records."""

from __future__ import annotations

import math
import re

import numpy as np

from ..errors import ModelFormatError
from ..format.dtypes import BFLOAT16, DType, bfloat16_bits_to_float32, is_bfloat16
from ..format.records import ModelRecord
from .ir import Graph, Op, Var

# Oprs that hold data rather than compute: their outputs become graph inputs or constants.
INPUT_OPRS = {"Host2DeviceCopy"}
CONST_OPRS = {"ImmutableTensor", "SharedDeviceTensor", "MultipleDeviceTensorHolder",
              "SharedDeviceTensorWithFormat", "MultipleDeviceTensorWithFormatHolder"}

_RENAMES = {"ConvBiasForward": "ConvBias", "ConvolutionForward": "Convolution", "CorrelationForward": "Correlation",
            "DeformableConvForward": "DeformableConv", "LSTMForward": "LSTM", "NMSKeepMGB": "NMSKeep",
            "LocalShareForward": "LocalShare"}


def canonical_kind(type_name: str) -> str:
    """The operator kind a file type name lowers by: ``ReshapeV1`` -> ``Reshape``, ``ConvBiasForwardV4`` -> ``ConvBias``."""
    base = re.sub(r"V\d+$", "", type_name)
    return _RENAMES.get(base, base)


def _graph_dtype(dtype: DType | None) -> DType | None:
    """The graph's dtype for a file dtype: BFloat16 (uint16 bits in the file) is carried as float32 values
    (``format.dtypes.BFLOAT16``); every other dtype is kept."""
    return BFLOAT16 if is_bfloat16(dtype) else dtype


def _graph_value(data: np.ndarray, dtype: DType) -> np.ndarray:
    """A constant's data as the graph holds it: BFloat16 bits decoded to the float32 values they denote."""
    return bfloat16_bits_to_float32(data) if is_bfloat16(dtype) and data.dtype == np.uint16 else data


def build_graph(model: ModelRecord) -> Graph:
    """Turn a ``ModelRecord`` into a ``Graph``; checks that every var is defined before it is used."""
    vars_: dict[int, Var] = {}
    inputs: list[Var] = []
    ops: list[Op] = []

    def new_var(vid: int) -> Var:
        if vid in vars_:
            raise ModelFormatError(f"{model.source}: var {vid} is produced twice")
        var = Var(vid, model.var_names.get(vid) or f"var{vid}")
        vars_[vid] = var
        return var

    for index, rec in enumerate(model.oprs):
        def fetch(vid: int) -> Var:
            if vid not in vars_:
                raise ModelFormatError(f"{model.source}: opr #{index} {rec.type} reads var {vid}, "
                                       f"which no earlier opr produces")
            return vars_[vid]

        if rec.type in INPUT_OPRS or rec.type in CONST_OPRS:
            if len(rec.tensors) != len(rec.outputs):
                raise ModelFormatError(f"{model.source}: opr #{index} {rec.type} has {len(rec.tensors)} tensors "
                                       f"for {len(rec.outputs)} outputs")
            for vid, t in zip(rec.outputs, rec.tensors):
                var = new_var(vid)
                var.dtype = _graph_dtype(t.dtype)
                var.shape = t.shape
                if rec.type in INPUT_OPRS:
                    var.name = t.name or var.name
                    inputs.append(var)
                else:
                    if t.data is not None:
                        var.const = _graph_value(t.data, t.dtype)
                        continue
                    if math.prod(t.shape) != 0:
                        raise ModelFormatError(f"{model.source}: constant {var.name!r} has no data")
                    try:  # an empty constant; numpy refuses dims whose product overflows even with a zero among them
                        var.const = np.zeros(t.shape, var.dtype.np_dtype)
                    except ValueError as exc:
                        raise ModelFormatError(f"{model.source}: constant {var.name!r} has an impossible shape "
                                               f"{list(t.shape)}: {exc}") from None
            continue
        params = rec.params
        if params and any(isinstance(v, DType) and is_bfloat16(v) for v in params.values()):
            params = {k: _graph_dtype(v) if isinstance(v, DType) else v for k, v in params.items()}
        op = Op(type=rec.type, kind=canonical_kind(rec.type), params=params,
                inputs=[fetch(i) for i in rec.inputs], outputs=[], output_dtype=_graph_dtype(rec.output_dtype),
                index=index)
        for vid in rec.outputs:
            var = new_var(vid)
            var.producer = op
            op.outputs.append(var)
        ops.append(op)

    outputs: dict[int, tuple[str, Var]] = {}
    for vid, name in model.outputs:
        if vid not in vars_:
            raise ModelFormatError(f"{model.source}: output {name!r} refers to var {vid}, which does not exist")
        # One output per var, as the original: a var listed twice keeps its first place and its last name.
        outputs[vid] = (name, vars_[vid])
    if not outputs:
        raise ModelFormatError(f"{model.source}: the model declares no outputs")
    info = {"format": model.format, "model_version": model.model_version, "mge_version": model.mge_version,
            "optimize_options": model.optimize_options}
    return Graph(source=model.source, inputs=inputs, ops=ops, outputs=list(outputs.values()), vars=vars_, info=info)
