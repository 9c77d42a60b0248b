"""Run-time dims (``graph.dims.Sym``) through each operator family, checked with the fold rules as the oracle.

Each case is a small IR graph whose input ``x`` goes through a CondTake first, so every later value has a length
known only at run time. The graph is inferred twice: with ``x`` a graph input (symbolic shapes, lowered to ONNX and
run by ONNX Runtime), and with ``x`` a constant (everything folds with numpy: the expected values). Both must agree
on inputs that keep many, one or (where the graph allows it) no elements. (MegEngine 1.13 itself crashes tracing some of these, e.g. a Reduce
of a CondTake result, so they have no recorded fixture; the chains it can dump are in test_dynamic_shapes.py.)
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from megenginelite.format.dtypes import FLOAT32, INT32
from megenginelite.graph import infer_graph
from megenginelite.graph.dims import Sym, add, floordiv, maximum, minimum, mul, sign
from megenginelite.graph.ir import Graph, Op, Var
from megenginelite.lower import to_onnx_bytes

ADD, FLOOR_DIV, MOD, MUL, NEGATE = 16, 17, 20, 21, 11


class Net:
    """Builds one IR graph; ``x`` (3, 4) float32 is the input, or a constant for the oracle."""

    def __init__(self, x: np.ndarray | None):
        self.vars: list[Var] = []
        self.ops: list[Op] = []
        self.x = self.var("x", FLOAT32, (3, 4), x)

    def var(self, name, dtype=None, shape=None, const=None) -> Var:
        v = Var(len(self.vars), name, dtype, shape, None if const is None else np.asarray(const))
        self.vars.append(v)
        return v

    def const(self, value, dtype=INT32) -> Var:
        value = np.asarray(value, dtype.np_dtype).reshape(-1)
        return self.var(f"c{len(self.vars)}", dtype, value.shape, value)

    def tensor(self, value) -> Var:
        value = np.asarray(value, np.float32)
        return self.var(f"c{len(self.vars)}", FLOAT32, value.shape, value)

    def op(self, kind, params, inputs, n_out=1):
        outs = [self.var(f"{kind}{len(self.ops)}:{i}") for i in range(n_out)]
        op = Op(kind, kind, params, list(inputs), outs, index=len(self.ops))
        for v in outs:
            v.producer = op
        self.ops.append(op)
        return outs if n_out > 1 else outs[0]

    def shape(self, v, axis=7):
        return self.op("GetVarShape", {"axis": axis}, [v])

    def elem(self, mode, *inputs):
        return self.op("Elemwise", {"mode": mode}, inputs)

    def graph(self, outputs: dict[str, Var]) -> Graph:
        inputs = [] if self.x.is_const else [self.x]
        return Graph("test", inputs, self.ops, list(outputs.items()), {v.id: v for v in self.vars})


def taken(n: Net):
    """x's elements > 0 (n1,) and their flat positions."""
    return n.op("CondTake", {"mode": 4, "val": 0.0, "eps": 1e-6}, [n.x, n.x], 2)


def case_reduce_and_broadcast(n: Net):
    t, _ = taken(n)
    col = n.op("Reshape", {}, [t, n.const([-1, 1])])
    grid = n.op("Broadcast", {}, [col, n.op("Concat", {"axis": 0}, [n.shape(t), n.const([3])])])  # (n1, 3)
    return {"sum0": n.op("Reduce", {"mode": 0, "axis": 0}, [grid]),
            "max1": n.op("Reduce", {"mode": 4, "axis": 1}, [grid]),
            "total": n.op("Reduce", {"mode": 0}, [grid, n.const([1])])}


def case_one_hot_and_batched_matmul(n: Net):
    t, pos = taken(n)
    grid = n.elem(ADD, n.op("Reshape", {}, [t, n.const([-1, 1])]), n.const([0.0, 1.0, 2.0], FLOAT32))  # (n1, 3)
    picked = n.op("IndexingOneHot", {"axis": 1}, [grid, n.elem(MOD, pos, n.const([3]))])  # (n1, 1)
    left = n.op("AxisAddRemove", {"desc": [(0, 2)]}, [grid])  # (n1, 3, 1)
    right = n.op("Dimshuffle", {"pattern": [0, 2, 1]}, [left])  # (n1, 1, 3)
    return {"picked": picked, "grid": grid, "outer": n.op("BatchedMatrixMul", {}, [left, right])}


# outputs whose operators have no fold rule: numpy from the folded outputs
NUMPY = {"outer": lambda v: v["grid"][:, :, None] @ v["grid"][:, None, :],
         "conv": lambda v: _conv3x3(v["feats"]),
         "pool": lambda v: _conv3x3(v["feats"]).reshape(-1, 3, 2, 2, 2, 2).max(axis=(3, 5)),
         "soft": lambda v: _softmax(_conv3x3(v["feats"]).reshape(-1, 3, 2, 2, 2, 2).max(axis=(3, 5)))}


