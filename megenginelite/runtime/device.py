"""The device backends LITE_CUDA memory runs on, behind one small interface (the memory objects themselves,
``DeviceMemory`` / ``DeviceView`` / pinned host buffers, are in ``runtime/memory.py``).

* ``DeviceBackend`` - what the tensor code needs from a device: ``malloc`` / ``free``, the three ``memcpy``
  directions, ``memset``, ``device_count`` and ``synchronize``.  Pointers are plain ints.
* ``CudaBackend`` - the CUDA runtime (``libcudart``) through ctypes.  Found in the ``nvidia/cuda_runtime/lib``
  folder that onnxruntime-gpu's pip CUDA dependencies install, under ``CUDA_HOME`` / ``CUDA_PATH``, or by the
  system loader.  Loaded on first use; a missing library, driver or device is a ``DeviceError`` saying which.
* ``HostEmulatedBackend`` - the same protocol on host memory (numpy buffers, ``ctypes.memmove``).  It checks that
  every pointer is used in the right direction (a host pointer given where a device pointer is expected is an
  error) and counts the calls, so the test suite runs the device code paths without a GPU.  ONNX Runtime is
  then given these "device" pointers as CPU memory.
* ``DeviceMemory`` - one allocation (or a borrowed device pointer): the memory interface ``TensorImpl`` uses
  (``nbytes``, ``ptr()``, ``is_host`` False) plus explicit ``read`` / ``write`` / ``fill``; it has no numpy buffer.
* ``DeviceView`` - what the network hands to ``Plan.run`` for a tensor in device memory (pointer, shape, dtype,
  where ONNX Runtime should bind it).

``backend()`` is the backend LITE_CUDA tensors use: ``CudaBackend`` unless the environment variable
``MEGENGINELITE_EMULATE_CUDA=1`` was set when it was first asked for, or ``use_backend`` chose another.
"""

from __future__ import annotations

import bisect
import collections
import ctypes
import os
import sys
import threading
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import DeviceError

__all__ = ["DeviceBackend", "CudaBackend", "HostEmulatedBackend", "backend", "use_backend", "device_count",
           "check_device", "tensorrt_unavailable_reason", "EMULATE_ENV"]

EMULATE_ENV = "MEGENGINELITE_EMULATE_CUDA"


@runtime_checkable
class DeviceBackend(Protocol):
    """The device operations LITE_CUDA tensors need.  ``device`` is the device id an operation runs on."""

    #: device type ONNX Runtime binds this backend's pointers as: "cuda" for real device memory, "cpu" for emulated
    ort_device: str
    #: True when the "device" is host memory (the network then runs on ONNX Runtime's CPU provider)
    emulated: bool

    def malloc(self, nbytes: int, device: int = 0) -> int: ...

    def free(self, ptr: int, device: int = 0) -> None: ...

    def memcpy_h2d(self, dst_ptr: int, src_host_ptr: int, n: int, device: int = 0) -> None: ...

    def memcpy_d2h(self, dst_host_ptr: int, src_ptr: int, n: int, device: int = 0) -> None: ...

    def memcpy_d2d(self, dst_ptr: int, src_ptr: int, n: int, device: int = 0) -> None: ...

    def memset(self, ptr: int, value: int, n: int, device: int = 0) -> None: ...

    def device_count(self) -> int: ...

    def synchronize(self, device: int = 0) -> None: ...

    def unavailable_reason(self) -> str: ...


# ---------------------------------------------------------------------------------------------------------------
# CUDA runtime through ctypes

_H2D, _D2H, _D2D = 1, 2, 3  # cudaMemcpyKind
_ERR_INSUFFICIENT_DRIVER = 35
_ERR_NO_DEVICE = 100
_ERR_DRIVER_STUB = 34  # cudaErrorStubLibrary: only the driver stub is installed

_LIB_NAMES = {
    "win32": ("cudart64_12.dll", "cudart64_110.dll"),
}.get(sys.platform, ("libcudart.so.12", "libcudart.so.13", "libcudart.so.11.0", "libcudart.so"))


