"""LITE_CUDA device memory: tensors, TensorBatchCollector and networks on the device code paths.

Most tests switch to ``HostEmulatedBackend`` (``use_backend``), which implements the device protocol on host memory
and checks that every pointer is used in the right direction, so the CUDA code paths (device allocations, the
memcpy directions, device pointers bound to ONNX Runtime) run here without a GPU.  The same paths on a real GPU are
tested in test_gpu.py, skipped unless a CUDA device and onnxruntime-gpu are present.
"""

from __future__ import annotations

import ctypes
import gc
import warnings

import numpy as np
import onnxruntime as ort
import pytest

from conftest import BY_NAME, model_path, reference
from megenginelite import *  # noqa: F401,F403  (as user code does)
from megenginelite.errors import DeviceError
from megenginelite.runtime import device as dev
from megenginelite.runtime.device import CudaBackend, HostEmulatedBackend, use_backend
from megenginelite.runtime.memory import DeviceMemory, DeviceView
from megenginelite.runtime.session import _bind
from megenginelite.runtime.memory import HostMemory

CUDA = LiteDeviceType.LITE_CUDA
CPU = LiteDeviceType.LITE_CPU
SMALL = BY_NAME["resnet18_small"]
SHUFFLE = BY_NAME["shufflenet_v2"]


def _gpu_available() -> bool:
    return CudaBackend().device_count() > 0 and "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.fixture
def emu():
    """The emulated device backend for the duration of a test."""
    backend = HostEmulatedBackend()
    previous = use_backend(backend)
    yield backend
    use_backend(previous)


@pytest.fixture
def real_cuda():
    """The real CUDA backend, whatever MEGENGINELITE_EMULATE_CUDA says."""
    backend = CudaBackend()
    previous = use_backend(backend)
    yield backend
    use_backend(previous)


def device_tensor(shape, dtype="float32", **kw) -> LiteTensor:
    return LiteTensor(LiteLayout(list(shape), dtype), CUDA, **kw)


def calls(backend, *names):
    return {n: backend.calls[n] for n in names}


# ---------------------------------------------------------------------------------------------- tensors


def test_device_tensor_round_trip(emu):
    t = device_tensor([2, 3])
    assert t.device_type == CUDA and t.device_id == 0 and not t.is_pinned_host
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    t.set_data_by_copy(arr)
    mem = t._impl.memory
    assert isinstance(mem, DeviceMemory) and mem.is_host is False
    assert t.get_ctypes_memory().value == mem.ptr()
    assert emu.calls["memcpy_h2d"] == 1
    out = t.to_numpy()
    assert emu.calls["memcpy_d2h"] == 1
    assert out.flags.c_contiguous and out.flags.owndata
    np.testing.assert_array_equal(out, arr)
    arr[:] = 0  # a copy was made: the device keeps its values
    np.testing.assert_array_equal(t.to_numpy(), np.arange(6, dtype=np.float32).reshape(2, 3))


def test_set_data_by_copy_on_device(emu):
    t = device_tensor([4], "int32")
    t.set_data_by_copy([1, 2])  # list: dtype and layout kept, the rest zero
    assert t.to_numpy().tolist() == [1, 2, 0, 0]
    t.set_data_by_copy(np.array([[1.5, 2.5]], np.float32))  # ndarray: takes its shape and dtype
    assert t.layout.shapes == [1, 2] and t.layout.data_type == LiteDataType.LITE_FLOAT
    assert t.to_numpy().tolist() == [[1.5, 2.5]]
    src = (ctypes.c_float * 2)(7, 8)  # ctypes: host memory, copied to the device
    t.set_data_by_copy(src, 8)
    assert t.to_numpy().tolist() == [[7, 8]]
    t.set_data_by_copy(np.array([3, 4], np.float32).tobytes(), 8)
    assert t.to_numpy().tolist() == [[3, 4]]
    assert emu.calls["memcpy_h2d"] == 4


