"""ONNX files through the Lite API: the same plan interface as a compiled ``.mge`` model.

One ONNX Runtime session serves every input shape (ONNX models carry symbolic dims themselves); a plan per
input-shape set only records the output shapes, found by ONNX shape inference with the inputs made concrete,
so the output tensors can be preallocated and bound like a ``.mge`` model's. Symbolic input dims start as 1.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np

from ..errors import InvalidInputError, LiteError, ModelFormatError
from ..format import looks_like_onnx
from ..format.dtypes import from_numpy
from ..graph.dims import Sym
from .session import Plan, SessionConfig, TensorSpec, check_providers


def _spec(value_info, source: str) -> TensorSpec:
    from onnx import helper

    tensor_type = value_info.type.tensor_type
    try:
        dtype = from_numpy(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
    except (TypeError, KeyError):
        raise ModelFormatError(f"{source}: {value_info.name!r} has element type {tensor_type.elem_type}, which has "
                               f"no Lite data type") from None
    dims = tuple(d.dim_value if d.HasField("dim_value") else Sym(d.dim_param or None) for d in tensor_type.shape.dim)
    return TensorSpec(value_info.name, dims, dtype)


def _external_tensors(proto) -> list[str]:
    """Names of the tensors of a ModelProto (initializers, attributes, subgraphs, functions) whose data lies in
    an external file."""
    from onnx import TensorProto

    found: list[str] = []

    def tensor(t) -> None:
        if t.data_location == TensorProto.EXTERNAL:
            found.append(t.name)

    def nodes(seq) -> None:
        for node in seq:
            for a in node.attribute:
                if a.HasField("t"):
                    tensor(a.t)
                for t in a.tensors:
                    tensor(t)
                if a.HasField("sparse_tensor"):
                    tensor(a.sparse_tensor.values)
                    tensor(a.sparse_tensor.indices)
                for st in a.sparse_tensors:
                    tensor(st.values)
                    tensor(st.indices)
                if a.HasField("g"):
                    graph(a.g)
                for g in a.graphs:
                    graph(g)

    def graph(g) -> None:
        for t in g.initializer:
            tensor(t)
        for st in g.sparse_initializer:
            tensor(st.values)
            tensor(st.indices)
        nodes(g.node)

    graph(proto.graph)
    for function in proto.functions:
        nodes(function.node)
    return found


class OnnxModel:
    """An ONNX model and its session; ``plan(shapes, dtypes)`` gives a ``Plan`` like ``CompiledModel``'s."""

    def __init__(self, data: bytes, source: str, config: SessionConfig):
        import onnx

        try:
            self.proto = onnx.load_from_string(data)
            onnx.checker.check_model(self.proto)
        except Exception as exc:  # protobuf and checker errors
            raise ModelFormatError(f"{source}: invalid ONNX model: {exc}") from None
        external = _external_tensors(self.proto)
        if external:  # a model file never makes us read other files
            raise ModelFormatError(f"{source}: the ONNX model keeps tensor data in external files ({external[:5]}); "
                                   f"only self-contained ONNX models are loaded (save it with "
                                   f"onnx.save_model(model, path, save_as_external_data=False))")
        self.source = source
        self.config = config = replace(config, cuda_graph=False)  # one session serves every input shape
        initializers = {t.name for t in self.proto.graph.initializer}
        declared = [_spec(v, source) for v in self.proto.graph.input if v.name not in initializers]
        self.input_specs = [TensorSpec(s.name, tuple(d if isinstance(d, int) else 1 for d in s.shape), s.dtype) for s in declared]
        self.output_names = [v.name for v in self.proto.graph.output]
        try:
            self.session = config.new_session(data)
        except Exception as exc:
            raise LiteError(f"{source}: ONNX Runtime rejected the model: {exc}") from exc
        check_providers(self.session, config, source)
        self._plans: dict[tuple, Plan] = {}
        self._lock = threading.Lock()

    def plan(self, shapes: dict[str, tuple[int, ...]] | None = None,
             dtypes: dict[str, np.dtype] | None = None) -> Plan:
        shapes, dtypes = shapes or {}, dtypes or {}
        inputs = []
        for spec in self.input_specs:
            dtype = np.dtype(dtypes.get(spec.name, spec.dtype.np_dtype))
            if dtype != spec.dtype.np_dtype:
                raise InvalidInputError(f"{self.source}: dtype mismatch: input {spec.name!r} expects "
                                        f"{spec.dtype.np_dtype}, got {dtype}")
            inputs.append(TensorSpec(spec.name, tuple(shapes.get(spec.name, spec.shape)), spec.dtype))
        key = tuple((s.name, s.shape) for s in inputs)
        with self._lock:
            if key not in self._plans:
                outputs = self._output_specs(inputs)
                self._plans[key] = Plan(graph=None, session=self.session, inputs=inputs, outputs=outputs,
                                        onnx_outputs=self.output_names, compile_seconds=0.0, exposed=[])
            return self._plans[key]

    def compile(self, shapes, dtypes, config: SessionConfig) -> Plan:
        """A plan on a fresh session with other options (profiling); IO dumps need a .mge model."""
        if config.expose_vars:
            raise LiteError(f"{self.source}: io_txt_dump/io_bin_dump need a MegEngine model, not ONNX")
        base = self.plan(shapes, dtypes)
        session = config.new_session(self.proto.SerializeToString())
        return Plan(graph=None, session=session, inputs=base.inputs, outputs=base.outputs,
                    onnx_outputs=base.onnx_outputs, compile_seconds=0.0, exposed=[])

    def _output_specs(self, inputs: list[TensorSpec]) -> list[TensorSpec]:
        """Output shapes for concrete input shapes, by ONNX shape inference on a copy with fixed input dims."""
        import onnx

        model = onnx.ModelProto()
        model.CopyFrom(self.proto)
        by_name = {s.name: s for s in inputs}
        for value in model.graph.input:
            if value.name in by_name:
                dims = value.type.tensor_type.shape.dim
                wanted = by_name[value.name].shape
                if len(dims) != len(wanted):
                    raise InvalidInputError(f"{self.source}: input {value.name!r} has {len(dims)} dims, "
                                            f"got shape {list(wanted)}")
                for dim, size in zip(dims, wanted):
                    dim.Clear()
                    dim.dim_value = size
        try:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
        except Exception as exc:
            raise InvalidInputError(f"{self.source}: the model cannot take input shapes "
                                    f"{ {s.name: list(s.shape) for s in inputs} }: {exc}") from None
        # a dim still unknown depends on the data (NonZero, Compress, ...): the output takes each run's shape
        return [_spec(v, self.source) for v in inferred.graph.output]


def is_onnx_file(data: bytes, source: str) -> bool:
    """ONNX by file name, or by its first bytes (``ir_version`` then another ModelProto field)."""
    return source.lower().endswith(".onnx") or looks_like_onnx(bytes(data[:16]))
