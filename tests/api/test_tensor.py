"""LiteTensor, LiteTensorConcat, lite_dtype_2_numpy and the TensorImpl interface the network layer uses."""

import ctypes
import gc
import weakref

import numpy as np
import pytest

from megenginelite.errors import DeviceError, LiteArgumentError, LiteError, UnsupportedDTypeError
from megenginelite.struct import LiteDataType, LiteDeviceType, LiteLayout
from megenginelite.runtime.memory import TensorImpl
from megenginelite.tensor import LiteTensor, LiteTensorConcat, cuda_device_count, lite_dtype_2_numpy

CPU = LiteDeviceType.LITE_CPU


def filled(shape, dtype="int32"):
    """A CPU tensor holding 0, 1, 2, ... in the given shape."""
    t = LiteTensor(LiteLayout(shape, dtype))
    t.set_data_by_copy(list(range(int(np.prod(shape)))))
    return t


def ptr(t):
    return t.get_ctypes_memory().value


# --------------------------------------------------------------------------------------------------- construction


def test_empty_tensor():
    t = LiteTensor()
    assert t.layout.ndim == 0
    assert t.layout.data_type == LiteDataType.LITE_FLOAT
    assert t.nbytes == 0
    assert t.device_type == CPU
    assert t.device_id == 0
    assert t.is_pinned_host is False
    assert t.is_continue is True
    out = t.to_numpy()
    assert out.shape == (0,) and out.dtype == np.float32


def test_construct_from_layout_aliases_it():
    lay = LiteLayout([4, 16], "float32")
    t = LiteTensor(lay, CPU)
    assert t.layout is lay
    assert t.layout == lay  # upstream tests rely on identity
    assert t.nbytes == 4 * 16 * 4
    t.layout = [8, 14]
    assert lay.shapes == [8, 14]  # the caller's object follows the tensor
    assert lay.data_type == LiteDataType.LITE_FLOAT


def test_construct_from_shapes_and_dtype():
    t = LiteTensor(shapes=[1, 3, 224], dtype=np.int8)
    assert t.layout.shapes == [1, 3, 224]
    assert t.layout.data_type == LiteDataType.LITE_INT8
    assert t.nbytes == 3 * 224
    t2 = LiteTensor(shapes=(2, 2), dtype="int16")
    assert t2.layout.shapes == [2, 2] and t2.nbytes == 8


def test_layout_argument_wins_over_shapes():
    t = LiteTensor(LiteLayout([2], "uint8"), shapes=[5, 5], dtype="float32")
    assert t.layout.shapes == [2]
    assert t.layout.data_type == LiteDataType.LITE_UINT8


def test_layout_argument_must_be_lite_layout():
    with pytest.raises(TypeError, match="expected LiteLayout instance, got list"):
        LiteTensor([1, 2])


def test_device_id_and_default_device():
    assert LiteTensor(LiteLayout([2]), device_id=1).device_id == 1
    assert LiteTensor(LiteLayout([2]), CPU, device_id=3).device_id == 3
    t = LiteTensor(LiteLayout([2]), LiteDeviceType.LITE_DEVICE_DEFAULT)
    assert t.device_type == LiteDeviceType.LITE_DEVICE_DEFAULT
    t.set_data_by_copy([1.0, 2.0])
    assert t.to_numpy().tolist() == [1.0, 2.0]


def test_pinned_host_tensors_are_host_memory():
    t = LiteTensor(LiteLayout([2, 2]), CPU, is_pinned_host=True)
    assert t.is_pinned_host is True
    t2 = LiteTensor(LiteLayout([4, 8], "int16"), LiteDeviceType.LITE_CUDA, is_pinned_host=True)
    assert t2.is_pinned_host is True
    assert t2.device_type == LiteDeviceType.LITE_CUDA
    arr = np.arange(32, dtype=np.int16).reshape(4, 8)
    t2.set_data_by_share(arr)
    assert np.array_equal(t2.to_numpy(), arr)


@pytest.mark.skipif(cuda_device_count() > 0, reason="a CUDA device is present")
def test_cuda_tensor_without_gpu_is_device_error():
    with pytest.raises(RuntimeError, match=r"request gpu0 out of valid range \[0, 0\)") as info:
        LiteTensor(LiteLayout([2]), LiteDeviceType.LITE_CUDA)
    assert isinstance(info.value, DeviceError)
    assert "onnxruntime-gpu" in str(info.value)


@pytest.mark.parametrize("device", [LiteDeviceType.LITE_ATLAS, LiteDeviceType.LITE_NPU, 2])
def test_unsupported_devices(device):
    with pytest.raises(DeviceError, match="lite unsupported compnode type"):
        LiteTensor(LiteLayout([2]), device)


def test_memory_is_lazy_and_zero_filled():
    t = LiteTensor(LiteLayout([3, 3]))
    assert not t._impl.is_allocated
    assert t.nbytes == 36
    assert not t._impl.is_allocated
    assert t.to_numpy().tolist() == [[0.0] * 3] * 3
    assert t._impl.is_allocated


