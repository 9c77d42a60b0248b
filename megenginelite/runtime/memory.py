"""The engine's memory model: the memory objects behind tensors and the shared tensor state.

* ``HostMemory`` - a flat ``uint8`` numpy buffer, either allocated here or borrowed from the caller (a numpy array
  or a raw address).  ``DeviceMemory`` has the same small interface (``nbytes``, ``ptr()``, ``is_host``) for
  LITE_CUDA tensors that are not pinned, but no numpy buffer: host code reaches it only through explicit copies
  (``store``, ``host_array``, ``load_from``), which use the active device backend (``runtime/device.py``: the CUDA
  runtime, or the host emulation the tests select).  Pinned host buffers and ``copy_bytes`` live here too.
* ``DeviceView`` - what the network hands to ``Plan.run`` for a tensor in device memory (pointer, shape, dtype,
  where ONNX Runtime should bind it).
* ``TensorImpl`` - the shared state of a tensor: layout, device, memory, byte offset and strides (for slices), and a
  ``version`` counter bumped whenever the memory object is replaced.  Several ``LiteTensor`` wrappers
  (``megenginelite/tensor.py``, the public API) may point to one impl, as several Python objects of the original
  point to one C tensor.

It speaks the Lite types (``LiteLayout``, ``LiteDeviceType``: plain data from ``struct.py``).  Memory is allocated
lazily, on first need.
"""

from __future__ import annotations

import ctypes
import math
import operator
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence, Union

import numpy as np

from ..errors import DeviceError, LiteArgumentError, LiteError, LiteMemoryError
from ..struct import (_LITE_TO_NP, _MGB_DTYPE_NAMES, MAX_DIM, LiteDataType, LiteDeviceType, LiteLayout, _check_dims,
                      to_lite_dtype)
from . import device as _device
from .device import CudaBackend, DeviceBackend, backend

_ALIGN = 64



class _PinnedBlock:
    """Page-locked host memory as numpy sees it (``__array_interface__``); freed when the last view goes."""

    def __init__(self, be: "CudaBackend", nbytes: int) -> None:
        ptr = be.host_alloc(nbytes)
        self.__array_interface__ = {"shape": (nbytes,), "typestr": "|u1", "data": (ptr, False), "version": 3}
        weakref.finalize(self, _free_quietly, be.host_free, ptr).atexit = False  # as DeviceMemory's, below


def pinned_host_buffer(nbytes: int) -> np.ndarray | None:
    """``nbytes`` of zeroed page-locked host memory as a uint8 array, or None when the active backend is not the
    CUDA runtime or cannot give it (the caller then uses ordinary host memory, which works the same, slower)."""
    be = backend()
    if not isinstance(be, CudaBackend) or not nbytes or be.device_count() == 0:
        return None
    try:
        buffer = np.asarray(_PinnedBlock(be, nbytes))
    except DeviceError:
        return None
    buffer.fill(0)
    return buffer