def test_fresh_device_memory_is_not_zeroed_but_fill_zero_is_memset(emu):
    t = device_tensor([3])
    assert np.isnan(t.to_numpy()).all()  # the emulation poisons new allocations (0xFF bytes)
    t.fill_zero()
    assert emu.calls["memset"] == 1
    assert t.to_numpy().tolist() == [0, 0, 0]


@pytest.mark.parametrize("src_dev,dst_dev", [(CPU, CUDA), (CUDA, CPU), (CUDA, CUDA), (CPU, CPU)])
def test_copy_from_all_directions(emu, src_dev, dst_dev):
    src = LiteTensor(LiteLayout([2, 2], "float32"), src_dev)
    src.set_data_by_copy(np.array([[1, 2], [3, 4]], np.float32))
    dst = LiteTensor(LiteLayout([4, 3], "float32"), dst_dev)
    before = dict(emu.calls)
    dst.copy_from(src)
    assert dst.layout.shapes == [2, 2]  # adopts the source layout, as in the original
    assert dst.to_numpy().tolist() == [[1, 2], [3, 4]]
    assert dst.device_type == dst_dev  # copy_from never moves a tensor to another device
    expected = {(CPU, CUDA): "memcpy_h2d", (CUDA, CPU): "memcpy_d2h", (CUDA, CUDA): "memcpy_d2d"}.get((src_dev, dst_dev))
    if expected:
        assert emu.calls[expected] == before.get(expected, 0) + 1
    src.set_data_by_copy(np.zeros((2, 2), np.float32))
    assert dst.to_numpy().tolist() == [[1, 2], [3, 4]]  # a deep copy


def test_copy_from_dtype_mismatch(emu):
    a = device_tensor([2], "int32")
    b = device_tensor([2], "float32")
    with pytest.raises(RuntimeError, match="attempt to access dtype Int32 as Float32"):
        a.copy_from(b)


def test_share_memory_with_between_device_tensors_does_not_copy(emu):
    src = device_tensor([2, 3])
    src.set_data_by_copy(np.ones((2, 3), np.float32))
    dst = device_tensor([5], "int32")
    before = dict(emu.calls)
    dst.share_memory_with(src)
    assert dict(emu.calls) == before  # no allocation, no copy
    assert dst._impl.memory is src._impl.memory
    assert dst.get_ctypes_memory().value == src.get_ctypes_memory().value
    assert dst.layout.shapes == [2, 3] and dst.layout.data_type == LiteDataType.LITE_FLOAT
    src.set_data_by_copy(np.full((2, 3), 5, np.float32))
    assert (dst.to_numpy() == 5).all()


def test_host_tensor_sharing_a_device_tensor_becomes_a_device_tensor(emu):
    src = device_tensor([2])
    host = LiteTensor(LiteLayout([2], "float32"))
    host.share_memory_with(src)
    assert host.device_type == CUDA
    assert not host._impl.is_host_accessible


def test_row_slice_is_a_device_view_at_an_offset(emu):
    t = device_tensor([4, 3])
    t.set_data_by_copy(np.arange(12, dtype=np.float32).reshape(4, 3))
    row = t.slice([1], [3])
    assert row.device_type == CUDA and row.is_continue
    assert row._impl.memory is t._impl.memory
    assert row.get_ctypes_memory().value == t.get_ctypes_memory().value + 1 * 3 * 4
    assert row.to_numpy().tolist() == [[3, 4, 5], [6, 7, 8]]
    row.set_data_by_copy([0, 0, 0, 0, 0, 0])
    row.fill_zero()
    assert t.to_numpy()[:, 0].tolist() == [0, 0, 0, 9]


