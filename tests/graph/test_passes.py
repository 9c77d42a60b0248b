"""Graph rewrites (graph/passes.py) change the graph, never the outputs: checked on every fixture model."""

from __future__ import annotations

import copy
import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import BY_NAME, MANIFEST, model_path, reference
from megenginelite.format import read_model
from megenginelite.format.dtypes import FLOAT32, INT32
from megenginelite.graph import build_graph, infer_graph, passes
from megenginelite.graph.elemwise_modes import MODES
from megenginelite.graph.ir import Graph, Op, Var
from megenginelite.graph.passes import PASSES
from megenginelite.lower import to_onnx_bytes
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


@pytest.mark.parametrize("block", [8, 16])
def test_channel_padding_keeps_outputs_for_each_block_size(monkeypatch, block):
    """The padding depends on the CPU's NCHWc block: both sizes x86 has give the reference outputs."""
    monkeypatch.setattr(passes, "nchwc_block", lambda: block)
    entry = BY_NAME["shufflenet_v2"]
    plain, _ = run(entry, rewrites=False)
    rewritten, _ = run(entry, rewrites=True)
    for name, value in plain.items():
        np.testing.assert_allclose(rewritten[name], value, rtol=1e-5, atol=1e-6)


def signature(graph: Graph) -> list:
    return [(op.kind, repr(sorted(op.params.items())), [v.shape for v in op.inputs + op.outputs]) for op in graph.ops]


@pytest.mark.parametrize("rewrite", PASSES, ids=[p.__name__ for p in PASSES])
def test_each_rewrite_applies_to_some_fixture(monkeypatch, rewrite):
    """A rewrite that never fires on our fixtures is untested: require at least one model it changes (after the
    rewrites that run before it)."""
    monkeypatch.setattr(passes, "nchwc_block", lambda: 16)  # as on an AVX-512 machine, whatever runs the test
    changed = []
    for entry in MODELS:
        with open(model_path(entry), "rb") as f:
            graph = build_graph(read_model(f.read(), entry["file"]))
        infer_graph(graph)
        for earlier in PASSES[:PASSES.index(rewrite)]:
            earlier(graph)
        before = signature(graph)
        rewrite(graph)
        if signature(graph) != before:
            changed.append(entry["name"])
    assert changed


# --- small hand-built graphs: each rewrite fires (or must not) and the outputs stay the same -------------------

class GraphMaker:
    """Builds a float32 IR graph op by op; vars get their shapes from the rewrites' point of view (inferred)."""

    def __init__(self):
        self.graph = Graph("test", [], [], [])

    def var(self, shape, const=None, name=None) -> Var:
        var = Var(len(self.graph.vars) + 1, name or f"v{len(self.graph.vars) + 1}", FLOAT32, tuple(shape),
                  None if const is None else np.asarray(const, np.float32))
        self.graph.vars[var.id] = var
        return var

    def input(self, shape) -> Var:
        var = self.var(shape, name=f"in{len(self.graph.inputs)}")
        self.graph.inputs.append(var)
        return var

    def op(self, kind, inputs, **params) -> Var:
        out = self.var(())
        op = Op(kind, kind, params, list(inputs), [out], index=len(self.graph.ops))
        out.producer = op
        self.graph.ops.append(op)
        infer_graph(Graph("probe", [], [op], []))
        return out

    def elemwise(self, mode: str, *inputs) -> Var:
        return self.op("Elemwise", inputs, mode=next(k for k, v in MODES.items() if v[0] == mode))

    def run(self, outputs: list[Var], feeds: dict, rewrite=None) -> list[np.ndarray]:
        graph = copy.deepcopy(self.graph)
        graph.outputs = [(f"out{i}", graph.vars[v.id]) for i, v in enumerate(outputs)]
        if rewrite:
            rewrite(graph)
        session = ort.InferenceSession(to_onnx_bytes(graph), providers=["CPUExecutionProvider"])
        return session.run(None, feeds), graph


def check_rewrite(maker: GraphMaker, outputs, rewrite, feeds, expect_ops: int, rtol=1e-6):
    want, _ = maker.run(outputs, feeds)
    got, graph = maker.run(outputs, feeds, rewrite)
    assert len(graph.ops) == expect_ops
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-6)
    return graph