class DeviceMemory:
    """A block of device memory: the memory interface of ``TensorImpl`` (``nbytes``, ``ptr()``, ``is_host``).

    There is no numpy ``buffer``: host code reads and writes it only through ``read`` / ``write`` (copies).
    Memory from ``allocate`` is freed when the object is collected; borrowed memory (``from_address``) is not.
    """

    is_host = False

    def __init__(self, backend_: DeviceBackend, ptr: int, nbytes: int, device_id: int = 0, owner: Any = None,
                 borrowed: bool = False) -> None:
        self.backend = backend_
        self._ptr = int(ptr)
        self._nbytes = int(nbytes)
        self.device_id = int(device_id)
        self.owner = owner
        self.borrowed = borrowed
        self._finalizer = None
        if not borrowed and self._ptr:
            self._finalizer = weakref.finalize(self, _free_quietly, backend_.free, self._ptr, self.device_id)
            self._finalizer.atexit = False  # the runtime may be gone at exit; the process frees everything anyway

    @classmethod
    def allocate(cls, nbytes: int, device_id: int = 0, backend_: DeviceBackend | None = None) -> "DeviceMemory":
        be = backend_ if backend_ is not None else backend()
        ptr = be.malloc(int(nbytes), int(device_id)) if nbytes else 0
        return cls(be, ptr, nbytes, device_id)

    @classmethod
    def from_address(cls, address: int, nbytes: int, device_id: int = 0, owner: Any = None,
                     backend_: DeviceBackend | None = None) -> "DeviceMemory":
        """``nbytes`` of the caller's device memory at ``address`` (not freed here; ``owner`` is kept alive)."""
        if nbytes and not address:
            raise DeviceError("The ptr pass to LITE api is null")
        be = backend_ if backend_ is not None else backend()
        return cls(be, address, nbytes, device_id, owner=owner, borrowed=True)

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def ptr(self) -> int:
        return self._ptr

    @property
    def buffer(self) -> np.ndarray:
        raise DeviceError("device memory has no host buffer: copy it to host first (to_numpy, copy_from)")

    @property
    def ort_device(self) -> str:
        return self.backend.ort_device

    @property
    def ort_device_id(self) -> int:
        return self.device_id if self.backend.ort_device != "cpu" else 0

    def _range(self, offset: int, n: int) -> None:
        if offset < 0 or n < 0 or offset + n > self._nbytes:
            raise DeviceError(f"device memory access [{offset}, {offset + n}) outside its {self._nbytes} bytes")

    def read(self, offset: int, host_ptr: int, n: int) -> None:
        """Copy ``n`` bytes at ``offset`` to host memory at ``host_ptr``."""
        self._range(offset, n)
        if n:
            self.backend.memcpy_d2h(host_ptr, self._ptr + offset, n, self.device_id)

    def write(self, offset: int, host_ptr: int, n: int) -> None:
        """Copy ``n`` bytes from host memory at ``host_ptr`` to ``offset``."""
        self._range(offset, n)
        if n:
            self.backend.memcpy_h2d(self._ptr + offset, host_ptr, n, self.device_id)

    def fill(self, offset: int, value: int, n: int) -> None:
        self._range(offset, n)
        if n:
            self.backend.memset(self._ptr + offset, value, n, self.device_id)

    def synchronize(self) -> None:
        self.backend.synchronize(self.device_id)

    def __repr__(self) -> str:
        return (f"DeviceMemory(0x{self._ptr:x}, {self._nbytes} bytes, {self.backend.ort_device}{self.device_id}"
                f"{', borrowed' if self.borrowed else ''})")


def _free_quietly(free: Callable[..., None], *args: int) -> None:
    """Call a backend's ``free`` / ``host_free``, ignoring errors at teardown."""
    try:
        free(*args)
    except Exception:  # pragma: no cover - freeing during teardown
        pass


def copy_bytes(dst: Any, dst_offset: int, src: Any, src_offset: int, n: int) -> None:
    """Copy ``n`` bytes between two memories (host or device, in any combination), by raw pointers."""
    if n <= 0:
        return
    d = dst.ptr() + dst_offset
    s = src.ptr() + src_offset
    if dst.is_host and src.is_host:
        ctypes.memmove(d, s, n)
    elif dst.is_host:
        src.read(src_offset, d, n)
    elif src.is_host:
        dst.write(dst_offset, s, n)
    else:
        if dst.backend is not src.backend:
            raise DeviceError("cannot copy between device memories of two different backends")
        dst._range(dst_offset, n)
        src._range(src_offset, n)
        dst.backend.memcpy_d2d(d, s, n, dst.device_id)


@dataclass(frozen=True)
class DeviceView:
    """A tensor in device memory as ``Plan.run`` binds it: pointer, shape, dtype and ONNX Runtime device."""

    memory: DeviceMemory
    offset: int
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ptr(self) -> int:
        return self.memory.ptr() + self.offset

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    @property
    def ort_device(self) -> str:
        return self.memory.ort_device

    @property
    def ort_device_id(self) -> int:
        return self.memory.ort_device_id

    def synchronize(self) -> None:
        self.memory.synchronize()

    def to_numpy(self) -> np.ndarray:
        """A host copy of the contents."""
        out = np.empty(self.shape, self.dtype)
        self.memory.read(self.offset, out.ctypes.data, out.nbytes)
        return out


def _check_device(device_type: int, device_id: int, is_pinned_host: bool) -> LiteDeviceType:
    try:
        dev = LiteDeviceType(device_type)
    except ValueError:
        raise DeviceError(f"lite unsupported compnode type: enum value: {int(device_type)}.") from None
    if dev in (LiteDeviceType.LITE_CPU, LiteDeviceType.LITE_DEVICE_DEFAULT):
        return dev
    if dev == LiteDeviceType.LITE_CUDA:
        if is_pinned_host:
            return dev  # pinned host memory is host memory: usable without a GPU
        _device.check_device(device_id)
        return dev
    raise DeviceError(f"lite unsupported compnode type: enum value: {int(dev)}. ({dev.name} is not supported)")


