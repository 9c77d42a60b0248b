"""ONNX models through the Lite API: the same names, tensors, batching, callbacks and profiling as .mge models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import BY_NAME, model_path, reference
from megenginelite import LiteNetwork, TensorBatchCollector, LiteDataType, LiteDeviceType
from megenginelite.format import read_model
from megenginelite.graph import build_graph, infer_graph
from megenginelite.lower import to_onnx


def tiny_model(batch="N") -> bytes:
    """y = relu(x @ W + b), z = sum(y, axis=1); x is (batch, 4) float32 with a symbolic batch."""
    rng = np.random.RandomState(0)
    w = numpy_helper.from_array(rng.randn(4, 3).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.randn(3).astype(np.float32), "b")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["pre"]),
             helper.make_node("Relu", ["pre"], ["y"]), helper.make_node("ReduceSum", ["y", "axes"], ["z"], keepdims=0)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3]),
                               helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch])], [w, b, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model.SerializeToString(), numpy_helper.to_array(w), numpy_helper.to_array(b)


def test_onnx_output_whose_length_depends_on_the_data(tmp_path):
    """Compress(x, x > 0): the output has the length of each run's positive count, 0 included."""
    zero = numpy_helper.from_array(np.zeros((), np.float32), "zero")
    nodes = [helper.make_node("Greater", ["x", "zero"], ["positive"]),
             helper.make_node("Compress", ["x", "positive"], ["kept"], axis=0)]
    graph = helper.make_graph(nodes, "compress", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6])],
                              [helper.make_tensor_value_info("kept", TensorProto.FLOAT, ["n"])], [zero])
    path = tmp_path / "compress.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
                     .SerializeToString())
    network = LiteNetwork()
    network.load(str(path))
    assert network.get_io_tensor("kept").layout.ndim == 0
    for x in ([1, -2, 3, -4, 5, 0], [-1] * 6, [2] * 6):
        x = np.asarray(x, np.float32)
        network.get_io_tensor("x").set_data_by_copy(x)
        network.forward()
        network.wait()
        np.testing.assert_array_equal(network.get_io_tensor("kept").to_numpy(), x[x > 0])


def test_handmade_onnx_model_with_symbolic_batch(tmp_path):
    data, w, b = tiny_model()
    path = tmp_path / "tiny.onnx"
    path.write_bytes(data)
    network = LiteNetwork()
    network.load(str(path))
    assert network.get_all_input_name() == ["x"]
    assert network.get_all_output_name() == ["y", "z"]
    assert network.get_io_tensor("x").layout.shapes == [1, 4]  # symbolic dims start as 1
    assert network.get_io_tensor("y").layout.shapes == [1, 3]
    for batch in (1, 5, 2):
        x = np.random.RandomState(batch).randn(batch, 4).astype(np.float32)
        network.get_io_tensor("x").set_data_by_copy(x)
        network.forward()
        network.wait()
        y = np.maximum(x @ w + b, 0)
        np.testing.assert_allclose(network.get_io_tensor("y").to_numpy(), y, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(network.get_io_tensor("z").to_numpy(), y.sum(1), rtol=1e-5, atol=1e-5)


def test_onnx_bytes_are_recognized_without_a_file_name():
    data, _, _ = tiny_model()
    network = LiteNetwork()
    network.load(data)
    assert network.get_all_output_name() == ["y", "z"]


def converted(entry: dict) -> bytes:
    with open(model_path(entry), "rb") as f:
        graph = build_graph(read_model(f.read(), entry["file"]))
    infer_graph(graph)
    return to_onnx(graph).SerializeToString()


def test_converted_shufflenet_with_batching_callbacks_and_profile(tmp_path):
    entry = BY_NAME["shufflenet_v2"]
    path = tmp_path / "shufflenet.onnx"
    path.write_bytes(converted(entry))
    network = LiteNetwork()
    finished = []
    network.set_finish_callback(lambda ios: finished.append(sorted(io.name for io in ios)))
    network.enable_profile_performance(str(tmp_path / "profile.json"))
    network.load(str(path))
    ref = reference(entry)
    collector = TensorBatchCollector([1, 3, 224, 224], dtype=LiteDataType.LITE_FLOAT,
                                     device_type=LiteDeviceType.LITE_CPU)
    collector.collect(ref["input:data"][0])
    network.get_io_tensor("data").share_memory_with(collector.get())
    network.forward()
    network.wait()
    np.testing.assert_allclose(network.get_io_tensor("Softmax").to_numpy(), ref["output:Softmax"],
                               rtol=1e-4, atol=1e-5)
    assert finished == [["Softmax"]]
    profile = json.loads((tmp_path / "profile.json").read_text())
    assert profile["summary"]["by_operator"] and profile["summary"]["total_ms"] > 0


def test_bad_onnx_and_wrong_shapes(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07\x12garbage")
    with pytest.raises(RuntimeError, match="invalid ONNX model"):
        LiteNetwork().load(str(bad))
    data, _, _ = tiny_model()
    network = LiteNetwork()
    network.load(data)
    network.get_io_tensor("x").set_data_by_copy(np.zeros((2, 5), np.float32))
    with pytest.raises(RuntimeError, match="cannot take input shapes"):
        network.forward()
    with pytest.raises(RuntimeError, match="need a MegEngine model"):
        network.io_txt_dump(str(tmp_path / "io.txt"))
        network.get_io_tensor("x").set_data_by_copy(np.zeros((2, 4), np.float32))
        network.forward()