def test_strided_slice_of_a_device_tensor(emu):
    t = device_tensor([3, 4])
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    t.set_data_by_copy(values)
    col = t.slice([0, 1], [3, 4], [1, 2])  # columns 1 and 3
    assert not col.is_continue
    np.testing.assert_array_equal(col.to_numpy(), values[:, 1::2])
    src = LiteTensor(LiteLayout([3, 2], "float32"))
    src.set_data_by_copy(-np.ones((3, 2), np.float32))
    col.copy_from(src)  # into a strided device view: the gaps keep their values
    expected = values.copy()
    expected[:, 1::2] = -1
    np.testing.assert_array_equal(t.to_numpy(), expected)
    col.fill_zero()
    expected[:, 1::2] = 0
    np.testing.assert_array_equal(t.to_numpy(), expected)
    col.reshape([6])  # compacted into new device memory
    assert col.is_continue and col.device_type == CUDA
    assert isinstance(col._impl.memory, DeviceMemory) and col._impl.memory is not t._impl.memory
    assert col.to_numpy().tolist() == [0] * 6


def test_set_data_by_share_on_a_device_tensor(emu):
    t = device_tensor([2])
    with pytest.raises(AssertionError, match="set_data_by_share can only apply in cpu tensor or pinned tensor."):
        t.set_data_by_share(np.zeros(2, np.float32))
    with pytest.raises(AssertionError, match="set_data_by_share can only apply in cpu tensor or pinned tensor."):
        t.set_data_by_share(b"\0" * 8)
    # an address given to a device tensor is device memory (e.g. from another CUDA library), shared as is
    other = device_tensor([2])
    other.set_data_by_copy(np.array([4, 5], np.float32))
    address = other.get_ctypes_memory()
    t.set_data_by_share(address, 8)
    assert t.get_ctypes_memory().value == address.value
    assert t._impl.memory.borrowed and t.to_numpy().tolist() == [4, 5]


def test_pinned_cuda_tensor_is_host_memory(emu):
    t = LiteTensor(LiteLayout([2], "float32"), CUDA, is_pinned_host=True)
    arr = np.array([1, 2], np.float32)
    t.set_data_by_share(arr)
    assert isinstance(t._impl.memory, HostMemory)
    assert np.shares_memory(t.get_data_by_share(), arr)
    assert emu.calls["malloc"] == 0


def test_host_access_to_device_memory_needs_a_copy(emu):
    t = device_tensor([2])
    with pytest.raises(DeviceError, match="get_data_by_share can only apply in host tensor"):
        t.get_data_by_share()
    with pytest.raises(DeviceError, match=r"copy it to host with to_numpy\(\)"):
        t._impl.array()
    with pytest.raises(DeviceError, match="no host buffer"):
        t._impl.memory.buffer  # noqa: B018


def test_concat_of_device_tensors(emu):
    a = device_tensor([1, 2])
    a.set_data_by_copy(np.array([[1, 2]], np.float32))
    b = device_tensor([1, 2])
    b.set_data_by_copy(np.array([[3, 4]], np.float32))
    c = LiteTensorConcat([a, b], 0)
    assert c.device_type == CUDA and isinstance(c._impl.memory, DeviceMemory)
    assert c.to_numpy().tolist() == [[1, 2], [3, 4]]


def test_device_memory_is_freed_with_the_last_tensor(emu):
    t = device_tensor([1024])
    t.fill_zero()
    view = t.slice([0], [10])
    assert emu.live_allocations == 1
    del t
    gc.collect()
    assert emu.live_allocations == 1  # the slice keeps it
    del view
    gc.collect()
    assert emu.live_allocations == 0 and emu.calls["free"] == 1


def test_device_ids(emu):
    emu.devices = 2
    t = LiteTensor(LiteLayout([2], "float32"), CUDA, device_id=1)
    t.fill_zero()
    assert t.device_id == 1 and t._impl.memory.device_id == 1
    with pytest.raises(DeviceError, match=r"request gpu2 out of valid range \[0, 2\)"):
        LiteTensor(LiteLayout([2], "float32"), CUDA, device_id=2)
    assert LiteGlobal.get_device_count(CUDA) == 2


