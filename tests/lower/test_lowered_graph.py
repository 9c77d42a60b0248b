"""What the lowered ONNX graph leaves out or fuses, checked on the graph itself (the outputs of every fixture are
compared with real MegEngine's elsewhere): unread node outputs are not computed, GELU is one fused node."""

from __future__ import annotations

import collections

import onnx

from conftest import BY_NAME, model_path
from megenginelite.format import read_model
from megenginelite.graph import build_graph, infer_graph
from megenginelite.lower import to_onnx
from megenginelite.lower.builder import prune_unused
from megenginelite.lower.onnx_proto import Node


def lowered(name: str) -> onnx.ModelProto:
    graph = build_graph(read_model(open(model_path(BY_NAME[name]), "rb").read()))
    infer_graph(graph)
    return to_onnx(graph)


def test_prune_unused_drops_unread_chains_and_optional_outputs():
    nodes = [Node("LayerNormalization", ["x", "s", "b"], ["y", "mean", "rstd"]),
             Node("Reshape", ["mean", "shape"], ["mean2"]),  # read by nothing
             Node("Relu", ["y"], ["r"]),
             Node("Exp", ["rstd"], ["e"])]
    kept = prune_unused(nodes, {"r", "e"})
    assert [n.op_type for n in kept] == ["LayerNormalization", "Relu", "Exp"]
    assert kept[0].outputs == ["y", "", "rstd"]  # the mean is left out by an empty name, rstd is still read
    assert prune_unused(kept, {"r"})[0].outputs == ["y"]  # trailing unread optional outputs are dropped


def test_layer_norm_computes_no_statistics_nobody_reads():
    model = lowered("transformer_block")
    norms = [n for n in model.graph.node if n.op_type == "LayerNormalization"]
    assert len(norms) == 2 and all(list(n.output)[1:] == [] for n in norms)
    used = {i for n in model.graph.node for i in n.input}
    assert all(init.name in used for init in model.graph.initializer)


def test_gelu_is_one_fused_node():
    types = collections.Counter((n.domain, n.op_type) for n in lowered("transformer_block").graph.node)
    assert types[("com.microsoft", "Gelu")] == 1 and types[("", "Erf")] == 0


def test_official_bert_layer_runs_fused_kernels():
    """The official BERT's written-out LayerNorm and tanh GELU reach ONNX Runtime as its fused kernels (the
    outputs are checked against real MegEngine's with every other fixture)."""
    from megenginelite.graph.passes import optimize

    graph = build_graph(read_model(open(model_path(BY_NAME["bert_layer"]), "rb").read()))
    infer_graph(graph)
    optimize(graph, pad_channels=False)
    types = collections.Counter((n.domain, n.op_type) for n in to_onnx(graph).graph.node)
    assert types[("", "LayerNormalization")] == 2 and types[("com.microsoft", "FastGelu")] == 1
    assert types[("", "ReduceMean")] == types[("", "Tanh")] == types[("", "Pow")] == 0