@pytest.mark.parametrize(
    "dtype, size",
    [("float32", 4), ("float16", 2), ("int32", 4), ("int16", 2), ("int8", 1), ("uint8", 1), ("uint16", 2)],
)
def test_nbytes_per_dtype(dtype, size):
    assert LiteTensor(LiteLayout([3, 5], dtype)).nbytes == 15 * size


def test_repr():
    t = LiteTensor(LiteLayout([1, 3, 224, 224]))
    assert repr(t) == (
        "{'layout': {'shapes': [1, 3, 224, 224], 'ndim': 4, 'data_type': <class 'numpy.float32'>}, "
        "'device_type': <LiteDeviceType.LITE_CPU: 0>, 'device_id': 0, 'is_pinned_host': False}"
    )


# --------------------------------------------------------------------------------------------------- layout setter


def test_layout_setter_list_keeps_dtype():
    t = LiteTensor(LiteLayout([2, 2], "int8"))
    t.layout = [8, 14]
    assert t.layout.shapes == [8, 14]
    assert t.layout.data_type == LiteDataType.LITE_INT8
    assert t.nbytes == 8 * 14


def test_layout_setter_tuple_is_applied():
    t = LiteTensor(LiteLayout([2, 3]))
    t.layout = (4, 4)  # the original silently ignored tuples
    assert t.layout.shapes == [4, 4]


def test_layout_setter_object_becomes_the_layout():
    t = LiteTensor(LiteLayout([2, 3]))
    new = LiteLayout([5], "int8")
    t.layout = new
    assert t.layout is new
    assert t.nbytes == 5


def test_layout_setter_rejects_other_types():
    t = LiteTensor(LiteLayout([2, 3]))
    with pytest.raises(TypeError):
        t.layout = 5
    with pytest.raises(AssertionError, match="Layout max dim is 7."):
        t.layout = [1] * 8


def test_bigger_layout_reallocates_same_size_keeps_memory():
    t = filled([2, 3], "float32")
    p0 = ptr(t)
    t.layout = [3, 2]  # same byte size: memory and contents kept
    assert ptr(t) == p0
    assert t.to_numpy().ravel().tolist() == [0, 1, 2, 3, 4, 5]
    t.layout = LiteLayout([6], "int32")  # same size, other dtype: bytes reinterpreted
    assert ptr(t) == p0
    assert t.to_numpy().tolist() == np.arange(6, dtype=np.float32).view(np.int32).tolist()
    t.layout = [2]  # smaller: kept
    assert ptr(t) == p0
    t.layout = [100]  # bigger: new memory
    assert ptr(t) != p0
    assert t.nbytes == 400


def test_direct_edit_of_layout_object_does_not_change_tensor():
    lay = LiteLayout([2, 3])
    t = LiteTensor(lay)
    lay.shapes = [9, 9]  # bypasses the tensor, as in the original: reverted on the next read
    assert t.nbytes == 24
    assert t.layout.shapes == [2, 3]
    assert lay.shapes == [2, 3]


# --------------------------------------------------------------------------------------------------- fill / copy


def test_fill_zero():
    t = filled([4, 8], "int16")
    assert t.to_numpy().sum() == sum(range(32))
    t.fill_zero()
    assert not t.to_numpy().any()
    with pytest.raises(RuntimeError, match="fill_zero can't apply on a tensor with empty layout."):
        LiteTensor().fill_zero()


def test_copy_from_is_a_deep_copy():
    src = filled([4, 8], "int16")
    dst = LiteTensor(LiteLayout([4, 8], "int16"))
    dst.copy_from(src)
    assert dst.to_numpy().ravel().tolist() == list(range(32))
    src.set_data_by_copy([5] * 32)
    assert dst.to_numpy().ravel().tolist() == list(range(32))
    assert not np.shares_memory(dst.get_data_by_share(), src.get_data_by_share())


def test_copy_from_adopts_src_layout():
    dst = LiteTensor(LiteLayout([2, 2], "float32"))
    dst.copy_from(filled([4, 3], "float32"))
    assert dst.layout.shapes == [4, 3]
    assert dst.to_numpy()[3, 2] == 11
    empty = LiteTensor()
    empty.copy_from(filled([4, 3], "int32"))
    assert empty.layout.shapes == [4, 3]
    assert empty.layout.data_type == LiteDataType.LITE_INT


def test_copy_from_dtype_mismatch():
    dst = LiteTensor(LiteLayout([2, 2], "float32"))
    with pytest.raises(RuntimeError, match="attempt to access dtype Float32 as Int32") as info:
        dst.copy_from(filled([2, 2], "int32"))
    assert isinstance(info.value, LiteError)


