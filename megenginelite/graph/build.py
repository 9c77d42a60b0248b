"""Build the graph IR from decoded file records."""

from __future__ import annotations

import re

import numpy as np

from ..errors import ModelFormatError
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
                var.dtype = t.dtype
                var.shape = t.shape
                if rec.type in INPUT_OPRS:
                    var.name = t.name or var.name
                    inputs.append(var)
                else:
                    if t.data is None and int(np.prod(t.shape)) != 0:
                        raise ModelFormatError(f"{model.source}: constant {var.name!r} has no data")
                    var.const = t.data if t.data is not None else np.zeros(t.shape, t.dtype.np_dtype)
            continue
        op = Op(type=rec.type, kind=canonical_kind(rec.type), params=rec.params,
                inputs=[fetch(i) for i in rec.inputs], outputs=[], output_dtype=rec.output_dtype, index=index)
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
