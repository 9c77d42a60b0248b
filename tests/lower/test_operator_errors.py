"""Operators in modes we do not implement raise UnsupportedOperatorError naming the operator and the mode."""

from __future__ import annotations

import numpy as np
import pytest

from megenginelite.errors import UnsupportedOperatorError
from megenginelite.format.dtypes import FLOAT32, INT32
from megenginelite.graph.infer import infer_op
from megenginelite.graph.ir import Op, Var


def _var(vid, shape, dtype=FLOAT32, const=None):
    return Var(vid, f"v{vid}", dtype, tuple(shape), None if const is None else np.asarray(const))


def _op(kind, params, inputs, n_out=1):
    return Op(type=kind, kind=kind, params=params, inputs=inputs, outputs=[Var(100 + i, f"o{i}") for i in range(n_out)])


IMAGE = _var(1, (1, 3, 8, 8))
SIZE = _var(2, (2,), INT32, [4, 4])
CASES = [
    (_op("Resize", {"imode": 2, "format": 0}, [IMAGE, SIZE]), "AREA"),
    (_op("WarpPerspective", {"imode": 1, "bmode": 5, "format": 0}, [IMAGE, _var(3, (1, 3, 3)), SIZE]),
     "TRANSPARENT"),
    (_op("WarpAffine", {"imode": 0, "border_mode": 0, "format": 0}, [IMAGE, _var(3, (1, 2, 3)), SIZE]), "NEAREST"),
    (_op("Padding", {"padding_mode": 7}, [IMAGE]), "Padding mode 7"),
    (_op("TopK", {"mode": 5}, [_var(4, (2, 6)), _var(5, (1,), INT32, [2])], 2), "TopK mode 5"),
    (_op("ElemwiseMultiType", {"mode": 64}, [_var(4, (2, 6), INT32), _var(6, (1,), INT32)]), "mode 64"),
    (_op("CvtColor", {"mode": 10}, [_var(7, (1, 6, 4, 1))]), "CvtColor mode 10"),
    (_op("Convolution", {"format": 3}, [IMAGE, _var(8, (4, 3, 3, 3))]), "format 3"),
    (_op("BatchNorm", {"fwd_mode": 0, "param_dim": 2}, [IMAGE] + [_var(9 + i, (1, 3, 1, 1)) for i in range(4)], 4),
     "fwd_mode 0"),
    (_op("LSTM", {"bidirectional": True, "hidden_size": 4},
         [_var(20, (5, 2, 3)), _var(21, (2, 2, 4)), _var(22, (2, 2, 4)), _var(23, (1, 320))], 4), "bidirectional"),
    (_op("Cumsum", {"axis": 2**31 - 1}, [IMAGE]), "without an axis"),
]


@pytest.mark.parametrize("op, mode", CASES, ids=[f"{op.kind}-{mode}" for op, mode in CASES])
def test_unsupported_mode_names_the_operator_and_mode(op, mode):
    with pytest.raises(UnsupportedOperatorError) as info:
        infer_op(op)
    assert op.kind in str(info.value) and mode in str(info.value)


def _reject_pooling(b, op):
    """A deliberately invalid lowering: ONNX's AveragePool takes no integer tensors."""
    return [b.node("AveragePool", [b.cast(b.inp(op, 0), np.int32)], kernel_shape=[2, 2])]


@pytest.fixture
def invalid_pooling_lowering(monkeypatch):
    from megenginelite.lower.builder import LOWERINGS

    monkeypatch.setitem(LOWERINGS, "Pooling", _reject_pooling)
    return "op_pool_max_k2s2"


def _pooling_op(entry):
    from megenginelite.format import read_model
    from megenginelite.graph import build_graph

    from conftest import model_path

    with open(model_path(entry), "rb") as f:
        return next(op for op in build_graph(read_model(f.read(), entry["file"])).ops if op.kind == "Pooling")


def test_rejected_lowering_names_the_operator(invalid_pooling_lowering):
    """An ONNX Runtime rejection of a lowered node comes back as the MegBrain operator that emitted it."""
    from conftest import BY_NAME, model_path
    from megenginelite import LiteNetwork

    entry = BY_NAME[invalid_pooling_lowering]
    op = _pooling_op(entry)
    with pytest.raises(UnsupportedOperatorError) as info:
        LiteNetwork().load(model_path(entry))
    assert op.describe() in str(info.value) and "AveragePool" in str(info.value)


def test_convert_refuses_a_rejected_lowering(invalid_pooling_lowering):
    """The exported model is type-checked: a node ONNX Runtime would refuse never reaches the file."""
    from conftest import BY_NAME, model_path
    from megenginelite.format import read_model
    from megenginelite.cli.export import export_onnx

    entry = BY_NAME[invalid_pooling_lowering]
    with open(model_path(entry), "rb") as f:
        record = read_model(f.read(), entry["file"])
    with pytest.raises(UnsupportedOperatorError) as info:
        export_onnx(record)
    assert _pooling_op(entry).describe() in str(info.value)


def test_rejection_without_an_owner_is_an_internal_error():
    from megenginelite.errors import LiteError
    from megenginelite.graph.ir import Graph
    from megenginelite.lower.builder import rejection_error

    error = rejection_error(Graph("m.mge", [], [], []), "m.mge",
                            RuntimeError("[ONNXRuntimeError] : 10 : in node (output/out)"))
    assert type(error) is LiteError and "internal error" in str(error)


def test_run_time_failure_names_the_operator(monkeypatch):
    """An ONNX Runtime failure while running a node (here an index out of range, which only a run finds) names
    the MegBrain operator whose lowering emitted the node."""
    from conftest import BY_NAME, model_path
    from megenginelite import LiteNetwork
    from megenginelite.errors import LiteError
    from megenginelite.lower.builder import LOWERINGS

    def gather_out_of_range(b, op):
        picked = b.node("Gather", [b.inp(op, 0), b.const(np.asarray([0, 1, 10**6], np.int64))], axis=1)
        return [b.node("MaxPool", [picked], kernel_shape=[2, 2], strides=[2, 2])]

    monkeypatch.setitem(LOWERINGS, "Pooling", gather_out_of_range)
    entry = BY_NAME["op_pool_max_k2s2"]
    network = LiteNetwork()
    try:
        network.load(model_path(entry))
    except LiteError as exc:  # ONNX Runtime may already refuse it when it builds the session
        assert _pooling_op(entry).describe() in str(exc)
        return
    with pytest.raises(LiteError) as info:
        network.forward()
        network.wait()
    assert _pooling_op(entry).describe() in str(info.value)
