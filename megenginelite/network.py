"""``LiteNetwork``: load a model, feed its input tensors, run it, read its output tensors."""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from .errors import InvalidInputError, LiteArgumentError, LiteUsageError
from .format import read_model
from .graph.input_order import original_input_order
from .runtime.session import CompiledModel, Plan, SessionConfig
from .struct import LiteConfig, LiteDeviceType, LiteLayout, LiteNetworkIO, LiteTensorPhase
from .tensor import LiteTensor

__all__ = ["LiteNetwork"]


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
        self._threads = int(nr_threads)

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
            return SessionConfig(threads=self._threads,
                                 providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
        return SessionConfig(threads=self._threads)

    def load(self, path: Any) -> None:
        """Load a model from a path, an open binary file or bytes; input and output tensors exist afterwards."""
        data, source = _read_model_bytes(path)
        model = CompiledModel(read_model(data, source), self._session_config())
        plan = model.plan()
        self.model_bytes = data
        self._model, self._plan = model, plan
        self._inputs, self._outputs = {}, {}
        for spec in plan.inputs:
            tensor = LiteTensor(layout=LiteLayout(spec.shape, spec.dtype.np_dtype))
            self._inputs[spec.name] = tensor._impl
        self._input_order = original_input_order([s.name for s in plan.inputs])
        for spec in plan.outputs:
            tensor = LiteTensor(layout=LiteLayout(spec.shape, spec.dtype.np_dtype))
            self._outputs[spec.name] = tensor._impl
        for cfg in self.network_io.inputs:
            if cfg.name in self._inputs and cfg.config_layout.ndim:
                impl = self._inputs[cfg.name]
                impl.set_layout(tuple(cfg.config_layout.shapes), np.dtype(cfg.config_layout.dtype))

    # ------------------------------------------------------------------ running

    def forward(self) -> None:
        """Run the model on the current contents of the input tensors."""
        self._require_loaded("forward")
        feeds: dict[str, np.ndarray] = {}
        for name, impl in self._inputs.items():
            arr = impl.array()
            if not arr.flags.c_contiguous:
                raise InvalidInputError(f"input {name!r} is not contiguous")
            feeds[name] = arr
        plan = self._plan
        if any(feeds[s.name].shape != s.shape or feeds[s.name].dtype != s.dtype.np_dtype for s in plan.inputs):
            plan = self._model.plan({k: v.shape for k, v in feeds.items()}, {k: v.dtype for k, v in feeds.items()})
            self._plan = plan
        outputs: dict[str, np.ndarray] = {}
        for spec in plan.outputs:
            impl = self._outputs[spec.name]
            arr = impl.array()
            if arr.shape != spec.shape or arr.dtype != spec.dtype.np_dtype:
                impl.set_layout(spec.shape, spec.dtype.np_dtype)
                arr = impl.array()
            outputs[spec.name] = arr
        plan.run(feeds, outputs)

    def wait(self) -> None:
        """Block until the last ``forward`` has finished (forward is synchronous on the CPU)."""

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
        """Output names in the model's order; None before ``load``."""
        return list(self._outputs) if self._model is not None else None

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

    def __repr__(self) -> str:
        return repr({"config": self.config, "IOs": self.network_io})
