"""LiteTensor: a block of typed memory with a layout, and the memory objects behind it.

Layering (the network code uses the lower two):

* ``HostMemory`` - a flat ``uint8`` numpy buffer, either allocated here or borrowed from the caller (a numpy array
  or a raw address).  ``DeviceMemory`` (``runtime/device.py``) has the same small interface (``nbytes``, ``ptr()``,
  ``is_host``) for LITE_CUDA tensors that are not pinned, but no numpy buffer: host code reaches it only through
  explicit copies (``store``, ``host_array``, ``load_from``), which use the active device backend (the CUDA runtime,
  or the host emulation the tests select).
* ``TensorImpl`` - the shared state of a tensor: layout, device, memory, byte offset and strides (for slices), and a
  ``version`` counter bumped whenever the memory object is replaced.  Several ``LiteTensor`` wrappers may point to
  one impl (``LiteTensor._wrap``), just as several Python objects of the original point to one C tensor.
* ``LiteTensor`` - the public API of the original (``set_data_by_copy``, ``to_numpy``, ...), a thin wrapper.

Memory is allocated lazily, on first need.
"""

from __future__ import annotations

import ctypes
import math
import operator
from typing import Any, Iterable, Sequence, Union

import numpy as np

from .base import ctype_to_lite_dtypes
from .errors import DeviceError, LiteArgumentError, LiteError, LiteMemoryError
from .runtime import device as _device
from .runtime.device import DeviceMemory, DeviceView, copy_bytes, pinned_host_buffer
from .struct import (
    _LITE_TO_NP,
    _MGB_DTYPE_NAMES,
    MAX_DIM,
    LiteDataType,
    LiteDeviceType,
    LiteLayout,
    _check_dims,
    to_lite_dtype,
)

__all__ = ["MAX_DIM", "LiteTensor", "LiteTensorConcat", "lite_dtype_2_numpy", "ctype_to_lite_dtypes"]

_ALIGN = 64


# ---------------------------------------------------------------------------------------------------------------
# devices


def cuda_device_count() -> int:
    """Number of CUDA devices of the active device backend (0 without a CUDA runtime, a driver or a GPU)."""
    return _device.device_count()


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


#: the memory behind a tensor: host (numpy) or device (``runtime.device.DeviceMemory``)
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


def _address_of(data: Any) -> tuple[int | None, Any]:
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


# ---------------------------------------------------------------------------------------------------------------
# public API


def _list_values(data: list | tuple, dtype: np.dtype) -> np.ndarray:
    values = np.asarray(data)
    if values.dtype == object:
        raise TypeError("set_data_by_copy: the list must contain numbers only")
    if values.dtype.kind in "fc" and dtype.kind in "iub":
        raise TypeError(f"'float' object cannot be interpreted as an integer (the tensor dtype is {dtype})")
    return values.reshape(-1).astype(dtype)  # ints wrap around, as C assignment does