def test_emulated_backend_rejects_host_device_mixups(emu):
    ptr = emu.malloc(16)
    host = np.zeros(16, np.uint8)
    with pytest.raises(DeviceError, match="not inside a device allocation"):
        emu.memcpy_h2d(host.ctypes.data, host.ctypes.data, 16)  # host pointer as the device destination
    with pytest.raises(DeviceError, match="not host memory"):
        emu.memcpy_h2d(ptr, ptr, 16)  # device pointer as the host source
    with pytest.raises(DeviceError, match="not inside a device allocation"):
        emu.memcpy_d2d(ptr + 8, ptr, 16)  # past the end of the allocation
    emu.free(ptr)
    with pytest.raises(DeviceError, match="not an allocation"):
        emu.free(ptr)


# ---------------------------------------------------------------------------------------------- backend choice


def test_backend_is_switchable_and_env_selects_the_emulation(monkeypatch):
    previous = use_backend(None)
    try:
        monkeypatch.setenv(dev.EMULATE_ENV, "1")
        assert isinstance(dev.backend(), HostEmulatedBackend)
        monkeypatch.delenv(dev.EMULATE_ENV)
        assert isinstance(dev.backend(), HostEmulatedBackend)  # read once
        use_backend(None)
        assert isinstance(dev.backend(), CudaBackend)
        with pytest.raises(TypeError):
            use_backend(object())
    finally:
        use_backend(previous)


def test_memory_keeps_its_backend(emu):
    t = device_tensor([2])
    t.set_data_by_copy([1, 2])
    use_backend(HostEmulatedBackend())  # later allocations elsewhere; this one is still read through its own
    assert t.to_numpy().tolist() == [1, 2]


def test_get_device_count(emu):
    assert LiteGlobal.get_device_count(CUDA) == 1
    emu.devices = 0
    assert LiteGlobal.get_device_count(CUDA) == 0


# ---------------------------------------------------------------------------------------------- without a GPU


@pytest.mark.skipif(_gpu_available() or CudaBackend().device_count() > 0, reason="a CUDA device is present")
class TestWithoutGpu:
    def test_tensor(self, real_cuda):
        with pytest.raises(DeviceError, match=r"request gpu0 out of valid range \[0, 0\)") as info:
            device_tensor([2])
        assert isinstance(info.value, RuntimeError)
        reason = real_cuda.unavailable_reason()
        assert reason and reason in str(info.value)
        assert any(s in reason for s in ("runtime library was not found", "driver", "no CUDA device"))

    def test_collector(self, real_cuda):
        with pytest.raises(DeviceError, match=r"request gpu0 out of valid range \[0, 0\)"):
            TensorBatchCollector([4, 2], dtype=LiteDataType.LITE_FLOAT)

    def test_network_load(self, real_cuda):
        network = LiteNetwork(LiteConfig(device_type=CUDA))
        with pytest.raises(DeviceError, match=r"request gpu0 out of valid range \[0, 0\)"):
            network.load(model_path(SMALL))

    def test_device_count_is_zero_without_exception(self, real_cuda):
        assert LiteGlobal.get_device_count(CUDA) == 0
        assert real_cuda.device_count() == 0

    def test_memory_calls_fail_clearly(self, real_cuda):
        with pytest.raises(DeviceError):
            real_cuda.malloc(16)

    def test_pinned_tensors_still_work(self, real_cuda):
        t = LiteTensor(LiteLayout([2], "float32"), CUDA, is_pinned_host=True)
        t.set_data_by_copy([1, 2])
        assert t.to_numpy().tolist() == [1, 2]


def test_missing_runtime_library_is_named():
    backend = CudaBackend(library="/nonexistent/libcudart.so.12")
    assert backend.device_count() == 0
    assert "CUDA runtime library was not found" in backend.unavailable_reason()
    with pytest.raises(DeviceError, match="CUDA runtime library was not found"):
        backend.malloc(16)


# ---------------------------------------------------------------------------------------------- batch collector