def test_copy_from_checks():
    dst = LiteTensor(LiteLayout([2]))
    with pytest.raises(AssertionError):
        dst.copy_from(np.zeros(2, np.float32))
    with pytest.raises(RuntimeError, match="when tensor copy, the src tensor layout is empty."):
        dst.copy_from(LiteTensor())


def test_copy_from_non_contiguous_source_is_compacted():
    parent = filled([4, 3], "int32")
    col = parent.slice([0, 1], [4, 3])
    dst = LiteTensor(LiteLayout([1], "int32"))
    dst.copy_from(col)
    assert dst.is_continue
    assert dst.layout.shapes == [4, 2]
    assert dst.to_numpy().tolist() == [[1, 2], [4, 5], [7, 8], [10, 11]]


def test_copy_into_slices_writes_the_parent():
    parent = filled([4, 3], "int32")
    col = parent.slice([0, 1], [4, 3])  # non-contiguous: keeps its layout
    col.copy_from(filled([4, 2], "int32"))
    assert parent.to_numpy()[:, 1:].tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert parent.to_numpy()[:, 0].tolist() == [0, 3, 6, 9]
    with pytest.raises(RuntimeError, match=r"shape differs in copy_from_fixlayout: \{4,2\} vs \{2,2\}"):
        col.copy_from(filled([2, 2], "int32"))
    row = parent.slice([1], [3])  # contiguous: takes the source layout, writes from its start
    src = LiteTensor(LiteLayout([1, 3], "int32"))
    src.set_data_by_copy([7, 8, 9])
    row.copy_from(src)
    assert row.layout.shapes == [1, 3]
    assert parent.to_numpy()[1].tolist() == [7, 8, 9]


# --------------------------------------------------------------------------------------------------- share_memory_with


def test_share_memory_with():
    src = filled([4, 8], "int16")
    dst = LiteTensor(LiteLayout([4, 8], "int16"))
    dst.share_memory_with(src)
    assert np.shares_memory(dst.get_data_by_share(), src.get_data_by_share())
    assert ptr(dst) == ptr(src)
    src.set_data_by_copy([i + 5 for i in range(32)])
    assert dst.to_numpy().ravel().tolist() == [i + 5 for i in range(32)]
    dst.fill_zero()
    assert not src.to_numpy().any()


def test_share_memory_with_takes_layout_and_dtype():
    src = filled([3, 2], "float32")
    dst = LiteTensor(LiteLayout([7], "int32"))
    dst.share_memory_with(src)
    assert dst.layout.shapes == [3, 2]
    assert dst.layout.data_type == LiteDataType.LITE_FLOAT
    assert dst.to_numpy().tolist() == [[0, 1], [2, 3], [4, 5]]


def test_share_memory_with_checks():
    with pytest.raises(AssertionError):
        LiteTensor(LiteLayout([2])).share_memory_with("x")
    with pytest.raises(RuntimeError, match="To be shared tensor with empty layout."):
        LiteTensor(LiteLayout([2])).share_memory_with(LiteTensor())


def test_share_memory_with_numpy_shared_source():
    arr = np.arange(128, dtype=np.int16).reshape(4, 32)
    t = LiteTensor(LiteLayout([4, 32], "int16"))
    t.set_data_by_share(arr)
    t2 = LiteTensor(LiteLayout([4, 32], "int16"))
    t2.share_memory_with(t)
    assert np.shares_memory(t2.get_data_by_share(), arr)
    arr[1, 18] = 5
    arr[3, 7] = 345
    assert t2.to_numpy()[1, 18] == 5 and t2.to_numpy()[3, 7] == 345


# --------------------------------------------------------------------------------------------------- reshape


def test_reshape_in_place():
    t = filled([4, 8], "int16")
    p0 = ptr(t)
    t.reshape([8, 4])
    assert t.layout.shapes == [8, 4]
    assert ptr(t) == p0
    assert t.to_numpy().ravel().tolist() == list(range(32))
    t.reshape((2, 16))
    assert t.layout.shapes == [2, 16]


@pytest.mark.parametrize("shape, expected", [([-1], [12]), ([-1, 3], [4, 3]), ([2, -1, 2], [2, 3, 2])])
def test_reshape_with_minus_one(shape, expected):
    t = filled([4, 3])
    t.reshape(shape)
    assert t.layout.shapes == expected
    assert t.to_numpy().ravel().tolist() == list(range(12))


@pytest.mark.parametrize("shape", [[5, 3], [-1, -1], [-1, 5], [0, 12], [12, 0], []])
def test_reshape_invalid(shape):
    t = filled([4, 3])
    with pytest.raises(RuntimeError, match="The reshape inputs invalid."):
        t.reshape(shape)
    assert t.layout.shapes == [4, 3]


def test_reshape_empty_tensor():
    with pytest.raises(RuntimeError, match="The tensor to be reshape is empty."):
        LiteTensor().reshape([1])


