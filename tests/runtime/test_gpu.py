"""LITE_CUDA on a real GPU: the device memory, the quick start's CUDA program and every fixture model on the GPU.

Skipped unless a CUDA device and onnxruntime-gpu are present (bench/gpu_check.sh runs them on the GPU machine).
GPU outputs are compared with the references real MegEngine Lite recorded on the CPU, at rtol 1e-3 / atol 1e-4
(or the fixture's own tolerance where it is looser): cuDNN's float32 convolutions sum in another order than the
CPU kernels; TF32 is off (``SessionConfig.tf32``), so no product is rounded to 10 mantissa bits.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import threading

import numpy as np
import pytest

from conftest import BY_NAME, manifest_params, model_path, reference, run, unordered_rows
from megenginelite import *  # noqa: F401,F403  (as user code does)
from megenginelite.errors import DeviceError
from megenginelite.runtime.device import CudaBackend, tensorrt_unavailable_reason, use_backend
from megenginelite.runtime.memory import DeviceMemory
from test_device import _gpu_available, quick_start_program
from run_time_cases import DYNAMIC_CASES, DYNAMIC_MANIFEST, check_run_time_case

CUDA = LiteDeviceType.LITE_CUDA
CPU = LiteDeviceType.LITE_CPU
SHUFFLE = BY_NAME["shufflenet_v2"]
SMALL = BY_NAME["resnet18_small"]
RTOL, ATOL = 1e-3, 1e-4


pytestmark = pytest.mark.skipif(not _gpu_available(), reason="needs a CUDA device and onnxruntime-gpu")


@pytest.fixture(autouse=True)
def real_cuda():
    """The real CUDA backend, whatever MEGENGINELITE_EMULATE_CUDA says; after the test, once its objects are freed,
    the device must be healthy (a kernel's illegal access is reported by the next call, which may be another
    test's: this pins it to the test that caused it)."""
    backend = CudaBackend()
    previous = use_backend(backend)
    yield backend
    use_backend(previous)
    gc.collect()
    backend.synchronize()


def cuda_network(*device_inputs: str, device_outputs: tuple[str, ...] = ()) -> LiteNetwork:
    io = LiteNetworkIO(inputs=[LiteIO(n, is_host=False) for n in device_inputs],
                       outputs=[LiteIO(n, is_host=False) for n in device_outputs])
    return LiteNetwork(LiteConfig(device_type=CUDA), io)


def assert_close(entry: dict, got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, (what, got.shape, want.shape, got.dtype, want.dtype)
    if np.issubdtype(want.dtype, np.floating):
        np.testing.assert_allclose(got, want, rtol=max(RTOL, entry["rtol"]), atol=max(ATOL, entry["atol"]),
                                   err_msg=f"{entry['name']}:{what}")
    else:
        np.testing.assert_array_equal(got, want, err_msg=f"{entry['name']}:{what}")


def _fixture_params(models_only: bool) -> list:
    """test_models' parameters (with its expected failures), or only the whole-model fixtures."""
    return [p for p in manifest_params() if not models_only or p.values[0]["category"] == "model"]


def check_fixture(entry: dict, network: LiteNetwork) -> None:
    ref = reference(entry)
    network.load(model_path(entry))
    outputs = run(network, {n: ref[f"input:{n}"] for n in entry["inputs"]})
    for name in entry["outputs"]:
        got, want = outputs[name], ref[f"output:{name}"]
        if unordered_rows(entry):
            got, want = np.sort(got, axis=-1), np.sort(want, axis=-1)
        assert_close(entry, got, want, name)


@pytest.mark.parametrize("entry", _fixture_params(models_only=False))
def test_fixture_on_the_gpu_with_host_io(entry):
    check_fixture(entry, cuda_network())


@pytest.mark.parametrize("entry", _fixture_params(models_only=True))
def test_model_on_the_gpu_with_device_inputs(entry):
    check_fixture(entry, cuda_network(*entry["inputs"]))


def test_quick_start_cuda_program():
    expected = quick_start_program(model_path(SHUFFLE), CPU)
    got = quick_start_program(model_path(SHUFFLE), CUDA)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=1e-6)


def test_device_round_trip_copy_and_slice():
    t = LiteTensor(LiteLayout([2, 3], "float32"), CUDA)
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    t.set_data_by_copy(arr)
    assert isinstance(t._impl.memory, DeviceMemory)
    other = LiteTensor(LiteLayout([2, 3], "float32"), CUDA)
    other.copy_from(t)  # device -> device
    np.testing.assert_array_equal(other.to_numpy(), arr)
    other.slice([1], [2]).fill_zero()
    assert other.to_numpy()[1].tolist() == [0, 0, 0]
    host = LiteTensor()
    host.copy_from(t)  # device -> host
    back = LiteTensor(LiteLayout([1], "float32"), CUDA)
    back.copy_from(host)  # host -> device
    np.testing.assert_array_equal(back.to_numpy(), arr)


def test_pinned_io_tensors_are_page_locked():
    network = cuda_network()
    network.load(model_path(SMALL))
    data = network.get_io_tensor("data")
    assert data.is_pinned_host and data.device_type == CUDA
    data.set_data_by_copy(reference(SMALL)["input:data"])
    assert not isinstance(data._impl.memory, DeviceMemory)
    flags = ctypes.c_uint()  # cudaHostGetFlags succeeds only on memory from cudaHostAlloc
    lib = CudaBackend()._load()
    assert lib.cudaHostGetFlags(ctypes.byref(flags), ctypes.c_void_p(data.get_ctypes_memory().value)) == 0


def test_share_memory_with_and_slices_bound_as_inputs():
    """A batch in device memory, shared with the input without copies, and a row slice of it bound as the input."""
    ref = reference(BY_NAME["shufflenet_v2_b4"])
    network = cuda_network("data")
    network.load(model_path(SHUFFLE))
    batch = LiteTensor(LiteLayout([4, 3, 224, 224], "float32"), CUDA)
    batch.set_data_by_copy(ref["input:data"])
    data = network.get_io_tensor("data")
    data.share_memory_with(batch)
    assert data.get_ctypes_memory().value == batch.get_ctypes_memory().value
    network.forward()
    network.wait()
    whole = network.get_io_tensor("Softmax").to_numpy()
    np.testing.assert_allclose(whole, ref["output:Softmax"], rtol=RTOL, atol=1e-6)
    data.share_memory_with(batch.slice([2], [3]))  # one row, at an offset in the batch's memory
    network.forward()
    network.wait()
    np.testing.assert_allclose(network.get_io_tensor("Softmax").to_numpy(), whole[2:3], rtol=RTOL, atol=1e-6)


def test_batch_collector_on_the_device_feeds_the_network():
    ref = reference(BY_NAME["shufflenet_v2_b4"])["input:data"]
    collector = TensorBatchCollector([4, 3, 224, 224], dtype=LiteDataType.LITE_FLOAT)
    assert collector.get().device_type == CUDA and isinstance(collector.get()._impl.memory, DeviceMemory)
    sample = LiteTensor(LiteLayout([3, 224, 224], "float32"), CUDA)
    sample.set_data_by_copy(ref[1])
    assert [collector.collect(ref[0]), collector.collect(sample)] == [0, 1]  # host -> device, device -> device
    collector.collect(ref[2])
    collector.collect(ref[3])
    np.testing.assert_array_equal(collector.to_numpy(), ref)
    network = cuda_network("data")
    network.load(model_path(SHUFFLE))
    network.get_io_tensor("data").share_memory_with(collector.get())
    network.forward()
    network.wait()
    np.testing.assert_allclose(network.get_io_tensor("Softmax").to_numpy(),
                               reference(BY_NAME["shufflenet_v2_b4"])["output:Softmax"], rtol=RTOL, atol=1e-6)


def test_outputs_left_on_the_device():
    ref = reference(SMALL)
    network = cuda_network("data", device_outputs=("logits",))
    network.load(model_path(SMALL))
    network.get_io_tensor("data").set_data_by_copy(ref["input:data"])
    network.forward()
    network.wait()
    out = network.get_io_tensor("logits")
    assert isinstance(out._impl.memory, DeviceMemory)
    with pytest.raises(DeviceError):
        out.get_data_by_share()  # device memory has no host view
    kept = LiteTensor(LiteLayout([1, 10], "float32"), CUDA)
    kept.copy_from(out)  # device -> device
    np.testing.assert_allclose(kept.to_numpy(), ref["output:logits"], rtol=RTOL, atol=ATOL)


def test_new_input_shapes_each_get_their_own_graph():
    small, big = BY_NAME["shufflenet_v2"], BY_NAME["shufflenet_v2_b4"]
    network = cuda_network()
    network.load(model_path(small))
    for entry in (big, small, big):
        ref = reference(entry)
        out = run(network, {"data": ref["input:data"]})["Softmax"]
        np.testing.assert_allclose(out, ref["output:Softmax"], rtol=RTOL, atol=1e-6)
        assert network._plan.graph_io is not None  # replayed as a CUDA graph at both batch sizes
    assert len(network._model._plans) == 2


def test_cuda_graph_gives_the_same_outputs_as_plain_cuda(monkeypatch):
    ref = reference(SHUFFLE)
    graphed = cuda_network()
    graphed.load(model_path(SHUFFLE))
    monkeypatch.setenv("MEGENGINELITE_CUDA_GRAPH", "0")
    plain = cuda_network()
    plain.load(model_path(SHUFFLE))
    assert graphed._plan.graph_io is not None and plain._plan.graph_io is None
    for seed in range(3):
        data = np.random.RandomState(seed).uniform(0, 1, (1, 3, 224, 224)).astype("float32")
        np.testing.assert_array_equal(run(graphed, {"data": data})["Softmax"],
                                      run(plain, {"data": data})["Softmax"])
    np.testing.assert_allclose(run(graphed, {"data": ref["input:data"]})["Softmax"], ref["output:Softmax"],
                               rtol=RTOL, atol=1e-6)


@pytest.mark.parametrize("name,case", DYNAMIC_CASES)
def test_run_time_lengths_and_detectors_on_the_gpu(name, case):
    """The detectors (Faster R-CNN, RetinaNet, FCOS) and per-operator chains of run-time lengths, each recorded
    case (many boxes, few, none) on the GPU, against real Lite's CPU outputs."""
    network = cuda_network()
    network.load(str(DYNAMIC_MANIFEST[name]["dir"] / DYNAMIC_MANIFEST[name]["file"]))
    check_run_time_case(network, name, case, rtol=RTOL, atol=ATOL)
    assert "CUDAExecutionProvider" in network._plan.session.get_providers()


@pytest.mark.parametrize("name", ["op_cond_take", "op_matinv"])
def test_outputs_of_run_time_length_and_unsafe_nodes_run_without_a_graph(name):
    """CondTake: a run-time length; MatrixInverse: a kernel that faults when replayed (GRAPH_SAFE_NODES)."""
    network = cuda_network()
    check_fixture(BY_NAME[name], network)
    assert network._plan.graph_io is None
    assert "CUDAExecutionProvider" in network._plan.session.get_providers()


def test_host_inputs_are_read_at_every_forward_without_a_graph(monkeypatch):
    """Binding a host array to a GPU session copies it at once: the binding of the last forward must not be
    reused (it was, and the second forward replayed the first one's input)."""
    monkeypatch.setenv("MEGENGINELITE_CUDA_GRAPH", "0")
    ref = reference(BY_NAME["shufflenet_v2_b4"])
    network = cuda_network()
    network.load(model_path(SHUFFLE))
    for row in (0, 1, 2, 1):
        out = run(network, {"data": ref["input:data"][row:row + 1]})["Softmax"]
        np.testing.assert_allclose(out, ref["output:Softmax"][row:row + 1], rtol=RTOL, atol=1e-6)


def test_networks_sharing_weights_run_from_threads():
    ref = reference(BY_NAME["shufflenet_v2_b4"])
    first = cuda_network()
    first.load(model_path(SHUFFLE))
    others = [cuda_network() for _ in range(3)]
    for net in others:
        net.share_weights_with(first)
    errors: list = []

    def worker(net: LiteNetwork, row: int) -> None:
        try:
            for _ in range(20):
                out = run(net, {"data": ref["input:data"][row:row + 1]})["Softmax"]
                np.testing.assert_allclose(out, ref["output:Softmax"][row:row + 1], rtol=RTOL, atol=1e-6)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(net, i)) for i, net in enumerate([first, *others])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[0]