# ---------------------------------------------------------------------------------------------------------------
# memory


class HostMemory:
    """A flat block of host memory seen as a 1-D ``uint8`` numpy array.

    ``owner`` keeps a borrowed object (the caller's array or ctypes buffer) alive as long as this memory is used.
    """

    is_host = True

    def __init__(self, buffer: np.ndarray, owner: Any = None, borrowed: bool = False) -> None:
        self.buffer = buffer
        self.owner = owner
        self.borrowed = borrowed

    @classmethod
    def allocate(cls, nbytes: int) -> "HostMemory":
        """New zero-filled memory of ``nbytes`` bytes, 64-byte aligned (LiteMemoryError when it cannot be had)."""
        try:
            raw = np.zeros(nbytes + _ALIGN, dtype=np.uint8)
        except (MemoryError, ValueError) as exc:  # ValueError: "array is too big" (more than the address space)
            raise LiteMemoryError(f"cannot allocate {nbytes} bytes ({nbytes / 2**30:.3g} GiB) of tensor memory: "
                                  f"{exc}") from None
        start = (-raw.__array_interface__["data"][0]) % _ALIGN
        return cls(raw[start : start + nbytes])

    @classmethod
    def from_array(cls, array: np.ndarray, borrowed: bool = True) -> "HostMemory":
        """The bytes of a C-contiguous array, without copying."""
        flat = np.ndarray.view(array, np.ndarray).reshape(-1)
        return cls(flat.view(np.uint8), owner=array, borrowed=borrowed)

    @classmethod
    def from_address(cls, address: int, nbytes: int, owner: Any = None) -> "HostMemory":
        """``nbytes`` bytes at a raw host address (the caller keeps them alive; ``owner`` is kept referenced)."""
        if nbytes == 0:
            return cls(np.zeros(0, dtype=np.uint8), owner=owner, borrowed=True)
        if not address:
            raise LiteError("The ptr pass to LITE api is null")
        cbuf = (ctypes.c_uint8 * nbytes).from_address(address)
        return cls(np.ctypeslib.as_array(cbuf), owner=(owner, cbuf), borrowed=True)

    @property
    def nbytes(self) -> int:
        return int(self.buffer.nbytes)

    def ptr(self) -> int:
        """Address of the first byte."""
        return int(self.buffer.__array_interface__["data"][0])


#: the memory behind a tensor: host (numpy) or device (``DeviceMemory``)
Memory = Union[HostMemory, DeviceMemory]


def _c_strides(shape: Sequence[int], itemsize: int) -> list[int]:
    strides = [0] * len(shape)
    acc = itemsize
    for i in range(len(shape) - 1, -1, -1):
        strides[i] = acc
        acc *= max(shape[i], 1)
    return strides


def _is_contiguous(shape: Sequence[int], strides: Sequence[int], itemsize: int) -> bool:
    if any(d == 0 for d in shape):
        return True
    expect = itemsize
    for d, s in zip(reversed(shape), reversed(strides)):
        if d != 1 and s != expect:
            return False
        expect *= d
    return True


def _fmt_shape(shape: Sequence[int]) -> str:
    return "{" + ",".join(str(d) for d in shape) + "}"


def address_of(data: Any) -> tuple[int | None, Any]:
    """(address, None) for ints and ctypes pointers, (None, uint8 array) for objects whose size is known: ctypes
    arrays/structures and buffer-protocol objects (so a buffer smaller than the tensor is an error, never a read or
    write past its end; an int address or pointer carries no size and must be as large as the tensor)."""
    if isinstance(data, bool):
        raise LiteArgumentError("argument 2: TypeError: wrong type (expected memory, got bool)")
    if isinstance(data, int):
        return int(data), None
    if isinstance(data, (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_wchar_p, ctypes._Pointer)):
        return ctypes.cast(data, ctypes.c_void_p).value, None
    if isinstance(data, (ctypes.Array, ctypes.Structure, ctypes.Union)):
        return None, np.frombuffer(data, dtype=np.uint8)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return None, np.frombuffer(data, dtype=np.uint8)
    raise LiteArgumentError(
        f"argument 2: TypeError: wrong type (expected a numpy array, a ctypes object or an int address, "
        f"got {type(data).__name__})"
    )


