"""Bad inputs: each gives a clear error or a documented behaviour (README "Reliability", docs/reliability.md).

Decisions recorded here:
- wrong input name: ``InvalidInputError`` listing the inputs and outputs;
- wrong dtype: ``InvalidInputError`` "dtype mismatch" at forward; a dtype Lite has no type for (float64, int64):
  ``UnsupportedDTypeError`` at ``set_data_by_copy``;
- a rank or shape the graph cannot take: ``ShapeError`` (an ``InvalidInputError``) at forward, naming the operator;
  the network stays usable; a shape the graph can take (another batch) just runs;
- non-contiguous numpy arrays (transposed, reversed, Fortran order): ``AssertionError`` with the original's
  message, the tensor unchanged;
- NaN/Inf inputs propagate through the computation like in numpy (no error, no crash);
- forward before any input is set runs on zeros (input memory is allocated zero-filled);
- tensors outlive their network: a LiteTensor holds its memory, so after the network is gone it keeps its values
  and stays usable (it no longer feeds anything);
- ``share_memory_with``: the tensor takes the source's memory *and layout*; an input then runs at that shape (or
  ShapeError); an output whose shared memory is too small for the result gets new memory at the next forward
  (the source is left alone), a larger one is written at its start;
- ctypes arrays/structures and bytes carry their size: one smaller than the tensor is a ``LiteError`` (never a read
  or write past its end); a ``length`` that is not the tensor's size is the original's AssertionError; a bare int
  address or pointer carries no size, so the caller must make it large enough, as in the original.
"""

from __future__ import annotations

import ctypes
import gc
import weakref

import numpy as np
import pytest

from conftest import FIXTURES, run
from megenginelite import LiteDeviceType, LiteLayout, LiteNetwork, LiteTensor
from megenginelite.errors import DeviceError, InvalidInputError, LiteError, UnsupportedDTypeError

TWO = str(FIXTURES / "two_in_two_out.mge")  # a, b: (1, 8) float32 -> sum_out, prod_out: (1, 8) float32
EXP = str(FIXTURES / "op_elemwise_exp.mge")  # x: (4, 6) float32 -> out = exp(x)
INT = str(FIXTURES / "int32_input.mge")  # idx: (1, 6) int32 -> out (1, 6) float32


def network(path: str = TWO) -> LiteNetwork:
    net = LiteNetwork()
    net.load(path)
    return net


def ones(*shape, dtype="float32") -> np.ndarray:
    return np.ones(shape, dtype)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    return run(network(), {"a": ones(1, 8), "b": ones(1, 8) * 2})


# ------------------------------------------------------------------------------------------------ names, dtypes

def test_wrong_input_name():
    net = network()
    with pytest.raises(InvalidInputError, match="nosuch") as info:
        net.get_io_tensor("nosuch")
    assert "'a', 'b'" in str(info.value) and "sum_out" in str(info.value)


def test_wrong_dtype_is_reported_at_forward_and_the_network_recovers(reference):
    net = network()
    net.get_io_tensor("a").set_data_by_copy(np.ones((1, 8), np.int32))
    with pytest.raises(InvalidInputError, match=r"dtype mismatch: get=Int32 expect=Float32.*'a'"):
        net.forward()
    assert all(np.array_equal(reference[k], v) for k, v in run(net, {"a": ones(1, 8), "b": ones(1, 8) * 2}).items())


def test_int_model_fed_floats():
    net = network(INT)
    net.get_io_tensor("idx").set_data_by_copy(np.zeros((1, 6), np.float32))
    with pytest.raises(InvalidInputError, match="dtype mismatch"):
        net.forward()


@pytest.mark.parametrize("dtype", ["float64", "int64", "complex64"])
def test_dtype_lite_cannot_represent(dtype):
    t = network().get_io_tensor("a")
    with pytest.raises(UnsupportedDTypeError, match="not a supported lite data type"):
        t.set_data_by_copy(np.zeros((1, 8), dtype))
    assert isinstance(UnsupportedDTypeError("x"), KeyError)
    assert t.layout.shapes == [1, 8]


# ------------------------------------------------------------------------------------------------ ranks, shapes

@pytest.mark.parametrize("shape,match", [((1, 1, 8), "2-D inputs"), ((1, 9), "do not match"), ((8,), "2-D"),
                                         ((1, 4), "do not match")])