def case_slices_and_two_lengths(n: Net):
    t, pos = taken(n)
    small = n.op("CondTake", {"mode": 2, "val": 1.0, "eps": 1e-6}, [t, t], 2)[0]  # (n2,) of (n1,)
    outer = n.elem(ADD, n.op("Reshape", {}, [t, n.const([-1, 1])]), n.op("Reshape", {}, [small, n.const([1, -1])]))
    sub = {"last": ([(0, 0, 0, 0, 1)], [-1]), "inner": ([(0, 1, 1, 0, 0)], [1, -1]),
           "reversed": ([(0, 0, 0, 1, 0)], [-1]), "tail": ([(0, 1, 0, 0, 0)], [-2])}
    out = {name: n.op("Subtensor", {"items": items}, [t] + [n.const([v]) for v in values])
           for name, (items, values) in sub.items()}
    rows, cols = n.elem(FLOOR_DIV, pos, n.const([4])), n.elem(MOD, pos, n.const([4]))
    again = n.op("IndexingMultiAxisVec", {"items": [(0, 0, 0, 0, 1), (1, 0, 0, 0, 1)]}, [n.x, rows, cols])
    return dict(out, outer=outer, again=again)  # again: x[pos // 4, pos % 4], two vectors of one run-time length


def case_computed_k_and_reshape(n: Net):
    t, _ = taken(n)
    row = n.op("Reshape", {}, [t, n.const([1, -1])])
    count = n.shape(t, 0)
    smallest = n.op("TopK", {"mode": 0}, [row, count])  # KTH_ONLY, k = n1: the largest value... of n1 smallest
    top, order = n.op("TopK", {"mode": 2}, [row, n.elem(NEGATE, count)], 2)  # every value, descending
    flat = n.op("Reshape", {}, [n.op("Concat", {"axis": 0}, [t, t, t]), n.const([3, -1])])  # (3, n1)
    back = n.op("Reshape", {}, [flat, n.op("Concat", {"axis": 0}, [count, n.const([3])])])  # (n1, 3)
    scaled = n.elem(MUL, back, n.op("TypeCvt", {"dtype": FLOAT32}, [n.shape(back, 0)]))
    return {"kth": smallest, "top": top, "order": order, "flat": flat, "scaled": scaled}


def case_conv_head_on_run_time_rows(n: Net):
    """A convolution head on per-roi features (Mask R-CNN style): conv, pooling, softmax on a run-time batch."""
    t, _ = taken(n)
    rows = n.op("Reshape", {}, [t, n.const([-1, 1, 1, 1])])
    target = n.op("Concat", {"axis": 0}, [n.shape(t), n.const([2, 4, 4])])
    feats = n.elem(MUL, n.op("Broadcast", {}, [rows, target]), n.tensor(np.arange(32).reshape(1, 2, 4, 4) / 32))
    weight = n.tensor(CONV_WEIGHT)
    conv = n.op("Convolution", {"pad_h": 1, "pad_w": 1}, [feats, weight])  # (n1, 3, 4, 4)
    pool = n.op("Pooling", {"mode": 0, "window_h": 2, "window_w": 2, "pad_h": 0, "pad_w": 0, "stride_h": 2,
                            "stride_w": 2}, [conv])  # (n1, 3, 2, 2)
    return {"feats": feats, "conv": conv, "pool": pool, "soft": n.op("Softmax", {"axis": 1}, [pool])}


CONV_WEIGHT = np.random.RandomState(1).normal(0, 1, (3, 2, 3, 3)).astype(np.float32)


def _conv3x3(x):
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3), (2, 3))
    return np.einsum("ncijkl,ockl->noij", windows, CONV_WEIGHT)


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


NEED_ONE = {case_slices_and_two_lengths, case_computed_k_and_reshape}  # x[-1] and TopK k=0 fail on no element
CASES = [case_conv_head_on_run_time_rows, case_reduce_and_broadcast, case_one_hot_and_batched_matmul, case_slices_and_two_lengths,
         case_computed_k_and_reshape]
INPUTS = {"many": np.random.RandomState(3).normal(0, 1, (3, 4)).astype(np.float32),
          "one": np.array([[-1, -1, -1, -1], [-1, 0.5, -1, -1], [-1, -1, -1, -1]], np.float32),
          "none": np.full((3, 4), -1, np.float32)}


def _oracle(case, x):
    net = Net(x)
    outs = case(net)
    infer_graph(net.graph(outs))
    values = {name: v.const for name, v in outs.items()}
    return {name: NUMPY[name](values) if value is None else value for name, value in values.items()}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__[5:])
