"""LiteNetwork behaviour: lifecycle rules, names, zero-copy IO and clear errors, as the original behaves."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import BY_NAME, model_path, reference
from megenginelite import LiteConfig, LiteNetwork, LiteNetworkIO, LiteIO, LiteLayout, LiteTensorPhase
from megenginelite.errors import InvalidInputError, UnsupportedOperatorError

SMALL = BY_NAME["resnet18_small"]
TWO = BY_NAME["two_in_two_out"]


def loaded(entry=SMALL, **kwargs) -> LiteNetwork:
    network = LiteNetwork(**kwargs)
    network.load(model_path(entry))
    return network


def test_calls_that_need_a_loaded_model():
    network = LiteNetwork()
    assert network.get_all_input_name() is None
    assert network.get_all_output_name() is None
    with pytest.raises(RuntimeError, match="get_io_tensor should be used after model loaded"):
        network.get_io_tensor("data")
    with pytest.raises(RuntimeError, match="forward should be used after model loaded"):
        network.forward()
    with pytest.raises(RuntimeError, match="input tensor index is large than the total inputs number"):
        network.get_input_name(0)


def test_threads_number_is_set_before_load():
    network = LiteNetwork()
    assert network.threads_number == 1
    network.threads_number = 2
    network.load(model_path(SMALL))
    assert network.threads_number == 2
    with pytest.raises(RuntimeError, match="set_cpu_threads_number should be used before model loaded"):
        network.threads_number = 1
    for attr in ("device_id", "stream_id"):
        with pytest.raises(RuntimeError, match=f"set_{attr} should be used before model loaded"):
            setattr(network, attr, 1)


def test_load_from_open_file_and_names_by_index():
    network = LiteNetwork()
    with open(model_path(TWO), "rb") as f:
        network.load(f)
    assert [network.get_input_name(i) for i in range(2)] == TWO["inputs"]
    assert [network.get_output_name(i) for i in range(2)] == TWO["outputs"]
    with pytest.raises(RuntimeError, match="output tensor index is large than the total outputs number"):
        network.get_output_name(2)


def test_config_must_be_a_lite_config():
    with pytest.raises(Exception, match="expected LiteConfig instance instead of str"):
        LiteNetwork(config="cpu")


def test_unknown_tensor_name_and_wrong_phase():
    network = loaded()
    with pytest.raises(RuntimeError, match="tensor name must be nope input tensor name"):
        network.get_io_tensor("nope")
    with pytest.raises(RuntimeError, match="tensor name must be data input tensor name"):
        network.get_io_tensor("data", LiteTensorPhase.LITE_OUTPUT)
    out = network.get_all_output_name()[0]
    with pytest.raises(RuntimeError):
        network.get_io_tensor(out, LiteTensorPhase.LITE_INPUT)
    assert network.get_io_tensor(b"data").layout.shapes == SMALL["input_shapes"][0]


def test_io_tensor_wrappers_share_one_tensor():
    network = loaded()
    first, second = network.get_io_tensor("data"), network.get_io_tensor("data")
    assert first is not second
    first.set_data_by_copy(np.ones((2, 3, 64, 64), np.float32))
    assert second.layout.shapes == [2, 3, 64, 64]
    assert np.shares_memory(first.get_data_by_share(), second.get_data_by_share())


def test_set_data_by_share_feeds_without_copy():
    ref = reference(SMALL)
    network = loaded()
    name = network.get_all_output_name()[0]
    user_input = np.ascontiguousarray(ref["input:data"])
    tensor = network.get_io_tensor("data")
    tensor.set_data_by_share(user_input)
    assert np.shares_memory(tensor.get_data_by_share(), user_input)
    network.forward()
    network.wait()
    first = network.get_io_tensor(name).to_numpy()
    np.testing.assert_allclose(first, ref[f"output:{name}"], rtol=1e-4, atol=1e-5)
    user_input *= 0.5  # the network reads the caller's buffer on the next forward
    network.forward()
    network.wait()
    assert not np.allclose(network.get_io_tensor(name).to_numpy(), first)


def test_output_view_is_overwritten_by_the_next_forward():
    network = loaded()
    name = network.get_all_output_name()[0]
    network.get_io_tensor("data").set_data_by_copy(np.zeros((1, 3, 64, 64), np.float32))
    network.forward()
    view = network.get_io_tensor(name).get_data_by_share()
    before = view.copy()
    network.get_io_tensor("data").set_data_by_copy(np.ones((1, 3, 64, 64), np.float32))
    network.forward()
    assert not np.array_equal(view, before)
    np.testing.assert_array_equal(view, network.get_io_tensor(name).to_numpy())


def test_wrong_dtype_is_a_clear_error_and_the_network_recovers():
    ref = reference(SMALL)
    network = loaded()
    network.get_io_tensor("data").set_data_by_copy(np.zeros((1, 3, 64, 64), np.int32))
    with pytest.raises(InvalidInputError, match="dtype mismatch: get=Int32 expect=Float32"):
        network.forward()
    network.get_io_tensor("data").set_data_by_copy(ref["input:data"])
    network.forward()
    name = network.get_all_output_name()[0]
    np.testing.assert_allclose(network.get_io_tensor(name).to_numpy(), ref[f"output:{name}"], rtol=1e-4, atol=1e-5)


def test_shape_the_graph_cannot_take():
    network = loaded(BY_NAME["shufflenet_v2"])
    network.get_io_tensor("data").set_data_by_copy(np.zeros((1, 3, 24, 24), np.float32))
    with pytest.raises(InvalidInputError) as info:
        network.forward()
    assert "Pooling" in str(info.value) or "Convolution" in str(info.value)
    with pytest.raises(RuntimeError):
        network.get_io_tensor("data").set_data_by_copy(np.zeros((1, 3, 224), np.float32))
        network.forward()


def test_config_layout_of_an_input_applies_after_load():
    io = LiteNetworkIO(inputs=[LiteIO("data", layout=LiteLayout([2, 3, 64, 64]))])
    network = loaded(io=io)
    assert network.get_io_tensor("data").layout.shapes == [2, 3, 64, 64]
    network.forward()
    name = network.get_all_output_name()[0]
    assert network.get_io_tensor(name).to_numpy().shape[0] == 2


def test_unsupported_operator_names_the_operator(monkeypatch):
    from megenginelite.lower import builder

    monkeypatch.delitem(builder.LOWERINGS, "Softmax")
    with pytest.raises(UnsupportedOperatorError, match=r"Softmax \(opr #\d+, output var 'Softmax'\)"):
        LiteNetwork().load(model_path(BY_NAME["shufflenet_v2"]))


def test_cuda_without_a_gpu_fails_at_load():
    import onnxruntime as ort

    from megenginelite.tensor import cuda_device_count

    if "CUDAExecutionProvider" in ort.get_available_providers() or cuda_device_count() > 0:
        pytest.skip("a CUDA provider or device (maybe MEGENGINELITE_EMULATE_CUDA's) is there")
    network = LiteNetwork(LiteConfig(device_type=1))
    with pytest.raises(RuntimeError, match="CUDAExecutionProvider"):
        network.load(model_path(SMALL))
