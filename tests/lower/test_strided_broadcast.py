"""A broadcast element-wise op on a strided view gives numpy's result at every batch size.

MegEngine 1.13 computes ``points - deltas[..., :2]`` (points (1, P, 2), deltas (N, P, 4)) wrongly for N >= 2, in
imperative MegEngine, its graph runtime and Lite alike (a detector's box decoding; docs/compatibility.md). No fixture
can record the right answer, so numpy is the reference here.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from megenginelite.format.dtypes import FLOAT32, INT32
from megenginelite.graph import Graph, infer_graph
from megenginelite.graph.elemwise_modes import MODES
from megenginelite.graph.ir import Op, Var
from megenginelite.lower import to_onnx_bytes

SUB = next(mode for mode, (name, _, _) in MODES.items() if name == "SUB")


def decode_graph(batch: int, points: int) -> Graph:
    """points - deltas[..., :2], as the file of a detector holds it (Subtensor, then a broadcast Elemwise)."""
    p = Var(1, "points", FLOAT32, (1, points, 2))
    d = Var(2, "deltas", FLOAT32, (batch, points, 4))
    end = Var(3, "end", INT32, (1,), np.array([2], np.int32))
    view, out = Var(4, "view"), Var(5, "out")
    take = Op("Subtensor", "Subtensor", {"items": ((2, False, True, False, False),)}, [d, end], [view])
    sub = Op("Elemwise", "Elemwise", {"mode": SUB}, [p, view], [out])
    view.producer, out.producer = take, sub
    graph = Graph("decode", [p, d], [take, sub], [("out", out)])
    infer_graph(graph)
    return graph


@pytest.mark.parametrize("batch, points", [(1, 2125), (2, 2125), (16, 25), (4, 64)])
def test_broadcast_minus_strided_view_matches_numpy(batch, points):
    rng = np.random.default_rng(batch * 1000 + points)
    p = rng.standard_normal((1, points, 2)).astype(np.float32)
    d = rng.standard_normal((batch, points, 4)).astype(np.float32)
    session = ort.InferenceSession(to_onnx_bytes(decode_graph(batch, points)), providers=["CPUExecutionProvider"])
    got, = session.run(None, {"points": p, "deltas": d})
    np.testing.assert_array_equal(got, p - d[..., :2])
    for i in range(batch):  # each image's boxes are those it gets alone
        np.testing.assert_array_equal(got[i], (p - d[i:i + 1, :, :2])[0])
