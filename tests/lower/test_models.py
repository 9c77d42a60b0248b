"""Every fixture model, run through the Lite API, matches the outputs real MegEngine Lite 1.13 recorded."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import BY_NAME, assert_matches, manifest_params, model_path, reference, run, unordered_rows
from megenginelite import LiteNetwork


@pytest.mark.parametrize("entry", list(manifest_params()))
def test_fixture_matches_real_megengine(entry):
    ref = reference(entry)
    network = LiteNetwork()
    network.load(model_path(entry))
    assert network.get_all_input_name() == entry["inputs"]
    assert network.get_all_output_name() == entry["outputs"]
    outputs = run(network, {n: ref[f"input:{n}"] for n in entry["inputs"]})
    unordered = unordered_rows(entry)
    for name in entry["outputs"]:
        got, want = outputs[name], ref[f"output:{name}"]
        if unordered:
            got, want = np.sort(got, axis=-1), np.sort(want, axis=-1)
        assert_matches(entry, got, want, name)


def test_output_layout_known_right_after_load():
    entry = BY_NAME["shufflenet_v2"]
    network = LiteNetwork()
    network.load(model_path(entry))
    for name, shape in zip(entry["outputs"], entry["output_shapes"]):
        layout = network.get_io_tensor(name).layout
        assert layout.shapes == shape
        assert np.dtype(layout.dtype) == np.dtype(entry["output_dtypes"][0])


def test_new_batch_size_on_the_next_forward():
    """ShuffleNet was dumped at batch 1; batch 4 then batch 1 again run on one loaded network."""
    small, big = BY_NAME["shufflenet_v2"], BY_NAME["shufflenet_v2_b4"]
    network = LiteNetwork()
    network.load(model_path(small))
    for entry in (big, small):
        ref = reference(entry)
        outputs = run(network, {"data": ref["input:data"]})
        assert_matches(entry, outputs["Softmax"], ref["output:Softmax"], "Softmax")
