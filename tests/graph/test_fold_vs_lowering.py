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
NOT_YET: set[str] = set()


def _case(kind: str, params: dict, shapes: list[tuple], dtype=np.float32, n_out: int = 1, positive: bool = False,
          consts: tuple = (), in_dtypes: tuple = (), const_at: int | None = None, compared: tuple | None = None,
          rtol: float = 1e-5):
    """``consts``: int32 values of the constant inputs (target shapes, sizes, bounds, indices), placed after the data
    inputs or at ``const_at``; ``in_dtypes``: one dtype per data input where they differ (mixed-type kinds);
    ``compared``: the outputs the lowering makes, when it leaves some out (SVD makes only the singular values)."""
    params = {**params, "consts": [np.atleast_1d(np.asarray(c, np.int32)) for c in consts],
              "in_dtypes": [np.dtype(t) for t in in_dtypes] or [np.dtype(dtype)] * len(shapes), "const_at": const_at,
              "compared": compared if compared is not None else tuple(range(n_out)), "rtol": rtol}
    named = "-".join(f"{k}{v}" for k, v in params.items() if k not in ("dtype", *_HARNESS_KEYS))
    return pytest.param(kind, params, shapes, np.dtype(dtype), n_out, positive,
                        id=f"{kind}-{named}-{'-'.join(map(str, consts))}-{'x'.join(map(str, shapes[0]))}-{np.dtype(dtype).name}")


_HARNESS_KEYS = ("consts", "in_dtypes", "const_at", "compared", "rtol")


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
    # data[..., index, ...] = value along the axis: the index (a constant) is the second input
    *[_case("IndexingSetOneHot", {"axis": axis}, [s, v], dt, consts=[idx], const_at=1) for axis, s, idx, v in (
        (1, (2, 4), (3, 0), (2,)), (0, (3, 2, 2), ((2, 0), (1, 1)), (1, 2, 2)), (-1, (2, 2, 3), ((0, 2), (1, 0)), (2, 2)))
      for dt in (np.float32, np.int32)],
    # the kept elements and their flat positions; the count is known only at run time
    *[_case("CondTake", {"mode": mode, "val": 1.0, "eps": 0.5}, [s, s], dt, n_out=2) for mode in range(6)
      for s in ((3, 4), (2, 3, 2)) for dt in (np.float32, np.int32)],
    *[_case("GetVarShape", {"axis": axis}, shapes) for axis, shapes in (
        (7, [(3, 4)]), (7, [(2, 1, 5)]), (1, [(2, 6, 3)]), (-1, [(2, 6, 3)]), (7, [(3, 1), (1, 4)]), (0, [(3, 1), (1, 4)]))],
    *[_case("Linspace", {"endpoint": endpoint}, [(1,), (1,)], consts=[n]) for endpoint in (True, False) for n in (5, 1, 0)],
    # the singular values only (u and vt are not made), by unrolled Jacobi sweeps in float32
    *[_case("SVD", {"full_matrices": False}, [s], n_out=3, compared=(1,), rtol=1e-4) for s in ((3, 3), (4, 2), (2, 3, 4))],
    # mixed-type ElemwiseMultiType modes (the quantized Q* modes are checked against real Lite's fixtures)
    *[_case("ElemwiseMultiType", {"mode": mode}, shapes, dt) for mode, shapes, dt in (
        (58, [(3, 4), (3, 4)], np.int32), (59, [(2, 5), (5,)], np.int32), (60, [(3, 4), (3, 4)], np.float32),
        (61, [(3, 4), (1, 4)], np.int32), (62, [(3, 4)], np.float32), (63, [(2, 3)], np.float32))],
    *[_case("ElemwiseMultiType", {"mode": mode}, [(3, 4)] * len(types), in_dtypes=types, positive=positive)
      for mode, types, positive in (
          (0, (np.int16, np.int32, np.int32), False), (54, (np.int16, np.float32, np.float32), False),
          (55, (np.int16, np.float32), False), (56, (np.uint8, np.float32, np.float32), True),
          (2, (np.int32, np.int8), True), (5, (np.int32, np.int8), True))],
]


def _inputs(shapes, dtypes, positive, rng):
    """Integers in [-9, 10) ([1, 10) when ``positive`` or unsigned), floats standard normal (|x| + 0.1)."""
    xs = []
    for s, dtype in zip(shapes, dtypes):
        if dtype.kind in "iu":
            xs.append(rng.integers(1 if positive or dtype.kind == "u" else -9, 10, s).astype(dtype))
        else:
            x = rng.standard_normal(s).astype(dtype)
            xs.append(np.abs(x) + dtype.type(0.1) if positive else x)
    return xs


def _same_shape(got: tuple, inferred: tuple) -> bool:
    """Equal, where the inferred dims are known before run time (a symbol stands for a run-time count)."""
    return len(got) == len(inferred) and all(g == d for g, d in zip(got, inferred) if isinstance(d, int))


@pytest.mark.parametrize("kind, params, shapes, dtype, n_out, positive", CASES)
def test_lowering_matches_fold_rule(kind, params, shapes, dtype, n_out, positive):
    rng = np.random.default_rng(0)
    params = dict(params)
    consts, dtypes, const_at, compared, rtol = (params.pop(k) for k in _HARNESS_KEYS)
    xs = _inputs(shapes, dtypes, positive, rng)
    inputs = [Var(i + 1, f"x{i}", from_numpy(t), tuple(s)) for i, (s, t) in enumerate(zip(shapes, dtypes))]
    if kind == "TopK":  # k is an input of TopK
        consts = [np.asarray([params.pop("k")], np.int32)]
    extra = [Var(50 + i, f"c{i}", INT32, c.shape, c) for i, c in enumerate(consts)]
    at = len(inputs) if const_at is None else const_at
    op = Op(type=kind, kind=kind, params=params, inputs=inputs[:at] + extra + inputs[at:],
            outputs=[Var(100 + i, f"y{i}") for i in range(n_out)])
    for out in op.outputs:
        out.producer = op
    graph = Graph("fold-vs-lowering", inputs, [op], [(op.outputs[i].name, op.outputs[i]) for i in compared])
    infer_graph(graph)
    want = FOLD_RULES[kind](op, [v.const if v.const is not None else xs[inputs.index(v)] for v in op.inputs])
    session = ort.InferenceSession(to_onnx_bytes(graph), providers=["CPUExecutionProvider"])
    got = session.run(None, {v.name: x for v, x in zip(inputs, xs)})
    assert len(got) == len(compared)
    for g, i in zip(got, compared):
        v, w = op.outputs[i], np.asarray(want[i])
        assert g.dtype == v.dtype.np_dtype and _same_shape(g.shape, tuple(v.shape)), (g.dtype, g.shape, v)
        np.testing.assert_allclose(g, w.astype(g.dtype), rtol=rtol, atol=1e-6)


def test_every_kind_with_fold_and_lowering_has_a_case():
    both = set(FOLD_RULES) & set(LOWERINGS)
    covered = {p.values[0] for p in CASES}
    assert both - covered == NOT_YET, "add a case to CASES for a new kind (or remove it from NOT_YET)"
