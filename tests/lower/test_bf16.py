"""BFloat16 models: the fixtures of tests/fixtures/bf16 (made by tools/make_bf16_fixtures.py with the real
megenginelite) and MegDNN's bfloat16 rounding rule.

The graph carries BFloat16 values as float32 rounded to bfloat16 precision (``format.dtypes.BFLOAT16``); the
lowering re-rounds every BFloat16 result with a Cast to BFLOAT16 and back. Lite IO stays float32: the real
megenginelite refuses BFloat16 inputs and outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from megenginelite import LiteNetwork
from megenginelite.format import read_model
from megenginelite.format.dtypes import (BFLOAT16, DType, bfloat16_bits_to_float32, bfloat16_round,
                                         float32_to_bfloat16_bits)
from megenginelite.graph import build_graph, infer_graph
from megenginelite.graph.ir import Graph, Op, Var
from megenginelite.lower import to_onnx_bytes

BF16_DIR = Path(__file__).parents[1] / "fixtures" / "bf16"
BF16_MANIFEST = json.loads((BF16_DIR / "manifest.json").read_text())
FILE_BF16 = DType("BFloat16", np.dtype(np.uint16))  # as the format readers decode it
FLOAT32 = DType("Float32", np.dtype(np.float32))


def megdnn_float2bfloat16(x: np.ndarray) -> np.ndarray:
    """Reference: MegDNN's float2bfloat16 (dnn/include/megdnn/dtype/bfloat16.hpp), one value at a time."""
    out = []
    for u in np.ascontiguousarray(x, np.float32).view(np.uint32).ravel().tolist():
        if ~u & 0x7F800000:
            u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFFFFFF
        elif u & 0xFFFF:
            u |= 0x10000
        out.append(u >> 16)
    return np.array(out, np.uint16).reshape(np.shape(x))


def _samples() -> np.ndarray:
    rs = np.random.RandomState(0)
    special = np.array([1.00390625, 1.01171875, 1.0078125 + 2**-9, -1.01171875, 3.3895314e38, 3.4e38, -3.4e38,
                        np.inf, -np.inf, np.nan, 1e-40, -1e-45, 0.0, -0.0], np.float32)
    random_bits = rs.randint(0, 2**32, 20000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    return np.concatenate([special, (rs.randn(20000) * 100).astype(np.float32), random_bits])


def test_rounding_matches_megdnn():
    x = _samples()
    want = megdnn_float2bfloat16(x)
    got = float32_to_bfloat16_bits(x)
    nan = np.isnan(x)
    assert np.array_equal(got[~nan], want[~nan])
    assert np.all(np.isnan(bfloat16_bits_to_float32(got[nan])))
    # ties go to even: 1 + 2**-8 -> 1, 1 + 3 * 2**-8 -> 1 + 2**-6
    assert bfloat16_round(np.float32(1.00390625)) == 1.0 and bfloat16_round(np.float32(1.01171875)) == 1.015625


def _graph(x_dtype, ops_spec, const=None) -> Graph:
    """x -> chain of ops (kind, params, output dtype or None) -> output."""
    x = Var(0, "x")
    x.dtype = x_dtype
    x.shape = (len(_samples()),)
    vars_, ops, prev = {0: x}, [], x
    for i, (kind, params) in enumerate(ops_spec, 1):
        inputs = [prev] if const is None or kind != "Elemwise" else [prev, const]
        op = Op(type=kind, kind=kind, params=params, inputs=inputs, outputs=[], output_dtype=None, index=i)
        out = Var(i, f"v{i}")
        out.producer = op
        op.outputs.append(out)
        vars_[i] = out
        ops.append(op)
        prev = out
    return Graph(source="<test>", inputs=[x], ops=ops, outputs=[("out", prev)], vars=vars_, info={})


def _run(graph: Graph, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    infer_graph(graph)
    session = ort.InferenceSession(to_onnx_bytes(graph), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_typecvt_to_and_from_bfloat16():
    x = _samples()
    got = _run(_graph(FLOAT32, [("TypeCvt", {"dtype": BFLOAT16}), ("TypeCvt", {"dtype": FLOAT32})]), x)
    want = bfloat16_bits_to_float32(megdnn_float2bfloat16(x))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


def test_bfloat16_constants_and_folding():
    """A BFloat16 constant decodes from its uint16 bits; TypeCvt of a float32 constant to BFloat16 folds with
    MegDNN's rounding, and an op on BFloat16 constants folds to a rounded BFloat16 value."""
    c = Var(1, "c")
    c.dtype, c.shape = FLOAT32, (2,)
    c.const = np.array([1.01171875, 3.14159], np.float32)
    cvt = Op(type="TypeCvtV2", kind="TypeCvt", params={"dtype": BFLOAT16}, inputs=[c], outputs=[], index=0)
    v = Var(2, "v")
    v.producer = cvt
    cvt.outputs.append(v)
    from megenginelite.graph.infer import infer_op
    infer_op(cvt)
    assert v.dtype.name == "BFloat16"
    np.testing.assert_array_equal(v.const, np.array([1.015625, 3.140625], np.float32))


@pytest.mark.parametrize("entry", BF16_MANIFEST, ids=[e["name"] for e in BF16_MANIFEST])
def test_bf16_fixture(entry):
    path = BF16_DIR / entry["file"]
    ref = np.load(BF16_DIR / entry["file"].replace(".mge", ".npz"))
    net = LiteNetwork()
    net.load(str(path))
    for name in entry["inputs"]:
        net.get_io_tensor(name).set_data_by_copy(ref[f"input:{name}"])
    net.forward()
    net.wait()
    for name, shape, dtype in zip(entry["outputs"], entry["output_shapes"], entry["output_dtypes"]):
        got = net.get_io_tensor(name).to_numpy()
        want = ref[f"output:{name}"]
        assert got.dtype == np.dtype(dtype) and list(got.shape) == shape
        np.testing.assert_allclose(got, want, rtol=entry["rtol"], atol=entry["atol"], err_msg=name)


def test_fixtures_hold_bfloat16():
    """The fixtures really exercise BFloat16: TypeCvt to BFloat16, and BFloat16 constants stored as uint16 bits."""
    kinds = set()
    for entry in BF16_MANIFEST:
        record = read_model((BF16_DIR / entry["file"]).read_bytes(), entry["file"])
        for rec in record.oprs:
            for t in rec.tensors:
                if t.dtype == FILE_BF16 and t.data is not None:
                    kinds.add("const")
                    graph = build_graph(record)
                    consts = [v.const for v in graph.vars.values() if v.is_const and v.dtype.name == "BFloat16"]
                    assert consts and all(c.dtype == np.float32 for c in consts)
                    assert any(np.array_equal(float32_to_bfloat16_bits(c), t.data) for c in consts)
            if rec.params.get("dtype") == FILE_BF16:
                kinds.add("typecvt")
    assert kinds == {"const", "typecvt"}