def test_batch_collector_on_device(emu):
    bc = TensorBatchCollector([4, 2, 3], dtype=LiteDataType.LITE_FLOAT)  # LITE_CUDA is the default
    batch = bc.get()
    base = batch.get_ctypes_memory().value
    assert batch.device_type == CUDA and isinstance(batch._impl.memory, DeviceMemory)
    sample = np.ones((2, 3), np.float32)
    h2d = emu.calls["memcpy_h2d"]
    assert bc.collect(sample) == 0  # host -> device
    assert emu.calls["memcpy_h2d"] == h2d + 1
    dev_sample = device_tensor([2, 3])
    dev_sample.set_data_by_copy(sample * 2)
    d2d = emu.calls["memcpy_d2d"]
    assert bc.collect(dev_sample) == 1  # device -> device
    assert emu.calls["memcpy_d2d"] == d2d + 1
    host_sample = LiteTensor(LiteLayout([2, 3], "float32"))
    host_sample.set_data_by_copy(sample * 3)
    assert bc.collect(host_sample) == 2  # host tensor -> device
    bc.collect_by_ctypes((ctypes.c_float * 6)(*([4.0] * 6)), 24)
    data = bc.to_numpy()
    assert [float(data[i, 0, 0]) for i in range(4)] == [1, 2, 3, 4]
    row = bc.get_tensor_at(2)
    assert row.device_type == CUDA and row.get_ctypes_memory().value == base + 2 * 24
    assert (row.to_numpy() == 3).all()
    assert bc.get() is batch and batch._impl.memory is bc.get()._impl.memory
    bc.free([0])
    assert bc.collect(sample * 9) == 0
    assert (bc.to_numpy()[0] == 9).all()


def test_batch_collector_existing_device_tensor(emu):
    tensor = device_tensor([2, 3], "int32")
    bc = TensorBatchCollector([2, 3], tensor=tensor)
    bc.collect_id(np.array([1, 2, 3], np.int32), 1)
    assert tensor.to_numpy().tolist()[1] == [1, 2, 3]


# ---------------------------------------------------------------------------------------------- networks


def quick_start_program(model_path: str, device: int, batch: int = 4, rounds: int = 3) -> list[np.ndarray]:
    """The quick start's second program ("使用 TensorBatchCollector 辅助完成 CUDA 推理"), line by line, with the
    device type as a parameter and the outputs returned; ``LiteNetworkIO(inputs=[["data", is_host=False]])`` of
    the page (not valid Python) is written ``[["data", False]]``."""
    net_config = LiteConfig(device_type=device)
    ios = LiteNetworkIO(inputs=[["data", False]])
    network = LiteNetwork(config=net_config, io=ios)
    network.load(model_path)
    dev_input_tensor = network.get_io_tensor("data")
    input_layout = dev_input_tensor.layout
    shape = list(input_layout.shapes)[0:input_layout.ndim]
    arr = np.ones(shape[1:], "float32")
    shape[0] = batch
    batch_tensor = TensorBatchCollector(shape, dtype=LiteDataType.LITE_FLOAT, device_type=device)
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the first free() of never-collected slots warns, as in the original
        for _ in range(rounds):
            batch_tensor.free(range(batch))
            for i in range(batch):
                assert batch_tensor.collect(arr) == i
                arr += 1
            dev_input_tensor.share_memory_with(batch_tensor.get())
            network.forward()
            network.wait()
            output_names = network.get_all_output_name()
            output_tensor = network.get_io_tensor(output_names[0])
            output_data = output_tensor.to_numpy()
            results.append(output_data)
    return results


def test_quick_start_cuda_program_on_the_emulated_device(emu):
    expected = quick_start_program(model_path(SHUFFLE), CPU)
    got = quick_start_program(model_path(SHUFFLE), CUDA)
    assert emu.calls["memcpy_h2d"] >= 12  # every sample went host -> device
    assert len(got) == 3
    for g, e in zip(got, expected):
        assert g.shape == (4, 1000)
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-7)
    assert not np.allclose(got[0], got[1])  # the rounds saw different inputs