def _library_dirs() -> list[str]:
    """Folders that may hold the CUDA runtime, most specific first (pip's nvidia wheels, then CUDA installs)."""
    roots: list[str] = []
    try:
        import site

        roots += site.getsitepackages() + [site.getusersitepackages()]
    except Exception:  # pragma: no cover - virtualenv builds without site.getsitepackages
        pass
    roots += [p for p in sys.path if p]
    dirs = []
    sub = "bin" if sys.platform == "win32" else "lib"
    for root in roots:  # CUDA 12 wheels: nvidia/cuda_runtime/lib; CUDA 13 wheels: nvidia/cu13/lib
        dirs += [os.path.join(root, "nvidia", "cuda_runtime", sub), os.path.join(root, "nvidia", "cu13", sub)]
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            dirs += [os.path.join(os.environ[var], "lib64"), os.path.join(os.environ[var], "lib"),
                     os.path.join(os.environ[var], "bin")]
    dirs.append("/usr/local/cuda/lib64")
    return [d for d in dict.fromkeys(dirs) if os.path.isdir(d)]


class CudaBackend:
    """Device memory through the CUDA runtime API (``cudaMalloc``, ``cudaMemcpy``, ...), loaded with ctypes.

    Args:
        library: a path (or name) of the CUDA runtime library to use instead of searching for one.
    """

    ort_device = "cuda"
    emulated = False

    def __init__(self, library: str | None = None) -> None:
        self._library = library
        self._lock = threading.Lock()
        self._lib: Any = None
        self._load_error: str | None = None
        self._count: int | None = None
        self._count_error: str | None = None

    # -- loading ---------------------------------------------------------------------------------------------

    def _candidates(self) -> list[str]:
        if self._library:
            return [self._library]
        paths = [os.path.join(d, name) for d in _library_dirs() for name in _LIB_NAMES]
        paths = [p for p in paths if os.path.exists(p)]
        import ctypes.util  # runs a subprocess module import; only when looking for CUDA

        found = ctypes.util.find_library("cudart")
        return paths + list(_LIB_NAMES) + ([found] if found else [])

    def _load(self) -> Any:
        with self._lock:
            if self._lib is not None:
                return self._lib
            if self._load_error is not None:
                raise DeviceError(self._load_error)
            tried = []
            for candidate in dict.fromkeys(self._candidates()):
                try:
                    lib = ctypes.CDLL(candidate)
                    lib.cudaMalloc  # noqa: B018 - a library without the runtime API is not the runtime
                except (OSError, AttributeError):
                    tried.append(candidate)
                    continue
                self._declare(lib)
                self._lib = lib
                return lib
            self._load_error = (f"the CUDA runtime library was not found (tried {', '.join(tried)}); install it "
                                f"with the CUDA toolkit, or from pip with onnxruntime-gpu's CUDA dependencies "
                                f"(pip install 'onnxruntime-gpu[cuda,cudnn]', which provides "
                                f"nvidia/cuda_runtime/lib)")
            raise DeviceError(self._load_error)

    @staticmethod
    def _declare(lib: Any) -> None:
        vp, sz, i = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
        signatures = {
            "cudaMalloc": [ctypes.POINTER(vp), sz],
            "cudaFree": [vp],
            "cudaMemcpy": [vp, vp, sz, i],
            "cudaMemset": [vp, i, sz],
            "cudaGetDeviceCount": [ctypes.POINTER(i)],
            "cudaSetDevice": [i],
            "cudaDeviceSynchronize": [],
            "cudaHostAlloc": [ctypes.POINTER(vp), sz, ctypes.c_uint],
            "cudaFreeHost": [vp],
        }
        for name, argtypes in signatures.items():
            fn = getattr(lib, name)
            fn.argtypes = argtypes
            fn.restype = i
        for name in ("cudaGetErrorString", "cudaGetErrorName"):
            fn = getattr(lib, name)
            fn.argtypes = [i]
            fn.restype = ctypes.c_char_p

    def _error_text(self, code: int) -> str:
        lib = self._lib
        try:
            name = lib.cudaGetErrorName(code).decode()
            text = lib.cudaGetErrorString(code).decode()
        except Exception:  # pragma: no cover - a broken runtime
            return f"CUDA error {code}"
        return f"{text} ({name})"

    def _check(self, code: int, what: str) -> None:
        if code != 0:
            raise DeviceError(f"{what} failed: {self._error_text(code)}")

    # -- device queries ----------------------------------------------------------------------------------------

    def device_count(self) -> int:
        """Number of CUDA devices; 0 (never an exception) when the runtime, the driver or a device is missing."""
        if self._count is None:
            try:
                lib = self._load()
            except DeviceError as exc:
                self._count, self._count_error = 0, str(exc)
                return 0
            count = ctypes.c_int(0)
            code = lib.cudaGetDeviceCount(ctypes.byref(count))
            if code == 0:
                self._count = int(count.value)
                self._count_error = None if self._count else "no CUDA device was found"
            else:
                self._count = 0
                if code in (_ERR_INSUFFICIENT_DRIVER, _ERR_DRIVER_STUB):
                    reason = "the NVIDIA driver is missing or older than the CUDA runtime"
                elif code == _ERR_NO_DEVICE:
                    reason = "no CUDA device was found"
                else:
                    reason = "the CUDA runtime cannot list devices"
                self._count_error = f"{reason}: cudaGetDeviceCount returned {self._error_text(code)}"
        return self._count

    def unavailable_reason(self) -> str:
        """Why ``device_count()`` is 0 ("" when devices are there)."""
        self.device_count()
        return self._count_error or ""

    def _lib_for(self, device: int) -> Any:
        lib = self._load()
        self._check(lib.cudaSetDevice(int(device)), f"cudaSetDevice({device})")
        return lib

    # -- memory ------------------------------------------------------------------------------------------------

    def malloc(self, nbytes: int, device: int = 0) -> int:
        lib = self._lib_for(device)
        ptr = ctypes.c_void_p()
        self._check(lib.cudaMalloc(ctypes.byref(ptr), int(nbytes)), f"cudaMalloc({nbytes} bytes on gpu{device})")
        return int(ptr.value or 0)

    def free(self, ptr: int, device: int = 0) -> None:
        if ptr:
            self._check(self._lib_for(device).cudaFree(ptr), "cudaFree")

    def _memcpy(self, dst: int, src: int, n: int, kind: int, device: int) -> None:
        if n:
            self._check(self._lib_for(device).cudaMemcpy(dst, src, int(n), kind), f"cudaMemcpy(kind {kind})")

    def memcpy_h2d(self, dst_ptr: int, src_host_ptr: int, n: int, device: int = 0) -> None:
        self._memcpy(dst_ptr, src_host_ptr, n, _H2D, device)

    def memcpy_d2h(self, dst_host_ptr: int, src_ptr: int, n: int, device: int = 0) -> None:
        self._memcpy(dst_host_ptr, src_ptr, n, _D2H, device)

    def memcpy_d2d(self, dst_ptr: int, src_ptr: int, n: int, device: int = 0) -> None:
        self._memcpy(dst_ptr, src_ptr, n, _D2D, device)

    def memset(self, ptr: int, value: int, n: int, device: int = 0) -> None:
        if n:
            self._check(self._lib_for(device).cudaMemset(ptr, int(value), int(n)), "cudaMemset")

    def synchronize(self, device: int = 0) -> None:
        self._check(self._lib_for(device).cudaDeviceSynchronize(), "cudaDeviceSynchronize")

    def host_alloc(self, nbytes: int) -> int:
        """Page-locked host memory (``cudaHostAlloc``, portable): the GPU copies it by DMA, without staging."""
        lib = self._load()
        ptr = ctypes.c_void_p()
        self._check(lib.cudaHostAlloc(ctypes.byref(ptr), int(nbytes), 1), f"cudaHostAlloc({nbytes} bytes)")
        return int(ptr.value or 0)

    def host_free(self, ptr: int) -> None:
        if ptr:
            self._check(self._load().cudaFreeHost(ptr), "cudaFreeHost")


