"""Lowerings of the sequence operators: LSTM and MultiHeadAttn."""

from __future__ import annotations

import numpy as np

from ..graph.infer_rnn import lstm_plan, mha_plan
from ..graph.ir import Op
from .builder import Builder, lowering

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


def _project(b: Builder, x: str, flat: str, offset: int, shape: tuple[int, int], bias_offset: int | None) -> str:
    """x @ W (+ bias), W read from the packed weights at ``offset`` as ``shape``."""
    count = shape[0] * shape[1]
    weight = b.reshape(b.node("Slice", [flat, b.ints([offset]), b.ints([offset + count]), b.ints([0])]), shape)
    out = b.node("MatMul", [x, weight])
    if bias_offset is not None:
        out = b.node("Add", [out, b.node("Slice", [flat, b.ints([bias_offset]), b.ints([bias_offset + shape[1]]),
                                                    b.ints([0])])])
    return out


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
