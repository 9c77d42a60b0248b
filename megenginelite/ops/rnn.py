"""Recurrent and attention operators: LSTM and MultiHeadAttn.

Each operator's param table, shape rule, fold rule and lowering (with the modes it declares) sit together.
"""

from __future__ import annotations

import numpy as np

from ..format.dtypes import BYTE
from ..format.params import param_table
from ..graph.infer import fail, shape_rule, unsupported
from ..graph.ir import Op
from ..lower.builder import Builder, lowering

param_table(89, "LSTM", [("num_layers", "u32", 1), ("bidirectional", "bool", False), ("bias", "bool", True),
                         ("hidden_size", "u32", 128), ("proj_size", "u32", 0), ("dropout", "f32", 0.0),
                         ("fwd_mode", "u32", 0)])
param_table(95, "MultiHeadAttn", [("num_heads", "u32", 1), *[(f, "u32", 0) for f in (
                                      "embeding_size", "k_size", "v_size", "qproj_size", "kproj_size", "vproj_size",
                                      "oproj_size")],
                                  *[(f, "bool", False) for f in ("qbias", "kbias", "vbias", "obias")],
                                  ("sm_scaler", "f32", 1.0), ("input_order", "u32", 0), ("attn_mask_type", "u32", 0),
                                  ("tensor_combination_type", "u32", 0), ("add_zero_attn", "bool", False),
                                  ("need_weights", "bool", False), ("reslink", "bool", False),
                                  ("training", "bool", True), ("seed", "u64", 0), ("attn_prob", "f32", 0.0),
                                  ("out_prob", "f32", 0.0)])


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


_ONNX_GATES = [0, 3, 1, 2]  # ONNX LSTM gate order (i, o, f, c) as MegDNN's (i, f, g, o) blocks


def _lstm_weights(b: Builder, flat: str, start: int, inputs: int, hidden: int, bias: bool) -> tuple[list[str], int]:
    """ONNX W (1, 4H, I), R (1, 4H, H) and B (1, 8H) of one cell, gathered from MegDNN's flattened weights
    (w_ih (4H, I), w_hh (4H, H), b_ih (4H), b_hh (4H) back to back from ``start``); also the next cell's start."""
    rows = (np.array(_ONNX_GATES)[:, None] * hidden + np.arange(hidden)[None, :]).reshape(-1)  # ONNX row -> ours
    w_ih = start + rows[:, None] * inputs + np.arange(inputs)[None, :]
    w_hh = start + 4 * hidden * inputs + rows[:, None] * hidden + np.arange(hidden)[None, :]
    end = start + 4 * hidden * (inputs + hidden)
    tables = [w_ih[None], w_hh[None]]
    if bias:
        tables.append(np.concatenate([end + rows, end + 4 * hidden + rows])[None])
        end += 8 * hidden
    return [b.node("Gather", [flat, b.const(t.astype(np.int64), "index")], axis=0) for t in tables], end


def _project(b: Builder, x: str, flat: str, offset: int, shape: tuple[int, int], bias_offset: int | None) -> str:
    """x @ W (+ bias), W read from the packed weights at ``offset`` as ``shape``."""
    count = shape[0] * shape[1]
    weight = b.reshape(b.node("Slice", [flat, b.ints([offset]), b.ints([offset + count]), b.ints([0])]), shape)
    out = b.node("MatMul", [x, weight])
    if bias_offset is not None:
        out = b.node("Add", [out, b.node("Slice", [flat, b.ints([bias_offset]), b.ints([bias_offset + shape[1]]),
                                                    b.ints([0])])])
    return out


@shape_rule("LSTM")
def _lstm_shape(op: Op):
    steps, batch, _, hidden, layers = lstm_plan(op)
    dtype = op.inputs[0].dtype
    state = ((layers, batch, hidden), dtype)
    return [((steps, batch, hidden), dtype), state, state, ((0,), BYTE)]


