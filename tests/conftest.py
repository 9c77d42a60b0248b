"""Shared fixtures: the manifest of reference models recorded with real MegEngine 1.13 (tools/make_fixtures.py, whose
fixtures are defined in tools/fixtures/)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from megenginelite import LiteNetwork

FIXTURES = Path(__file__).parent / "fixtures"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
BY_NAME = {entry["name"]: entry for entry in MANIFEST}


def reference(entry: dict) -> dict[str, np.ndarray]:
    """The recorded inputs and outputs of one fixture, keyed 'input:<name>' / 'output:<name>'."""
    with np.load(FIXTURES / f"{entry['name']}.npz") as data:
        return {key: data[key] for key in data.files}


def model_path(entry: dict) -> str:
    return str(FIXTURES / entry["file"])


@pytest.fixture
def shufflenet() -> dict:
    return BY_NAME["shufflenet_v2"]


def unordered_rows(entry: dict) -> bool:
    """Whether the model has a TopK in VALUE_IDX_NOSORT mode: MegDNN leaves the order of each row's k results to
    its nth_element, so only the row contents can be compared (sort the last axis of both sides)."""
    from megenginelite.format import read_model
    from megenginelite.graph import build_graph

    with open(model_path(entry), "rb") as f:
        graph = build_graph(read_model(f.read(), entry["file"]))
    return any(op.kind == "TopK" and op.params.get("mode") == 1 for op in graph.ops)


def run(network: LiteNetwork, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One forward: copy ``feeds`` in by name, run, and return every output by name (in the network's order)."""
    for name, value in feeds.items():
        network.get_io_tensor(name).set_data_by_copy(value)
    network.forward()
    network.wait()
    return {name: network.get_io_tensor(name).to_numpy() for name in network.get_all_output_name()}


def assert_matches(entry: dict, got: np.ndarray, want: np.ndarray, what: str) -> None:
    """``got`` equals the recorded ``want``: same shape and dtype, floats within the entry's tolerances."""
    assert got.shape == want.shape, f"{entry['name']}:{what} shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{entry['name']}:{what} dtype {got.dtype} != {want.dtype}"
    if np.issubdtype(want.dtype, np.floating):
        np.testing.assert_allclose(got, want, rtol=entry["rtol"], atol=entry["atol"], err_msg=f"{entry['name']}:{what}")
    else:
        np.testing.assert_array_equal(got, want, err_msg=f"{entry['name']}:{what}")


@pytest.fixture(scope="session")
def ray_session():
    """One small local Ray instance for the whole test session (2 CPUs, no dashboard, a small object store),
    shut down at the end; the tests that need it are skipped when Ray is not installed."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'megenginelite[serve]')")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False,
             configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()


# Fixtures we do not match yet, and why (strict: a fix makes the test fail until the entry goes).
UNSUPPORTED = {
    "op_nms": "the fixture's random boxes are flipped (x2 < x1); MegBrain's NMS compares raw (negative) areas, ONNX "
              "NonMaxSuppression normalizes the corners, so box 0 is kept here and suppressed there",
    "format_keep_var_name0": "the file stores no var names; the real library invents 'softmax(ADD[51])[53]' from "
                             "MegBrain's internal id counter, ours names the output 'var<id>'",
}


def manifest_params():
    """Fixtures whose note flags a KNOWN BAD REFERENCE (the real library's output is wrong) are expected to fail,
    and so are the UNSUPPORTED ones."""
    for entry in MANIFEST:
        marks = ()
        if "KNOWN BAD REFERENCE" in entry["note"]:
            marks = pytest.mark.xfail(reason="the recorded reference is a real-library bug (see the fixture note)")
        elif entry["name"] in UNSUPPORTED:
            marks = pytest.mark.xfail(strict=True, reason=UNSUPPORTED[entry["name"]])
        yield pytest.param(entry, id=entry["name"], marks=marks)
