"""Execution: a loaded model compiled to ONNX Runtime sessions, one per set of input shapes, run with IOBinding."""

from __future__ import annotations

import logging
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
from ..lower.builder import owner_op, rejection_error
from .. import ops  # noqa: F401  (registers every operator's param table, rules and lowering)
from .cache import SAVED_LEVEL, active_cache, cache_key
from .memory import DeviceMemory, DeviceView


logger = logging.getLogger("megenginelite")

# The most threads a session gets, whatever threads_number or a packed model's info asks for (a file saying
# "number_threads": 100000 must not make us start 100,000 threads).
MAX_THREADS = max(64, 4 * (os.cpu_count() or 1))
# A directory that cannot exist (a path under a file): external data is looked up here, so it is never found.
NO_EXTERNAL_DATA_DIR = os.path.join(os.devnull, "megenginelite-reads-no-external-data")


# ONNX Runtime fusions that make its CPU provider slower. SkipLayerNormFusion turns Add + LayerNormalization (every
# BERT layer's residual) into com.microsoft SkipLayerNormalization, whose CPU kernel in onnxruntime 1.32 takes 2-6x
# the time of the two nodes it replaces: (1, 48, 128) 77 against 37 us, (16, 48, 128) 899 against 175 us,
# (1, 384, 768) 2.66 against 0.45 ms (AMD EPYC AVX2, 1 thread, median of 300; about 4x on an Intel AVX-512 Xeon).
SLOW_CPU_FUSIONS = ("SkipLayerNormFusion",)


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
    # Record the whole run once as a CUDA graph and replay it (CUDA provider). Asked for, not promised: a plan
    # whose outputs have run-time lengths, or whose nodes do not all run on the GPU, is compiled without it.
    cuda_graph: bool = False
    # Let cuDNN/cuBLAS round float32 products to TF32 (faster, ~1e-3 relative error); off: float32 results as on CPU
    tf32: bool = False

    def provider_list(self) -> list:
        """``providers`` as InferenceSession takes them, the GPU ones with their options (``device_id``...)."""
        listed: list = []
        for p in self.providers:
            if p == "CUDAExecutionProvider":
                options = {"device_id": str(self.device_id), "use_tf32": str(int(self.tf32))}
                listed.append((p, {**options, "enable_cuda_graph": "1"} if self.cuda_graph else options))
            elif p == "TensorrtExecutionProvider":
                listed.append((p, {"device_id": str(self.device_id)}))
            else:
                listed.append(p)
        return listed

    def new_session(self, model: bytes, options: ort.SessionOptions | None = None,
                    providers: list | None = None) -> ort.InferenceSession:
        """An InferenceSession on ``model`` with these providers (or ``providers``) and options, without the
        fusions that slow the CPU provider down."""
        providers = self.provider_list() if providers is None else providers
        on_cpu = (providers[0] if isinstance(providers[0], str) else providers[0][0]) == "CPUExecutionProvider"
        return ort.InferenceSession(model, options or self.session_options(), providers=providers,
                                    disabled_optimizers=list(SLOW_CPU_FUSIONS) if on_cpu else [])

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
    graph_io: "CudaGraphIO | None" = field(default=None, repr=False)  # set when the session replays a CUDA graph

    def _inference_error(self, exc: Exception) -> LiteError:
        """A failed run as a LiteError naming the MegBrain operator whose node failed, where the message says."""
        op = owner_op(self.graph, str(exc)) if self.graph is not None else None
        return LiteError(f"inference failed{f' in {op.describe()}' if op else ''}: {exc}")

    @cached_property
    def on_cpu(self) -> bool:
        """Whether the session runs on ONNX Runtime's CPU provider (binding host arrays there copies nothing)."""
        return self.session.get_providers()[0] == "CPUExecutionProvider"

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
        if self.graph_io is not None:
            try:
                self.graph_io.run(self.session, feeds, outputs)
            except LiteError:
                raise
            except Exception as exc:  # onnxruntime raises its own exception types
                raise self._inference_error(exc) from exc
            return {}
        dynamic = self.dynamic_outputs
        buffers = [feeds[spec.name] for spec in self.inputs] + [outputs.get(spec.name) for spec in self.outputs]
        # a host array by identity (a tensor hands out the same view while its memory stays), device memory by
        # address (a new DeviceView each forward, the same pointer)
        key = [None if b is None else (b.ptr if isinstance(b, DeviceView) else id(b), b.shape, b.dtype)
               for b in buffers]
        cached = self._binding
        if (cached is not None and cached[0] == key and not self.exposed and not dynamic
                and (self.on_cpu or all(isinstance(feeds[spec.name], DeviceView) for spec in self.inputs))):
            binding = cached[2]  # the same buffers as last time: bound already (outputs ONNX Runtime allocates
            # would stay bound at their first run's size). Not on a GPU session fed host arrays: binding a host
            # input there copies it to the device at once, so a reused binding would replay the old values.
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
            raise self._inference_error(exc) from exc
        for view in on_device:
            view.synchronize()
        if not dynamic and not self.exposed:
            return {}
        values = binding.get_outputs()
        for i, spec in enumerate(self.outputs):
            if spec in dynamic:
                outputs[spec.name] = values[i].numpy()
        return {name: values[len(self.outputs) + i].numpy() for i, name in enumerate(self.exposed)}