def test_reshape_non_contiguous_slice_keeps_values():
    col = filled([4, 3]).slice([0, 1], [4, 3])
    col.reshape([8])
    assert col.is_continue
    assert col.to_numpy().tolist() == [1, 2, 4, 5, 7, 8, 10, 11]


# --------------------------------------------------------------------------------------------------- slice


def test_slice_shares_memory_with_parent():
    parent = filled([4, 8])
    sub = parent.slice([1, 4], [3, 8])
    assert sub.layout.shapes == [2, 4]
    assert sub.is_continue is False
    assert sub.nbytes == 2 * 4 * 4
    assert sub.to_numpy().tolist() == parent.to_numpy()[1:3, 4:8].tolist()
    view = sub.get_data_by_share()
    assert np.shares_memory(view, parent.get_data_by_share())
    view[0, 0] = -1
    assert parent.to_numpy()[1, 4] == -1
    sub.fill_zero()
    assert parent.to_numpy()[1:3, 4:8].sum() == 0
    assert parent.to_numpy()[0].tolist() == list(range(8))


def test_row_slice_is_contiguous_with_offset_pointer():
    parent = filled([4, 3], "float32")
    rows = parent.slice([1], [3])
    assert rows.is_continue
    assert rows.layout.shapes == [2, 3]
    assert ptr(rows) - ptr(parent) == 1 * 3 * 4
    assert rows.to_numpy().tolist() == [[3, 4, 5], [6, 7, 8]]
    assert rows.slice([1], [2]).to_numpy().tolist() == [[6, 7, 8]]
    rows.set_data_by_copy([0] * 6)
    assert parent.to_numpy().tolist() == [[0, 1, 2], [0, 0, 0], [0, 0, 0], [9, 10, 11]]


def test_slice_with_step():
    parent = filled([4, 3], "float32")
    sub = parent.slice([0, 0], [4, 3], [2, 2])
    assert sub.layout.shapes == [2, 2]
    assert sub.is_continue is False
    assert sub.to_numpy().tolist() == [[0, 2], [6, 8]]
    assert sub.get_data_by_share().tolist() == [[0, 2], [6, 8]]  # strided view: correct data


def test_slice_end_is_clamped_and_empty_ranges():
    parent = filled([4, 3])
    assert parent.slice([0], [10]).layout.shapes == [4, 3]
    empty = parent.slice([3], [1])
    assert empty.layout.shapes == [0, 3]
    assert empty.nbytes == 0
    assert empty.to_numpy().size == 0


def test_slice_argument_checks():
    t = filled([4, 3])
    with pytest.raises(AssertionError, match="slice with different length of start and end."):
        t.slice([0, 0], [1])
    with pytest.raises(AssertionError, match="slice with different length of start and step."):
        t.slice([0], [1], [1, 1])
    with pytest.raises(RuntimeError, match="The start and end must be the same size and less than layout ndim."):
        t.slice([0, 0, 0], [1, 1, 1])


def test_slice_of_slice():
    parent = filled([4, 6])
    a = parent.slice([1, 1], [4, 6])
    b = a.slice([1, 0], [3, 5], [1, 2])
    assert b.to_numpy().tolist() == parent.to_numpy()[2:4, 1:6:2].tolist()
    assert np.shares_memory(b.get_data_by_share(), parent.get_data_by_share())


def test_non_contiguous_slice_rejects_set_data():
    col = filled([4, 3]).slice([0, 1], [4, 3])
    with pytest.raises(AssertionError, match="set_data_by_copy can only apply in continue tensor."):
        col.set_data_by_copy([1] * 8)
    with pytest.raises(AssertionError, match="set_data_by_share can only apply in continue tensor."):
        col.set_data_by_share(np.zeros((4, 2), np.int32))


def test_setting_layout_on_column_slice_makes_it_contiguous_in_place():
    parent = filled([4, 3], "float32")
    col = parent.slice([0, 1], [4, 3])
    col.layout = [2, 2]
    assert col.is_continue
    assert col.to_numpy().tolist() == [[1, 2], [3, 4]]
    assert ptr(col) - ptr(parent) == 4


# --------------------------------------------------------------------------------------------------- memory address


def test_get_ctypes_memory():
    t = filled([2, 3], "float32")
    mem = t.get_ctypes_memory()
    assert isinstance(mem, ctypes.c_void_p)
    assert mem.value == t.get_data_by_share().ctypes.data
    values = (ctypes.c_float * 6).from_address(mem.value)
    assert list(values) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(RuntimeError, match="Tensor layout is not valid when get memory ptr."):
        LiteTensor().get_ctypes_memory()


# --------------------------------------------------------------------------------------------------- set_data_by_copy


def test_copy_list_keeps_layout_and_dtype():
    t = LiteTensor(LiteLayout([2, 16], "int8"))
    t.set_data_by_copy(list(range(32)))
    assert t.layout.shapes == [2, 16]
    out = t.to_numpy()
    assert out.dtype == np.int8
    assert out.ravel().tolist() == list(range(32))


