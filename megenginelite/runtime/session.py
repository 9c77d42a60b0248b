"""Execution: a loaded model compiled to ONNX Runtime sessions, one per set of input shapes, run with IOBinding."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from dataclasses import dataclass, replace

import numpy as np
import onnxruntime as ort

from ..errors import DeviceError, InvalidInputError, LiteError
from ..format import ModelRecord
from ..format.dtypes import NUMPY_DTYPES, DType, from_numpy
from ..graph import Graph, build_graph, infer_graph
from ..graph.passes import optimize
from ..lower import to_onnx_bytes
from .cache import SAVED_LEVEL, active_cache, cache_key


@dataclass(frozen=True)
class SessionConfig:
    """How ONNX Runtime runs a model: threads, providers, optimization level."""

    threads: int = 1
    providers: tuple = ("CPUExecutionProvider",)
    optimization: str = "all"
    profile_prefix: str | None = None
    expose_vars: bool = False
    rewrites: bool = True

    def session_options(self) -> ort.SessionOptions:
        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, int(self.threads))
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = {
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.optimization]
        so.log_severity_level = 4  # errors reach the caller as exceptions; keep stderr clean
        if self.profile_prefix:
            so.enable_profiling = True
            so.profile_file_prefix = self.profile_prefix
        return so


@dataclass(frozen=True)
class TensorSpec:
    """Name, static shape and dtype of a graph input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: DType