# ---------------------------------------------------------------------------------------------------------------
# host emulation


class HostEmulatedBackend:
    """The device protocol on host memory, for tests: allocations are numpy buffers kept alive in a dict.

    Every call checks its pointers the way a device would see them: device pointers must lie inside a live
    allocation, host pointers must not (so a host/device mix-up fails loudly instead of working by accident).
    ``calls`` counts the operations (``"malloc"``, ``"memcpy_h2d"``, ...).  New allocations are filled with
    ``poison`` (0xFF: NaN for floats), since device memory is not zeroed either.
    """

    ort_device = "cpu"
    emulated = True
    _ALIGN = 256  # cudaMalloc's alignment

    def __init__(self, devices: int = 1, poison: int = 0xFF) -> None:
        self.devices = int(devices)
        self.poison = int(poison)
        self.calls: collections.Counter[str] = collections.Counter()
        self._blocks: dict[int, tuple[np.ndarray, int, int]] = {}  # start -> (buffer, nbytes, device)
        self._starts: list[int] = []
        self._lock = threading.Lock()

    @property
    def allocated(self) -> int:
        """Bytes currently allocated."""
        return sum(n for _, n, _ in self._blocks.values())

    @property
    def live_allocations(self) -> int:
        return len(self._blocks)

    def _device(self, device: int) -> None:
        if not 0 <= int(device) < self.devices:
            raise DeviceError(f"emulated device: invalid device ordinal {device} (devices: {self.devices})")

    def _block(self, ptr: int, n: int) -> tuple[int, int, int] | None:
        """(start, nbytes, device) of the live allocation holding [ptr, ptr + n), or None."""
        i = bisect.bisect_right(self._starts, ptr) - 1
        if i < 0:
            return None
        start = self._starts[i]
        _, size, device = self._blocks[start]
        if ptr + max(n, 1) <= start + max(size, 1):
            return start, size, device
        return None

    def _device_range(self, ptr: int, n: int, what: str) -> None:
        with self._lock:
            if self._block(ptr, n) is None:
                raise DeviceError(f"emulated device: {what} 0x{ptr:x} (+{n} bytes) is not inside a device "
                                  f"allocation (invalid argument)")

    def _host_range(self, ptr: int, n: int, what: str) -> None:
        with self._lock:
            if not ptr or self._block(ptr, 1) is not None or self._block(ptr + n - 1, 1) is not None:
                raise DeviceError(f"emulated device: {what} 0x{ptr:x} is not host memory (it is null or a "
                                  f"device allocation)")

    def malloc(self, nbytes: int, device: int = 0) -> int:
        self._device(device)
        self.calls["malloc"] += 1
        raw = np.full(int(nbytes) + self._ALIGN, self.poison, dtype=np.uint8)
        base = raw.__array_interface__["data"][0]
        ptr = base + (-base) % self._ALIGN
        with self._lock:
            self._blocks[ptr] = (raw, int(nbytes), int(device))
            bisect.insort(self._starts, ptr)
        return ptr

    def free(self, ptr: int, device: int = 0) -> None:
        if not ptr:
            return
        self.calls["free"] += 1
        with self._lock:
            if ptr not in self._blocks:
                raise DeviceError(f"emulated device: free of 0x{ptr:x}, which is not an allocation")
            del self._blocks[ptr]
            self._starts.remove(ptr)

    def memcpy_h2d(self, dst_ptr: int, src_host_ptr: int, n: int, device: int = 0) -> None:
        if n:
            self.calls["memcpy_h2d"] += 1
            self._device_range(dst_ptr, n, "destination")
            self._host_range(src_host_ptr, n, "source")
            ctypes.memmove(dst_ptr, src_host_ptr, n)

    def memcpy_d2h(self, dst_host_ptr: int, src_ptr: int, n: int, device: int = 0) -> None:
        if n:
            self.calls["memcpy_d2h"] += 1
            self._host_range(dst_host_ptr, n, "destination")
            self._device_range(src_ptr, n, "source")
            ctypes.memmove(dst_host_ptr, src_ptr, n)

    def memcpy_d2d(self, dst_ptr: int, src_ptr: int, n: int, device: int = 0) -> None:
        if n:
            self.calls["memcpy_d2d"] += 1
            self._device_range(dst_ptr, n, "destination")
            self._device_range(src_ptr, n, "source")
            ctypes.memmove(dst_ptr, src_ptr, n)

    def memset(self, ptr: int, value: int, n: int, device: int = 0) -> None:
        if n:
            self.calls["memset"] += 1
            self._device_range(ptr, n, "destination")
            ctypes.memset(ptr, int(value), n)

    def device_count(self) -> int:
        return self.devices

    def unavailable_reason(self) -> str:
        return "" if self.devices else "the emulated backend has no devices"

    def synchronize(self, device: int = 0) -> None:
        self.calls["synchronize"] += 1


