"""TensorBatchCollector: gather single samples into one batched tensor."""

from __future__ import annotations

import operator
import threading
import warnings
from typing import Any, Iterable

import numpy as np

from .struct import LiteDataType, LiteDeviceType, LiteLayout, to_lite_dtype
from .runtime.memory import HostMemory, TensorImpl, address_of
from .tensor import LiteTensor

__all__ = ["TensorBatchCollector"]


class TensorBatchCollector:
    """Collect single-batch arrays/tensors into the rows of one multi-batch tensor.

    Args:
        shape: shape of the batched tensor; ``shape[0]`` is the number of batch slots.
        dtype: element type of the samples and of the batched tensor (default LITE_INT8).
        device_type, device_id, is_pinned_host: where the batched tensor lives (default LITE_CUDA, device 0: device
            memory, which needs a CUDA device; pass ``LiteDeviceType.LITE_CPU`` otherwise).  Samples are copied
            into a device batch (host-to-device for arrays, device-to-device for device tensors).
        tensor: use this existing tensor (its shape must equal ``shape``) instead of creating one; dtype and device
            are then taken from it.

    A sample must have shape ``shape[1:]`` and the collector's dtype.  Slots are handed out from a free list;
    ``free`` returns them.  Thread-safe.
    """

    def __init__(
        self,
        shape: Iterable[int],
        dtype: Any = LiteDataType.LITE_INT8,
        device_type: int = LiteDeviceType.LITE_CUDA,
        device_id: int = 0,
        is_pinned_host: bool = False,
        tensor: LiteTensor | None = None,
    ) -> None:
        self._mutex = threading.Lock()
        self.shape: list[int] = [int(operator.index(d)) for d in shape]
        self.dtype: int = int(LiteLayout(dtype=dtype).data_type)
        self.dev_type = device_type
        self.dev_id = device_id
        self.is_pinned_host = is_pinned_host
        if tensor is not None:
            assert tensor.layout.shapes == self.shape, "The tensor set to TensorBatchCollector is not right."
            self._tensor = tensor
            self.dtype = int(tensor.layout.data_type)
            self.dev_type = tensor.device_type
            self.dev_id = tensor.device_id
            self.is_pinned_host = tensor.is_pinned_host
        else:
            self._tensor = LiteTensor(LiteLayout(self.shape, LiteDataType(self.dtype)), device_type, device_id, is_pinned_host)
        # Allocate now: concurrent collects write through slices, which must all see one memory buffer.
        self._tensor._impl.data_ptr()
        self._free_list: list[int] = list(range(self.shape[0]))

    @property
    def device_type(self) -> int:
        """Device type of the batched tensor (same as ``dev_type``)."""
        return self.dev_type

    @property
    def device_id(self) -> int:
        """Device id of the batched tensor (same as ``dev_id``)."""
        return self.dev_id

    @property
    def _batch_nbytes(self) -> int:
        return self._tensor.nbytes // self.shape[0] if self.shape[0] else 0

    def _check_sample(self, array: Any) -> np.ndarray | TensorImpl:
        """Validate one sample: a numpy array is returned as is, a LiteTensor as its impl (it may be on a device)."""
        if isinstance(array, np.ndarray):
            assert list(array.shape) == self.shape[1:], (
                f"the sample shape {list(array.shape)} does not match the batch shape {self.shape[1:]}"
            )
            in_dtype = to_lite_dtype(array.dtype)
            assert in_dtype == self.dtype, (
                f"the sample dtype {array.dtype} does not match the batch dtype {LiteDataType(self.dtype).name}"
            )
            return array
        assert isinstance(array, LiteTensor), "collect takes a numpy array or a LiteTensor."
        layout = array.layout
        assert layout.shapes == self.shape[1:], (
            f"the sample shape {layout.shapes} does not match the batch shape {self.shape[1:]}"
        )
        assert layout.data_type == self.dtype, (
            f"the sample dtype {LiteDataType(layout.data_type).name} does not match the batch dtype "
            f"{LiteDataType(self.dtype).name}"
        )
        return array._impl

    def _check_id(self, batch_id: Any) -> int:
        batch_id = int(operator.index(batch_id))
        assert 0 <= batch_id < self.shape[0], f"the batch id {batch_id} is out of range [0, {self.shape[0]})."
        return batch_id

    def _write(self, values: np.ndarray | TensorImpl, batch_id: int) -> None:
        """Copy one sample into its slot: an array host-to-slot (host->device memcpy at the slot's offset when the
        batch is in device memory), a tensor slot-from-tensor (device->device when both are on the device)."""
        row = self._tensor._impl.slice([batch_id], [batch_id + 1])
        if isinstance(values, TensorImpl):
            row.load_from(values)
        else:
            row.store(values.view(row.dtype).reshape(row.shape))

    def collect_id(self, array: np.ndarray | LiteTensor, batch_id: int) -> None:
        """Store one sample into slot ``batch_id`` (warns and overwrites when the slot is already collected)."""
        batch_id = self._check_id(batch_id)
        values = self._check_sample(array)
        with self._mutex:
            if batch_id in self._free_list:
                self._free_list.remove(batch_id)
            else:
                warnings.warn(
                    f"batch {batch_id} has been collected, please call free before collected it again.", stacklevel=2
                )
        self._write(values, batch_id)

    def collect(self, array: np.ndarray | LiteTensor) -> int:
        """Store one sample into the first free slot and return the slot id; -1 (with a warning) when full."""
        values = self._check_sample(array)
        with self._mutex:
            if not self._free_list:
                warnings.warn("all batch has been collected, please call free before collect again.", stacklevel=2)
                return -1
            idx = self._free_list.pop(0)
        try:
            self._write(values, idx)
        except BaseException:
            with self._mutex:
                self._free_list.insert(0, idx)
            raise
        return idx

    def collect_by_ctypes(self, data: Any, length: int) -> int | None:
        """Store one sample given as memory (ctypes object, int address or bytes) of ``length`` bytes.

        ``length`` must be the byte size of one batch.  Returns None on success and -1 (no warning) when full.
        """
        nbytes = self._batch_nbytes
        assert length == nbytes, (
            f"when input data is ctypes, the length of input data or layout must set: length {length} must be the "
            f"byte size of one batch ({nbytes})"
        )
        address, buffer = address_of(data)
        if buffer is None:
            buffer = HostMemory.from_address(address, nbytes).buffer
        assert buffer.nbytes >= nbytes, "the memory given to collect_by_ctypes is smaller than one batch."
        with self._mutex:
            if not self._free_list:
                return -1
            idx = self._free_list.pop(0)
        try:
            row = self._tensor._impl.slice([idx], [idx + 1])
            row.store_bytes(buffer[:nbytes])
        except BaseException:
            with self._mutex:
                self._free_list.insert(0, idx)
            raise
        return None

    def free(self, indexes: Iterable[int]) -> None:
        """Give slots back so they can be collected again (warns for slots that were not collected)."""
        ids: list[int] = []
        for i in indexes:
            i = self._check_id(i)
            if i not in ids:
                ids.append(i)
        with self._mutex:
            for i in ids:
                if i in self._free_list:
                    warnings.warn(f"batch id {i} has not collected before free it.", stacklevel=2)
                    self._free_list.remove(i)
            self._free_list.extend(ids)

    def get_tensor_at(self, idx: int) -> LiteTensor:
        """The slot ``idx`` as a tensor of shape ``[1, *shape[1:]]`` sharing the batched tensor's memory."""
        idx = int(operator.index(idx))
        assert 0 <= idx < self.shape[0], "the idx specific the tensor is out of range."
        if idx in self._free_list:
            warnings.warn(f"tensor with batch id {idx} has not collected before get it.", stacklevel=2)
        return self._tensor.slice([idx], [idx + 1])

    def get(self) -> LiteTensor:
        """The batched tensor."""
        return self._tensor

    def to_numpy(self) -> np.ndarray:
        """A numpy copy of the batched tensor."""
        return self._tensor.to_numpy()
