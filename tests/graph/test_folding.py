"""Constant folding agrees with the real library: every fixture, with its inputs made constants, folds (where all
its operators have numpy fold rules) to the outputs real MegEngine recorded."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import MANIFEST, model_path, reference, unordered_rows
from megenginelite.errors import LiteError
from megenginelite.format import read_model
from megenginelite.graph import build_graph, infer_graph

OPS = [e for e in MANIFEST if e["category"] == "op"]


@pytest.mark.parametrize("entry", OPS, ids=[e["name"] for e in OPS])
def test_folding_matches_real_megengine(entry):
    ref = reference(entry)
    with open(model_path(entry), "rb") as f:
        graph = build_graph(read_model(f.read(), entry["file"]))
    for var in graph.inputs:
        var.const = ref[f"input:{var.name}"]
    try:
        infer_graph(graph)
    except LiteError as exc:
        pytest.skip(f"not foldable: {exc}")
    outputs = dict(graph.outputs)
    if not all(outputs[name].is_const for name in entry["outputs"]):
        pytest.skip("some operator has no fold rule")
    unordered = unordered_rows(entry)
    for name in entry["outputs"]:
        got, want = outputs[name].const, ref[f"output:{name}"]
        if unordered:
            got, want = np.sort(got, axis=-1), np.sort(want, axis=-1)
        assert got.shape == want.shape and got.dtype == want.dtype, (name, got.shape, got.dtype)
        if np.issubdtype(want.dtype, np.floating):
            np.testing.assert_allclose(got, want, rtol=entry["rtol"], atol=entry["atol"], err_msg=name)
        else:
            np.testing.assert_array_equal(got, want, err_msg=name)