def test_copy_list_too_long_or_short():
    t = LiteTensor(LiteLayout([3], "float32"))
    with pytest.raises(AssertionError, match="the length of input data to set to the tensor is too large."):
        t.set_data_by_copy([1, 2, 3, 4])
    t.set_data_by_copy([9, 9, 9])
    t.set_data_by_copy([1, 2])
    assert t.to_numpy().tolist() == [1, 2, 0]  # missing tail is zero, never read past the list


def test_copy_list_conversion_rules():
    t = LiteTensor(LiteLayout([3], "int32"))
    with pytest.raises(TypeError):
        t.set_data_by_copy([1.5, 2, 3])
    t.set_data_by_copy((4, 5, 6))  # tuples work like lists here
    assert t.to_numpy().tolist() == [4, 5, 6]
    i8 = LiteTensor(LiteLayout([1], "int8"))
    i8.set_data_by_copy([300])
    assert i8.to_numpy().tolist() == [44]  # wraps like a C assignment
    f = LiteTensor(LiteLayout([2], "float32"))
    f.set_data_by_copy([1, 2.5])
    assert f.to_numpy().tolist() == [1.0, 2.5]


def test_copy_list_with_layout_argument():
    t = LiteTensor(LiteLayout([3], "float32"))
    t.set_data_by_copy([1, 2, 3], layout=LiteLayout([2, 2], "int32"))
    assert t.layout.shapes == [2, 2] and t.layout.data_type == LiteDataType.LITE_INT
    assert t.to_numpy().tolist() == [[1, 2], [3, 0]]
    t2 = LiteTensor(LiteLayout([3], "float32"))
    t2.set_data_by_copy([1, 2, 3], layout=[4])
    assert t2.to_numpy().tolist() == [1, 2, 3, 0]


def test_copy_ndarray_takes_shape_and_dtype():
    t = LiteTensor(LiteLayout([4, 32], "int16"))
    arr = np.ones([8, 64], "int32")
    t.set_data_by_copy(arr)
    assert t.layout.shapes == [8, 64]
    assert t.layout.data_type == LiteDataType.LITE_INT
    assert t.to_numpy().sum() == 8 * 64
    assert not np.shares_memory(t.get_data_by_share(), arr)
    arr[0, 0] = 7
    assert t.to_numpy()[0, 0] == 1


def test_copy_ndarray_must_be_contiguous():
    t = LiteTensor()
    arr = np.arange(6).reshape(2, 3).astype(np.uint8).transpose(1, 0)
    with pytest.raises(AssertionError, match="input numpy is not continuous, please call input = np.ascontiguousarray"):
        t.set_data_by_copy(arr)
    t.set_data_by_copy(np.ascontiguousarray(arr))
    assert t.to_numpy().tolist() == [[0, 3], [1, 4], [2, 5]]


@pytest.mark.parametrize("dtype", ["float64", "int64", "bool"])
def test_copy_ndarray_unsupported_dtype_is_key_error(dtype):
    t = LiteTensor(LiteLayout([3]))
    with pytest.raises(KeyError) as info:
        t.set_data_by_copy(np.zeros(3, dtype))
    assert isinstance(info.value, UnsupportedDTypeError)
    assert "not a supported lite data type" in str(info.value)
    assert dtype in str(info.value)


def test_copy_zero_dim_array():
    t = LiteTensor(LiteLayout([3]))
    with pytest.raises(RuntimeError, match="Tensor layout is empty, please reset with layout"):
        t.set_data_by_copy(np.array(5, np.float32))


def test_copy_ndarray_max_dim():
    with pytest.raises(AssertionError, match="Layout max dim is 7."):
        LiteTensor().set_data_by_copy(np.zeros([1] * 8, np.float32))


def test_float16_and_uint16_work():
    h = LiteTensor(LiteLayout([2, 3], LiteDataType.LITE_HALF))
    assert h.nbytes == 12
    h.set_data_by_copy([0.5, 1, 2, 3, 4, 5])
    out = h.to_numpy()
    assert out.dtype == np.float16 and out.tolist() == [[0.5, 1, 2], [3, 4, 5]]
    arr = np.linspace(0, 1, 6, dtype=np.float16).reshape(3, 2)
    h.set_data_by_copy(arr)
    assert h.layout.dtype is np.float16 and np.array_equal(h.to_numpy(), arr)
    h.set_data_by_share(arr)
    assert np.shares_memory(h.get_data_by_share(), arr)
    u = LiteTensor(LiteLayout([3], "uint16"))
    u.set_data_by_copy([1, 2, 65535])
    assert u.to_numpy().dtype == np.uint16 and u.to_numpy().tolist() == [1, 2, 65535]