def test_shape_the_graph_cannot_take(shape, match, reference):
    net = network()
    net.get_io_tensor("a").set_data_by_copy(np.zeros(shape, np.float32))
    with pytest.raises(InvalidInputError, match=match) as info:
        net.forward()
    assert "MatrixMul" in str(info.value)  # names the operator that cannot take it
    # the network is still usable with a good shape
    assert all(np.array_equal(reference[k], v) for k, v in run(net, {"a": ones(1, 8), "b": ones(1, 8) * 2}).items())


def test_another_batch_the_graph_can_take(reference):
    out = run(network(), {"a": ones(3, 8), "b": ones(1, 8) * 2})
    assert out["sum_out"].shape == (3, 8)
    np.testing.assert_allclose(out["sum_out"], np.broadcast_to(reference["sum_out"], (3, 8)), rtol=1e-6)


def test_const_shape_refuses_a_new_shape():
    net = LiteNetwork()
    net.config.options.const_shape = True
    net.load(TWO)
    net.get_io_tensor("a").set_data_by_copy(np.zeros((2, 8), np.float32))
    with pytest.raises(InvalidInputError, match="disallowed shape change"):
        net.forward()


# ------------------------------------------------------------------------------------------------ non-contiguous

@pytest.mark.parametrize("make", [lambda: np.ones((8, 2), np.float32).T, lambda: np.ones((1, 16), np.float32)[:, ::2],
                                  lambda: np.ones((1, 8), np.float32)[:, ::-1],
                                  lambda: np.asfortranarray(np.ones((2, 8), np.float32))],
                         ids=["transposed", "strided", "reversed", "fortran"])
@pytest.mark.parametrize("method", ["set_data_by_copy", "set_data_by_share"])
def test_non_contiguous_array(make, method, reference):
    net = network()
    t = net.get_io_tensor("a")
    t.set_data_by_copy(ones(1, 8))
    array = make()
    assert not array.flags.c_contiguous
    with pytest.raises(AssertionError, match="input numpy is not continuous"):
        getattr(t, method)(array)
    assert t.layout.shapes == [1, 8] and np.array_equal(t.to_numpy(), ones(1, 8))  # unchanged
    # the documented fix works
    getattr(t, method)(np.ascontiguousarray(np.ones((8, 1), np.float32).T))
    net.get_io_tensor("b").set_data_by_copy(ones(1, 8) * 2)
    net.forward()
    assert np.array_equal(net.get_io_tensor("sum_out").to_numpy(), reference["sum_out"])


def test_transpose_of_a_vector_is_contiguous_and_accepted(reference):
    column = np.ones((8, 1), np.float32)
    assert column.T.flags.c_contiguous
    out = run(network(), {"a": column.T, "b": ones(1, 8) * 2})
    assert np.array_equal(out["sum_out"], reference["sum_out"])


# ------------------------------------------------------------------------------------------------ NaN / Inf

def test_nan_and_inf_propagate_elementwise():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, 1.0, -1.0] * 4, np.float32).reshape(4, 6)
    out = run(network(EXP), {"x": x})["out"]
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(out, np.exp(x), rtol=1e-6)  # nan -> nan, inf -> inf, -inf -> 0


def test_nan_propagates_through_a_model():
    out = run(network(), {"a": np.full((1, 8), np.nan, np.float32), "b": ones(1, 8)})
    assert np.isnan(out["sum_out"]).all() and np.isnan(out["prod_out"]).all()
    out = run(network(), {"a": np.full((1, 8), np.inf, np.float32), "b": ones(1, 8)})
    assert not np.isfinite(out["sum_out"]).any()


# ------------------------------------------------------------------------------------------------ forward before inputs

def test_forward_before_any_input_is_set_runs_on_zeros():
    net = network()
    net.forward()
    net.wait()
    assert np.array_equal(net.get_io_tensor("a").to_numpy(), np.zeros((1, 8), np.float32))
    unset = {n: net.get_io_tensor(n).to_numpy() for n in net.get_all_output_name()}
    explicit = run(network(), {"a": np.zeros((1, 8), np.float32), "b": np.zeros((1, 8), np.float32)})
    assert all(np.array_equal(unset[k], explicit[k]) for k in explicit)


