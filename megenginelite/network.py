"""``LiteNetwork``: load a model, feed its input tensors, run it, read its output tensors."""

from __future__ import annotations

import io
import logging
import os
import tempfile
import threading
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from .errors import InvalidInputError, LiteArgumentError, LiteError, LiteUsageError
from .graph.input_order import original_input_order
from .graph.ir import shape_before_run
from .runtime.device import check_device, tensorrt_unavailable_reason
from .runtime.memory import DeviceView
from .runtime.device import backend as device_backend
from .model_file import PackedSettings, open_model
from .runtime.onnx_model import OnnxModel
from .runtime.session import CompiledModel, Plan, SessionConfig
from .struct import (LiteAlgoSelectStrategy, LiteConfig, LiteDeviceType, LiteExtraConfig, LiteIO, LiteIOType,
                     LiteLayout, LiteNetworkIO, LiteTensorPhase)
from .tensor import LiteTensor

__all__ = ["LiteNetwork", "LiteAsyncCallback", "LiteStartCallback", "LiteFinishCallback", "wrap_async_callback",
           "start_finish_callback"]

logger = logging.getLogger("megenginelite")

# LITE_CUDA networks replay each run as one CUDA graph where the model allows (static shapes, every node on the
# GPU); MEGENGINELITE_CUDA_GRAPH=0 turns that off (each node then launches its kernels at every forward). On the
# tests' emulated device, =1 runs the same staging path on the CPU provider.
CUDA_GRAPH_ENV = "MEGENGINELITE_CUDA_GRAPH"

# Callback types of the original (ctypes CFUNCTYPEs there; plain callables here).
LiteAsyncCallback = Callable[[], int]
LiteStartCallback = Callable[[dict], int]
LiteFinishCallback = Callable[[dict], int]


def wrap_async_callback(func: Callable[[], int]) -> Callable[[], int]:
    """Adapter kept for compatibility: our callbacks are plain Python callables."""
    return func


def start_finish_callback(func: Callable[[dict], int]) -> Callable[[dict], int]:
    """Adapter kept for compatibility: our callbacks are plain Python callables."""
    return func


def _read_model_bytes(file: Any) -> tuple[bytes, str]:
    """The bytes of a model given as a path, an open binary file, or bytes."""
    if isinstance(file, (str, os.PathLike)):
        path = os.fspath(file)
        with open(path, "rb") as f:
            return f.read(), path
    if isinstance(file, (bytes, bytearray, memoryview)):
        return bytes(file), "<memory>"
    if isinstance(file, io.IOBase) or hasattr(file, "read"):
        data = file.read()
        if not isinstance(data, (bytes, bytearray)):
            raise AssertionError("file must be BufferedReader when open!!")
        return bytes(data), getattr(file, "name", "<file>")
    raise AssertionError("file must be BufferedReader when open!!")