def test_copy_from_ctypes_memory():
    t = LiteTensor(LiteLayout([4], "int32"))
    buf = (ctypes.c_int * 4)(1, 2, 3, 4)
    t.set_data_by_copy(buf, 16)
    assert t.to_numpy().tolist() == [1, 2, 3, 4]
    arr = np.array([5, 6, 7, 8], np.int32)
    t.set_data_by_copy(arr.ctypes.data, arr.nbytes)
    assert t.to_numpy().tolist() == [5, 6, 7, 8]
    assert not np.shares_memory(t.get_data_by_share(), arr)
    t.set_data_by_copy(np.array([9, 9, 9, 9], np.int32).tobytes(), 16)
    assert t.to_numpy().tolist() == [9, 9, 9, 9]
    t.set_data_by_copy(ctypes.c_void_p(arr.ctypes.data), layout=LiteLayout([2], "int32"))
    assert t.layout.shapes == [2] and t.to_numpy().tolist() == [5, 6]


def test_copy_from_ctypes_needs_length_or_layout():
    t = LiteTensor(LiteLayout([4], "int32"))
    arr = np.zeros(4, np.int32)
    with pytest.raises(AssertionError, match="when input data is ctypes, the length of input data or layout must set"):
        t.set_data_by_copy(arr.ctypes.data)
    with pytest.raises(AssertionError, match="when input data is ctypes"):
        t.set_data_by_copy(arr.ctypes.data, 8)
    with pytest.raises(ctypes.ArgumentError) as info:
        t.set_data_by_copy({"a": 1}, 16)
    assert isinstance(info.value, LiteArgumentError)


# --------------------------------------------------------------------------------------------------- set_data_by_share


def test_share_ndarray_is_zero_copy():
    t = LiteTensor(LiteLayout([2, 16], "int8"))
    arr = np.arange(32, dtype=np.int8).reshape(2, 16)
    t.set_data_by_share(arr)
    view = t.get_data_by_share()
    assert np.shares_memory(view, arr)
    assert np.shares_memory(t._impl.array(), arr)
    assert ptr(t) == arr.ctypes.data
    arr[0, 8] = 100
    arr[1, 3] = 20
    out = t.to_numpy()
    assert out[0, 8] == 100 and out[1, 3] == 20
    view[0, 0] = 55  # writes through the tensor reach the caller's array
    assert arr[0, 0] == 55


def test_share_keeps_the_array_alive_on_the_impl():
    impl_holder = LiteTensor(LiteLayout([4], "float32"))
    arr = np.array([1, 2, 3, 4], np.float32)
    ref = weakref.ref(arr)
    wrapper = LiteTensor._wrap(impl_holder._impl)  # like a tensor from get_io_tensor
    wrapper.set_data_by_share(arr)
    del wrapper, arr
    gc.collect()
    assert ref() is not None  # still referenced by the shared impl (the original dropped it with the wrapper)
    assert impl_holder.to_numpy().tolist() == [1, 2, 3, 4]


def test_share_with_different_nbytes_takes_shape_keeps_dtype():
    t = LiteTensor(LiteLayout([4, 32], "int16"))
    arr = np.ones([8, 64], "int32")
    t.set_data_by_share(arr)
    assert t.layout.shapes == [8, 64]
    assert t.layout.data_type == LiteDataType.LITE_INT16  # bytes reinterpreted, as in the original
    assert np.shares_memory(t.get_data_by_share(), arr)


def test_share_with_same_nbytes_keeps_layout():
    t = LiteTensor(LiteLayout([2, 3], "float32"))
    raw = np.arange(6, dtype=np.float32).view(np.uint8)  # 24 raw bytes
    t.set_data_by_share(raw)
    assert t.layout.shapes == [2, 3]
    assert t.layout.data_type == LiteDataType.LITE_FLOAT
    assert t.to_numpy().ravel().tolist() == [0, 1, 2, 3, 4, 5]


def test_share_too_small_array_is_rejected():
    t = LiteTensor(LiteLayout([2], "float32"))
    with pytest.raises(RuntimeError, match="the memory reset to the tensor is too small."):
        t.set_data_by_share(np.arange(3, dtype=np.int8))  # would be float32[3]: 12 bytes from 3


def test_share_checks():
    t = LiteTensor(LiteLayout([2, 3], "int8"))
    arr = np.arange(6).reshape(2, 3).astype(np.uint8).transpose(1, 0)
    with pytest.raises(AssertionError, match="before call set_data_by_share"):
        t.set_data_by_share(arr, 2 * 3)
    arr = np.ascontiguousarray(arr)
    with pytest.raises(AssertionError, match="the data length is not match."):
        t.set_data_by_share(arr, 5)
    with pytest.raises(AssertionError, match="the data length is not match."):
        t.set_data_by_share(arr.ctypes.data, 5)
    with pytest.raises(ctypes.ArgumentError):
        t.set_data_by_share([1, 2, 3])
    t.set_data_by_share(arr.ctypes.data, 2 * 3)
    assert t.layout.shapes == [2, 3]
    assert t.to_numpy().tolist() == [[0, 3, 1], [4, 2, 5]]
    assert ptr(t) == arr.ctypes.data