# ------------------------------------------------------------------------------------------------ tensors outliving

def test_tensors_keep_working_after_their_network_is_gone(reference):
    net = network()
    a, out = net.get_io_tensor("a"), net.get_io_tensor("sum_out")
    run(net, {"a": ones(1, 8), "b": ones(1, 8) * 2})
    view = out.get_data_by_share()
    gone = weakref.ref(net)
    del net
    gc.collect()
    assert gone() is None  # tensors do not keep their network alive
    assert np.array_equal(out.to_numpy(), reference["sum_out"])  # last results kept
    assert np.array_equal(view, reference["sum_out"])
    a.set_data_by_copy(np.full((1, 8), 3, np.float32))  # still a usable tensor
    assert np.array_equal(a.to_numpy(), np.full((1, 8), 3, np.float32))
    copy = LiteTensor()
    copy.copy_from(out)
    assert np.array_equal(copy.to_numpy(), reference["sum_out"])


def test_shared_user_array_outlives_the_callers_reference(reference):
    net = network()
    data = ones(1, 8)
    net.get_io_tensor("a").set_data_by_share(data)
    ref = weakref.ref(data) if hasattr(data, "__weakref__") else None
    del data
    gc.collect()
    net.get_io_tensor("b").set_data_by_copy(ones(1, 8) * 2)
    net.forward()
    assert np.array_equal(net.get_io_tensor("sum_out").to_numpy(), reference["sum_out"])
    if ref is not None:
        assert ref() is not None  # the tensor keeps the array alive


# ------------------------------------------------------------------------------------------------ share_memory_with

def test_share_memory_with_a_larger_tensor_changes_the_input_shape(reference):
    net = network()
    src = LiteTensor(LiteLayout([2, 8], "float32"))
    src.set_data_by_copy(ones(2, 8))
    net.get_io_tensor("a").share_memory_with(src)
    assert net.get_io_tensor("a").layout.shapes == [2, 8]
    out = run(net, {"b": ones(1, 8) * 2})
    np.testing.assert_allclose(out["sum_out"], np.broadcast_to(reference["sum_out"], (2, 8)), rtol=1e-6)


def test_share_memory_with_a_smaller_tensor_is_a_shape_error():
    net = network()
    net.get_io_tensor("a").share_memory_with(LiteTensor(LiteLayout([1, 4], "float32")))
    with pytest.raises(InvalidInputError, match="do not match"):
        net.forward()


def test_share_memory_with_an_empty_tensor():
    with pytest.raises(LiteError, match="empty layout"):
        network().get_io_tensor("a").share_memory_with(LiteTensor())


def test_output_sharing_too_small_memory_gets_its_own(reference):
    net = network()
    small = LiteTensor(LiteLayout([1, 4], "float32"))
    small.set_data_by_copy(np.full((1, 4), 7, np.float32))
    out = net.get_io_tensor("sum_out")
    out.share_memory_with(small)
    run(net, {"a": ones(1, 8), "b": ones(1, 8) * 2})
    assert np.array_equal(small.to_numpy(), np.full((1, 4), 7, np.float32))  # never written past or into
    assert np.array_equal(out.to_numpy(), reference["sum_out"])


def test_output_sharing_larger_memory_is_written_at_its_start(reference):
    net = network()
    big = LiteTensor(LiteLayout([2, 8], "float32"))
    big.set_data_by_copy(np.full((2, 8), 7, np.float32))
    net.get_io_tensor("sum_out").share_memory_with(big)
    run(net, {"a": ones(1, 8), "b": ones(1, 8) * 2})
    assert np.array_equal(big.to_numpy()[0], reference["sum_out"][0])
    assert np.array_equal(big.to_numpy()[1], np.full(8, 7, np.float32))


def test_share_memory_with_a_pinned_host_cuda_tensor(reference):
    """Pinned host memory is host memory: usable by a CPU network without a GPU."""
    src = LiteTensor(LiteLayout([1, 8], "float32"), LiteDeviceType.LITE_CUDA, is_pinned_host=True)
    src.set_data_by_copy(ones(1, 8))
    net = network()
    net.get_io_tensor("a").share_memory_with(src)
    assert np.array_equal(run(net, {"b": ones(1, 8) * 2})["sum_out"], reference["sum_out"])


