"""Each operator kind's ONNX Runtime lowering against its numpy fold rule, without MegEngine.

The fold rule (what constant folding computes) is an independent numpy statement of the operator, so it serves as
an oracle: one-op graphs on random inputs of a few shapes and dtypes are lowered, run with ONNX Runtime and
compared with it.  A kind that gains both a fold rule and a lowering must get a case here (or be listed in
``NOT_YET``), so a new lowering is checked before any fixture is recorded.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from megenginelite.format.dtypes import FLOAT32, INT32, DType, from_numpy
from megenginelite.graph import Graph, infer_graph
from megenginelite.graph.elemwise_modes import MODES
from megenginelite.graph.infer import FOLD_RULES
from megenginelite.graph.ir import Op, Var
from megenginelite.lower import to_onnx_bytes
from megenginelite.lower.builder import LOWERINGS

ELEMWISE = {name: mode for mode, (name, _, _) in MODES.items()}

# kinds with both a fold rule and a lowering that have no case yet (shrink this list; never grow it)
NOT_YET = {"CondTake", "ElemwiseMultiType", "GetVarShape", "IndexingSetOneHot", "Linspace", "SVD"}


def _case(kind: str, params: dict, shapes: list[tuple], dtype=np.float32, n_out: int = 1, positive: bool = False,
          consts: tuple = ()):
    """``consts``: int32 values of the constant inputs that follow the data inputs (target shapes, sizes, bounds)."""
    params = {**params, "consts": [np.atleast_1d(np.asarray(c, np.int32)) for c in consts]}
    named = "-".join(f"{k}{v}" for k, v in params.items() if k not in ("dtype", "consts"))
    return pytest.param(kind, params, shapes, np.dtype(dtype), n_out, positive,
                        id=f"{kind}-{named}-{'-'.join(map(str, consts))}-{'x'.join(map(str, shapes[0]))}-{np.dtype(dtype).name}")


def _pads(front, back, mode) -> dict:
    return {**{f"front_offset_dim{i}": f for i, f in enumerate(front)},
            **{f"back_offset_dim{i}": b for i, b in enumerate(back)}, "padding_val": 1.5, "padding_mode": mode}


CASES = [
    *[_case("Elemwise", {"mode": ELEMWISE[m]}, [s, s], dt) for m in ("ADD", "SUB", "MUL", "MAX", "MIN")
      for s in ((3, 4), (2, 3, 5)) for dt in (np.float32, np.int32)],
    *[_case("Elemwise", {"mode": ELEMWISE[m]}, [s], np.float32, positive=m in ("LOG", "SQRT"))
      for m in ("RELU", "ABS", "EXP", "LOG", "SQRT", "NEGATE", "SIGMOID", "TANH") for s in ((7,), (2, 3, 4))],
    *[_case("Reduce", {"mode": mode, "axis": axis}, [s], dt) for mode in (0, 3, 4) for axis in (0, 1)
      for s in ((3, 4), (2, 5, 3)) for dt in (np.float32, np.int32)],
    *[_case("Argsort", {"order": order}, [s], n_out=2) for order in (0, 1) for s in ((3, 5), (1, 8))],
    *[_case("TopK", {"mode": 1, "k": k}, [(3, 6)], n_out=2) for k in (2, -3)],
    *[_case("Cumsum", {"axis": axis, "exclusive": ex, "reverse": rev}, [(3, 4)], dt)
      for axis in (0, 1) for ex in (False, True) for rev in (False, True) for dt in (np.float32, np.int32)],
    *[_case("Concat", {"axis": axis}, [(2, 3), (2, 3)], dt) for axis in (0, 1) for dt in (np.float32, np.int32)],
    *[_case("Dimshuffle", {"pattern": p}, [s]) for p, s in (([1, 0], (3, 4)), ([2, 0, 1], (2, 3, 4)))],
    *[_case("PowC", {"exp": e}, [(3, 4)], positive=True) for e in (2.0, 0.5, -1.0, 3.0)],
    *[_case("TypeCvt", {"dtype": INT32}, [s]) for s in ((3, 4), (5,))],
    _case("TypeCvt", {"dtype": FLOAT32}, [(3, 4)], np.int32),
    # to a quantized dtype: the fold rule quantizes with graph.quant, the lowering with ONNX QuantizeLinear
    *[_case("TypeCvt", {"dtype": DType(name, np.dtype(t), 0.05, zp)}, [(3, 4)])
      for name, t, zp in (("QuantizedS8", np.int8, None), ("Quantized8Asymm", np.uint8, 128))],
    *[_case(kind, {}, [(2, 3)], dt) for kind in ("Identity", "Copy", "MarkDynamicVar", "MarkNoBroadcastElemwise")
      for dt in (np.float32, np.int32)],
    *[_case("Diag", {"k": k}, [s]) for k in (0, 1, -1) for s in ((4,), (3, 4))],
    _case("Dot", {}, [(5,), (5,)]),
    *[_case("MatrixInverse", {}, [s]) for s in ((3, 3), (2, 4, 4))],
    *[_case("AxisAddRemove", {"desc": d}, [s], dt) for d, s in ((((0, 0),), (3, 4)), (((0, 2), (0, 0)), (2, 3)),
                                                               (((1, 1),), (3, 1, 4))) for dt in (np.float32, np.int32)],
    *[_case("Padding", _pads(f, b, mode), [s], dt) for mode in (0, 1, 2) for f, b, s in
      (((1, 2), (2, 0), (3, 4)), ((0, 1, 0), (1, 0, 2), (2, 3, 4))) for dt in (np.float32, np.int32)],
    *[_case("Reshape", {"axis": 7}, [s], dt, consts=[t]) for s, t in (((3, 4), (4, 3)), ((2, 3, 4), (6, -1)),
                                                                      ((6,), (1, 2, 3))) for dt in (np.float32, np.int32)],
    _case("Reshape", {"axis": 1}, [(2, 6)], consts=[(2, 5, 3)]),
    *[_case("Broadcast", {}, [s], dt, consts=[t]) for s, t in (((3, 1), (3, 4)), ((4,), (2, 3, 4)), ((1, 1), (5, 2)))
      for dt in (np.float32, np.int32)],
    *[_case("Split", {"axis": axis}, [s], dt, n_out=len(sizes), consts=[[n] for n in sizes])
      for axis, s, sizes in ((0, (5, 3), (2, 3)), (1, (2, 6, 2), (1, 2, 3))) for dt in (np.float32, np.int32)],
    # x[1:3], x[:, ::2], x[-1] (an index removes its axis), x[2:, 1]
    *[_case("Subtensor", {"items": items}, [s], dt, consts=c) for items, c, s in (
        (((0, True, True, False, False),), (1, 3), (4, 5)),
        (((1, False, False, True, False),), (2,), (3, 6)),
        (((0, False, False, False, True),), (-1,), (4, 5)),
        (((0, True, False, False, False), (1, False, False, False, True)), (2, 1), (4, 3, 2)),
    ) for dt in (np.float32, np.int32)],
    # x[1:3] = v and x[1:3] += v (v broadcast), x[[2, 0]] = v, x[:, [3, 1, 0]] += v
    *[_case(kind, {"items": ((0, True, True, False, False),)}, [(4, 5), v], dt, consts=(1, 3))
      for kind in ("SetSubtensor", "IncrSubtensor") for v in ((2, 5), (5,)) for dt in (np.float32, np.int32)],
    *[_case(kind, {"items": ((axis, False, False, False, True),)}, [s, v], dt, consts=[idx])
      for kind in ("IndexingSetMultiAxisVec", "IndexingIncrMultiAxisVec")
      for axis, idx, s, v in ((0, (2, 0), (4, 3), (2, 3)), (1, (3, 1, 0), (2, 5), (2, 3))) for dt in (np.float32, np.int32)],
    *[_case("IndexingMultiAxisVec", {"items": items}, [s], dt, consts=c) for items, c, s in (
        (((0, False, False, False, True),), [(2, 0, 2)], (4, 3)),
        (((1, False, False, False, True),), [(1, 0)], (2, 3, 4)),
        (((0, False, False, False, True), (1, False, False, False, True)), [(0, 3), (2, 1)], (4, 3)),
    ) for dt in (np.float32, np.int32)],
    *[_case("IndexingOneHot", {"axis": axis}, [s], dt, consts=[idx]) for axis, s, idx in (
        (1, (2, 4), (3, 0)), (0, (3, 2, 2), ((2, 0), (1, 1))), (2, (2, 2, 3), ((0, 2), (1, 0)))) for dt in (np.float32, np.int32)],
]


def _inputs(shapes, dtype, positive, rng):
    if dtype.kind == "i":
        return [rng.integers(1 if positive else -9, 10, s).astype(dtype) for s in shapes]
    xs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    return [np.abs(x) + 0.1 for x in xs] if positive else xs


@pytest.mark.parametrize("kind, params, shapes, dtype, n_out, positive", CASES)
def test_lowering_matches_fold_rule(kind, params, shapes, dtype, n_out, positive):
    rng = np.random.default_rng(0)
    xs = _inputs(shapes, dtype, positive, rng)
    inputs = [Var(i + 1, f"x{i}", from_numpy(dtype), tuple(s)) for i, s in enumerate(shapes)]
    params = dict(params)
    consts = params.pop("consts")
    if kind == "TopK":  # k is an input of TopK
        consts = [np.asarray([params.pop("k")], np.int32)]
    extra = [Var(50 + i, f"c{i}", INT32, c.shape, c) for i, c in enumerate(consts)]
    op = Op(type=kind, kind=kind, params=params, inputs=inputs + extra,
            outputs=[Var(100 + i, f"y{i}") for i in range(n_out)])
    for out in op.outputs:
        out.producer = op
    graph = Graph("fold-vs-lowering", inputs, [op], [(v.name, v) for v in op.outputs])
    infer_graph(graph)
    want = FOLD_RULES[kind](op, xs + [v.const for v in extra])
    session = ort.InferenceSession(to_onnx_bytes(graph), providers=["CPUExecutionProvider"])
    got = session.run(None, {v.name: x for v, x in zip(inputs, xs)})
    assert len(got) == len(want)
    for g, w, v in zip(got, want, op.outputs):
        assert g.dtype == v.dtype.np_dtype and g.shape == tuple(v.shape)
        np.testing.assert_allclose(g, np.asarray(w).astype(g.dtype), rtol=1e-5, atol=1e-6)


def test_every_kind_with_fold_and_lowering_has_a_case():
    both = set(FOLD_RULES) & set(LOWERINGS)
    covered = {p.values[0] for p in CASES}
    assert both - covered == NOT_YET, "add a case to CASES for a new kind (or remove it from NOT_YET)"