# ---------------------------------------------------------------------------------------------------------------
# the active backend

_active: DeviceBackend | None = None
_active_lock = threading.Lock()


def backend() -> DeviceBackend:
    """The backend new LITE_CUDA memory comes from (chosen once: ``MEGENGINELITE_EMULATE_CUDA=1`` -> emulated)."""
    global _active
    if _active is None:
        with _active_lock:
            if _active is None:
                emulate = os.environ.get(EMULATE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
                _active = HostEmulatedBackend() if emulate else CudaBackend()
    return _active


def use_backend(new: DeviceBackend | None) -> DeviceBackend | None:
    """Make ``new`` the backend of LITE_CUDA tensors and networks from now on (None: choose again as at start).

    Returns the previous backend (None if none was chosen yet), so a caller can restore it.  Memory already
    allocated stays with the backend that allocated it.
    """
    global _active
    if new is not None and not isinstance(new, DeviceBackend):
        raise TypeError(f"use_backend needs a DeviceBackend, got {type(new).__name__}")
    with _active_lock:
        previous, _active = _active, new
    return previous


def device_count() -> int:
    """Devices of the active backend; 0 (no exception) when it cannot be used."""
    try:
        return int(backend().device_count())
    except Exception:
        return 0


def check_device(device_id: int, provider: str | None = None) -> None:
    """DeviceError "request gpuN out of valid range [0, count)" unless ``device_id`` exists, saying what is missing:
    the CUDA runtime, the driver or a device, and (when ``provider`` is given: a network) that ONNX Runtime
    provider."""
    count = device_count()
    if 0 <= device_id < count:
        return
    be = backend()
    reasons = [be.unavailable_reason() or f"there are {count} CUDA devices here"]
    if provider and not be.emulated:
        import onnxruntime

        if provider not in onnxruntime.get_available_providers():
            reasons.append(f"ONNX Runtime provider {provider} is not available (available: "
                           f"{onnxruntime.get_available_providers()})")
    raise DeviceError(f"request gpu{device_id} out of valid range [0, {count}): {'; '.join(reasons)}. LITE_CUDA "
                      f"needs a CUDA device, its driver and runtime, and onnxruntime-gpu to run networks (pip "
                      f"install 'megenginelite[cuda]'); use LITE_CPU (or is_pinned_host=True) tensors instead")


def tensorrt_unavailable_reason() -> str:
    """Why ONNX Runtime's TensorRT provider cannot run here ("" when TensorRT's library loads).

    onnxruntime-gpu lists the provider whether or not TensorRT is installed, and when it is not, ONNX Runtime's
    Python wrapper falls back to CUDA by itself, printing to stdout and dropping our provider options; so we look
    for the library first and choose the fallback ourselves."""
    import onnxruntime

    if "TensorrtExecutionProvider" not in onnxruntime.get_available_providers():
        return "this onnxruntime has no TensorRT provider"
    names = ("nvinfer.dll", "nvinfer_10.dll") if sys.platform == "win32" else ("libnvinfer.so.10", "libnvinfer.so")
    for name in names:
        try:
            ctypes.CDLL(name)
            return ""
        except OSError:
            continue
    return f"the TensorRT library is not installed ({' or '.join(names)} not found)"
