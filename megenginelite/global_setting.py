"""``LiteGlobal`` (process-wide settings) and ``get_model_io_info``."""

from __future__ import annotations

import ctypes
import os
from typing import Any

from . import crypto
from .crypto import DecryptionFunc as LiteDecryptionFunc
from .crypto import decryption_func
from .errors import DeviceError, LiteError
from .format import read_model
from .graph import build_graph, infer_graph
from .graph.input_order import original_input_order
from .graph.ir import shape_before_run
from .runtime import cache
from .struct import LiteBackend, LiteConfig, LiteDeviceType, LiteIO, LiteLayout, LiteNetworkIO
from .tensor import cuda_device_count

__all__ = ["LiteGlobal", "get_model_io_info", "decryption_func", "LiteDecryptionFunc"]


class LiteGlobal:
    """Settings shared by every network of the process."""

    _tensorrt_cache: str | None = None

    @staticmethod
    def register_decryption_and_key(decryption_name: str, decryption_func: Any, key: Any) -> None:
        """Register a model decryption function ``func(data, key) -> bytes`` under a name, with its key."""
        crypto.register_decryption(decryption_name, decryption_func, key)

    @staticmethod
    def update_decryption_key(decryption_name: str, key: Any) -> None:
        """Replace the key of a registered (or built-in) decryption method."""
        crypto.update_decryption_key(decryption_name, key)

    @staticmethod
    def set_loader_lib_path(path: str) -> None:
        """The original loads custom C operator libraries; we cannot run native operators."""
        if not os.path.exists(path):
            raise LiteError(f"failed to open c opr lib {path}: No such file or directory")
        raise LiteError(f"custom operator library {path}: native MegEngine operator libraries are not supported")

    @staticmethod
    def set_persistent_cache(path: str, always_sync: bool = False) -> None:
        """Keep compiled models in the cache file ``path`` (read now if it exists) so that later loads of the
        same model with the same input shapes skip lowering and most graph optimization."""
        cache.set_active_cache(cache.PersistentCache(path, always_sync))

    @staticmethod
    def dump_persistent_cache(path: str) -> None:
        """Write the persistent cache to ``path`` (an empty cache when none was set)."""
        (cache.active_cache() or cache.PersistentCache(os.devnull)).dump(path)

    @staticmethod
    def set_tensorrt_cache(path: str) -> None:
        """Where the TensorRT provider keeps its engine cache."""
        LiteGlobal._tensorrt_cache = path

    @staticmethod
    def dump_tensorrt_cache() -> None:
        """TensorRT engines are written by ONNX Runtime as they are built; nothing is pending."""

    @staticmethod
    def get_device_count(device_type: int) -> int:
        """Number of devices of a type: CPU cores for LITE_CPU / LITE_DEVICE_DEFAULT, GPUs for LITE_CUDA."""
        device_type = int(device_type)
        if device_type in (LiteDeviceType.LITE_CPU, LiteDeviceType.LITE_DEVICE_DEFAULT):
            return os.cpu_count() or 1
        if device_type == LiteDeviceType.LITE_CUDA:
            return cuda_device_count()
        raise DeviceError(f"lite unsupported compnode type: enum value: {device_type}.")

    @staticmethod
    def try_coalesce_all_free_memory() -> None:
        """No-op: memory is managed by numpy and ONNX Runtime."""

    @staticmethod
    def register_memory_pair(vir_ptr: Any, phy_ptr: Any, length: int, device: int,
                             backend: int = LiteBackend.LITE_DEFAULT) -> None:
        assert isinstance(vir_ptr, ctypes.c_void_p) and isinstance(phy_ptr, ctypes.c_void_p), \
            "clear memory pair only accept c_void_p type."
        raise LiteError("register_memory_pair is not implement yet!")

    @staticmethod
    def clear_memory_pair(vir_ptr: Any, phy_ptr: Any, device: int, backend: int = LiteBackend.LITE_DEFAULT) -> None:
        assert isinstance(vir_ptr, ctypes.c_void_p) and isinstance(phy_ptr, ctypes.c_void_p), \
            "clear memory pair only accept c_void_p type."
        raise LiteError("clear_memory_pair is not implement yet!")

    @staticmethod
    def lookup_physic_ptr(vir_ptr: Any, device: int, backend: int = LiteBackend.LITE_DEFAULT) -> None:
        assert isinstance(vir_ptr, ctypes.c_void_p), "lookup physic ptr only accept c_void_p type."
        raise LiteError("lookup_physic_ptr is not implement yet!")


def get_model_io_info(model_path: str, config: LiteConfig | None = None) -> LiteNetworkIO:
    """The inputs and outputs a model declares (names, layouts), read without building a session."""
    try:
        with open(model_path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise LiteError(f"failed to open {model_path}: {exc.strerror}") from exc
    graph = build_graph(read_model(data, model_path))
    infer_graph(graph)
    by_name = {v.name: v for v in graph.inputs}
    io = LiteNetworkIO()
    for name in original_input_order(graph.input_names):
        var = by_name[name]
        io.add_input(LiteIO(name, layout=LiteLayout(var.shape, var.dtype.np_dtype)))
    for name, var in graph.outputs:
        io.add_output(LiteIO(name, layout=LiteLayout(shape_before_run(var.shape), var.dtype.np_dtype)))
    return io