@lowering("LSTM")
def lower_lstm(b: Builder, op: Op) -> list[str]:
    """Stacked unidirectional LSTM (gates i, f, g, o); outputs (last layer's h for all steps, last h, last c)."""
    steps, batch, size, hidden, layers = lstm_plan(op)
    flat = b.reshape(b.inp(op, 3), [-1])
    value, start, hs, cs = b.inp(op, 0), 0, [], []
    for layer in range(layers):
        weights, start = _lstm_weights(b, flat, start, size if layer == 0 else hidden, hidden,
                                       op.params.get("bias", True))
        h0, c0 = (b.node("Slice", [b.inp(op, i), b.ints([layer]), b.ints([layer + 1]), b.ints([0])]) for i in (1, 2))
        if len(weights) == 2:
            weights.append("")
        y, h, c = b.node("LSTM", [value, *weights, "", h0, c0], n_out=3, hidden_size=hidden)
        value = b.reshape(y, (steps, batch, hidden))
        hs.append(h)
        cs.append(c)
    concat = (lambda xs: b.node("Concat", xs, axis=0) if len(xs) > 1 else xs[0])
    return [value, concat(hs), concat(cs), None]


@shape_rule("MultiHeadAttn")
def _mha_shape(op: Op):
    plan = mha_plan(op)
    dtype = op.inputs[0].dtype
    weights = (plan["batch"] * plan["heads"], plan["lq"], plan["lk"])
    return [((plan["batch"], plan["lq"], plan["out"]), dtype), (weights, dtype), ((0,), BYTE), ((0,), BYTE)]


@lowering("MultiHeadAttn")
def lower_multi_head_attn(b: Builder, op: Op) -> list[str]:
    """softmax(sm_scaler * Q K^T [+ mask]) V per head, heads concatenated, then the output projection."""
    plan, p = mha_plan(op), op.params
    n, heads, sizes = plan["batch"], plan["heads"], plan["sizes"]
    flat = b.reshape(b.float32(op, 3), [-1])
    shapes = {"q": (plan["inputs"][0], sizes["q"]), "k": (plan["inputs"][1], sizes["k"]),
              "v": (plan["inputs"][2], sizes["v"]), "o": (sizes["v"] or plan["inputs"][2] * heads, sizes["o"])}
    offsets, end = {}, 0
    for name in "qkvo":
        if sizes[name]:
            offsets[name], end = end, end + shapes[name][0] * shapes[name][1]
    biases = {}
    for name in "qkvo":
        if sizes[name] and p.get(f"{name}bias", False):
            biases[name], end = end, end + sizes[name]
    split = []
    for i, name in enumerate("qkv"):
        x = b.float32(op, i)
        length = plan["lq"] if name == "q" else plan["lk"]
        if sizes[name]:
            x = _project(b, x, flat, offsets[name], shapes[name], biases.get(name))
            x = b.node("Transpose", [b.reshape(x, (n, length, heads, sizes[name] // heads))], perm=[0, 2, 1, 3])
        else:  # without a projection every head sees the whole input
            x = b.node("Expand", [b.node("Unsqueeze", [x, b.ints([1], "axes")]), b.ints([1, heads, 1, 1])])
        split.append(b.reshape(x, (n * heads, length, -1)))
    scores = b.node("Mul", [b.node("MatMul", [split[0], b.node("Transpose", [split[1]], perm=[0, 2, 1])]),
                            b.const(np.asarray(p.get("sm_scaler", 1.0), np.float32))])
    if p.get("attn_mask_type", 0) in (1, 3):
        scores = b.node("Add", [scores, b.float32(op, 4)])
    weights = b.node("Softmax", [scores], axis=-1)
    z = b.node("Transpose", [b.reshape(b.node("MatMul", [weights, split[2]]), (n, heads, plan["lq"], -1))],
               perm=[0, 2, 1, 3])
    z = b.reshape(z, (n, plan["lq"], -1))
    out = _project(b, z, flat, offsets["o"], shapes["o"], biases.get("o")) if sizes["o"] else z
    dtype = op.outputs[0].dtype.np_dtype
    return [b.from_float32(out, dtype), b.from_float32(weights, dtype), None, None]