class LiteTensor:
    """A block of typed memory with a layout, on a device.

    Args:
        layout: a LiteLayout; the object is used (aliased), so later layout changes show in it.
        device_type: LITE_CPU (default) or LITE_DEVICE_DEFAULT (same as CPU), or LITE_CUDA: device memory from the
            active device backend (``runtime.device``: the CUDA runtime, or a host emulation in tests); DeviceError
            "request gpuN out of valid range" when there is no such device.  Device memory is reached from the
            host only through copies (``set_data_by_copy``, ``copy_from``, ``to_numpy``).
        device_id: device number.
        is_pinned_host: page-locked host memory for faster device copies (plain host memory here).
        shapes, dtype: build the layout from these when ``layout`` is None.
        physic_construct: accepted for compatibility; memory is always allocated lazily.
    """

    _impl: TensorImpl

    def __init__(
        self,
        layout: LiteLayout | None = None,
        device_type: int = LiteDeviceType.LITE_CPU,
        device_id: int = 0,
        is_pinned_host: bool = False,
        shapes: Iterable[int] | None = None,
        dtype: Any = None,
        physic_construct: bool = True,
    ) -> None:
        if layout is not None:
            if not isinstance(layout, LiteLayout):
                raise TypeError(f"expected LiteLayout instance, got {type(layout).__name__}")
        elif shapes is not None or dtype is not None:
            layout = LiteLayout(list(shapes) if shapes is not None else None, dtype)
        else:
            layout = LiteLayout()
        self._impl = TensorImpl(layout, device_type, device_id, is_pinned_host)

    @classmethod
    def _wrap(cls, impl: TensorImpl) -> "LiteTensor":
        """A new wrapper over an existing impl (shares layout, memory and device with every other wrapper)."""
        obj = cls.__new__(cls)
        obj._impl = impl
        return obj

    # -- properties ------------------------------------------------------------------------------------------------

    @property
    def layout(self) -> LiteLayout:
        """The layout; set with a LiteLayout (which becomes this tensor's layout object) or a list of dims."""
        return self._impl.layout

    @layout.setter
    def layout(self, layout: LiteLayout | Sequence[int]) -> None:
        if isinstance(layout, LiteLayout):
            self._impl.adopt_layout(layout)
        elif isinstance(layout, (list, tuple)):
            self._impl.set_layout(layout, None)
        else:
            raise TypeError(f"layout must be a LiteLayout or a list of dims, got {type(layout).__name__}")

    @property
    def is_pinned_host(self) -> bool:
        """Whether the memory is pinned host memory."""
        return self._impl.is_pinned_host

    @property
    def device_type(self) -> LiteDeviceType:
        return LiteDeviceType(self._impl.device_type)

    @property
    def device_id(self) -> int:
        return self._impl.device_id

    @property
    def is_continue(self) -> bool:
        """Whether the memory is contiguous (false for column or stepped slices)."""
        return self._impl.is_contiguous

    @property
    def nbytes(self) -> int:
        """Bytes of the elements (0 for an empty layout)."""
        return self._impl.nbytes

    # -- methods ---------------------------------------------------------------------------------------------------

    def update(self) -> None:
        """Refresh the layout object from the tensor (kept for compatibility; everything is always current)."""
        self._impl._sync_layout()

    def fill_zero(self) -> None:
        """Set every element to zero."""
        self._impl.fill_zero()

    def share_memory_with(self, src_tensor: "LiteTensor") -> None:
        """Drop this tensor's memory and use ``src_tensor``'s (taking its layout and device too)."""
        assert isinstance(src_tensor, LiteTensor), "share_memory_with needs a LiteTensor."
        self._impl.share_memory_with(src_tensor._impl)

    def copy_from(self, src_tensor: "LiteTensor") -> None:
        """Deep copy ``src_tensor``'s values (this tensor takes its shape; dtypes must match unless empty)."""
        assert isinstance(src_tensor, LiteTensor), "copy_from needs a LiteTensor."
        self._impl.copy_from(src_tensor._impl)

    def reshape(self, shape: Sequence[int]) -> None:
        """Change the dims in place, keeping the data; one dim may be -1."""
        self._impl.reshape(shape)

    def slice(self, start: Sequence[int], end: Sequence[int], step: Sequence[int] | None = None) -> "LiteTensor":
        """A tensor viewing ``[start:end:step]`` per leading dim, sharing this tensor's memory."""
        start = list(start)
        end = list(end)
        assert len(start) == len(end), "slice with different length of start and end."
        if step:
            step = list(step)
            assert len(step) == len(start), "slice with different length of start and step."
        return LiteTensor._wrap(self._impl.slice(start, end, step))

    def get_ctypes_memory(self) -> ctypes.c_void_p:
        """Address of the tensor memory as ``ctypes.c_void_p`` (allocates if needed)."""
        return ctypes.c_void_p(self._impl.data_ptr())

    def set_data_by_share(self, data: Any, length: int = 0, layout: LiteLayout | Sequence[int] | None = None) -> None:
        """Use the caller's memory as the tensor memory, without copying.

        Args:
            data: a C-contiguous numpy array (kept alive by the tensor), a ctypes object or an int address.  A
                device tensor (LITE_CUDA, not pinned) takes only an address (or ctypes pointer) of device memory
                of the same device; numpy arrays and byte buffers are host memory (AssertionError).
            length: bytes of ``data`` for ctypes/addresses: 0 or exactly ``nbytes``.
            layout: layout to apply (then ``length`` is not checked).

        A numpy array whose byte size differs from ``nbytes`` gives the tensor the array's shape with the tensor's
        own dtype (the bytes are reinterpreted, as in the original).
        """
        impl = self._impl
        if isinstance(data, np.ndarray):
            assert data.flags[
                "C_CONTIGUOUS"
            ], "input numpy is not continuous, please call input = np.ascontiguousarray(input) before call set_data_by_share"
            assert self.is_continue, "set_data_by_share can only apply in continue tensor."
            assert impl.is_pinned_host or impl.device_type in (
                LiteDeviceType.LITE_CPU,
                LiteDeviceType.LITE_DEVICE_DEFAULT,
            ), "set_data_by_share can only apply in cpu tensor or pinned tensor."
            if impl.nbytes != data.nbytes:
                impl.set_layout(data.shape, None)
            self._apply_share_layout(length, layout)
            memory = HostMemory.from_array(data)
        elif isinstance(data, (list, tuple)):
            raise LiteArgumentError(
                "argument 2: TypeError: wrong type (set_data_by_share takes a numpy array, a ctypes object or an "
                "address, not a list)"
            )
        else:
            assert self.is_continue, "set_data_by_share can only apply in continue tensor."
            address, buffer = _address_of(data)
            on_device = impl.on_device
            assert buffer is None or not on_device, "set_data_by_share can only apply in cpu tensor or pinned tensor."
            self._apply_share_layout(length, layout)
            if buffer is not None:
                memory = HostMemory(buffer, owner=data, borrowed=True)
            elif on_device:  # an address given to a device tensor is device memory, as in the original
                memory = DeviceMemory.from_address(address, impl.nbytes, impl.device_id, owner=data)
            else:
                memory = HostMemory.from_address(address, impl.nbytes, owner=data)
        if not impl.shape:
            raise LiteError("Tensor layout is empty, please reset with layout")
        impl.share_host_memory(memory)

    def _apply_share_layout(self, length: int, layout: Any) -> None:
        if layout is not None:
            self.layout = layout
        else:
            assert length == 0 or length == self._impl.nbytes, "the data length is not match."

    def set_data_by_copy(
        self, data: Any, data_length: int = 0, layout: LiteLayout | Sequence[int] | None = None
    ) -> None:
        """Copy data into the tensor.

        Args:
            data: a list/tuple of numbers (converted to the tensor dtype, layout kept; missing trailing elements
                become 0), a C-contiguous numpy array (the tensor takes its shape AND dtype), or a ctypes object /
                int address / bytes (``data_length`` must equal ``nbytes`` unless ``layout`` is given).  The data is
                host memory; a device tensor gets it by a host-to-device copy.
            data_length: byte length of ctypes data.
            layout: layout to apply first.
        """
        if layout is not None:
            self.layout = layout
        assert self.is_continue, "set_data_by_copy can only apply in continue tensor."
        impl = self._impl
        if isinstance(data, (list, tuple)):
            values = _list_values(data, impl.dtype)
            assert values.nbytes <= impl.nbytes, "the length of input data to set to the tensor is too large."
            if not impl.shape:
                raise LiteError("Tensor layout is empty, please reset with layout")
            full = np.zeros(math.prod(impl.shape), impl.dtype)
            full[: values.size] = values
            impl.store(full)
        elif isinstance(data, np.ndarray):
            assert data.flags[
                "C_CONTIGUOUS"
            ], "input numpy is not continuous, please call input = np.ascontiguousarray(input) before call set_data_by_copy"
            data_type = to_lite_dtype(data.dtype)
            dims = _check_dims(data.shape)
            if not dims:
                raise LiteError(
                    "Tensor layout is empty, please reset with layout (a 0-d array has no layout: use arr.reshape(1))"
                )
            impl.set_layout(dims, data_type)
            impl.store(data.view(impl.dtype).reshape(impl.shape))
        else:
            assert (
                data_length == impl.nbytes or layout is not None
            ), "when input data is ctypes, the length of input data or layout must set"
            address, buffer = _address_of(data)
            if not impl.shape:
                raise LiteError("Tensor layout is empty, please reset with layout")
            nbytes = impl.nbytes
            if buffer is None:
                buffer = HostMemory.from_address(address, nbytes).buffer
            elif buffer.nbytes < nbytes:
                raise LiteError(f"the memory reset to the tensor is too small. ({buffer.nbytes} < {nbytes} bytes)")
            impl.store_bytes(buffer[:nbytes])

    def get_data_by_share(self) -> np.ndarray:
        """A numpy view (no copy) of the tensor memory with the current shape.

        The view stays an alias: later writes to the tensor (e.g. the next forward) show in it.  Slices give a
        correctly strided view.  Host tensors only (as in the original): a tensor in device memory raises
        DeviceError; use ``to_numpy()`` (a copy) for it.
        """
        impl = self._impl
        if not impl.is_host_accessible:
            raise DeviceError(
                f"get_data_by_share can only apply in host tensor: this {LiteDeviceType(impl.device_type).name} "
                f"tensor (device {impl.device_id}) is in device memory; use to_numpy() to copy it to host"
            )
        return impl.array()

    def to_numpy(self) -> np.ndarray:
        """A C-contiguous copy of the contents (an empty array for an empty layout)."""
        try:
            return self._impl.to_numpy()
        except LiteMemoryError:
            raise
        except MemoryError as exc:
            raise LiteMemoryError(f"cannot copy the tensor ({self.nbytes} bytes) to numpy: {exc}") from None

    def __repr__(self) -> str:
        impl = self._impl
        data = {
            "layout": impl.layout,
            "device_type": LiteDeviceType(impl.device_type),
            "device_id": int(impl.device_id),
            "is_pinned_host": bool(impl.is_pinned_host),
        }
        return repr(data)


