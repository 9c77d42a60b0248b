"""Execution: a loaded model compiled to ONNX Runtime sessions, one per set of input shapes, run with IOBinding."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import onnxruntime as ort

from ..errors import DeviceError, InvalidInputError, LiteError
from ..format import ModelRecord
from ..format.dtypes import NUMPY_DTYPES, DType, from_numpy
from ..graph import Graph, build_graph, infer_graph
from ..graph.dims import is_static
from ..graph.passes import optimize
from ..lower import to_onnx_bytes, to_onnx_external
from .cache import SAVED_LEVEL, active_cache, cache_key
from .device import DeviceView


# The most threads a session gets, whatever threads_number or a packed model's info asks for (a file saying
# "number_threads": 100000 must not make us start 100,000 threads).
MAX_THREADS = max(64, 4 * (os.cpu_count() or 1))
# A directory that cannot exist (a path under a file): external data is looked up here, so it is never found.
NO_EXTERNAL_DATA_DIR = os.path.join(os.devnull, "megenginelite-reads-no-external-data")


@dataclass(frozen=True)
class SessionConfig:
    """How ONNX Runtime runs a model: threads, providers, optimization level."""

    threads: int = 1
    providers: tuple = ("CPUExecutionProvider",)
    optimization: str = "all"
    profile_prefix: str | None = None
    expose_vars: bool = False
    rewrites: bool = True
    device_id: int = 0  # the GPU of the CUDA / TensorRT providers

    def provider_list(self) -> list:
        """``providers`` as InferenceSession takes them, the GPU ones with their ``device_id`` option."""
        gpu = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
        return [(p, {"device_id": str(self.device_id)}) if p in gpu else p for p in self.providers]

    def session_options(self) -> ort.SessionOptions:
        so = ort.SessionOptions()
        so.intra_op_num_threads = min(max(1, int(self.threads)), MAX_THREADS)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = {
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.optimization]
        so.log_severity_level = 4  # errors reach the caller as exceptions; keep stderr clean
        # A model never makes us read files: ONNX external data (tensors kept in files named by the model, e.g. in
        # an ONNX model or a persistent-cache entry) would resolve relative to this directory, which cannot exist.
        # Our own external initializers come from memory (add_external_initializers), not from files.
        so.add_session_config_entry("session.model_external_initializers_file_folder_path", NO_EXTERNAL_DATA_DIR)
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
    keepalive: list = field(default_factory=list, repr=False)  # arrays ONNX Runtime reads in place
    _binding: tuple | None = field(default=None, repr=False)  # (buffer ids/shapes/dtypes, buffers, IOBinding)

    @cached_property
    def dynamic_outputs(self) -> list[TensorSpec]:
        """The outputs whose length is known only at run time (no buffer of theirs is bound)."""
        return [spec for spec in self.outputs if not is_static(spec.shape)]

    def run(self, feeds: dict[str, np.ndarray | DeviceView],
            outputs: dict[str, np.ndarray | DeviceView]) -> dict[str, np.ndarray]:
        """Run once, reading each input in place and writing each output in place (no copies).

        A buffer is a numpy array (host memory, bound as "cpu") or a ``DeviceView`` (device memory, bound by its
        pointer as the backend's ONNX Runtime device: "cuda" and the device id, or "cpu" for the host-emulated
        device of the tests). An output whose length is known only at run time (a ``Sym`` in its spec) takes no
        buffer: ONNX Runtime allocates it and the array is put into ``outputs``.  Returns the values of the exposed
        intermediate vars (``var<id>`` -> array) when the plan exposes them.
        """
        dynamic = self.dynamic_outputs
        buffers = [feeds[spec.name] for spec in self.inputs] + [outputs.get(spec.name) for spec in self.outputs]
        key = [(id(b), b.shape, b.dtype) if b is not None else None for b in buffers]
        cached = self._binding
        if cached is not None and cached[0] == key and not self.exposed and not dynamic:
            binding = cached[2]  # the same buffers as last time: bound already (outputs ONNX Runtime allocates
            # would stay bound at their first run's size)
        else:
            binding = self.session.io_binding()
            for spec, buffer in zip(self.inputs, buffers):
                _bind(binding.bind_input, spec.name, buffer)
            for onnx_name, buffer in zip(self.onnx_outputs, buffers[len(self.inputs):]):
                if buffer is None:
                    binding.bind_output(onnx_name, "cpu")  # allocated by ONNX Runtime at each run
                else:
                    _bind(binding.bind_output, onnx_name, buffer)
            for name in self.exposed:
                binding.bind_output(name, "cpu")
            self._binding = (key, buffers, binding)  # buffers stay referenced, so their ids stay theirs
        # one view per device: synchronize it so our copies land before ONNX Runtime's stream reads the memory
        on_device = {(id(b.memory.backend), b.memory.device_id): b
                     for b in (*feeds.values(), *outputs.values()) if isinstance(b, DeviceView)}.values()
        for view in on_device:
            view.synchronize()
        try:
            self.session.run_with_iobinding(binding)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise LiteError(f"inference failed: {exc}") from exc
        for view in on_device:
            view.synchronize()
        if not dynamic and not self.exposed:
            return {}
        values = binding.get_outputs()
        for i, spec in enumerate(self.outputs):
            if spec in dynamic:
                outputs[spec.name] = values[i].numpy()
        return {name: values[len(self.outputs) + i].numpy() for i, name in enumerate(self.exposed)}


def _bind(bind, name: str, buffer: np.ndarray | DeviceView) -> None:
    """``bind_input`` / ``bind_output`` of one host array or device view, by pointer."""
    if isinstance(buffer, DeviceView):
        bind(name, buffer.ort_device, buffer.ort_device_id, buffer.dtype, list(buffer.shape), buffer.ptr)
    else:
        bind(name, "cpu", 0, buffer.dtype, list(buffer.shape), buffer.ctypes.data)


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
            optimize(graph, pad_channels=not config.expose_vars)
        cache = active_cache() if self._model_bytes is not None and not config.expose_vars else None
        entry = cache_key(self.digest, key, config.optimization, config.rewrites) if cache is not None else None
        onnx_bytes = cache.get(entry) if cache is not None else None
        options = config.session_options()
        keepalive: list = []
        if onnx_bytes is None and cache is not None:
            onnx_bytes = self._optimized(to_onnx_bytes(graph, expose_vars=config.expose_vars), config)
            cache.put(entry, onnx_bytes)
        elif onnx_bytes is None:
            # Weights stay in our arrays (mostly views on the file's bytes): ONNX Runtime uses them in place.
            onnx_bytes, external = to_onnx_external(graph, expose_vars=config.expose_vars)
            if external:
                values = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a)) for _, a in external]
                options.add_external_initializers([n for n, _ in external], values)
                keepalive = [external, values]
        try:
            session = ort.InferenceSession(onnx_bytes, options, providers=config.provider_list())
        except Exception as exc:
            raise LiteError(f"{self.source}: ONNX Runtime rejected the lowered model: {exc}") from exc
        outputs = [TensorSpec(name, tuple(var.shape), var.dtype) for name, var in graph.outputs]
        onnx_outputs = [o.name for o in session.get_outputs()]
        return Plan(graph=graph, session=session,
                    inputs=[TensorSpec(v.name, tuple(v.shape), v.dtype) for v in graph.inputs],
                    outputs=outputs, onnx_outputs=onnx_outputs[:len(outputs)],
                    compile_seconds=time.perf_counter() - start, exposed=onnx_outputs[len(outputs):],
                    keepalive=keepalive)

    @property
    def digest(self) -> str:
        """SHA-256 of the model file's bytes (the persistent cache's key)."""
        if self._digest is None:
            import hashlib  # here: only the persistent cache needs it (imports stay light for a cold start)

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
