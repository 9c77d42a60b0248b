"""TensorBatchCollector (section 11 of the API notes)."""

import threading
import warnings

import numpy as np
import pytest

from megenginelite.errors import DeviceError, UnsupportedDTypeError
from megenginelite.struct import LiteDataType, LiteDeviceType, LiteLayout
from megenginelite.tensor import LiteTensor, cuda_device_count
from megenginelite.utils import TensorBatchCollector

CPU = LiteDeviceType.LITE_CPU


def collector(shape=(4, 8, 8), dtype=LiteDataType.LITE_INT, **kw):
    return TensorBatchCollector(list(shape), dtype=dtype, device_type=CPU, **kw)


def test_attributes():
    bc = collector([3, 2, 2], dtype="int32")
    assert bc.shape == [3, 2, 2]
    assert bc.dtype == LiteDataType.LITE_INT and type(bc.dtype) is int
    assert bc.dev_type == CPU
    assert bc.dev_id == 0
    assert bc.is_pinned_host is False
    assert bc._free_list == [0, 1, 2]
    assert isinstance(bc._mutex, type(threading.Lock()))
    t = bc.get()
    assert isinstance(t, LiteTensor)
    assert t.layout.shapes == [3, 2, 2] and t.layout.data_type == LiteDataType.LITE_INT


def test_default_dtype_is_int8():
    bc = TensorBatchCollector([2, 3], device_type=CPU)
    assert bc.dtype == LiteDataType.LITE_INT8
    assert bc.get().nbytes == 6


@pytest.mark.skipif(cuda_device_count() > 0, reason="a CUDA device is present")
def test_default_device_is_cuda():
    with pytest.raises(RuntimeError, match="request gpu0 out of valid range") as info:
        TensorBatchCollector([4, 8, 8])
    assert isinstance(info.value, DeviceError)


def test_collect_numpy():
    bc = collector()
    arr = np.ones([8, 8], "int32")
    ids = []
    for _ in range(4):
        ids.append(bc.collect(arr))
        arr += 1
    assert ids == [0, 1, 2, 3]
    data = bc.to_numpy()
    assert data.shape == (4, 8, 8)
    for i in range(4):
        assert (data[i] == i + 1).all()
    for i in range(4):
        row = bc.get_tensor_at(i).to_numpy()
        assert row.shape == (1, 8, 8)
        assert (row == i + 1).all()


def test_collect_copies_the_sample():
    bc = collector([2, 3], dtype="float32")
    arr = np.array([1, 2, 3], np.float32)
    bc.collect(arr)
    arr[:] = 0
    assert bc.to_numpy()[0].tolist() == [1, 2, 3]


def test_collect_lite_tensor():
    bc = collector([4, 6, 8])
    nparr = np.ones([6, 8], "int32")
    tensor = LiteTensor(LiteLayout([6, 8], LiteDataType.LITE_INT))
    for _ in range(4):
        tensor.set_data_by_share(nparr)
        bc.collect(tensor)
        nparr += 1
    data = bc.to_numpy()
    for i in range(4):
        assert (data[i] == i + 1).all()


def test_collect_full_warns_and_returns_minus_one():
    bc = collector([2, 2], dtype="uint8")
    assert bc.collect(np.zeros(2, np.uint8)) == 0
    assert bc.collect(np.zeros(2, np.uint8)) == 1
    with pytest.warns(UserWarning, match="all batch has been collected, please call free before collect again."):
        assert bc.collect(np.zeros(2, np.uint8)) == -1


def test_collect_bad_sample_does_not_leak_a_slot():
    bc = collector([3, 2, 2])
    with pytest.raises(AssertionError):
        bc.collect(np.ones((2, 3), "int32"))
    with pytest.raises(AssertionError):
        bc.collect(np.ones((2, 2), "float32"))
    with pytest.raises(AssertionError):
        bc.collect(LiteTensor(LiteLayout([2, 2], "int16")))
    with pytest.raises(AssertionError):
        bc.collect([[1, 2], [3, 4]])
    with pytest.raises(KeyError) as info:
        bc.collect(np.ones((2, 2), "float64"))
    assert isinstance(info.value, UnsupportedDTypeError)
    assert bc._free_list == [0, 1, 2]  # the original lost a slot per failed collect
    assert bc.collect(np.ones((2, 2), "int32")) == 0


def test_collect_id():
    bc = collector()
    arr = np.ones([8, 8], "int32")
    arr += 1  # 2
    assert bc.collect_id(arr, 1) is None
    arr -= 1  # 1
    bc.collect_id(arr, 0)
    arr += 2  # 3
    bc.collect_id(arr, 2)
    arr += 1  # 4
    bc.collect_id(arr, 3)
    data = bc.to_numpy()
    for i in range(4):
        assert (data[i] == i + 1).all()
    assert bc._free_list == []


def test_collect_id_twice_warns_and_overwrites():
    bc = collector([4, 2])
    bc.collect_id(np.array([1, 1], np.int32), 3)
    with pytest.warns(UserWarning, match="batch 3 has been collected, please call free before collected it again."):
        bc.collect_id(np.array([9, 9], np.int32), 3)
    assert bc.to_numpy()[3].tolist() == [9, 9]
    assert bc._free_list == [0, 1, 2]


@pytest.mark.parametrize("bad_id", [4, -1, 100])
def test_collect_id_out_of_range(bad_id):
    bc = collector([4, 2])
    with pytest.raises(AssertionError, match="out of range"):
        bc.collect_id(np.array([1, 1], np.int32), bad_id)
    assert bc._free_list == [0, 1, 2, 3]