def test_share_ctypes_objects():
    t = LiteTensor(LiteLayout([4, 8], "int16"))
    arr = np.arange(32, dtype=np.int16).reshape(4, 8)
    t.set_data_by_share(arr.ctypes.data, 4 * 8 * 2)
    assert t.to_numpy().ravel().tolist() == list(range(32))
    arr[0, 0] = 99
    assert t.to_numpy()[0, 0] == 99
    buf = (ctypes.c_int16 * 32)(*range(32))
    t.set_data_by_share(buf)
    assert ptr(t) == ctypes.addressof(buf)
    buf[5] = -5
    assert t.to_numpy()[0, 5] == -5


def test_share_with_layout_argument():
    t = LiteTensor(LiteLayout([2], "float32"))
    arr = np.arange(6, dtype=np.float32)
    t.set_data_by_share(arr, 5, layout=LiteLayout([2, 3]))  # layout given: length not checked
    assert t.layout.shapes == [2, 3]
    assert t.to_numpy().tolist() == [[0, 1, 2], [3, 4, 5]]


def test_share_needs_host_tensor():
    if cuda_device_count() == 0:
        pytest.skip("no CUDA device: LITE_CUDA tensors cannot be made")
    t = LiteTensor(LiteLayout([2]), LiteDeviceType.LITE_CUDA)
    with pytest.raises(AssertionError, match="set_data_by_share can only apply in cpu tensor or pinned tensor."):
        t.set_data_by_share(np.zeros(2, np.float32))


def test_bigger_layout_after_share_detaches_from_the_array():
    t = LiteTensor(LiteLayout([4], "float32"))
    arr = np.zeros(4, np.float32)
    t.set_data_by_share(arr)
    t.layout = [2]  # fits: still the caller's memory
    t.set_data_by_copy([1, 2])
    assert arr.tolist() == [1, 2, 0, 0]
    t.layout = [8]  # larger: new memory
    t.fill_zero()
    assert arr.tolist() == [1, 2, 0, 0]
    assert not np.shares_memory(t.get_data_by_share(), arr)


# --------------------------------------------------------------------------------------------------- get / to_numpy


def test_get_data_by_share_is_a_live_view():
    t = LiteTensor(LiteLayout([4, 32], "int16"))
    arr = np.arange(128, dtype=np.int16).reshape(4, 32)
    t.set_data_by_copy(arr)
    view = t.get_data_by_share()
    assert view.flags["OWNDATA"] is False
    assert view.flags["WRITEABLE"] is True
    assert np.array_equal(view, t.to_numpy())
    arr[1, 18] = 5
    arr[3, 7] = 345
    t.set_data_by_copy(arr)
    assert view[1, 18] == 5 and view[3, 7] == 345
    view[0, 0] = -1
    assert t.to_numpy()[0, 0] == -1
    with pytest.raises(RuntimeError, match="Tensor layout is not valid"):
        LiteTensor().get_data_by_share()


def test_to_numpy_is_a_fresh_copy():
    t = filled([2, 3], "uint8")
    out = t.to_numpy()
    assert out.flags["OWNDATA"] and out.flags["C_CONTIGUOUS"]
    assert out.dtype == np.uint8 and out.shape == (2, 3)
    out[0, 0] = 200
    assert t.to_numpy()[0, 0] == 0
    col = t.slice([0, 1], [2, 3])
    c = col.to_numpy()
    assert c.flags["C_CONTIGUOUS"] and c.tolist() == [[1, 2], [4, 5]]


# --------------------------------------------------------------------------------------------------- wrappers / impl


def test_wrappers_share_one_impl():
    t1 = LiteTensor(LiteLayout([2, 2]))
    t2 = LiteTensor._wrap(t1._impl)
    assert t1 is not t2 and t2._impl is t1._impl
    assert ptr(t1) == ptr(t2)
    t1.layout = [3, 3]
    assert t2.layout.shapes == [3, 3]
    t2.set_data_by_copy(list(range(9)))
    assert t1.to_numpy().ravel().tolist() == list(range(9))


def test_impl_array_is_a_view():
    t = filled([2, 3], "float32")
    impl = t._impl
    a = impl.array()
    assert a.shape == (2, 3) and a.dtype == np.float32
    assert np.shares_memory(a, t.get_data_by_share())
    a[1, 2] = 42
    assert t.to_numpy()[1, 2] == 42
    assert impl.data_ptr() == ptr(t) == a.ctypes.data
    assert impl.shape == (2, 3) and impl.ndim == 2 and impl.nbytes == 24
    assert impl.dtype == np.dtype(np.float32) and impl.data_type == LiteDataType.LITE_FLOAT


