"""Graph rewrites (graph/passes.py) change the graph, never the outputs: checked on every fixture model."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import MANIFEST, model_path, reference
from megenginelite.format import read_model
from megenginelite.graph import build_graph, infer_graph
from megenginelite.graph.passes import PASSES
from megenginelite.runtime.session import CompiledModel, SessionConfig

MODELS = [e for e in MANIFEST if e["category"] == "model"]


def run(entry: dict, rewrites: bool) -> tuple[dict[str, np.ndarray], int]:
    with open(model_path(entry), "rb") as f:
        record = read_model(f.read(), entry["file"])
    ref = reference(entry)
    feeds = {n: np.ascontiguousarray(ref[f"input:{n}"]) for n in entry["inputs"]}
    model = CompiledModel(record, SessionConfig(rewrites=rewrites))
    plan = model.plan({k: v.shape for k, v in feeds.items()}, {k: v.dtype for k, v in feeds.items()})
    outputs = {s.name: np.empty(s.shape, s.dtype.np_dtype) for s in plan.outputs}
    plan.run(feeds, outputs)
    return outputs, len(plan.graph.ops)


@pytest.mark.parametrize("entry", MODELS, ids=[e["name"] for e in MODELS])
def test_rewrites_keep_outputs(entry):
    plain, plain_ops = run(entry, rewrites=False)
    rewritten, rewritten_ops = run(entry, rewrites=True)
    assert rewritten_ops <= plain_ops
    for name, value in plain.items():
        np.testing.assert_allclose(rewritten[name], value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rewrite", PASSES, ids=[p.__name__ for p in PASSES])
def test_each_rewrite_applies_to_some_fixture(rewrite):
    """A rewrite that never fires on our fixtures is untested: require at least one model it changes."""
    changed = []
    for entry in MODELS:
        with open(model_path(entry), "rb") as f:
            graph = build_graph(read_model(f.read(), entry["file"]))
        infer_graph(graph)
        before = len(graph.ops)
        rewrite(graph)
        if len(graph.ops) < before:
            changed.append(entry["name"])
    assert changed