# ---------------------------------------------------------------------------------------------------------------
# tensor implementation


class TensorImpl:
    """Shared state of a tensor; the object the network layer works with.

    The truth is ``shape`` / ``data_type`` / ``memory`` / ``offset`` / ``strides``; ``layout`` is the LiteLayout object
    handed out to users (the one passed to the LiteTensor constructor, aliased) and is rewritten from the truth on
    every change and every read, as the original does with its cached layout.
    """

    def __init__(
        self,
        layout: LiteLayout | None = None,
        device_type: int = LiteDeviceType.LITE_CPU,
        device_id: int = 0,
        is_pinned_host: bool = False,
    ) -> None:
        device_id = int(operator.index(device_id))
        self.device_type: LiteDeviceType = _check_device(device_type, device_id, bool(is_pinned_host))
        self.device_id: int = device_id
        self.is_pinned_host: bool = bool(is_pinned_host)
        self._layout_obj = layout if layout is not None else LiteLayout()
        self._shape: tuple[int, ...] = ()
        self._data_type = LiteDataType.LITE_FLOAT
        self.memory: Memory | None = None
        self.offset = 0
        self.strides: tuple[int, ...] | None = None
        self.version = 0
        self._bound: tuple | None = None  # (memory, (offset, shape, dtype, strides), view) of the last binding()
        self._apply_layout(self._layout_obj.shapes, self._layout_obj.data_type)

    @classmethod
    def create(
        cls,
        shape: Iterable[int],
        dtype: Any = None,
        device_type: int = LiteDeviceType.LITE_CPU,
        device_id: int = 0,
        is_pinned_host: bool = False,
    ) -> "TensorImpl":
        """A new impl with the given shape and dtype (anything LiteLayout accepts); memory is allocated lazily."""
        return cls(LiteLayout(list(shape), dtype), device_type, device_id, is_pinned_host)

    # -- layout ------------------------------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def data_type(self) -> LiteDataType:
        return self._data_type

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(_LITE_TO_NP[self._data_type])

    @property
    def nbytes(self) -> int:
        """Bytes of the elements (product of dims times item size; 0 for an empty layout)."""
        if not self._shape:
            return 0
        return math.prod(self._shape) * self.dtype.itemsize

    @property
    def is_contiguous(self) -> bool:
        return self.strides is None

    @property
    def on_device(self) -> bool:
        """Whether new memory for this tensor is device memory (a LITE_CUDA tensor that is not pinned)."""
        return self.device_type == LiteDeviceType.LITE_CUDA and not self.is_pinned_host

    @property
    def is_host_accessible(self) -> bool:
        """Whether numpy can read the memory in place (false for device memory, present or to be allocated)."""
        if self.memory is None:
            return not self.on_device
        return self.memory.is_host

    @property
    def layout(self) -> LiteLayout:
        """The user-visible LiteLayout object, synced with the current shape and dtype."""
        self._sync_layout()
        return self._layout_obj

    def _sync_layout(self) -> None:
        self._layout_obj.shapes = self._shape
        self._layout_obj.data_type = int(self._data_type)

    def _apply_layout(self, shape: Iterable[int], dtype: Any) -> None:
        dims = _check_dims(shape)
        if any(d < 0 for d in dims):
            raise LiteError(f"invalid layout: negative dim in {dims}")
        if dtype is None:
            data_type = self._data_type
        elif isinstance(dtype, int) and not isinstance(dtype, bool):
            try:
                data_type = LiteDataType(dtype)
            except ValueError:
                raise LiteError(f"not support data type. (data_type {dtype})") from None
        else:
            data_type = to_lite_dtype(dtype)
        self._shape = tuple(dims)
        self._data_type = data_type
        self.strides = None
        if self.memory is not None and self.offset + self.nbytes > self.memory.nbytes:
            self._set_memory(None)
        self._sync_layout()

    def set_layout(self, shape: Iterable[int], dtype: Any = None) -> None:
        """Set shape and dtype (None keeps the dtype; else np.dtype, numpy type, LiteDataType, name).

        Same semantics as setting ``tensor.layout``: the memory is kept (contents reinterpreted) when the new layout
        fits in it, and replaced by new memory (allocated lazily, ``version`` bumped) when it is larger.
        """
        self._apply_layout(shape, dtype)

    def adopt_layout(self, layout: LiteLayout) -> None:
        """Make ``layout`` the user-visible layout object and apply its shape and dtype (``tensor.layout = obj``)."""
        self._layout_obj = layout
        self._apply_layout(layout.shapes, layout.data_type)

    # -- memory ------------------------------------------------------------------------------------------------

    def _set_memory(self, memory: Memory | None, offset: int = 0) -> None:
        self.memory = memory
        self.offset = offset
        self.version += 1

    def _ensure_memory(self) -> Memory:
        need = self.nbytes
        if self.memory is None or (self.strides is None and self.offset + need > self.memory.nbytes):
            self.strides = None
            if self.on_device:
                self._set_memory(DeviceMemory.allocate(need, self.device_id))
            elif self.is_pinned_host and self.device_type == LiteDeviceType.LITE_CUDA:
                pinned = pinned_host_buffer(need)  # None without a GPU: plain host memory does the same job
                self._set_memory(HostMemory(pinned) if pinned is not None else HostMemory.allocate(need))
            else:
                self._set_memory(HostMemory.allocate(need))
        return self.memory

    @property
    def is_allocated(self) -> bool:
        return self.memory is not None

    def _check_layout(self) -> None:
        if not self._shape:
            raise LiteError("Tensor layout is not valid when get memory ptr.")

    def array(self) -> np.ndarray:
        """A numpy view (no copy) of the contents with the current shape and dtype; allocates if needed.

        Non-contiguous tensors (slices) give a strided view.  Raises LiteError for an empty layout, and DeviceError
        for a tensor in device memory (use ``host_array``, ``to_numpy`` or ``store``, which copy).
        """
        self._check_layout()
        mem = self._ensure_memory()
        if self.nbytes == 0:
            return np.zeros(self._shape, dtype=self.dtype)
        if not mem.is_host:
            raise DeviceError(
                f"the tensor is in device memory ({LiteDeviceType(self.device_type).name} device {self.device_id}): "
                f"numpy cannot use it in place; copy it to host with to_numpy() or copy_from()"
            )
        return np.ndarray(self._shape, self.dtype, buffer=mem.buffer, offset=self.offset, strides=self.strides)

    def bytes_view(self) -> np.ndarray:
        """The contents as a 1-D uint8 view (contiguous host tensors only)."""
        assert self.strides is None, "bytes_view needs a contiguous tensor"
        self._check_layout()
        mem = self._ensure_memory()
        return mem.buffer[self.offset : self.offset + self.nbytes]

    def _extent(self) -> tuple[int, int]:
        """[start, end) bytes of the memory the elements span (slices: including the gaps between them)."""
        if self.strides is None or self.nbytes == 0:
            return self.offset, self.offset + self.nbytes
        span = sum((d - 1) * s for d, s in zip(self._shape, self.strides)) + self.dtype.itemsize
        return self.offset, self.offset + span

    def _device_window(self, mem: DeviceMemory) -> tuple[np.ndarray, np.ndarray, int]:
        """A host copy of the device bytes the elements span, and a view of the elements in it."""
        lo, hi = self._extent()
        raw = np.empty(hi - lo, np.uint8)
        mem.read(lo, raw.ctypes.data, hi - lo)
        view = np.ndarray(self._shape, self.dtype, buffer=raw, offset=self.offset - lo, strides=self.strides)
        return raw, view, lo

    def host_array(self) -> np.ndarray:
        """The contents on the host: the in-place view for host memory, a fresh copy for device memory."""
        self._check_layout()
        mem = self._ensure_memory()
        if mem.is_host or self.nbytes == 0:
            return self.array()
        if self.strides is None:
            out = np.empty(self._shape, self.dtype)
            mem.read(self.offset, out.ctypes.data, self.nbytes)
            return out
        return np.array(self._device_window(mem)[1], order="C")

    def store(self, values: np.ndarray) -> None:
        """Write host ``values`` (this tensor's dtype, as many elements) into the memory: in place for host memory,
        a host-to-device copy for device memory (slices included)."""
        self._check_layout()
        mem = self._ensure_memory()
        if self.nbytes == 0:
            return
        values = np.asarray(values).reshape(self._shape)
        if mem.is_host:
            np.copyto(self.array(), values)
        elif self.strides is None:
            values = np.ascontiguousarray(values, dtype=self.dtype)
            mem.write(self.offset, values.ctypes.data, self.nbytes)
        else:
            raw, view, lo = self._device_window(mem)  # read-modify-write of the span: gaps keep their bytes
            np.copyto(view, values)
            mem.write(lo, raw.ctypes.data, raw.nbytes)

    def store_bytes(self, data: np.ndarray) -> None:
        """Copy ``nbytes`` raw bytes (a host uint8 array) into the contiguous memory of this tensor."""
        assert self.strides is None, "store_bytes needs a contiguous tensor"
        self._check_layout()
        mem = self._ensure_memory()
        if mem.is_host:
            self.bytes_view()[...] = data[: self.nbytes]
        elif self.nbytes:
            data = np.ascontiguousarray(data[: self.nbytes])
            mem.write(self.offset, data.ctypes.data, self.nbytes)

    def load_from(self, src: "TensorImpl") -> None:
        """Copy ``src``'s elements (same dtype and element count) into this tensor's memory, wherever both live:
        one memcpy (host-host, host-device, device-host or device-device) when both are contiguous."""
        self._check_layout()
        dst_mem = self._ensure_memory()
        src._check_layout()
        src_mem = src._ensure_memory()
        if dst_mem.is_host and src_mem.is_host:
            np.copyto(self.array(), src.array().reshape(self._shape))
        elif self.strides is None and src.strides is None:
            copy_bytes(dst_mem, self.offset, src_mem, src.offset, min(self.nbytes, src.nbytes))
        else:
            self.store(src.host_array())

    def binding(self) -> np.ndarray | DeviceView:
        """What ``Plan.run`` binds for this tensor: the numpy view for host memory, a ``DeviceView`` (device
        pointer, shape, dtype) for device memory."""
        self._check_layout()
        mem = self._ensure_memory()
        if not mem.is_host:
            return DeviceView(mem, self.offset, self._shape, self.dtype)
        where = (self.offset, self._shape, self.dtype, self.strides)
        bound = self._bound
        if bound is None or bound[0] is not mem or bound[1] != where:
            # the same view object while nothing changed lets the plan reuse its IOBinding
            bound = self._bound = (mem, where, self.array())
        return bound[2]

    def data_ptr(self) -> int:
        """Address of the first element; allocates if needed."""
        self._check_layout()
        return self._ensure_memory().ptr() + self.offset

    def share_array(self, array: np.ndarray, shape: Iterable[int] | None = None, dtype: Any = None) -> None:
        """Use ``array``'s memory (no copy; kept alive by this impl) as the tensor memory.

        The layout becomes ``shape``/``dtype`` (default: the array's own); ``array`` must be C-contiguous and at least
        as large as that layout.  Bumps ``version``.
        """
        if not array.flags["C_CONTIGUOUS"]:
            raise LiteError("the array to share must be C-contiguous")
        self._apply_layout(array.shape if shape is None else shape, array.dtype if dtype is None else dtype)
        if array.nbytes < self.nbytes:
            raise LiteError(
                f"the memory reset to the tensor is too small. ({array.nbytes} bytes for a layout of {self.nbytes})"
            )
        self.strides = None
        self._set_memory(HostMemory.from_array(array))
        self._sync_layout()

    def share_host_memory(self, memory: Memory) -> None:
        """Use ``memory`` (host or device, at offset 0) as the memory of the current layout; bumps ``version``."""
        if memory.nbytes < self.nbytes:
            raise LiteError(
                f"the memory reset to the tensor is too small. ({memory.nbytes} bytes for a layout of {self.nbytes})"
            )
        self.strides = None
        self._set_memory(memory)

    def share_memory_with(self, src: "TensorImpl") -> None:
        """Alias ``src``'s memory object and take its layout and device; bumps ``version``."""
        if not src._shape:
            raise LiteError("To be shared tensor with empty layout.")
        src._ensure_memory()
        self._shape = src._shape
        self._data_type = src._data_type
        self.strides = src.strides
        self.device_type = src.device_type
        self.device_id = src.device_id
        self.is_pinned_host = src.is_pinned_host
        self._set_memory(src.memory, src.offset)
        self._sync_layout()

    # -- operations ---------------------------------------------------------------------------------------------

    def copy_from(self, src: "TensorImpl") -> None:
        """Deep copy of ``src``'s values.

        A contiguous destination takes ``src``'s shape (and dtype when its own layout is empty); a non-contiguous one
        (a slice) keeps its layout and needs the same shape.
        """
        if not src._shape:
            raise LiteError("when tensor copy, the src tensor layout is empty.")
        if self._shape and self._data_type != src._data_type:
            raise LiteError(
                f"attempt to access dtype {_MGB_DTYPE_NAMES[self._data_type]} as {_MGB_DTYPE_NAMES[src._data_type]}"
            )
        if self.strides is None:
            self._apply_layout(src._shape, src._data_type)
        elif self._shape != src._shape:
            raise LiteError(
                f"shape differs in copy_from_fixlayout: {_fmt_shape(self._shape)} vs {_fmt_shape(src._shape)}"
            )
        if self is not src:
            self.load_from(src)

    def fill_zero(self) -> None:
        if not self._shape:
            raise LiteError("fill_zero can't apply on a tensor with empty layout.")
        mem = self._ensure_memory()
        if mem.is_host:
            self.array()[...] = 0
        elif self.strides is None:
            mem.fill(self.offset, 0, self.nbytes)  # memset
        else:
            self.store(np.zeros(self._shape, self.dtype))

    def reshape(self, shape: Iterable[int]) -> None:
        """Change the dims in place keeping the data (one -1 allowed); LiteError "The reshape inputs invalid."."""
        if not self._shape:
            raise LiteError("The tensor to be reshape is empty.")
        dims = [int(operator.index(d)) for d in shape]
        total = math.prod(self._shape)
        bad = LiteError(f"The reshape inputs invalid. (cannot reshape {list(self._shape)} to {dims})")
        if not dims or len(dims) > MAX_DIM or any(d <= 0 and d != -1 for d in dims):
            raise bad
        unknown = [i for i, d in enumerate(dims) if d == -1]
        if len(unknown) > 1:
            raise bad
        if unknown:
            known = math.prod(d for d in dims if d != -1)
            if total % known or total // known <= 0:
                raise bad
            dims[unknown[0]] = total // known
        if math.prod(dims) != total:
            raise bad
        if self.strides is not None:
            # a strided slice cannot be viewed with a new shape: compact it into new memory (same device) first
            compact = np.array(self.host_array(), order="C")
            self.strides = None
            if self.on_device:
                self._set_memory(None)
                self.store(compact)
            else:
                self._set_memory(HostMemory.from_array(compact, borrowed=False))
        self._shape = tuple(dims)
        self._sync_layout()

    def slice(
        self, start: Sequence[int], end: Sequence[int], step: Sequence[int] | None = None
    ) -> "TensorImpl":
        """A new impl viewing part of this one's memory (Python slice rules per dim; remaining dims are whole)."""
        n = len(start)
        if n != len(end) or n > len(self._shape):
            raise LiteError("The start and end must be the same size and less than layout ndim.")
        if step and len(step) != n:
            raise LiteError("The start and step must be the same size.")
        self._check_layout()
        self._ensure_memory()
        shape = list(self._shape)
        strides = list(self.strides) if self.strides is not None else _c_strides(shape, self.dtype.itemsize)
        offset = self.offset
        for axis in range(n):
            st = int(operator.index(step[axis])) if step else 1
            if st <= 0:
                raise LiteError(f"slice step must be positive, got {st}")
            s = int(operator.index(start[axis]))
            e = int(operator.index(end[axis]))
            s, e, st = slice(s, e, st).indices(shape[axis])
            length = len(range(s, e, st))
            if length:
                offset += s * strides[axis]
            shape[axis] = length
            strides[axis] *= st
        sub = TensorImpl.__new__(TensorImpl)
        sub.device_type = self.device_type
        sub.device_id = self.device_id
        sub.is_pinned_host = self.is_pinned_host
        sub._layout_obj = LiteLayout()
        sub._shape = tuple(shape)
        sub._data_type = self._data_type
        sub.version = 0
        if _is_contiguous(shape, strides, self.dtype.itemsize):
            sub.strides = None
        else:
            sub.strides = tuple(strides)
        assert self.memory is not None
        sub._set_memory(self.memory, min(offset, self.memory.nbytes))
        sub._sync_layout()
        return sub

    def to_numpy(self) -> np.ndarray:
        """A C-contiguous copy of the contents; ``np.array([], dtype)`` (shape (0,)) when there are no elements,
        also for layouts such as [0, 3], as in the original."""
        if self.nbytes == 0:
            return np.array([], dtype=self.dtype)
        if not self._ensure_memory().is_host:
            return self.host_array()  # already a fresh C-contiguous copy
        return np.array(self.array(), order="C", copy=True)
