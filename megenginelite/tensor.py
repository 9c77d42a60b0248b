"""LiteTensor: the public tensor API of the original (``set_data_by_copy``, ``to_numpy``, ...), a thin wrapper.

Each ``LiteTensor`` points to a ``TensorImpl`` (``runtime/memory.py``: layout, device, memory, offset, strides),
the object the network layer works with; several wrappers may share one impl (``LiteTensor._wrap``), just as
several Python objects of the original point to one C tensor.
"""

from __future__ import annotations

import ctypes
import math
import operator
from typing import Any, Iterable, Sequence

import numpy as np

from .base import ctype_to_lite_dtypes
from .errors import DeviceError, LiteArgumentError, LiteError, LiteMemoryError
from .runtime import device as _device
from .runtime.memory import DeviceMemory, HostMemory, TensorImpl, address_of
from .struct import (
    _LITE_TO_NP,
    MAX_DIM,
    LiteDataType,
    LiteDeviceType,
    LiteLayout,
    _check_dims,
    to_lite_dtype,
)

__all__ = ["MAX_DIM", "LiteTensor", "LiteTensorConcat", "lite_dtype_2_numpy", "ctype_to_lite_dtypes"]


def cuda_device_count() -> int:
    """Number of CUDA devices of the active device backend (0 without a CUDA runtime, a driver or a GPU)."""
    return _device.device_count()




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
            address, buffer = address_of(data)
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
            address, buffer = address_of(data)
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
