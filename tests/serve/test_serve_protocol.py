"""The v2 protocol codec and the batching runner, without Ray: every malformed request is a RequestError (HTTP
400), requests stacked into one forward get back their own outputs."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import BY_NAME, assert_matches, model_path, reference
from megenginelite.errors import RequestError
from megenginelite.ray.protocol import HEADER_LENGTH, encode_infer, parse_infer
from megenginelite.ray.runner import ModelRunner


def _binary(header: dict, *chunks: bytes) -> tuple[bytes, str]:
    head = json.dumps(header).encode()
    return head + b"".join(chunks), str(len(head))


def test_json_and_binary_requests_parse_to_the_same_arrays():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    as_json = parse_infer(json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 3],
                                                  "data": x.tolist()}]}).encode(), None)
    body, length = _binary({"id": "7", "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 3],
                                                   "parameters": {"binary_data_size": 24}}],
                            "outputs": [{"name": "y", "parameters": {"binary_data": True}}]}, x.tobytes())
    as_binary = parse_infer(body, length)
    for parsed in (as_json, as_binary):
        np.testing.assert_array_equal(parsed.inputs["x"], x)
        assert parsed.inputs["x"].dtype == np.float32
    assert as_binary.id == "7" and as_binary.outputs == {"y": True}


def test_responses_put_binary_outputs_after_the_json_header():
    request = parse_infer(json.dumps({"id": "a", "inputs": [{"name": "x", "datatype": "INT32", "shape": [1],
                                                             "data": [1]}],
                                      "outputs": [{"name": "b", "parameters": {"binary_data": True}},
                                                  {"name": "j"}]}).encode(), None)
    b, j = np.array([[1.5, -2]], np.float32), np.array([3, 4], np.uint8)
    body, headers = encode_infer("m", request, {"j": j, "b": b})
    size = int(headers[HEADER_LENGTH])
    head = json.loads(body[:size])
    assert head["id"] == "a" and [o["name"] for o in head["outputs"]] == ["b", "j"]
    assert head["outputs"][0] == {"name": "b", "datatype": "FP32", "shape": [1, 2],
                                  "parameters": {"binary_data_size": 8}}
    assert head["outputs"][1] == {"name": "j", "datatype": "UINT8", "shape": [2], "data": [3, 4]}
    np.testing.assert_array_equal(np.frombuffer(body[size:], np.float32), b.ravel())
    body, headers = encode_infer("m", parse_infer(b'{"inputs":[{"name":"x","datatype":"BOOL","shape":[1],'
                                                  b'"data":[true]}]}', None), {"j": j})
    assert HEADER_LENGTH not in headers and json.loads(body)["outputs"][0]["data"] == [3, 4]


def _tensor(**fields) -> dict:
    return {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1, 2], **fields}]}


@pytest.mark.parametrize("body, length, message", [
    (b"{not json", None, "malformed JSON"),
    (b"[1, 2]", None, "must be a JSON object"),
    (b'{"inputs": []}', None, "non-empty list"),
    (json.dumps(_tensor(datatype="FLOAT")).encode(), None, "unknown or unsupported datatype 'FLOAT'"),
    (json.dumps(_tensor(datatype="BYTES")).encode(), None, "unsupported datatype 'BYTES'"),
    (json.dumps(_tensor(shape=[3])).encode(), None, "holds 2 values, shape [3] needs 3"),
    (json.dumps(_tensor(shape=[-2])).encode(), None, "non-negative integers"),
    (json.dumps(_tensor(shape="2")).encode(), None, "non-negative integers"),
    (json.dumps(_tensor(data=[[1], [2, 3]])).encode(), None, "ragged"),
    (json.dumps(_tensor(data=["a", "b"])).encode(), None, "text values"),
    (json.dumps(_tensor(data=[1, None])).encode(), None, "object values"),
    (json.dumps(_tensor(datatype="UINT8", data=[1, 300])).encode(), None, "out of the range of UINT8"),
    (json.dumps(_tensor(datatype="INT32", data=[1.5, 2])).encode(), None, "float64 values, not INT32"),
    (json.dumps(_tensor(datatype="FP16", data=[1e10, 2])).encode(), None, "out of the range of FP16"),
    (json.dumps({"inputs": [_tensor()["inputs"][0]] * 2}).encode(), None, "given twice"),
    (json.dumps({"inputs": [{"datatype": "FP32", "shape": [1], "data": [1]}]}).encode(), None, "'name'"),
    (json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1]}]}).encode(), None, "neither"),
    (json.dumps({**_tensor(), "outputs": {"name": "y"}}).encode(), None, "'outputs' must be a list"),
    (*_binary({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2],
                           "parameters": {"binary_data_size": 4}}]}, bytes(4)), "binary_data_size 4 does not match"),
    (*_binary({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2],
                           "parameters": {"binary_data_size": 8}}]}, bytes(4)), "ends at byte 8"),
    (*_binary({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2],
                           "parameters": {"binary_data_size": 8}}]}, bytes(12)), "4 bytes of binary data follow"),
    (b'{"inputs": []}', "99", "outside the body"),
    (b'{"inputs": []}', "ten", "must be an integer"),
])
def test_malformed_requests_are_request_errors(body, length, message):
    with pytest.raises(RequestError, match=re.escape(message)) as info:
        parse_infer(body, length)
    assert info.value.status == 400


def test_unknown_requested_output_is_a_request_error():
    request = parse_infer(json.dumps({**_tensor(), "outputs": [{"name": "nosuch"}]}).encode(), None)
    with pytest.raises(RequestError, match="unknown output 'nosuch'"):
        encode_infer("m", request, {"y": np.zeros(1, np.float32)})


SHUFFLENET = BY_NAME["shufflenet_v2"]


@pytest.fixture(scope="module")
def runner():
    return ModelRunner(model_path(SHUFFLENET))


def test_runner_batches_shufflenet_and_splits_outputs_back(runner):
    assert runner.batching
    assert runner.shape(runner.inputs[0]) == [-1, 3, 224, 224]
    ref = reference(SHUFFLENET)
    x = ref["input:data"]
    rng = np.random.RandomState(3)
    others = [rng.uniform(0, 1, (n, 3, 224, 224)).astype(np.float32) for n in (1, 2, 5, 4)]
    alone = [runner.forward({"data": a})["Softmax"] for a in [x, *others]]
    results = runner.run_many([{"data": a} for a in [x, *others]])  # 13 rows: chunks of 8, 4 and 1
    assert_matches(SHUFFLENET, results[0]["Softmax"], ref["output:Softmax"], "Softmax")
    for got, want in zip(results, alone):
        assert got["Softmax"].shape == want.shape
        np.testing.assert_allclose(got["Softmax"], want, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("inputs, message", [
    ({"nosuch": np.zeros((1, 3, 224, 224), np.float32)}, "unknown input 'nosuch'"),
    ({}, "missing input 'data'"),
    ({"data": np.zeros((1, 3, 224, 224), np.int32)}, "datatype int32 does not match the model's float32"),
    ({"data": np.zeros((1, 3, 224), np.float32)},
     r"shape \[1, 3, 224\] does not match the model's \[-1, 3, 224, 224\]"),
    ({"data": np.zeros((0, 3, 224, 224), np.float32)}, "empty batch"),
])
def test_runner_check_refuses_what_does_not_fit_the_model(runner, inputs, message):
    with pytest.raises(RequestError, match=message):
        runner.check(inputs)


def test_importing_the_package_does_not_import_ray():
    code = "import sys, megenginelite, megenginelite.ray; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", ["op_reduce_mean_axis0", "op_reduce_sum_all"])
def test_a_model_whose_dim_0_is_no_batch_is_served_one_request_per_forward(name):
    entry = BY_NAME[name]
    model = ModelRunner(model_path(entry))
    assert not model.batching
    spec = model.inputs[0]
    assert model.shape(spec) == list(spec.shape)
    ref = reference(entry)
    request = {s.name: ref[f"input:{s.name}"] for s in model.inputs}
    assert model.check(request) == 1
    for result in model.run_many([request, request]):
        for out in model.output_names:
            assert_matches(entry, result[out], ref[f"output:{out}"], out)
    doubled = {k: np.concatenate([v, v]) for k, v in request.items()}
    with pytest.raises(RequestError, match="does not match the model's"):
        model.check(doubled)


SCALARS = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
TENSORS = st.fixed_dictionaries(
    {"name": st.sampled_from(["x", "y"]), "datatype": st.sampled_from(["FP32", "INT8", "BOOL", "FP16", "X"]),
     "shape": st.lists(st.integers(-1, 3), max_size=3)},
    optional={"data": JSON_VALUES, "parameters": st.fixed_dictionaries({"binary_data_size": st.integers(-1, 40)})})


@settings(max_examples=300, deadline=None)
@given(header=st.fixed_dictionaries({}, optional={"inputs": st.lists(TENSORS | JSON_VALUES, max_size=3),
                                                  "outputs": JSON_VALUES, "parameters": JSON_VALUES,
                                                  "id": JSON_VALUES}),
       binary=st.binary(max_size=48), length_delta=st.integers(-3, 3), use_length=st.booleans())
def test_any_request_parses_or_is_a_request_error(header, binary, length_delta, use_length):
    """Random requests, JSON and binary: a parsed request or a RequestError, never another exception."""
    head = json.dumps(header).encode()
    length = str(len(head) + length_delta) if use_length else None
    try:
        parsed = parse_infer(head + binary if use_length else head, length)
    except RequestError:
        return
    for arr in parsed.inputs.values():
        assert isinstance(arr, np.ndarray)