def test_device_tensor_without_a_device_is_a_device_error():
    from megenginelite.tensor import cuda_device_count

    if cuda_device_count():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(DeviceError, match="gpu0"):
        LiteTensor(LiteLayout([1, 8], "float32"), LiteDeviceType.LITE_CUDA)


def test_share_memory_with_a_device_tensor_on_the_emulated_device(reference):
    """Across devices (the host-emulated CUDA backend): a CPU network input sharing a device tensor's memory runs
    on its values; an output sharing a device tensor receives the result there."""
    device = pytest.importorskip("megenginelite.runtime.device")
    if not hasattr(device, "HostEmulatedBackend") or not hasattr(device, "use_backend"):
        pytest.skip("no emulated device backend")
    previous = device.use_backend(device.HostEmulatedBackend())
    try:
        src = LiteTensor(LiteLayout([1, 8], "float32"), LiteDeviceType.LITE_CUDA)
        src.set_data_by_copy(ones(1, 8))
        dst = LiteTensor(LiteLayout([1, 8], "float32"), LiteDeviceType.LITE_CUDA)
        net = network()
        net.get_io_tensor("a").share_memory_with(src)
        net.get_io_tensor("sum_out").share_memory_with(dst)
        out = run(net, {"b": ones(1, 8) * 2})
        assert np.array_equal(out["sum_out"], reference["sum_out"])
        assert np.array_equal(dst.to_numpy(), reference["sum_out"])
    finally:
        device.use_backend(previous)


# ------------------------------------------------------------------------------------------------ ctypes buffers

@pytest.mark.parametrize("kind", ["ctypes", "bytes"])
def test_buffer_smaller_than_the_tensor_is_refused(kind):
    t = network().get_io_tensor("a")
    t.set_data_by_copy(ones(1, 8))
    small = (ctypes.c_float * 4)(*range(4)) if kind == "ctypes" else bytes(16)
    with pytest.raises(LiteError, match="too small"):
        t.set_data_by_copy(small, 32)  # the length claims 32 bytes: not believed, the buffer has 16
    if kind == "ctypes":
        with pytest.raises(LiteError, match="too small"):
            t.set_data_by_share(small)  # length 0: "the whole buffer", which is smaller than the tensor
        with pytest.raises(LiteError, match="too small"):
            t.set_data_by_share(small, layout=LiteLayout([1, 8], "float32"))
    assert np.array_equal(t.to_numpy(), ones(1, 8))  # unchanged


def test_ctypes_length_that_is_not_the_tensor_size():
    t = network().get_io_tensor("a")
    buf = (ctypes.c_float * 8)()
    with pytest.raises(AssertionError, match="length of input data or layout must set"):
        t.set_data_by_copy(buf, 16)
    with pytest.raises(AssertionError, match="the data length is not match"):
        t.set_data_by_share(buf, 16)


def test_ctypes_buffer_larger_than_the_tensor_is_used_from_its_start():
    t = network().get_io_tensor("a")
    buf = (ctypes.c_float * 100)(*range(100))
    t.set_data_by_share(buf)
    assert np.array_equal(t.to_numpy(), np.arange(8, dtype=np.float32).reshape(1, 8))


def test_ctypes_buffer_of_the_right_size_is_shared_without_copy(reference):
    net = network()
    buf = (ctypes.c_float * 8)(*([1.0] * 8))
    t = net.get_io_tensor("a")
    t.set_data_by_share(buf, 32)
    assert t.get_ctypes_memory().value == ctypes.addressof(buf)
    assert np.array_equal(run(net, {"b": ones(1, 8) * 2})["sum_out"], reference["sum_out"])
    out_buf = (ctypes.c_float * 8)()
    net.get_io_tensor("sum_out").set_data_by_share(out_buf)
    net.forward()
    assert np.array_equal(np.frombuffer(out_buf, np.float32), reference["sum_out"].ravel())


def test_int_address_is_trusted_as_in_the_original(reference):
    """A bare address carries no size: the tensor's size is used (the caller's responsibility)."""
    backing = ones(1, 8)
    net = network()
    net.get_io_tensor("a").set_data_by_copy(backing.ctypes.data, backing.nbytes)
    assert np.array_equal(run(net, {"b": ones(1, 8) * 2})["sum_out"], reference["sum_out"])