def test_use_tensorrt_without_tensorrt_falls_back_to_cuda(caplog):
    reason = tensorrt_unavailable_reason()
    if not reason:
        pytest.skip("TensorRT is installed here")
    network = cuda_network()
    network.use_tensorrt()
    with caplog.at_level(logging.WARNING, logger="megenginelite"):
        network.load(model_path(SMALL))
    assert any(reason in r.getMessage() and "CUDA provider" in r.getMessage() for r in caplog.records)
    assert "TensorrtExecutionProvider" not in network._plan.session.get_providers()
    ref = reference(SMALL)
    np.testing.assert_allclose(run(network, {"data": ref["input:data"]})["logits"], ref["output:logits"],
                               rtol=RTOL, atol=ATOL)


def test_a_second_gpu_that_does_not_exist_is_refused():
    count = CudaBackend().device_count()
    with pytest.raises(DeviceError, match=rf"request gpu{count} out of valid range \[0, {count}\)"):
        LiteTensor(LiteLayout([2], "float32"), CUDA, device_id=count)


def test_batch_inference_example_on_the_gpu_prints_the_real_librarys_cpu_numbers(shufflenet):
    """The quick start's CUDA program (examples/batch_inference.py --device cuda) prints what the real library
    printed for the same program on the CPU."""
    from example_runs import ROOT, ROUND, assert_same_rounds, batch_inference_rounds

    real = (ROOT / "tests" / "fixtures" / "batch_inference_real_cpu.txt").read_text().splitlines()
    want = [ROUND.fullmatch(line).groups() for line in real]
    assert_same_rounds(batch_inference_rounds(model_path(shufflenet), "--device", "cuda"), want, rtol=RTOL)