def test_device_input_is_bound_without_copies(emu):
    network = LiteNetwork(LiteConfig(device_type=CUDA), LiteNetworkIO(inputs=[LiteIO("data", is_host=False)]))
    network.load(model_path(SMALL))
    data = network.get_io_tensor("data")
    out = network.get_io_tensor("logits")
    assert data.device_type == CUDA and not data.is_pinned_host
    assert out.device_type == CUDA and out.is_pinned_host  # is_host outputs: pinned host memory, as the original
    ref = reference(SMALL)
    bc = TensorBatchCollector(list(ref["input:data"].shape), dtype=LiteDataType.LITE_FLOAT)
    bc.collect(ref["input:data"][0])
    data.share_memory_with(bc.get())
    assert data._impl.memory is bc.get()._impl.memory
    seen = {}
    network.set_start_callback(lambda ios: seen.update({io.name: io.is_host for io in ios}))
    before = dict(emu.calls)
    network.forward()
    network.wait()
    copies = ("memcpy_h2d", "memcpy_d2h", "memcpy_d2d", "malloc")
    assert {k: emu.calls[k] for k in copies} == {k: before.get(k, 0) for k in copies}  # bound by pointer
    assert emu.calls["synchronize"] > before.get("synchronize", 0)
    assert seen == {"data": False}
    np.testing.assert_allclose(out.to_numpy(), ref["output:logits"], rtol=SMALL["rtol"], atol=SMALL["atol"])


def test_device_output_stays_on_the_device(emu):
    io = LiteNetworkIO(inputs=[LiteIO("data", is_host=False)], outputs=[LiteIO("logits", is_host=False)])
    network = LiteNetwork(LiteConfig(device_type=CUDA), io)
    network.load(model_path(SMALL))
    ref = reference(SMALL)
    network.get_io_tensor("data").set_data_by_copy(ref["input:data"])  # host -> device
    out = network.get_io_tensor("logits")
    network.forward()
    network.wait()
    assert isinstance(out._impl.memory, DeviceMemory)
    with pytest.raises(DeviceError):
        out.get_data_by_share()
    d2h = emu.calls["memcpy_d2h"]
    np.testing.assert_allclose(out.to_numpy(), ref["output:logits"], rtol=SMALL["rtol"], atol=SMALL["atol"])
    assert emu.calls["memcpy_d2h"] == d2h + 1
    host = LiteTensor()
    host.copy_from(out)  # device -> host
    np.testing.assert_allclose(host.to_numpy(), ref["output:logits"], rtol=SMALL["rtol"], atol=SMALL["atol"])


def test_device_input_with_a_new_batch_size(emu):
    network = LiteNetwork(LiteConfig(device_type=CUDA), LiteNetworkIO(inputs=[LiteIO("data", is_host=False)]))
    network.load(model_path(SMALL))
    ref = reference(SMALL)["input:data"]
    data = network.get_io_tensor("data")
    data.set_data_by_copy(np.concatenate([ref, ref]))
    network.forward()
    network.wait()
    out = network.get_io_tensor("logits").to_numpy()
    assert out.shape == (2, 10)
    np.testing.assert_allclose(out[0], out[1], rtol=1e-6)


def test_cuda_network_on_the_emulated_device_uses_the_cpu_provider(emu):
    network = LiteNetwork(LiteConfig(device_type=CUDA))
    config = network._session_config()
    assert config.providers == ("CPUExecutionProvider",)


class _CudaLike(HostEmulatedBackend):
    """Host memory that claims to be CUDA memory: to check what would be bound on a GPU."""

    ort_device = "cuda"
    emulated = False


def test_device_views_are_bound_as_cuda_with_their_device_id():
    backend = _CudaLike(devices=2)
    mem = DeviceMemory.allocate(64, 1, backend)
    view = DeviceView(mem, 16, (2, 3), np.dtype(np.float32))
    bound = []
    _bind(lambda *args: bound.append(args), "data", view)
    assert bound == [("data", "cuda", 1, np.dtype(np.float32), [2, 3], mem.ptr() + 16)]
    host = np.zeros((2, 3), np.float32)
    _bind(lambda *args: bound.append(args), "out", host)
    assert bound[1] == ("out", "cpu", 0, host.dtype, [2, 3], host.ctypes.data)
    emulated = DeviceMemory.allocate(64, 0, HostEmulatedBackend())
    assert DeviceView(emulated, 0, (2,), np.dtype(np.float32)).ort_device == "cpu"


