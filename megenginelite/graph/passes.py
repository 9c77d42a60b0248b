"""MegBrain-level rewrites of an inferred graph, run before lowering. Each pass is ``Graph -> None`` (in place).

They see what ONNX Runtime does not: MegBrain's dump-time optimizer leaves a folded BatchNorm as a separate
``FUSE_ADD_RELU(bias, conv)``/``ADD(bias, conv)`` after every convolution, with the constant first, which ONNX
Runtime's Conv+Add fusion does not recognize; and ShuffleNet's channel shuffle (reshape, transpose, reshape, pick
one half) is a strided channel slice, one copy instead of a transpose plus a split.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np

from ..format.dtypes import INT32
from .elemwise_modes import mode_name
from .ir import Graph, Op, Var, live_ops

# Elemwise mode name -> the ConvBias nonlinearity it adds (IDENTITY 0, RELU 1, SIGMOID 2, H_SWISH 3)
_BIAS_ACTIVATIONS = {"ADD": 0, "FUSE_ADD_RELU": 1, "FUSE_ADD_SIGMOID": 2, "FUSE_ADD_H_SWISH": 3}
_ACTIVATIONS = {"RELU": 1, "SIGMOID": 2, "H_SWISH": 3}


def _uses(graph: Graph) -> Counter:
    uses: Counter = Counter(id(v) for op in graph.ops for v in op.inputs)
    uses.update(id(var) for _, var in graph.outputs)
    return uses


def _channel_bias(op: Op, conv_out: Var) -> Var | None:
    """The constant operand of a binary Elemwise on ``conv_out`` when it is a per-channel bias (1, C, 1, 1)."""
    if len(op.inputs) != 2:
        return None
    other = op.inputs[1] if op.inputs[0] is conv_out else op.inputs[0]
    if other is conv_out or not other.is_const or other.dtype != conv_out.dtype:
        return None
    channels = conv_out.shape[1]
    if other.shape != (1, channels, 1, 1) or op.outputs[0].shape != conv_out.shape:
        return None
    return other


def fuse_conv_bias_activation(graph: Graph) -> None:
    """Convolution -> Elemwise ADD/FUSE_ADD_{RELU,SIGMOID,H_SWISH}(per-channel constant) becomes one ConvBias,
    and ConvBias(IDENTITY) -> Elemwise RELU/SIGMOID/H_SWISH takes the activation in."""
    uses = _uses(graph)
    consumer = {id(v): op for op in graph.ops for v in op.inputs}
    dropped: set[int] = set()
    for op in graph.ops:
        if op.kind not in ("Convolution", "ConvBias") or id(op) in dropped or op.output_dtype is not None:
            continue
        out = op.outputs[0]
        nxt = consumer.get(id(out))
        if uses[id(out)] != 1 or nxt is None or nxt.kind != "Elemwise" or len(op.inputs) > 3:
            continue
        name = mode_name(nxt.params.get("mode", 0))
        if op.kind == "Convolution" and name in _BIAS_ACTIVATIONS:
            bias = _channel_bias(nxt, out)
            if bias is None:
                continue
            op.inputs = op.inputs + [bias]
            op.params = {**op.params, "nonlineMode": _BIAS_ACTIVATIONS[name]}
        elif op.kind == "ConvBias" and op.params.get("nonlineMode", 0) == 0 and name in _ACTIVATIONS:
            op.params = {**op.params, "nonlineMode": _ACTIVATIONS[name]}
        else:
            continue
        op.kind = "ConvBias"
        op.outputs = nxt.outputs
        for var in op.outputs:
            var.producer = op
        dropped.add(id(nxt))
    graph.ops = [op for op in graph.ops if id(op) not in dropped]


def _producer(var: Var, kind: str) -> Op | None:
    op = var.producer
    return op if op is not None and op.kind == kind else None


def _const_var(graph: Graph, value: int) -> Var:
    """A new int32 (1,) constant var."""
    var = Var(max(graph.vars) + 1, f"const<{value}>", INT32, (1,), np.array([value], np.int32))
    graph.vars[var.id] = var
    return var


def fold_channel_shuffle(graph: Graph) -> None:
    """x (N,C,H,W) -> Reshape (N,C/2,2,H*W) -> Dimshuffle (2,0,1,3) -> Reshape (2,N,C/2,H,W) -> [k] is x[:, k::2]:
    each pick becomes one Subtensor with a stride, the reshapes and the transpose disappear."""
    for op in graph.ops:
        if op.kind != "Subtensor" or op.params.get("items") != ((0, False, False, False, True),):
            continue
        reshape2 = _producer(op.inputs[0], "Reshape")
        shuffle = reshape2 and _producer(reshape2.inputs[0], "Dimshuffle")
        reshape1 = shuffle and _producer(shuffle.inputs[0], "Reshape")
        if not reshape1 or shuffle.params.get("pattern") != (2, 0, 1, 3) or not op.inputs[1].is_const:
            continue
        x = reshape1.inputs[0]
        if x.shape is None or len(x.shape) != 4 or x.shape[1] % 2:
            continue
        n, c, h, w = x.shape
        if (reshape1.outputs[0].shape != (n, c // 2, 2, h * w) or reshape2.outputs[0].shape != (2, n, c // 2, h, w)):
            continue
        k = int(op.inputs[1].const.reshape(-1)[0]) % 2
        op.inputs = [x, _const_var(graph, k), _const_var(graph, 2)]
        op.params = {**op.params, "items": ((1, True, False, True, False),)}
    live = live_ops(graph, through_constants=True)  # the rewritten picks leave the reshapes and transpose dead
    graph.ops = [o for o in graph.ops if o in live]


PASSES: list[Callable[[Graph], None]] = [fuse_conv_bias_activation, fold_channel_shuffle]


def optimize(graph: Graph) -> None:
    """Run every rewrite, in order."""
    for rewrite in PASSES:
        rewrite(graph)