def test_run_time_dims_match_the_fold_rules(case):
    net = Net(None)
    outs = case(net)
    graph = net.graph(outs)
    infer_graph(graph)
    assert any(isinstance(d, Sym) for v in outs.values() for d in v.shape)
    session = ort.InferenceSession(to_onnx_bytes(graph), providers=["CPUExecutionProvider"])
    for label, x in INPUTS.items():
        if label == "none" and case in NEED_ONE:
            continue
        expected = _oracle(case, x)
        got = dict(zip(outs, session.run(list(outs), {"x": x})))
        for name, want in expected.items():
            # a 0-d fold result is carried as (1,), as MegEngine does
            np.testing.assert_allclose(got[name].reshape(want.shape), want, rtol=1e-5, atol=1e-6, err_msg=name)
            assert got[name].shape == want.shape or got[name].size == want.size == 1, name


def test_symbols_cancel_and_bound():
    n, m = Sym(bound=10), Sym()
    assert floordiv(mul(n, 4), 4) == n and add(n, mul(n, -1)) == 0 and mul(n, 0) == 0
    assert add(n, n) == mul(2, n) and mul(n, m) == mul(m, n)
    assert minimum(n, 8).bound == 8 and mul(n, 3).bound == 30 and maximum(n, m).bound is None
    assert maximum(n, maximum(m, n)) == maximum(n, m)
    assert sign(mul(n, -1)) == -1 and sign(minimum(n, 8)) == 1


def _roi_align_reference(x, rois, mode, ph, pw, sh, sw, scale, offset):
    """ROIAlign as MegDNN computes it: per bin, sh x sw samples at sub-bin centres, each the bilinear mix of its
    four neighbours, a neighbour outside the image counting 0; AVERAGE (mode 1) or MAX with the sample's index."""
    out = np.zeros((len(rois), x.shape[1], ph, pw), np.float32)
    index = np.zeros(out.shape, np.int32)
    for r, (b, *box) in enumerate(rois):
        x0, y0, x1, y1 = np.float32(box) * np.float32(scale) - np.float32(offset)
        bin_h, bin_w = max(y1 - y0, 0) / ph, max(x1 - x0, 0) / pw
        for i in range(ph):
            for j in range(pw):
                samples = []
                for si in range(sh):
                    for sj in range(sw):
                        y, xx = y0 + bin_h * (i + (si + 0.5) / sh), x0 + bin_w * (j + (sj + 0.5) / sw)
                        value = np.zeros(x.shape[1], np.float64)
                        for yi, wy in ((np.floor(y), 1 - (y - np.floor(y))), (np.floor(y) + 1, y - np.floor(y))):
                            for xi, wx in ((np.floor(xx), 1 - (xx - np.floor(xx))), (np.floor(xx) + 1, xx - np.floor(xx))):
                                if 0 <= yi < x.shape[2] and 0 <= xi < x.shape[3]:
                                    value += wy * wx * x[int(b), :, int(yi), int(xi)]
                        samples.append(value)
                samples = np.array(samples)
                out[r, :, i, j] = samples.mean(0) if mode == 1 else samples.max(0)
                index[r, :, i, j] = samples.argmax(0)
    return out, index


@pytest.mark.parametrize("mode", [0, 1], ids=["max", "average"])
def test_roi_align_on_run_time_rois_matches_megdnn_semantics(mode):
    """RoIAlign gathers four neighbours per sample: on rois chosen at run time (a CondTake of their scores), in
    two images, partly outside them, it gives MegDNN's sums (numpy reference above), and the max's index."""
    rs = np.random.RandomState(4)
    n = Net(None)
    image = n.var("image", FLOAT32, (2, 3, 9, 7))
    rois_all = n.var("rois", FLOAT32, (6, 5))
    score = n.var("score", FLOAT32, (6,))
    _, picked = n.op("CondTake", {"mode": 4, "val": 0.0, "eps": 1e-6}, [score, score], 2)
    rois = n.op("IndexingMultiAxisVec", {"items": [(0, 0, 0, 0, 1)]}, [rois_all, picked])
    params = {"mode": mode, "pooled_height": 3, "pooled_width": 2, "sample_height": 2, "sample_width": 3,
              "spatial_scale": 0.5, "offset": 0.5}
    out, index = n.op("ROIAlign", params, [image, rois], 2)
    outputs = [("out", out)] + ([("index", index)] if mode == 0 else [])  # AVERAGE computes no index
    graph = Graph("roi", [image, rois_all, score], n.ops, outputs, {})
    infer_graph(graph)
    session = ort.InferenceSession(to_onnx_bytes(graph), providers=["CPUExecutionProvider"])
    corner = rs.uniform(-6, 20, (6, 2))
    boxes = np.concatenate([rs.randint(0, 2, (6, 1)), corner, corner + rs.uniform(-2, 12, (6, 2))], 1)
    x = rs.normal(0, 1, (2, 3, 9, 7)).astype(np.float32)
    for s in (rs.normal(0, 1, 6), np.full(6, -1.0)):
        feeds = {"image": x, "rois": boxes.astype(np.float32), "score": s.astype(np.float32)}
        got = session.run(None, feeds)
        want = _roi_align_reference(x, boxes[s > 0], mode, 3, 2, 2, 3, 0.5, 0.5)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)
        if mode == 0:
            np.testing.assert_array_equal(got[1], want[1])
