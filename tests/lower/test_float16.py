"""Float16 end to end: every operator fixture, turned into a float16 model, still matches the float32 reference.

The conversion makes the graph inputs and every float32 constant float16 (what ``enable_ioc16`` does to a whole
model), then lowers and runs the graph with float16 inputs and outputs. ONNX Runtime lacks float16 kernels for
some ops (it inserts casts around them), and the lowerings that compute in float32 cast at their edges; either
way the result must agree with the float32 reference to float16 precision.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from conftest import MANIFEST, model_path, reference
from megenginelite.errors import UnsupportedOperatorError
from megenginelite.format import read_model
from megenginelite.format.dtypes import DType
from megenginelite.graph import build_graph, infer_graph
from megenginelite.graph.build import CONST_OPRS, INPUT_OPRS, canonical_kind
from megenginelite.lower import to_onnx_bytes

FLOAT16 = DType("Float16", np.dtype(np.float16))
NO_FLOAT16_KERNEL = {"CvtColor"}  # MegDNN itself only converts float32 and uint8 images


def float16_record(entry: dict):
    """The fixture's model record with float16 inputs and constants, or None when that is no valid float16 model
    (explicit float32 conversions or output dtypes inside, or ops without float16 support in MegDNN)."""
    with open(model_path(entry), "rb") as f:
        record = read_model(f.read(), entry["file"])
    for rec in record.oprs:
        kind = canonical_kind(rec.type)
        if kind == "TypeCvt" or rec.output_dtype is not None or kind in NO_FLOAT16_KERNEL:
            return None
        if rec.type in INPUT_OPRS or rec.type in CONST_OPRS:
            for t in rec.tensors:
                if t.dtype.name == "Float32":
                    t.dtype = FLOAT16
                    t.data = None if t.data is None else t.data.astype(np.float16)
    return record


FLOAT_OPS = [e for e in MANIFEST if e["category"] == "op" and set(e["input_dtypes"]) == {"float32"}
             and set(e["output_dtypes"]) == {"float32"}]


@pytest.mark.parametrize("entry", FLOAT_OPS, ids=[e["name"] for e in FLOAT_OPS])
def test_operator_runs_in_float16(entry):
    record = float16_record(entry)
    if record is None:
        pytest.skip("not expressible as a float16 model")
    graph = build_graph(record)
    try:
        infer_graph(graph)
        onnx_bytes = to_onnx_bytes(graph)
    except UnsupportedOperatorError as exc:
        pytest.skip(f"unsupported in any dtype: {exc}")
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    ref = reference(entry)
    outputs = session.run(None, {n: ref[f"input:{n}"].astype(np.float16) for n in entry["inputs"]})
    for got, name in zip(outputs, entry["outputs"]):
        want = ref[f"output:{name}"]
        assert got.dtype == np.float16 and got.shape == want.shape
        scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
        np.testing.assert_allclose(got.astype(np.float32), want, rtol=0, atol=1e-2 * scale, err_msg=name)