# ONNX node types whose CUDA kernels replay correctly from a recorded CUDA graph: their launches depend only on
# shapes, and they stage nothing through host memory during a run. Not in the list, for instance: com.microsoft
# Inverse (cuBLAS batched calls with pointer arrays copied from a temporary host buffer: a replay reads freed
# memory and the kernel faults; seen on an H200, which then needs a new process), NonMaxSuppression, NonZero,
# Compress, TopK (results sized or copied through the host). A model with any other node runs without a graph.
GRAPH_SAFE_NODES = frozenset(f":{t}" for t in (
    "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh", "AveragePool",
    "BatchNormalization", "BitShift", "Cast", "Ceil", "Clip", "Concat", "Conv", "ConvTranspose", "Cos", "Cosh",
    "Div", "Elu", "Equal", "Erf", "Exp", "Expand", "Flatten", "Floor", "Gather", "GatherElements", "Gemm",
    "GlobalAveragePool", "GlobalMaxPool", "Greater", "GreaterOrEqual", "HardSigmoid", "HardSwish", "Identity",
    "InstanceNormalization", "IsInf", "IsNaN", "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log",
    "LogSoftmax", "LRN", "MatMul", "Max", "MaxPool", "Mean", "Min", "Mod", "Mul", "Neg", "Not", "Or", "Pad", "Pow",
    "PRelu", "Reciprocal", "ReduceL2", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum",
    "ReduceSumSquare", "Relu", "Reshape", "Resize", "Round", "Selu", "Sigmoid", "Sign", "Sin", "Sinh", "Slice",
    "Softmax", "Softplus", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tan", "Tanh", "Tile", "Transpose",
    "Unsqueeze", "Where", "Xor"))


def check_providers(session: ort.InferenceSession, config: SessionConfig, source: str) -> None:
    """DeviceError unless the session runs on the first provider asked for. When a GPU provider fails to start (a
    broken driver, a device in an error state), ONNX Runtime's Python wrapper retries on the CPU by itself, printing
    to stdout: a LITE_CUDA network must not run on the CPU unnoticed."""
    wanted = config.providers[0]
    if wanted not in session.get_providers():
        raise DeviceError(f"{source}: ONNX Runtime could not start {wanted} (it fell back to "
                          f"{session.get_providers()}); see its message above")


class CudaGraphIO:
    """The fixed device buffers a CUDA-graph session reads and writes, and the copies in and out of them.

    A replayed CUDA graph reads its inputs from, and writes its outputs to, the addresses it was recorded with, while
    a network's tensors may move (``share_memory_with`` a new batch, a new ``set_data_by_share`` array). So every
    input and output gets one device buffer, bound once; each run copies the inputs in (host to device from the
    pinned IO tensors, or device to device), replays, and copies the outputs out. The copies are a few
    microseconds on the GPU; the replay saves a kernel launch per ONNX node.
    """

    def __init__(self, session: ort.InferenceSession, inputs: list[TensorSpec], outputs: list[TensorSpec],
                 onnx_outputs: list[str], device_id: int):
        self.inputs = [(spec.name, DeviceMemory.allocate(_nbytes(spec), device_id)) for spec in inputs]
        self.outputs = [(spec.name, DeviceMemory.allocate(_nbytes(spec), device_id)) for spec in outputs]
        self.binding = session.io_binding()
        for (name, mem), spec in zip(self.inputs, inputs):
            _bind(self.binding.bind_input, name, DeviceView(mem, 0, spec.shape, spec.dtype.np_dtype))
        for (_, mem), spec, onnx_name in zip(self.outputs, outputs, onnx_outputs):
            _bind(self.binding.bind_output, onnx_name, DeviceView(mem, 0, spec.shape, spec.dtype.np_dtype))
        self._lock = threading.Lock()  # networks sharing weights share this plan and its buffers

    def run(self, session: ort.InferenceSession, feeds: dict, outputs: dict) -> None:
        with self._lock:
            for name, mem in self.inputs:
                _copy(mem, feeds[name], into=True)
            self._synchronize()  # ONNX Runtime's stream does not wait for the default stream's copies
            session.run_with_iobinding(self.binding)
            for name, mem in self.outputs:
                if name in outputs:
                    _copy(mem, outputs[name], into=False)
            self._synchronize()

    def _synchronize(self) -> None:
        for _, mem in self.inputs[:1] or self.outputs[:1]:
            mem.synchronize()


