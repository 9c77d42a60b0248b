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

from megenginelite.format.dtypes import FLOAT32, INT32, from_numpy
from megenginelite.graph import Graph, infer_graph
from megenginelite.graph.elemwise_modes import MODES
from megenginelite.graph.infer import FOLD_RULES
from megenginelite.graph.ir import Op, Var
from megenginelite.lower import to_onnx_bytes
from megenginelite.lower.builder import LOWERINGS

ELEMWISE = {name: mode for mode, (name, _, _) in MODES.items()}

# kinds with both a fold rule and a lowering that have no case yet (shrink this list; never grow it)
NOT_YET = {"AxisAddRemove", "Broadcast", "CondTake", "ElemwiseMultiType", "GetVarShape", "IncrSubtensor",
           "IndexingIncrMultiAxisVec", "IndexingMultiAxisVec", "IndexingOneHot", "IndexingSetMultiAxisVec",
           "IndexingSetOneHot", "Linspace", "Padding", "Reshape", "SVD", "SetSubtensor", "Split", "Subtensor"}


def _case(kind: str, params: dict, shapes: list[tuple], dtype=np.float32, n_out: int = 1, positive: bool = False):
    return pytest.param(kind, params, shapes, np.dtype(dtype), n_out, positive,
                        id=f"{kind}-{'-'.join(f'{k}{v}' for k, v in params.items() if k != 'dtype')}-{'x'.join(map(str, shapes[0]))}-{np.dtype(dtype).name}")


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
    *[_case(kind, {}, [(2, 3)], dt) for kind in ("Identity", "Copy", "MarkDynamicVar", "MarkNoBroadcastElemwise")
      for dt in (np.float32, np.int32)],
    *[_case("Diag", {"k": k}, [s]) for k in (0, 1, -1) for s in ((4,), (3, 4))],
    _case("Dot", {}, [(5,), (5,)]),
    *[_case("MatrixInverse", {}, [s]) for s in ((3, 3), (2, 4, 4))],
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
    extra = []
    params = dict(params)
    if kind == "TopK":  # k is an input of TopK
        extra = [Var(50, "k", INT32, (1,), np.asarray([params.pop("k")], np.int32))]
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
