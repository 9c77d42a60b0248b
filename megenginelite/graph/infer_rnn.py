"""Shape rules of the sequence operators: LSTM and MultiHeadAttn."""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOperatorError
from .infer import fail, shape_rule
from .infer_nn import BYTE
from .ir import Op


def unsupported(op: Op, what: str) -> UnsupportedOperatorError:
    return UnsupportedOperatorError(f"unsupported operator {op.describe()}: {what}")


def lstm_plan(op: Op) -> tuple[int, int, int, int, int]:
    """(sequence length, batch, input size, hidden size, layers) of a unidirectional LSTM without projections."""
    p = op.params
    x, hx, cx, w = (v.shape for v in op.inputs)
    if p.get("bidirectional", False) or p.get("proj_size", 0):
        raise unsupported(op, "bidirectional LSTM or LSTM with projections")
    layers, hidden = p.get("num_layers", 1), p.get("hidden_size", 128)
    if len(x) != 3 or hx != (layers, x[1], hidden) or cx != hx:
        raise fail(op, f"input {list(x)} and states {list(hx)}, {list(cx)} do not fit {layers} layers of {hidden}")
    per_gate = [x[2] + hidden] + [2 * hidden] * (layers - 1)
    size = 4 * hidden * (sum(per_gate) + (2 * layers if p.get("bias", True) else 0))
    if int(np.prod(w)) != size:
        raise fail(op, f"flattened weights {list(w)} do not hold the {size} values the LSTM needs")
    return x[0], x[1], x[2], hidden, layers


@shape_rule("LSTM")
def _lstm_shape(op: Op):
    steps, batch, _, hidden, layers = lstm_plan(op)
    dtype = op.inputs[0].dtype
    state = ((layers, batch, hidden), dtype)
    return [((steps, batch, hidden), dtype), state, state, ((0,), BYTE)]


def mha_plan(op: Op) -> dict:
    """Sizes of a MultiHeadAttn (batch-first (B, L, E) queries, (B, S, E) keys/values, packed weights)."""
    p = op.params
    q, k, v = (var.shape for var in op.inputs[:3])
    if p.get("tensor_combination_type", 0) not in (0, 1) or p.get("add_zero_attn", False):
        raise unsupported(op, "MultiHeadAttn with bias_k/bias_v or add_zero_attn")
    if p.get("training", True) and (p.get("attn_prob", 0.0) or p.get("out_prob", 0.0)):
        raise unsupported(op, "MultiHeadAttn in training mode with dropout")
    heads = p.get("num_heads", 1)
    if len(q) != 3 or len(k) != 3 or k[:2] != v[:2] or q[0] != k[0]:
        raise fail(op, f"queries {list(q)}, keys {list(k)}, values {list(v)} do not fit MultiHeadAttn")
    sizes = {name: p.get(f"{name}proj_size", 0) for name in "qkvo"}
    vsize = sizes["v"] or v[2] * heads
    if any(sizes[n] % heads for n in "qkv") or (sizes["q"] or q[2] * heads) != (sizes["k"] or k[2] * heads):
        raise fail(op, f"projection sizes {sizes} do not fit {heads} heads")
    return {"batch": q[0], "lq": q[1], "lk": k[1], "heads": heads, "sizes": sizes,
            "out": sizes["o"] or vsize, "inputs": (q[2], k[2], v[2])}


@shape_rule("MultiHeadAttn")
def _mha_shape(op: Op):
    plan = mha_plan(op)
    dtype = op.inputs[0].dtype
    weights = (plan["batch"] * plan["heads"], plan["lq"], plan["lk"])
    return [((plan["batch"], plan["lq"], plan["out"]), dtype), (weights, dtype), ((0,), BYTE), ((0,), BYTE)]