def test_impl_set_layout_and_version():
    impl = TensorImpl.create([2, 3], np.float32)
    assert not impl.is_allocated
    impl.array()
    v = impl.version
    p = impl.data_ptr()
    impl.set_layout([3, 2], np.dtype(np.int32))  # fits: no new memory
    assert impl.version == v and impl.data_ptr() == p
    assert impl.layout.shapes == [3, 2] and impl.layout.data_type == LiteDataType.LITE_INT
    impl.set_layout([6, 6])  # dtype kept, bigger: new memory on next use
    assert impl.dtype == np.int32
    impl.array()
    assert impl.version > v and impl.data_ptr() != p


def test_impl_version_changes_when_memory_is_replaced():
    t = LiteTensor(LiteLayout([4]))
    t.to_numpy()
    v0 = t._impl.version
    t.set_data_by_copy([1, 2, 3, 4])
    assert t._impl.version == v0  # copying into existing memory keeps the buffer
    t.set_data_by_share(np.zeros(4, np.float32))
    v1 = t._impl.version
    assert v1 > v0
    other = filled([4], "float32")
    t.share_memory_with(other)
    assert t._impl.version > v1
    assert t._impl.memory is other._impl.memory


def test_impl_share_array():
    impl = TensorImpl.create([1], "float32")
    out = np.arange(6, dtype=np.int32).reshape(2, 3)
    impl.share_array(out)
    assert impl.shape == (2, 3) and impl.dtype == np.int32
    assert np.shares_memory(impl.array(), out)
    assert LiteTensor._wrap(impl).to_numpy().tolist() == [[0, 1, 2], [3, 4, 5]]


def test_impl_array_of_empty_layout_raises():
    with pytest.raises(LiteError):
        TensorImpl().array()


# --------------------------------------------------------------------------------------------------- concat / dtypes


def test_concat():
    tensors = []
    for j in range(4):
        t = LiteTensor(LiteLayout([4, 32], "int16"))
        t.set_data_by_copy(np.full([4, 32], j, "int16"))
        tensors.append(t)
    out = LiteTensorConcat(tensors, 0)
    assert out.layout.shapes == [16, 32]
    assert out.layout.data_type == LiteDataType.LITE_INT16
    data = out.to_numpy()
    for j in range(4):
        assert (data[j * 4 : (j + 1) * 4] == j).all()
    assert out.device_type == CPU
    side = LiteTensorConcat([filled([2, 3]), filled([2, 1])], 1)
    assert side.to_numpy().tolist() == [[0, 1, 2, 0], [3, 4, 5, 1]]
    assert LiteTensorConcat([filled([2, 3]), filled([2, 1])], -1).layout.shapes == [2, 4]


def test_concat_result_is_independent_memory():
    a, b = filled([2]), filled([2])
    out = LiteTensorConcat([a, b], 0)
    a.fill_zero()
    assert out.to_numpy().tolist() == [0, 1, 0, 1]


def test_concat_device_arguments():
    a = LiteTensor(LiteLayout([2]), device_id=3)
    b = LiteTensor(LiteLayout([2]))
    assert LiteTensorConcat([a, b], 0).device_id == 3  # -1: the first tensor's
    assert LiteTensorConcat([a, b], 0, device_id=5).device_id == 5


def test_concat_errors():
    with pytest.raises(RuntimeError, match="the shape of tensors is not same!"):
        LiteTensorConcat([filled([2, 3]), filled([2, 4])], 0)
    with pytest.raises(RuntimeError, match="the dtype of tensors is not same!"):
        LiteTensorConcat([filled([2, 3], "int32"), filled([2, 3], "float32")], 0)
    with pytest.raises(RuntimeError, match="the dim size of tensors is not same!"):
        LiteTensorConcat([filled([2, 3]), filled([2])], 0)
    with pytest.raises(RuntimeError, match="the dim in concat is error."):
        LiteTensorConcat([filled([2, 3]), filled([2, 3])], 2)
    empty = LiteTensorConcat([], 0)
    assert empty.layout.ndim == 0


def test_lite_dtype_2_numpy():
    assert lite_dtype_2_numpy(LiteDataType.LITE_FLOAT) is np.float32
    assert lite_dtype_2_numpy(LiteDataType.LITE_HALF) is np.float16
    assert lite_dtype_2_numpy(LiteDataType.LITE_INT) is np.int32
    assert lite_dtype_2_numpy(LiteDataType.LITE_INT16) is np.int16
    assert lite_dtype_2_numpy(LiteDataType.LITE_INT8) is np.int8
    assert lite_dtype_2_numpy(LiteDataType.LITE_UINT8) is np.uint8
    assert lite_dtype_2_numpy(LiteDataType.LITE_UINT16) is np.uint16
    with pytest.raises(AssertionError, match="input must be LiteDataType when using lite_dtype_2_numpy."):
        lite_dtype_2_numpy(0)