def conv(maker, x, out_channels, kernel=1, groups=None, bias=True, seed=0):
    rng = np.random.RandomState(seed)
    c = x.shape[1]
    if groups:
        w = maker.var((c, 1, 1, kernel, kernel), rng.randn(c, 1, 1, kernel, kernel))
    else:
        w = maker.var((out_channels, c, kernel, kernel), rng.randn(out_channels, c, kernel, kernel) / c)
    params = dict(sparse=1 if groups else 0, pad_h=kernel // 2, pad_w=kernel // 2)
    if not bias:
        return maker.op("Convolution", [x, w], **params)
    b = maker.var((1, w.shape[0], 1, 1), rng.randn(1, w.shape[0], 1, 1))
    return maker.op("ConvBias", [x, w, b], nonlineMode=1, **params)


@pytest.mark.parametrize("order", ["max_first", "min_first"])
def test_fold_clip(order):
    m = GraphMaker()
    x = m.input((2, 3, 4, 4))
    lo, hi = m.var((1,), [0.0]), m.var((1,), [6.0])
    if order == "max_first":
        y = m.elemwise("MIN", hi, m.elemwise("MAX", x, lo))
    else:
        y = m.elemwise("MAX", m.elemwise("MIN", x, hi), lo)
    feeds = {"in0": np.random.RandomState(1).uniform(-10, 10, (2, 3, 4, 4)).astype(np.float32)}
    graph = check_rewrite(m, [y], passes.fold_clip, feeds, expect_ops=1)
    assert graph.ops[0].params["mode"] == passes.CLIP_MODE


def test_fold_clip_leaves_crossed_bounds_and_shared_values():
    m = GraphMaker()
    x = m.input((5,))
    crossed = m.elemwise("MAX", m.elemwise("MIN", x, m.var((1,), [-1.0])), m.var((1,), [1.0]))  # always 1
    inner = m.elemwise("MAX", x, m.var((1,), [0.0]))
    shared = m.elemwise("MIN", inner, m.var((1,), [6.0]))
    feeds = {"in0": np.array([-5, -0.5, 0.5, 5, 10], np.float32)}
    got, _ = m.run([crossed, shared, inner], feeds, passes.fold_clip)
    np.testing.assert_array_equal(got[0], np.ones(5, np.float32))
    np.testing.assert_array_equal(got[1], np.clip(feeds["in0"], 0, 6))


def test_fuse_conv_residual_moves_the_conv_after_its_residual():
    """ADD(bias, ADD(conv(x), r)) where r is computed after the conv: the fused ConvBias must run after r."""
    m = GraphMaker()
    x = m.input((1, 16, 6, 6))
    main = conv(m, x, 16, kernel=3, bias=False)
    shortcut = conv(m, x, 16, bias=False, seed=1)
    summed = m.elemwise("ADD", main, shortcut)
    out = m.elemwise("FUSE_ADD_RELU", m.var((1, 16, 1, 1), np.linspace(-1, 1, 16).reshape(1, 16, 1, 1)), summed)
    feeds = {"in0": np.random.RandomState(2).randn(1, 16, 6, 6).astype(np.float32)}
    graph = check_rewrite(m, [out], passes.fuse_conv_residual, feeds, expect_ops=2, rtol=1e-5)
    fused = graph.ops[-1]
    assert fused.kind == "ConvBias" and fused.params["nonlineMode"] == 1 and len(fused.inputs) == 4


def test_fuse_conv_residual_leaves_a_conv_whose_output_is_also_used_elsewhere():
    m = GraphMaker()
    x = m.input((1, 4, 3, 3))
    c = conv(m, x, 4, bias=False)
    out = m.elemwise("ADD", m.var((1, 4, 1, 1), np.ones((1, 4, 1, 1))), m.elemwise("ADD", c, x))
    feeds = {"in0": np.random.RandomState(3).randn(1, 4, 3, 3).astype(np.float32)}
    check_rewrite(m, [out, c], passes.fuse_conv_residual, feeds, expect_ops=3)


@pytest.mark.parametrize("block", [8, 16])
def test_pad_channels_to_block(block):
    m = GraphMaker()
    x = m.input((1, 10, 8, 8))
    mid = conv(m, conv(m, x, 58), 58, kernel=3, groups=True, bias=False)
    out = conv(m, mid, 24, seed=2)
    feeds = {"in0": np.random.RandomState(4).randn(1, 10, 8, 8).astype(np.float32)}
    graph = check_rewrite(m, [out], lambda g: passes.pad_channels_to_block(g, block), feeds, expect_ops=3,
                          rtol=1e-5)
    assert graph.ops[1].outputs[0].shape == (1, 64, 8, 8) and graph.ops[2].outputs[0].shape == (1, 24, 8, 8)


def test_pad_channels_to_block_leaves_graph_outputs_and_aligned_channels():
    m = GraphMaker()
    x = m.input((1, 8, 5, 5))
    aligned = conv(m, conv(m, conv(m, x, 32), 32, kernel=3, groups=True), 8, seed=3)
    exposed = conv(m, conv(m, x, 20), 20, kernel=3, groups=True)  # a graph output: its shape must stay
    out = conv(m, exposed, 8, seed=4)
    feeds = {"in0": np.random.RandomState(5).randn(1, 8, 5, 5).astype(np.float32)}
    before = signature(m.graph)
    got, graph = m.run([aligned, exposed, out], feeds, lambda g: passes.pad_channels_to_block(g, 16))
    assert signature(graph) == before


# --- transformer fusions (graph/fusions.py) -------------------------------------------------------------------

def tanh_gelu(maker, x, inner=math.sqrt(2 / math.pi), cube=0.044715):
    k = lambda v: maker.var((), v)  # noqa: E731
    cubed = maker.op("PowC", [x], exp=3.0)
    arg = maker.elemwise("MUL", k(inner), maker.elemwise("ADD", x, maker.elemwise("MUL", k(cube), cubed)))
    half = maker.elemwise("MUL", x, k(0.5))
    return maker.elemwise("MUL", half, maker.elemwise("ADD", k(1.0), maker.elemwise("TANH", arg)))


def written_layer_norm(maker, x, weight, bias, eps=1e-12, axis=2):
    mean = maker.op("Reduce", [x], mode=5, axis=axis)
    centered = maker.elemwise("ADD", x, maker.elemwise("NEGATE", mean))
    var = maker.op("Reduce", [maker.op("PowC", [centered], exp=2.0)], mode=5, axis=axis)
    rstd = maker.op("PowC", [maker.elemwise("ADD", var, maker.var((), eps))], exp=-0.5)
    scaled = maker.elemwise("MUL", maker.elemwise("MUL", maker.var((x.shape[-1],), weight), centered), rstd)
    return maker.elemwise("ADD", scaled, maker.var((x.shape[-1],), bias))


def test_fuse_gelu_tanh_formula_becomes_one_op():
    maker = GraphMaker()
    x = maker.input((2, 5, 16))
    out = tanh_gelu(maker, maker.elemwise("ADD", x, maker.var((16,), np.linspace(-1, 1, 16))))
    feeds = {"in0": np.random.RandomState(0).randn(2, 5, 16).astype(np.float32) * 3}
    graph = check_rewrite(maker, [out], passes.fuse_gelu, feeds, expect_ops=2, rtol=1e-5)
    assert [op.kind for op in graph.ops] == ["Elemwise", "FusedGeluTanh"]  # the bias add stays for ORT's BiasGelu


def test_fuse_gelu_leaves_other_constants_and_shared_intermediates():
    maker = GraphMaker()
    x = maker.input((4, 16))
    feeds = {"in0": np.random.RandomState(1).randn(4, 16).astype(np.float32)}
    near = tanh_gelu(maker, x, cube=0.05)  # looks like GELU, computes something else
    check_rewrite(maker, [near], passes.fuse_gelu, feeds, expect_ops=8)
    maker = GraphMaker()
    x = maker.input((4, 16))
    out = tanh_gelu(maker, x)
    inner = maker.graph.ops[4].outputs[0]  # the tanh's argument, also read from outside the chain
    check_rewrite(maker, [out, inner], passes.fuse_gelu, feeds, expect_ops=8)


def test_fuse_layer_norm_written_out_becomes_one_layer_norm():
    maker = GraphMaker()
    x = maker.input((2, 6, 16))
    rng = np.random.RandomState(2)
    out = written_layer_norm(maker, x, rng.uniform(0.5, 1.5, 16), rng.randn(16))
    feeds = {"in0": rng.randn(2, 6, 16).astype(np.float32) + 3}
    graph = check_rewrite(maker, [out], passes.fuse_layer_norm, feeds, expect_ops=1, rtol=1e-5)
    assert graph.ops[0].kind == "LayerNorm" and graph.ops[0].params["eps"] == pytest.approx(1e-12)


def test_fuse_layer_norm_leaves_a_mean_over_another_axis_and_read_statistics():
    rng = np.random.RandomState(3)
    feeds = {"in0": rng.randn(2, 6, 16).astype(np.float32)}
    maker = GraphMaker()
    x = maker.input((2, 6, 16))
    out = written_layer_norm(maker, x, np.ones(16), np.zeros(16), axis=1)  # not the last axis: shapes differ
    check_rewrite(maker, [out], passes.fuse_layer_norm, feeds, expect_ops=10)
    maker = GraphMaker()
    x = maker.input((2, 6, 16))
    out = written_layer_norm(maker, x, np.ones(16), np.zeros(16))
    mean = maker.graph.ops[0].outputs[0]
    check_rewrite(maker, [out, mean], passes.fuse_layer_norm, feeds, expect_ops=10)


def int_shape(maker, shape) -> Var:
    var = Var(len(maker.graph.vars) + 1, "shape", INT32, (len(shape),), np.array(shape, np.int32))
    maker.graph.vars[var.id] = var
    return var


def linear(maker, x, weight, bias_shape=None, seed=0):
    """``F.linear`` on a 3-D input as MegEngine dumps it: reshape to 2-D, MatrixMul, reshape back, add the bias."""
    b, s, k = x.shape
    rng = np.random.RandomState(seed)
    flat = maker.op("Reshape", [x, int_shape(maker, (b * s, k))])
    product = maker.op("MatrixMul", [flat, maker.var((weight, k), rng.randn(weight, k))], transposeB=True)
    out = maker.op("Reshape", [product, int_shape(maker, (b, s, weight))])
    bias = maker.var(bias_shape or (weight,), rng.randn(*(bias_shape or (weight,))))
    return out, bias


def test_fuse_matmul_bias_takes_the_bias_into_the_product():
    maker = GraphMaker()
    x = maker.input((2, 5, 8))
    out, bias = linear(maker, x, 6)
    out = maker.elemwise("ADD", bias, out)
    feeds = {"in0": np.random.RandomState(4).randn(2, 5, 8).astype(np.float32)}
    graph = check_rewrite(maker, [out], passes.fuse_matmul_bias, feeds, expect_ops=3, rtol=1e-5)
    assert [op.kind for op in graph.ops] == ["Reshape", "FusedMatMulBias", "Reshape"]
    assert graph.ops[1].type == "MatrixMul"  # profiles and errors still name the file's operator


def test_fuse_matmul_bias_reaches_past_a_residual_add():
    maker = GraphMaker()
    x = maker.input((2, 5, 8))
    out, bias = linear(maker, x, 8)
    out = maker.elemwise("ADD", bias, maker.elemwise("ADD", x, out))
    feeds = {"in0": np.random.RandomState(5).randn(2, 5, 8).astype(np.float32)}
    graph = check_rewrite(maker, [out], passes.fuse_matmul_bias, feeds, expect_ops=4, rtol=1e-5)
    assert [op.kind for op in graph.ops] == ["Reshape", "FusedMatMulBias", "Reshape", "Elemwise"]


def test_fuse_matmul_bias_leaves_other_broadcasts_and_read_products():
    feeds = {"in0": np.random.RandomState(6).randn(2, 5, 8).astype(np.float32)}
    maker = GraphMaker()
    out, bias = linear(maker, maker.input((2, 5, 8)), 6, bias_shape=(1, 5, 1))  # one value per row, not column
    check_rewrite(maker, [maker.elemwise("ADD", bias, out)], passes.fuse_matmul_bias, feeds, expect_ops=4)
    maker = GraphMaker()
    out, bias = linear(maker, maker.input((2, 5, 8)), 6)
    product = maker.graph.ops[1].outputs[0]  # also a graph output
    check_rewrite(maker, [maker.elemwise("ADD", bias, out), product], passes.fuse_matmul_bias, feeds, expect_ops=4)


def written_attention(maker, q, k, v, heads, mask=None, divide=False, probs_out=None):
    """MegEngine's BERT attention as its dump has it: heads split by reshape + transpose (k transposed once more),
    batched products, the scale as a constant factor (or divisor), the mask term added, softmax, merged back."""
    b, s, hidden = q.shape
    t, d = k.shape[1], hidden // heads

    def split(x, n, pattern, shape):
        four = maker.op("Reshape", [x, int_shape(maker, (b, n, heads, d))])
        return maker.op("Reshape", [maker.op("Dimshuffle", [four], pattern=pattern), int_shape(maker, shape)])

    qh = split(q, s, (0, 2, 1, 3), (b * heads, s, d))
    kh = split(k, t, (0, 2, 3, 1), (b * heads, d, t))
    vh = split(v, t, (0, 2, 1, 3), (b * heads, t, d))
    scores = maker.op("Reshape", [maker.op("BatchedMatrixMul", [qh, kh]), int_shape(maker, (b, heads, s, t))])
    scores = (maker.elemwise("TRUE_DIV", scores, maker.var((), math.sqrt(d))) if divide
              else maker.elemwise("MUL", maker.var((), 1 / math.sqrt(d)), scores))
    if mask is not None:
        scores = maker.elemwise("ADD", mask, scores)
    probs = maker.op("Softmax", [scores], axis=3)
    if probs_out is not None:
        probs_out.append(probs)
    context = maker.op("BatchedMatrixMul", [maker.op("Reshape", [probs, int_shape(maker, (b * heads, s, t))]), vh])
    context = maker.op("Reshape", [context, int_shape(maker, (b, heads, s, d))])
    return maker.op("Reshape", [maker.op("Dimshuffle", [context], pattern=(0, 2, 1, 3)),
                                int_shape(maker, (b, s, hidden))])


def attention_feeds(seed, *shapes):
    rng = np.random.RandomState(seed)
    return {f"in{i}": rng.randn(*shape).astype(np.float32) for i, shape in enumerate(shapes)}


def test_fuse_attention_with_a_mask_becomes_one_op():
    maker = GraphMaker()
    q, k, v = (maker.input((2, 6, 16)) for _ in range(3))
    keep = maker.input((1, 1, 1, 6))
    mask = maker.elemwise("MUL", maker.var((), -10000.0), maker.elemwise("SUB", maker.var((), 1.0), keep))
    out = written_attention(maker, q, k, v, heads=4, mask=mask)
    feeds = attention_feeds(8, (2, 6, 16), (2, 6, 16), (2, 6, 16))
    feeds["in3"] = np.array([1, 1, 1, 1, 0, 0], np.float32).reshape(1, 1, 1, 6)
    graph = check_rewrite(maker, [out], passes.fuse_attention, feeds, expect_ops=3, rtol=1e-5)
    assert [op.kind for op in graph.ops] == ["Elemwise", "Elemwise", "FusedAttention"]
    assert graph.ops[2].params["dims"] == (2, 6, 6, 4, 4) and graph.ops[2].params["scale"] == pytest.approx(0.5)


def test_fuse_attention_cross_lengths_and_a_divided_scale():
    maker = GraphMaker()
    q, k, v = maker.input((1, 5, 8)), maker.input((1, 7, 8)), maker.input((1, 7, 8))
    out = written_attention(maker, q, k, v, heads=2, divide=True)
    feeds = attention_feeds(9, (1, 5, 8), (1, 7, 8), (1, 7, 8))
    graph = check_rewrite(maker, [out], passes.fuse_attention, feeds, expect_ops=1, rtol=1e-5)
    assert graph.ops[0].params["scale"] == pytest.approx(0.5)


def test_fuse_attention_leaves_read_probabilities_and_other_products():
    feeds = attention_feeds(10, (1, 4, 8), (1, 4, 8), (1, 4, 8))
    maker = GraphMaker()
    q, k, v = (maker.input((1, 4, 8)) for _ in range(3))
    probs = []
    out = written_attention(maker, q, k, v, heads=2, probs_out=probs)
    ops = len(maker.graph.ops)
    check_rewrite(maker, [out, probs[0]], passes.fuse_attention, feeds, expect_ops=ops)  # the weights are an output
    maker = GraphMaker()
    q, k, v = (maker.input((1, 4, 8)) for _ in range(3))
    out = written_attention(maker, q, k, v, heads=2)
    softmax = next(op for op in maker.graph.ops if op.kind == "Softmax")
    softmax.params["axis"] = 2  # normalized over the queries: not attention
    check_rewrite(maker, [out], passes.fuse_attention, feeds, expect_ops=len(maker.graph.ops))


# --- global pooling written as reductions (graph/fusions.py) ---------------------------------------------------

def spatial_reduce(maker, x, mode, first_axis=3, remove=True):
    """x.mean(first_axis) then the other spatial axis, the reduced axis removed in between (as MegEngine dumps it)
    or kept (``remove=False``)."""
    once = maker.op("Reduce", [x], mode=mode, axis=first_axis)
    if remove:
        once = maker.op("AxisAddRemove", [once], desc=((1, first_axis),))
    return maker.op("Reduce", [once], mode=mode, axis=5 - first_axis if not remove else 2)


@pytest.mark.parametrize("mode, first_axis, remove", [(5, 3, True), (5, 2, True), (4, 3, True), (5, 3, False)])
def test_fuse_global_pool_takes_a_spatial_mean_or_max(mode, first_axis, remove):
    maker = GraphMaker()
    x = maker.input((2, 6, 5, 7))
    out = spatial_reduce(maker, maker.elemwise("RELU", x), mode, first_axis, remove)
    feeds = {"in0": np.random.RandomState(11).randn(2, 6, 5, 7).astype(np.float32)}
    graph = check_rewrite(maker, [out], passes.fuse_global_pool, feeds, expect_ops=2, rtol=1e-5)
    assert graph.ops[1].kind == "FusedGlobalPool" and graph.ops[1].params == {"mode": {5: "MEAN", 4: "MAX"}[mode]}
    onnx_ops = {n.op_type for n in onnx.load_from_string(to_onnx_bytes(graph)).graph.node}
    assert {5: "GlobalAveragePool", 4: "GlobalMaxPool"}[mode] in onnx_ops and "ReduceMean" not in onnx_ops


def test_fuse_global_pool_leaves_other_axes_mixed_modes_and_read_intermediates():
    feeds = {"in0": np.random.RandomState(12).randn(1, 4, 3, 5).astype(np.float32)}
    maker = GraphMaker()
    x = maker.input((1, 4, 3, 5))
    channels = maker.op("Reduce", [maker.op("Reduce", [x], mode=5, axis=3)], mode=5, axis=1)  # over W, then C
    check_rewrite(maker, [channels], passes.fuse_global_pool, feeds, expect_ops=2)
    maker = GraphMaker()
    x = maker.input((1, 4, 3, 5))
    mixed = maker.op("Reduce", [maker.op("Reduce", [x], mode=4, axis=3)], mode=5, axis=2)  # max, then mean
    check_rewrite(maker, [mixed], passes.fuse_global_pool, feeds, expect_ops=2)
    maker = GraphMaker()
    x = maker.input((1, 4, 3, 5))
    rows = maker.op("Reduce", [x], mode=5, axis=3)
    out = maker.op("Reduce", [rows], mode=5, axis=2)
    check_rewrite(maker, [out, rows], passes.fuse_global_pool, feeds, expect_ops=2)  # the row means are an output