@dataclass
class Plan:
    """The model compiled for one set of input shapes and dtypes (``graph`` is None for ONNX models)."""

    graph: Graph | None
    session: ort.InferenceSession
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    onnx_outputs: list[str]
    compile_seconds: float
    exposed: list[str]

    def run(self, feeds: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once, reading each input array in place and writing each output array in place (no copies).

        Returns the values of the exposed intermediate vars (``var<id>`` -> array) when the plan exposes them.
        """
        binding = self.session.io_binding()
        for spec in self.inputs:
            arr = feeds[spec.name]
            binding.bind_input(spec.name, "cpu", 0, arr.dtype, list(arr.shape), arr.ctypes.data)
        for spec, onnx_name in zip(self.outputs, self.onnx_outputs):
            arr = outputs[spec.name]
            binding.bind_output(onnx_name, "cpu", 0, arr.dtype, list(arr.shape), arr.ctypes.data)
        for name in self.exposed:
            binding.bind_output(name, "cpu")
        try:
            self.session.run_with_iobinding(binding)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise LiteError(f"inference failed: {exc}") from exc
        if not self.exposed:
            return {}
        values = binding.copy_outputs_to_cpu()[len(self.outputs):]
        return dict(zip(self.exposed, values))


ShapeKey = tuple[tuple[str, tuple[int, ...], str], ...]


class CompiledModel:
    """A decoded model and the ONNX Runtime plans built for it, cached by input shapes and dtypes."""

    def __init__(self, record: ModelRecord, config: SessionConfig, model_bytes: bytes | None = None):
        self.record = record
        self.config = config
        self._model_bytes = model_bytes
        self._digest: str | None = None
        self._plans: dict[ShapeKey, Plan] = {}
        self._lock = threading.Lock()
        graph = build_graph(record)
        self.input_specs = [TensorSpec(v.name, tuple(v.shape), v.dtype) for v in graph.inputs]
        self.output_names = graph.output_names
        if len(set(self.output_names)) != len(self.output_names):
            raise LiteError(f"{record.source}: output names are not unique: {self.output_names}")
        for provider in config.providers:
            if provider not in ort.get_available_providers():
                raise DeviceError(f"request gpu0 out of valid range [0, 0): ONNX Runtime provider {provider} is not "
                                  f"available here (available: {ort.get_available_providers()}); install "
                                  f"onnxruntime-gpu (pip install 'megenginelite[cuda]') on a machine with a GPU")

    @property
    def source(self) -> str:
        return self.record.source

    def input_spec(self, name: str) -> TensorSpec:
        for spec in self.input_specs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def plan(self, shapes: dict[str, tuple[int, ...]] | None = None,
             dtypes: dict[str, np.dtype] | None = None) -> Plan:
        """The plan for these input shapes/dtypes (the file's own when not given); compiled once, then cached."""
        shapes = shapes or {}
        dtypes = dtypes or {}
        key = tuple((s.name, tuple(shapes.get(s.name, s.shape)), np.dtype(dtypes.get(s.name, s.dtype.np_dtype)).str)
                    for s in self.input_specs)
        with self._lock:
            plan = self._plans.get(key)
            if plan is None:
                plan = self._plans[key] = self._compile(key)
        return plan

    def compile(self, shapes: dict[str, tuple[int, ...]], dtypes: dict[str, np.dtype],
                config: SessionConfig) -> Plan:
        """A fresh, uncached plan with its own session configuration (profiling, exposed vars)."""
        key = tuple((s.name, tuple(shapes.get(s.name, s.shape)), np.dtype(dtypes.get(s.name, s.dtype.np_dtype)).str)
                    for s in self.input_specs)
        return self._compile(key, config)

    def _compile(self, key: ShapeKey, config: SessionConfig | None = None) -> Plan:
        config = config or self.config
        start = time.perf_counter()
        graph = build_graph(self.record)
        input_dtypes = {}
        for (name, _, dt), spec in zip(key, self.input_specs):
            if np.dtype(dt) != spec.dtype.np_dtype:
                got = from_numpy(np.dtype(dt)).name if np.dtype(dt) in NUMPY_DTYPES else str(np.dtype(dt))
                raise InvalidInputError(f"{self.source}: dtype mismatch: get={got} expect={spec.dtype.name} "
                                        f"(input {name!r} expects {spec.dtype.np_dtype}, got {np.dtype(dt)})")
            input_dtypes[name] = spec.dtype
        infer_graph(graph, {name: shape for name, shape, _ in key}, input_dtypes)
        if config.rewrites:
            optimize(graph)
        cache = active_cache() if self._model_bytes is not None and not config.expose_vars else None
        entry = cache_key(self.digest, key, config.optimization, config.rewrites) if cache is not None else None
        onnx_bytes = cache.get(entry) if cache is not None else None
        if onnx_bytes is None:
            onnx_bytes = to_onnx_bytes(graph, expose_vars=config.expose_vars)
            if cache is not None:
                onnx_bytes = self._optimized(onnx_bytes, config)
                cache.put(entry, onnx_bytes)
        try:
            session = ort.InferenceSession(onnx_bytes, config.session_options(), providers=list(config.providers))
        except Exception as exc:
            raise LiteError(f"{self.source}: ONNX Runtime rejected the lowered model: {exc}") from exc
        outputs = [TensorSpec(name, tuple(var.shape), var.dtype) for name, var in graph.outputs]
        onnx_outputs = [o.name for o in session.get_outputs()]
        return Plan(graph=graph, session=session,
                    inputs=[TensorSpec(v.name, tuple(v.shape), v.dtype) for v in graph.inputs],
                    outputs=outputs, onnx_outputs=onnx_outputs[:len(outputs)],
                    compile_seconds=time.perf_counter() - start, exposed=onnx_outputs[len(outputs):])

    @property
    def digest(self) -> str:
        """SHA-256 of the model file's bytes (the persistent cache's key)."""
        if self._digest is None:
            self._digest = hashlib.sha256(self._model_bytes or b"").hexdigest()
        return self._digest

    def _optimized(self, onnx_bytes: bytes, config: SessionConfig) -> bytes:
        """The model after ONNX Runtime's portable graph optimizations, as the persistent cache stores it."""
        with tempfile.TemporaryDirectory() as tmp:
            options = replace(config, optimization=SAVED_LEVEL).session_options()
            options.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
            ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
            with open(options.optimized_model_filepath, "rb") as f:
                return f.read()