def LiteTensorConcat(
    tensors: Iterable[LiteTensor],
    dim: int,
    device_type: int = LiteDeviceType.LITE_DEVICE_DEFAULT,
    device_id: int = -1,
) -> LiteTensor:
    """Concatenate tensors along ``dim`` into a new tensor.

    ``device_type`` LITE_DEVICE_DEFAULT and ``device_id`` -1 mean "those of the first tensor".  All tensors need the
    same ndim, dtype and dims except ``dim`` (LiteError otherwise).  An empty list gives an empty tensor.
    """
    tensors = list(tensors)
    if not tensors:
        return LiteTensor()
    for t in tensors:
        assert isinstance(t, LiteTensor), "LiteTensorConcat only concats LiteTensor objects."
    first = tensors[0]._impl
    if int(device_type) == LiteDeviceType.LITE_DEVICE_DEFAULT:
        device_type = first.device_type
    if int(device_id) == -1:
        device_id = first.device_id
    ndim = first.ndim
    dim = int(operator.index(dim))
    if dim < 0:
        dim += ndim
    if not 0 <= dim < ndim:
        raise LiteError(f"the dim in concat is error. (dim {dim} for ndim {ndim})")
    for t in tensors[1:]:
        other = t._impl
        if other.ndim != ndim:
            raise LiteError("the dim size of tensors is not same!")
        if other.data_type != first.data_type:
            raise LiteError("the dtype of tensors is not same!")
        for j in range(ndim):
            if j != dim and other.shape[j] != first.shape[j]:
                raise LiteError("the shape of tensors is not same!")
    data = np.concatenate([t._impl.host_array() for t in tensors], axis=dim)
    impl = TensorImpl(LiteLayout(data.shape, first.data_type), device_type, device_id, first.is_pinned_host)
    if impl.on_device:
        impl.store(data)
    else:
        impl.share_host_memory(HostMemory.from_array(data, borrowed=False))
    return LiteTensor._wrap(impl)


def lite_dtype_2_numpy(dtype: LiteDataType) -> type:
    """The numpy type of a LiteDataType (float16 for LITE_HALF)."""
    assert isinstance(dtype, LiteDataType), "input must be LiteDataType when using lite_dtype_2_numpy."
    return _LITE_TO_NP[dtype]