class LiteNetwork:
    """A model and its input/output tensors. Configure, ``load``, set inputs, ``forward``, ``wait``, read outputs."""

    def __init__(self, config: LiteConfig | None = None, io: LiteNetworkIO | None = None):
        if config is not None and not isinstance(config, LiteConfig):
            raise LiteArgumentError(f"expected LiteConfig instance instead of {type(config).__name__}")
        if io is not None and not isinstance(io, LiteNetworkIO):
            raise AttributeError(f"'{type(io).__name__}' object has no attribute 'inputs'")
        self.config = config if config is not None else LiteConfig()
        self.network_io = io if io is not None else LiteNetworkIO()
        self.model_bytes: bytes | None = None
        self._model: CompiledModel | None = None
        self._plan: Plan | None = None
        self._threads = 1
        self._device_id = 0
        self._stream_id = 0
        self._inputs: dict[str, Any] = {}
        self._outputs: dict[str, Any] = {}
        self._input_order: list[str] = []
        self._inplace = False
        self._tensorrt = False
        self._layout_transform = False
        self._extra_config: LiteExtraConfig | None = None
        self._algo_policy: tuple = (LiteAlgoSelectStrategy.LITE_ALGO_HEURISTIC, 0, False)
        self._workspace_limit: int | None = None
        self._async_callback: Callable[[], Any] | None = None
        self._start_callback: Callable[[dict], Any] | None = None
        self._finish_callback: Callable[[dict], Any] | None = None
        self._pending: threading.Thread | None = None
        self._pending_error: BaseException | None = None
        self._profile_path: str | None = None
        self._txt_dump: str | None = None
        self._bin_dump: str | None = None
        self._discrete: dict[str, list] = {}
        self._forward_lock = threading.RLock()

    # ------------------------------------------------------------------ configuration (before load)

    def _require_unloaded(self, what: str) -> None:
        if self._model is not None:
            raise LiteUsageError(f"{what} should be used before model loaded.")

    def _require_loaded(self, what: str) -> None:
        if self._model is None:
            raise LiteUsageError(f"{what} should be used after model loaded.")

    @property
    def threads_number(self) -> int:
        """Threads ONNX Runtime uses for one forward (intra-op); set before ``load``."""
        return self._threads

    @threads_number.setter
    def threads_number(self, nr_threads: int) -> None:
        self._require_unloaded("set_cpu_threads_number")
        self._threads = int(nr_threads) or 1  # the original reads 0 back as 1

    @property
    def device_id(self) -> int:
        return self._device_id

    @device_id.setter
    def device_id(self, device_id: int) -> None:
        self._require_unloaded("set_device_id")
        self._device_id = int(device_id)

    @property
    def stream_id(self) -> int:
        return self._stream_id

    @stream_id.setter
    def stream_id(self, stream_id: int) -> None:
        self._require_unloaded("set_stream_id")
        self._stream_id = int(stream_id)

    # ------------------------------------------------------------------ loading

    def _session_config(self) -> SessionConfig:
        device = int(self.config.device_type)
        if device == LiteDeviceType.LITE_CUDA:
            check_device(self._device_id, "CUDAExecutionProvider")  # "request gpu0 out of valid range [0, 0)"
            if device_backend().emulated:  # the tests' host-emulated device: its memory is host memory (and its
                # sessions replay no graph: the staging copies run only when the variable asks for them)
                return SessionConfig(threads=self._threads, cuda_graph=os.environ.get(CUDA_GRAPH_ENV) == "1")
            tensorrt = self._tensorrt and self._tensorrt_usable()
            gpu = ("TensorrtExecutionProvider",) if tensorrt else ()
            return SessionConfig(threads=self._threads, device_id=self._device_id,
                                 providers=gpu + ("CUDAExecutionProvider", "CPUExecutionProvider"),
                                 cuda_graph=not tensorrt and os.environ.get(CUDA_GRAPH_ENV, "1") != "0")
        return SessionConfig(threads=1 if self._inplace else self._threads)

    def is_cpu_inplace_mode(self) -> bool:
        """Whether ``enable_cpu_inplace_mode`` was called (forward then runs on the calling thread only)."""
        return self._inplace

    def enable_cpu_inplace_mode(self) -> None:
        """Run kernels on the calling thread; on our engine this means one ONNX Runtime thread. Before load."""
        self._require_unloaded("set_cpu_inplace_mode")
        self._inplace = True

    @staticmethod
    def _tensorrt_usable() -> bool:
        """Whether TensorRT can run here; if not, say so once per load and run on the CUDA provider."""
        reason = tensorrt_unavailable_reason()
        if reason:
            logger.warning("use_tensorrt: %s; running on ONNX Runtime's CUDA provider instead", reason)
        return not reason

    def use_tensorrt(self) -> None:
        """Use ONNX Runtime's TensorRT provider (with CUDA as the fallback) for LITE_CUDA. Before load."""
        self._require_unloaded("use_tensorrt")
        self._tensorrt = True

    def extra_configure(self, extra_config: LiteExtraConfig) -> None:
        """Before load: ``disable_configure_by_model_info`` makes load ignore a packed model's IO and config."""
        if self._model is not None:
            raise LiteUsageError("disable_configure_by_model_info should be configured before model loaded.")
        self._extra_config = extra_config

    def share_runtime_memroy(self, src_network: "LiteNetwork") -> None:
        """Accepted for compatibility (the original's spelling); ONNX Runtime manages its own arena. Before load."""
        assert isinstance(src_network, LiteNetwork)
        self._require_unloaded("share_runtime_memory_with")

    def set_network_algo_policy(self, policy: int, shared_batch_size: int = 0,
                                binary_equal_between_batch: bool = False) -> None:
        """Recorded only: ONNX Runtime picks its kernels itself, there is no fast-run search."""
        self._algo_policy = (policy, shared_batch_size, binary_equal_between_batch)

    def set_network_algo_workspace_limit(self, size_limit: int) -> None:
        """Recorded only (no workspace-bound algorithm choice in ONNX Runtime). After load, as the original."""
        self._require_loaded("set_network_algo_policy")
        self._workspace_limit = int(size_limit)

    def enable_global_layout_transform(self) -> None:
        """Accepted: our graphs stay NCHW and ONNX Runtime chooses its own layouts. Before load."""
        self._require_unloaded("enable_global_layout_transform")
        self._layout_transform = True

    def dump_layout_transform_model(self, model_file: str) -> None:
        """Write the loaded model (no layout transform happens on our engine, so it is the model itself)."""
        self._require_loaded("dump_layout_transform_model")
        if not self._layout_transform:
            raise LiteUsageError("dump layout transform model should call enable_global_layout_transform before")
        with open(model_file, "wb") as f:
            f.write(self.model_bytes)

    def get_static_memory_alloc_info(self, log_dir: str = "logs/test") -> None:
        """Write ``static_memory.json`` in ``log_dir``: bytes of weights, inputs, outputs and every computed var."""
        self._require_loaded("get_static_memory_alloc_info")
        graph = self._plan.graph
        if graph is None:
            raise LiteError("get_static_memory_alloc_info needs a MegEngine model, not an ONNX one")
        info = {
            "weights_bytes": int(sum(v.const.nbytes for v in graph.vars.values() if v.is_const)),
            "vars": [{"id": v.id, "name": v.name, "shape": list(v.shape or ()), "dtype": str(v.dtype),
                      "bytes": int(np.prod(v.shape or ()) * v.dtype.np_dtype.itemsize)}
                     for op in graph.ops for v in op.outputs if not v.is_const and v.shape is not None],
        }
        os.makedirs(log_dir, exist_ok=True)
        import json
        with open(os.path.join(log_dir, "static_memory.json"), "w") as f:
            json.dump(info, f, indent=1)

    def load(self, path: Any) -> None:
        """Load a model from a path, an open binary file or bytes; input and output tensors exist afterwards."""
        data, source = _read_model_bytes(path)
        options = self.config.options
        if options.comp_node_seq_record_level == 2 and (options.fake_next_exec or options.var_sanity_check_first_run):
            raise LiteUsageError("both fake_next_exec and var_sanity_check_first_run must be false when "
                                 "comp_node_seq_record_level is 2")
        extra = self._extra_config
        opened = open_model(data, source, self.config, self.network_io,
                            disable_configure=bool(extra and extra.disable_configure_by_model_info))
        self._apply_packed(opened.settings)
        if opened.record is None:
            model = OnnxModel(opened.plain, source, self._session_config())
        else:
            model = CompiledModel(opened.record, self._session_config(), opened.plain)
        self.model_bytes = data
        self._attach(model)

    def _apply_packed(self, settings: PackedSettings | None) -> None:
        """Take a packed model's configuration and its device, threads, inplace and TensorRT settings."""
        if settings is None:
            return
        if settings.config is not None:
            self.config, self.network_io = settings.config, settings.network_io
        if settings.device_id is not None:
            self._device_id = settings.device_id
        if settings.number_threads is not None:
            self._threads = settings.number_threads
        self._inplace = self._inplace or settings.enable_inplace
        self._tensorrt = self._tensorrt or settings.use_tensorrt

    def share_weights_with(self, src_network: "LiteNetwork") -> None:
        """Load the same model as ``src_network``, sharing its weights and compiled sessions (no copy)."""
        if src_network._model is None:
            raise LiteUsageError("shared_weight_with_network should be used after the src network loaded.")
        self.model_bytes = src_network.model_bytes
        self._attach(src_network._model)

    def _attach(self, model: CompiledModel | OnnxModel) -> None:
        """Create the IO tensors of ``model`` for this network (layouts known right away)."""
        plan = model.plan()
        self._model, self._plan = model, plan
        self._inputs, self._outputs = {}, {}
        for spec in plan.inputs:
            self._inputs[spec.name] = self._io_tensor(spec.name, True, LiteLayout(spec.shape, spec.dtype.np_dtype))
        self._input_order = original_input_order([s.name for s in plan.inputs])
        for spec in plan.outputs:
            layout = LiteLayout(shape_before_run(spec.shape), spec.dtype.np_dtype)
            self._outputs[spec.name] = self._io_tensor(spec.name, False, layout)
        for cfg in self.network_io.inputs:
            if cfg.name in self._inputs and cfg.config_layout.ndim:
                impl = self._inputs[cfg.name]
                impl.set_layout(tuple(cfg.config_layout.shapes), np.dtype(cfg.config_layout.dtype))
        self._discrete = {}
        discrete = self.config.discrete_input_name
        if discrete:
            name = discrete.decode() if isinstance(discrete, bytes) else discrete
            if name in self._inputs:
                impl = self._inputs[name]
                shape = impl.shape
                self._discrete[name] = [LiteTensor(layout=LiteLayout((1,) + tuple(shape[1:]), impl.dtype))._impl
                                        for _ in range(shape[0])]

    def _is_host(self, name: str, inputs: bool) -> bool:
        """Whether an IO tensor is in host memory: always on CPU (the original forces is_host there); on CUDA as
        its LiteIO says (default True)."""
        if int(self.config.device_type) != LiteDeviceType.LITE_CUDA:
            return True
        for cfg in self.network_io.inputs if inputs else self.network_io.outputs:
            if cfg.name == name:
                return bool(cfg.is_host)
        return True

    def _io_tensor(self, name: str, inputs: bool, layout: LiteLayout):
        """A new IO tensor impl: CPU on a CPU network; on a CUDA network, as in the original, a LITE_CUDA tensor
        in device memory for ``is_host=False`` and in pinned host memory otherwise."""
        if int(self.config.device_type) != LiteDeviceType.LITE_CUDA:
            return LiteTensor(layout=layout)._impl
        return LiteTensor(layout, LiteDeviceType.LITE_CUDA, self._device_id,
                          is_pinned_host=self._is_host(name, inputs))._impl

    def _io(self, name: str, inputs: bool) -> LiteIO:
        """The key of the callbacks' dicts: a LiteIO describing the tensor as the network holds it (its memory,
        the configured IO type), not the user's config object, as in the original."""
        io_type = LiteIOType.LITE_IO_VALUE
        for cfg in self.network_io.inputs if inputs else self.network_io.outputs:
            if cfg.name == name:
                io_type = cfg.io_type
        return LiteIO(name, is_host=self._is_host(name, inputs), io_type=io_type)

    # ------------------------------------------------------------------ running

    def forward(self) -> None:
        """Run the model on the current contents of the input tensors (returns at once in async mode)."""
        self._require_loaded("forward")
        self.wait()
        if self._async_callback is None:
            self._forward()
            return
        self._pending = threading.Thread(target=self._forward_async, name="megenginelite-forward", daemon=True)
        self._pending.start()

    def _forward_async(self) -> None:
        try:
            self._forward()
        except BaseException as exc:  # handed to wait()
            self._pending_error = exc
            return
        self._call_user(self._async_callback)

    def _call_user(self, callback: Callable, *args) -> None:
        """Call a user callback; like the original, an exception in it is reported, not raised."""
        try:
            callback(*args)
        except Exception:
            logger.exception("exception ignored in a megenginelite callback %r", callback)

    def _gather_inputs(self) -> dict[str, np.ndarray | DeviceView]:
        """Each input as Plan.run binds it: a host array, or device memory by pointer (never copied)."""
        feeds: dict[str, np.ndarray | DeviceView] = {}
        for name, impl in self._inputs.items():
            if name in self._discrete:
                arr = np.concatenate([part.host_array() for part in self._discrete[name]])
            elif impl.is_contiguous:
                arr = impl.binding()
            else:
                raise InvalidInputError(f"input {name!r} is not contiguous")
            feeds[name] = arr
        return feeds

    def _forward(self) -> None:
        # One run at a time per network: forwards from several threads (and a forward while an asynchronous one is
        # running) take turns, so each run reads one consistent set of inputs and writes complete outputs. A
        # re-entrant lock, so a start/finish callback may itself call forward().
        with self._forward_lock:
            self._forward_locked()

    def _forward_locked(self) -> None:
        if self._start_callback is not None:
            self._call_user(self._start_callback, {self._io(n, True): LiteTensor._wrap(t)
                                                   for n, t in self._inputs.items()})
        feeds = self._gather_inputs()
        plan = self._plan
        if any(feeds[s.name].shape != s.shape or feeds[s.name].dtype != s.dtype.np_dtype for s in plan.inputs):
            if self.config.options.const_shape:
                spec = next(s for s in plan.inputs if feeds[s.name].shape != s.shape)
                raise InvalidInputError(f"disallowed shape change: {{{','.join(map(str, spec.shape))}}} vs "
                                        f"{{{','.join(map(str, feeds[spec.name].shape))}}} (options.const_shape is set)")
            plan = self._model.plan({k: v.shape for k, v in feeds.items()}, {k: v.dtype for k, v in feeds.items()})
            self._plan = plan
        outputs: dict[str, np.ndarray | DeviceView] = {}
        user_memory = self.config.options.force_output_use_user_specified_memory
        for spec in plan.outputs:
            impl = self._outputs[spec.name]
            if spec in plan.dynamic_outputs:
                continue  # its length comes with the result: stored below
            if user_memory and not (impl.memory is not None and impl.memory.borrowed):
                raise LiteUsageError(f"assertion `dev_tensor_valid()' failed: output {spec.name!r} has no memory of "
                                     f"its own; with force_output_use_user_specified_memory, give every output "
                                     f"memory with set_data_by_share before forward")
            arr = impl.binding()
            if arr.shape != spec.shape or arr.dtype != spec.dtype.np_dtype:
                impl.set_layout(spec.shape, spec.dtype.np_dtype)
                arr = impl.binding()
            outputs[spec.name] = arr
        if self._profile_path or self._txt_dump or self._bin_dump:
            self._inspected_run(feeds, outputs)
        else:
            plan.run(feeds, outputs)
        for spec in plan.dynamic_outputs:  # e.g. CondTake: the tensor takes this run's length
            impl = self._outputs[spec.name]
            impl.set_layout(outputs[spec.name].shape, spec.dtype.np_dtype)
            impl.store(outputs[spec.name])
        if self._finish_callback is not None:
            self._call_user(self._finish_callback, {self._io(n, False): LiteTensor._wrap(t)
                                                    for n, t in self._outputs.items()})

    def _inspected_run(self, feeds: dict[str, np.ndarray | DeviceView],
                       outputs: dict[str, np.ndarray | DeviceView]) -> None:
        """A run on a fresh session that also profiles and/or exposes every var for the IO dumps."""
        from .runtime import introspect  # profiling and IO dumps only

        dumping = bool(self._txt_dump or self._bin_dump)
        with tempfile.TemporaryDirectory() as tmp:
            config = replace(self._model.config, expose_vars=dumping, cuda_graph=False,
                             profile_prefix=os.path.join(tmp, "ort") if self._profile_path else None)
            plan = self._model.compile({k: v.shape for k, v in feeds.items()}, {k: v.dtype for k, v in feeds.items()},
                                       config)
            exposed = plan.run(feeds, outputs)
            if self._profile_path:
                introspect.write_profile(self._profile_path, plan.graph, plan.session.end_profiling())
        if dumping:
            host_feeds = {k: v.to_numpy() if isinstance(v, DeviceView) else v for k, v in feeds.items()}
            values = introspect.var_values(plan.graph, exposed, host_feeds)
            if self._txt_dump:
                introspect.write_txt_dump(self._txt_dump, plan.graph, values)
            if self._bin_dump:
                introspect.write_bin_dump(self._bin_dump, plan.graph, values)

    def wait(self) -> None:
        """Block until the last ``forward`` has finished; re-raises an error of an asynchronous forward."""
        self._require_loaded("wait")
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.join()
        error, self._pending_error = self._pending_error, None
        if error is not None:
            raise error

    # ------------------------------------------------------------------ callbacks and inspection

    def async_with_callback(self, async_callback: Callable[[], Any]) -> None:
        """Make ``forward`` return at once; ``async_callback()`` runs on a worker thread when the run is done."""
        self._async_callback = async_callback

    def set_start_callback(self, start_callback: Callable[[dict], Any]) -> None:
        """Call ``start_callback({LiteIO: LiteTensor})`` with the inputs before every forward."""
        self._start_callback = start_callback

    def set_finish_callback(self, finish_callback: Callable[[dict], Any]) -> None:
        """Call ``finish_callback({LiteIO: LiteTensor})`` with the outputs after every forward."""
        self._finish_callback = finish_callback

    def enable_profile_performance(self, profile_file: str) -> None:
        """Profile every following forward: a MegEngine-style JSON at ``profile_file`` (per-operator times,
        mapped back to the MegBrain operators) and ONNX Runtime's Chrome trace at ``<stem>.trace.json``."""
        self._profile_path = os.fspath(profile_file)

    def io_txt_dump(self, txt_file: str) -> None:
        """After every forward, append each operator's inputs and outputs (statistics and first values) as text."""
        self._txt_dump = os.fspath(txt_file)

    def io_bin_dump(self, bin_dir: str) -> None:
        """After every forward, write each operator output to ``bin_dir/<6-hex-digit var id>`` (header + raw data)."""
        self._bin_dump = os.fspath(bin_dir)

    # ------------------------------------------------------------------ tensors and names

    def get_io_tensor(self, name: str | bytes, phase: int = LiteTensorPhase.LITE_IO) -> LiteTensor:
        """The input or output tensor called ``name`` (a new wrapper over the same memory at each call)."""
        self._require_loaded("get_io_tensor")
        if isinstance(name, bytes):
            name = name.decode()
        if phase in (LiteTensorPhase.LITE_IO, LiteTensorPhase.LITE_INPUT) and name in self._inputs:
            return LiteTensor._wrap(self._inputs[name])
        if phase in (LiteTensorPhase.LITE_IO, LiteTensorPhase.LITE_OUTPUT) and name in self._outputs:
            return LiteTensor._wrap(self._outputs[name])
        raise InvalidInputError(
            f"tensor name must be {name} input tensor name or the registered output tensor name if NetworkIO is "
            f"set, if NetworkIO is not set, the output tensor is all the network output tensor, or the output "
            f"tensor is only the registered tensor. (inputs: {self._input_order}, outputs: {list(self._outputs)})")

    def get_all_input_name(self) -> list[str] | None:
        """Input names in the original library's order; None before ``load``."""
        return list(self._input_order) if self._model is not None else None

    def get_all_output_name(self) -> list[str] | None:
        """Output names: those named in the LiteNetworkIO config first (in its order), then the rest in the
        model's order, as the original lists them; None before ``load``."""
        if self._model is None:
            return None
        configured = [io.name for io in self.network_io.outputs if io.name in self._outputs]
        return list(dict.fromkeys(configured + list(self._outputs)))

    def get_input_name(self, index: int) -> str:
        names = self.get_all_input_name() or []
        if not 0 <= index < len(names):
            raise LiteUsageError("The input tensor index is large than the total inputs number.")
        return names[index]

    def get_output_name(self, index: int) -> str:
        names = self.get_all_output_name() or []
        if not 0 <= index < len(names):
            raise LiteUsageError("The output tensor index is large than the total outputs number.")
        return names[index]

    def get_discrete_tensor(self, name: str | bytes, n_idx: int,
                            phase: int = LiteTensorPhase.LITE_INPUT) -> LiteTensor:
        """Batch item ``n_idx`` of the input named by ``config.discrete_input_name``; forward concatenates them."""
        self._require_loaded("get_discrete_tensor")
        if isinstance(name, bytes):
            name = name.decode()
        parts = self._discrete.get(name)
        if parts is None or phase != LiteTensorPhase.LITE_INPUT:
            raise InvalidInputError(f"tensor name must be {name} input tensor name.")
        if not 0 <= n_idx < len(parts):
            raise InvalidInputError(f"n_idx should be less than {len(parts)}")
        return LiteTensor._wrap(parts[n_idx])

    def __repr__(self) -> str:
        return repr({"config": self.config, "IOs": self.network_io})