def test_cuda_session_config_names_the_device():
    from megenginelite.runtime.session import SessionConfig

    config = SessionConfig(providers=("CUDAExecutionProvider", "CPUExecutionProvider"), device_id=1)
    assert config.provider_list() == [("CUDAExecutionProvider", {"device_id": "1", "use_tf32": "0"}), "CPUExecutionProvider"]
    graph = SessionConfig(providers=("CUDAExecutionProvider",), cuda_graph=True, tf32=True).provider_list()
    assert graph == [("CUDAExecutionProvider", {"device_id": "0", "use_tf32": "1", "enable_cuda_graph": "1"})]


# ---------------------------------------------------------------------------------------------- CUDA-graph staging


def test_cuda_graph_staging_on_the_emulated_device(emu, monkeypatch):
    """The fixed IO buffers a CUDA-graph session uses (bench/gpu_check.sh runs the graphs themselves on a GPU):
    inputs are copied in from wherever the tensors lie (a slice of a device batch, pinned host memory), outputs out
    to host or device tensors, and a new shape gets a plan with buffers of its own."""
    monkeypatch.setenv("MEGENGINELITE_CUDA_GRAPH", "1")
    ref = reference(SMALL)
    io = LiteNetworkIO(inputs=[LiteIO("data", is_host=False)], outputs=[LiteIO("logits", is_host=False)])
    network = LiteNetwork(LiteConfig(device_type=CUDA), io)
    network.load(model_path(SMALL))
    staged = network._plan.graph_io
    assert staged is not None
    batch = device_tensor([3, 3, 64, 64])
    batch.set_data_by_copy(np.concatenate([ref["input:data"] * 0, ref["input:data"], ref["input:data"] * 2]))
    network.get_io_tensor("data").share_memory_with(batch.slice([1], [2]))
    d2d = emu.calls["memcpy_d2d"]
    network.forward()
    network.wait()
    assert emu.calls["memcpy_d2d"] == d2d + 2  # the input in, the output out: device to device
    out = network.get_io_tensor("logits")
    assert isinstance(out._impl.memory, DeviceMemory) and out._impl.memory is not staged.outputs[0][1]
    np.testing.assert_allclose(out.to_numpy(), ref["output:logits"], rtol=SMALL["rtol"], atol=SMALL["atol"])
    network.get_io_tensor("data").share_memory_with(batch)  # batch 3: a new plan, buffers of its own
    network.forward()
    network.wait()
    assert network._plan.graph_io is not staged and len(network._model._plans) == 2
    np.testing.assert_allclose(out.to_numpy()[1], ref["output:logits"][0], rtol=SMALL["rtol"], atol=SMALL["atol"])


@pytest.mark.parametrize("name", ["op_cond_take", "op_matinv"])
def test_no_cuda_graph_for_outputs_of_run_time_length_or_unsafe_nodes(emu, monkeypatch, name):
    """CondTake's output length comes from the data; MatrixInverse lowers to com.microsoft Inverse, whose kernel
    cannot be replayed (runtime/session.py GRAPH_SAFE_NODES)."""
    monkeypatch.setenv("MEGENGINELITE_CUDA_GRAPH", "1")
    entry = BY_NAME[name]
    network = LiteNetwork(LiteConfig(device_type=CUDA))
    network.load(model_path(entry))
    assert network._plan.graph_io is None
    ref = reference(entry)
    for inp in entry["inputs"]:
        network.get_io_tensor(inp).set_data_by_copy(ref[f"input:{inp}"])
    network.forward()
    network.wait()
    for out in entry["outputs"]:
        np.testing.assert_allclose(network.get_io_tensor(out).to_numpy(), ref[f"output:{out}"], rtol=entry["rtol"],
                                   atol=entry["atol"])
