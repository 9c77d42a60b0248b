"""Quantized models (MegEngine's QAT flow): integer kernels, MegDNN's rounding, and the exported ONNX models."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import MANIFEST, BY_NAME, assert_matches, model_path, reference, run
from megenginelite import LiteNetwork
from megenginelite.format import read_model
from megenginelite.graph import build_graph, cpu, infer_graph
from megenginelite.graph.quant import quantize
from megenginelite.cli.export import export_onnx

QUANTIZED = [e["name"] for e in MANIFEST if e["name"].startswith("q_") and "KNOWN BAD REFERENCE" not in e["note"]]


def _record(name: str):
    with open(model_path(BY_NAME[name]), "rb") as f:
        return read_model(f.read(), BY_NAME[name]["file"])


@pytest.mark.parametrize("name", QUANTIZED)
def test_exported_onnx_runs_in_plain_onnxruntime(name):
    """What ``convert`` writes passes the full onnx check and plain ONNX Runtime runs it to real Lite's outputs."""
    entry = BY_NAME[name]
    model = export_onnx(_record(name))
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = reference(entry)
    got = session.run(None, {n: ref[f"input:{n}"] for n in entry["inputs"]})
    for value, out in zip(got, entry["outputs"]):
        assert_matches(entry, value, ref[f"output:{out}"], out)


def test_convolutions_and_matmuls_run_in_integer_kernels():
    """The quantized networks' convolutions are QLinearConv on uint8 activations and their matrix multiplies
    MatMulInteger: no float Conv / MatMul is left, and QuantizedS8 values are not shifted back and forth between
    two integer convolutions."""
    for name in ("q_resnet18_small", "q_shufflenet_v1_small", "q_mobilenetv2_small", "q_linear"):
        ops = [n.op_type for n in export_onnx(_record(name)).graph.node]
        assert "Conv" not in ops and "ConvTranspose" not in ops, name
        assert ("QLinearConv" in ops) != (name == "q_linear"), name
        assert "MatMul" not in ops or name != "q_linear", name
    graph = export_onnx(_record("q_resnet18_small")).graph
    convs = [n for n in graph.node if n.op_type == "QLinearConv"]
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    assert all(inits[n.input[2]].dtype == np.uint8 and inits[n.input[7]].dtype == np.uint8 for n in convs)
    assert sum(n.op_type == "QuantizeLinear" for n in graph.node) <= 1  # only the network input's int8 -> uint8


def test_average_pooling_rounds_half_away_from_zero():
    """MegDNN rounds a quantized average half away from zero (ONNX's QLinear ops round half to even): the
    fixture has averages exactly halfway between two steps, and matches real Lite only with MegDNN's rounding."""
    entry = BY_NAME["q_avgpool"]
    graph = build_graph(_record("q_avgpool"))
    infer_graph(graph)
    x = reference(entry)["input:data"]
    dtype = next(op for op in graph.ops if op.kind == "Pooling").inputs[0].dtype
    q = quantize(x, dtype).astype(np.float64)
    avg = q.reshape(1, 4, 4, 2, 4, 2).mean(axis=(3, 5))
    ties = np.abs(avg - np.trunc(avg)) == 0.5
    assert ties.sum() > 0
    want = reference(entry)["output:out"] / dtype.scale
    half_away = np.sign(avg) * np.floor(np.abs(avg) + 0.5)
    np.testing.assert_allclose(half_away, want, atol=1e-3)
    assert not np.allclose(np.round(avg), want, atol=1e-3)  # numpy's half-to-even would not match


def test_quantized_convolution_is_a_conv_bias_without_bias():
    """A quantized Convolution (MegEngine cannot trace one from Python, so it is made from a fixture's ConvBias by
    dropping bias and activation) quantizes conv(x, w) to its output dtype like MegDNN."""
    from megenginelite.graph.quant import dequantize
    from megenginelite.lower import to_onnx_bytes

    graph = build_graph(_record("q_conv_dense"))
    op = next(o for o in graph.ops if o.kind == "ConvBias")
    op.kind, op.inputs, op.params = "Convolution", op.inputs[:2], {**op.params, "nonlineMode": 0}
    infer_graph(graph)
    x = reference(BY_NAME["q_conv_dense"])["input:data"]
    session = ort.InferenceSession(to_onnx_bytes(graph), providers=["CPUExecutionProvider"])
    got = session.run(None, {"data": x})[0]
    xq = quantize(x, op.inputs[0].dtype).astype(np.float64)
    w = op.inputs[1].const.astype(np.float64)
    padded = np.pad(xq, ((0, 0), (0, 0), (1, 1), (1, 1)))
    acc = sum(np.einsum("nchw,oc->nohw", padded[:, :, i:i + 8, j:j + 8], w[:, :, i, j])
              for i in range(3) for j in range(3))
    unit = float(np.float32(op.inputs[0].dtype.scale) * np.float32(op.inputs[1].dtype.scale))
    out = op.outputs[0].dtype
    want = dequantize(quantize((acc * unit).astype(np.float32), out), out)
    np.testing.assert_allclose(got, want, rtol=0, atol=out.scale * 1.001)


@pytest.mark.parametrize("flags, saturate", [({"avx2", "fma"}, True), ({"avx2", "avx512f", "avx512bw"}, True),
                                             ({"avx2", "avx512bw", "avx512_vnni"}, False), ({"avx2", "avx_vnni"}, False),
                                             ({"sse4_1"}, False)])
def test_uint8_times_int8_products_saturate_on_x86_without_vnni(monkeypatch, flags, saturate):
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(cpu.platform, "machine", lambda: "x86_64")
    assert cpu.int8_products_saturate() is saturate
    with cpu.portable():
        assert cpu.int8_products_saturate()


@pytest.mark.parametrize("name", ["quantized_cnn", "q_conv_group", "q_resnet18_small", "q_mobilenetv2_small",
                                  "q_transformer_block", "q_linear"])
def test_uint8_operands_where_products_saturate_match_real_lite(monkeypatch, name):
    """On x86 without VNNI, ONNX Runtime's uint8 x int8 kernels saturate pairs of products in int16 (wrong outputs
    for 9 of the quantized fixtures on an AVX2 EPYC): there the integer kernels get uint8 x uint8 operands, which
    must give real Lite's outputs wherever the test runs."""
    monkeypatch.setattr(cpu, "int8_products_saturate", lambda: True)
    entry = BY_NAME[name]
    network = LiteNetwork()
    network.load(model_path(entry))
    ref = reference(entry)
    outputs = run(network, {n: ref[f"input:{n}"] for n in entry["inputs"]})
    for out in entry["outputs"]:
        assert_matches(entry, outputs[out], ref[f"output:{out}"], out)
    graph = export_onnx(_record(name)).graph
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:  # every integer kernel's operands are uint8 (activations shifted, weights + 128)
        if node.op_type in ("QLinearConv", "MatMulInteger"):
            weight = node.input[3] if node.op_type == "QLinearConv" else node.input[1]
            assert weight not in inits or inits[weight].dtype == np.uint8, (name, node.name)