def _nbytes(spec: TensorSpec) -> int:
    return int(np.prod(spec.shape, dtype=np.int64)) * spec.dtype.np_dtype.itemsize


def _copy(staging: DeviceMemory, buffer: np.ndarray | DeviceView, into: bool) -> None:
    """Copy a host array or device view into (``into``) or out of a staging buffer of the same size."""
    if isinstance(buffer, DeviceView):
        if buffer.ptr == staging.ptr():
            return
        dst, src = (staging.ptr(), buffer.ptr) if into else (buffer.ptr, staging.ptr())
        staging.backend.memcpy_d2d(dst, src, buffer.nbytes, staging.device_id)
    elif into:
        staging.write(0, buffer.ctypes.data, buffer.nbytes)
    else:
        staging.read(0, buffer.ctypes.data, buffer.nbytes)


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
        key = self._shape_key(shapes or {}, dtypes or {})
        with self._lock:
            plan = self._plans.get(key)
            if plan is None:
                plan = self._plans[key] = self._compile(key)
        return plan

    def compile(self, shapes: dict[str, tuple[int, ...]], dtypes: dict[str, np.dtype],
                config: SessionConfig) -> Plan:
        """A fresh, uncached plan with its own session configuration (profiling, exposed vars)."""
        return self._compile(self._shape_key(shapes, dtypes), config)

    def _shape_key(self, shapes: dict[str, tuple[int, ...]], dtypes: dict[str, np.dtype]) -> ShapeKey:
        """(name, shape, dtype) of every input, the given ones over the file's own: what a plan is compiled for."""
        return tuple((s.name, tuple(shapes.get(s.name, s.shape)), np.dtype(dtypes.get(s.name, s.dtype.np_dtype)).str)
                     for s in self.input_specs)

    def _compile(self, key: ShapeKey, config: SessionConfig | None = None) -> Plan:
        """The pipeline: build -> infer -> optimize -> lower (or take from the cache) -> session."""
        config = config or self.config
        start = time.perf_counter()
        graph = build_graph(self.record)
        infer_graph(graph, {name: shape for name, shape, _ in key}, self._input_dtypes(key))
        if config.rewrites:
            # channel padding suits the CPU provider's NCHWc kernels only: on a GPU it would add work
            optimize(graph, pad_channels=not config.expose_vars and config.providers[0] == "CPUExecutionProvider")
        options = config.session_options()
        onnx_bytes, node_types, keepalive = self._lowered(graph, key, config, options)
        return self._session_plan(graph, onnx_bytes, node_types, keepalive, config, options, start)

    def _input_dtypes(self, key: ShapeKey) -> dict[str, DType]:
        """The declared dtype of every input; a key asking for another one is refused."""
        input_dtypes = {}
        for (name, _, dt), spec in zip(key, self.input_specs):
            if np.dtype(dt) != spec.dtype.np_dtype:
                got = from_numpy(np.dtype(dt)).name if np.dtype(dt) in NUMPY_DTYPES else str(np.dtype(dt))
                raise InvalidInputError(f"{self.source}: dtype mismatch: get={got} expect={spec.dtype.name} "
                                        f"(input {name!r} expects {spec.dtype.np_dtype}, got {np.dtype(dt)})")
            input_dtypes[name] = spec.dtype
        return input_dtypes

    def _lowered(self, graph: Graph, key: ShapeKey, config: SessionConfig,
                 options: ort.SessionOptions) -> tuple[bytes, frozenset[str] | None, list]:
        """(ONNX bytes, node types (None when taken from the cache), arrays to keep alive): from the on-disk cache
        when one is active, else lowered, with the weights handed to ``options`` as external initializers."""
        cache = active_cache() if self._model_bytes is not None and not config.expose_vars else None
        entry = cache_key(self.digest, key, config.optimization, config.rewrites) if cache is not None else None
        onnx_bytes = cache.get(entry) if cache is not None else None
        keepalive: list = []
        node_types: frozenset[str] | None = None  # unknown for a cached model
        try:  # onnxruntime raises its own exception types
            if onnx_bytes is None and cache is not None:
                onnx_bytes = self._optimized(to_onnx_bytes(graph, expose_vars=config.expose_vars), config)
                cache.put(entry, onnx_bytes)
            elif onnx_bytes is None:
                # Weights stay in our arrays (mostly views on the file's bytes): ONNX Runtime uses them in place.
                onnx_bytes, external, node_types = to_onnx_external(graph, expose_vars=config.expose_vars)
                if external:
                    values = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a)) for _, a in external]
                    options.add_external_initializers([n for n, _ in external], values)
                    keepalive = [external, values]
        except LiteError:
            raise
        except Exception as exc:
            raise rejection_error(graph, self.source, exc) from exc
        return onnx_bytes, node_types, keepalive

    def _session_plan(self, graph: Graph, onnx_bytes: bytes, node_types: frozenset[str] | None, keepalive: list,
                      config: SessionConfig, options: ort.SessionOptions, start: float) -> Plan:
        """The ONNX Runtime session (replaying a CUDA graph when that is safe) and the plan around it."""
        outputs = [TensorSpec(name, tuple(var.shape), var.dtype) for name, var in graph.outputs]
        inputs = [TensorSpec(v.name, tuple(v.shape), v.dtype) for v in graph.inputs]
        if config.cuda_graph and (config.expose_vars or not all(is_static(spec.shape) for spec in outputs)
                                  or node_types is None or not node_types <= GRAPH_SAFE_NODES):
            config = replace(config, cuda_graph=False)  # a recorded graph replays fixed shapes into fixed buffers
        session, graph_io = None, None
        if config.cuda_graph:
            session, graph_io = self._cuda_graph_session(onnx_bytes, options, config, inputs, outputs)
        if session is None:
            try:
                session = replace(config, cuda_graph=False).new_session(onnx_bytes, options)
            except Exception as exc:  # onnxruntime raises its own exception types
                raise rejection_error(graph, self.source, exc) from exc
        check_providers(session, config, self.source)
        onnx_outputs = [o.name for o in session.get_outputs()]
        return Plan(graph=graph, session=session, inputs=inputs, outputs=outputs,
                    onnx_outputs=onnx_outputs[:len(outputs)], compile_seconds=time.perf_counter() - start,
                    exposed=onnx_outputs[len(outputs):], keepalive=keepalive, graph_io=graph_io)

    def _cuda_graph_session(self, onnx_bytes: bytes, options: ort.SessionOptions, config: SessionConfig,
                            inputs: list[TensorSpec], outputs: list[TensorSpec]) -> tuple:
        """A session that replays a CUDA graph, recorded here on zeroed inputs, and its IO buffers; (None, None)
        when ONNX Runtime cannot record this model (some node runs off the GPU, or an operator synchronizes):
        the caller then builds an ordinary CUDA session."""
        try:
            session = config.new_session(onnx_bytes, options)
            graph_io = CudaGraphIO(session, inputs, outputs, [o.name for o in session.get_outputs()],
                                   config.device_id)
            for _, mem in graph_io.inputs:
                mem.fill(0, 0, mem.nbytes)
            for _ in range(2):  # ONNX Runtime runs once plainly (to size its memory), then records and replays
                session.run_with_iobinding(graph_io.binding)
        except Exception as exc:  # onnxruntime raises its own exception types
            logger.info("%s: running without a CUDA graph: %s", self.source, exc)
            return None, None
        return session, graph_io

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
            config.new_session(onnx_bytes, options, providers=["CPUExecutionProvider"])
            with open(options.optimized_model_filepath, "rb") as f:
                return f.read()