def test_collect_by_ctypes():
    bc = collector([4, 6, 8])
    nparr = np.ones([6, 8], "int32")
    for _ in range(4):
        assert bc.collect_by_ctypes(nparr.ctypes.data, nparr.nbytes) is None
        nparr += 1
    data = bc.to_numpy()
    for i in range(4):
        assert (data[i] == i + 1).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # full: -1 and no warning
        assert bc.collect_by_ctypes(nparr.ctypes.data, nparr.nbytes) == -1


def test_collect_by_ctypes_length_must_be_one_batch():
    bc = collector([2, 4])
    arr = np.zeros(4, np.int32)
    with pytest.raises(AssertionError, match="the length of input data or layout must set"):
        bc.collect_by_ctypes(arr.ctypes.data, 8)
    assert bc._free_list == [0, 1]
    bc.collect_by_ctypes(np.arange(4, dtype=np.int32).tobytes(), 16)
    assert bc.to_numpy()[0].tolist() == [0, 1, 2, 3]


def test_free():
    bc = collector([3, 2])
    for _ in range(3):
        bc.collect(np.zeros(2, np.int32))
    bc.free([1])
    assert bc._free_list == [1]
    with pytest.warns(UserWarning, match="batch id 1 has not collected before free it."):
        bc.free([1])
    assert bc._free_list == [1]
    with pytest.warns(UserWarning, match="batch id 1 has not collected before free it."):
        bc.free(range(3))  # any iterable; an id already free is not added twice
    assert sorted(bc._free_list) == [0, 1, 2] and len(bc._free_list) == 3
    assert bc.collect(np.full(2, 5, np.int32)) in (0, 1, 2)
    with pytest.raises(AssertionError, match="out of range"):
        bc.free([3])


def test_free_list_order():
    bc = collector([3, 2])
    for _ in range(3):
        bc.collect(np.zeros(2, np.int32))
    bc.free([2, 0])
    assert bc.collect(np.ones(2, np.int32)) == 2  # freed ids go to the back, collect takes the front
    assert bc.collect(np.ones(2, np.int32)) == 0


def test_get_tensor_at():
    bc = collector([3, 2, 2])
    bc.collect(np.full((2, 2), 7, np.int32))
    row = bc.get_tensor_at(0)
    assert row.layout.shapes == [1, 2, 2]
    assert row.is_continue
    assert row.device_id == 0  # the original reported -1024 for slices
    assert row.to_numpy().tolist() == [[[7, 7], [7, 7]]]
    assert np.shares_memory(row.get_data_by_share(), bc.get().get_data_by_share())
    row.fill_zero()
    assert not bc.to_numpy()[0].any()
    with pytest.warns(UserWarning, match="tensor with batch id 1 has not collected before get it."):
        bc.get_tensor_at(1)
    with pytest.raises(AssertionError, match="the idx specific the tensor is out of range."):
        bc.get_tensor_at(3)
    with pytest.raises(AssertionError, match="the idx specific the tensor is out of range."):
        bc.get_tensor_at(-1)


def test_existing_tensor():
    t = LiteTensor(LiteLayout([3, 2, 2], "int8"), CPU, device_id=2)
    bc = TensorBatchCollector([3, 2, 2], tensor=t)
    assert bc.get() is t
    assert bc.dtype == LiteDataType.LITE_INT8
    assert bc.dev_type == CPU
    assert bc.dev_id == 2  # the original stored the device *type* here
    assert bc.device_id == 2 and bc.device_type == CPU
    bc.collect(np.full((2, 2), 3, np.int8))
    assert t.to_numpy()[0].tolist() == [[3, 3], [3, 3]]
    with pytest.raises(AssertionError, match="The tensor set to TensorBatchCollector is not right."):
        TensorBatchCollector([3, 2, 3], tensor=t)


def test_tuple_shape_is_accepted():
    bc = TensorBatchCollector((2, 3), dtype="uint8", device_type=CPU)
    assert bc.shape == [2, 3]
    assert bc.collect(np.ones(3, np.uint8)) == 0


def test_batch_feeds_another_tensor():
    bc = collector([2, 3], dtype="float32")
    bc.collect(np.array([1, 2, 3], np.float32))
    bc.collect(np.array([4, 5, 6], np.float32))
    inp = LiteTensor(LiteLayout([1, 3]))
    inp.copy_from(bc.get())
    assert inp.layout.shapes == [2, 3]
    assert inp.to_numpy().tolist() == [[1, 2, 3], [4, 5, 6]]
    shared = LiteTensor(LiteLayout([1, 3]))
    shared.share_memory_with(bc.get())  # the quick-start pattern: no copy
    assert np.shares_memory(shared.get_data_by_share(), bc.get().get_data_by_share())
    bc.free([0])
    bc.collect(np.zeros(3, np.float32))
    assert shared.to_numpy().tolist() == [[0, 0, 0], [4, 5, 6]]


def test_pinned_cuda_collector_works_on_host_memory():
    bc = TensorBatchCollector(
        [2, 2], dtype="int16", device_type=LiteDeviceType.LITE_CUDA, is_pinned_host=True
    )
    bc.collect(np.array([1, 2], np.int16))
    assert bc.to_numpy()[0].tolist() == [1, 2]
    assert bc.get().is_pinned_host


def test_concurrent_collect_hands_out_distinct_slots():
    bc = collector([64, 4])
    results = []
    lock = threading.Lock()

    def work(value):
        idx = bc.collect(np.full(4, value, np.int32))
        with lock:
            results.append((idx, value))

    threads = [threading.Thread(target=work, args=(v,)) for v in range(64)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ids = [i for i, _ in results]
    assert sorted(ids) == list(range(64))
    data = bc.to_numpy()
    for idx, value in results:
        assert (data[idx] == value).all()
