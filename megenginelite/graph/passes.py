"""MegBrain-level rewrites of an inferred graph, run before lowering. Each pass is ``Graph -> None`` (in place).

They see what ONNX Runtime does not:
- MegBrain's dump-time optimizer leaves a folded BatchNorm as a separate ``FUSE_ADD_RELU(bias, conv)`` /
  ``ADD(bias, conv)`` after every convolution, with the constant first, which ONNX Runtime's Conv+Add fusion does
  not recognize, and moves that bias past a residual add (``ADD(bias, ADD(conv, r))``);
- ReLU6 arrives as ``MIN(MAX(x, 0), 6)``, two element-wise passes over memory, which one Clip replaces and ONNX
  Runtime then fuses into the convolution;
- ShuffleNet's channel shuffle (reshape, transpose, reshape, pick one half) is a strided channel slice, one copy
  instead of a transpose plus a split;
- channel counts that are not a multiple of ONNX Runtime's NCHWc block (ShuffleNet's 58 and 24) keep depthwise
  convolutions and pooling out of its fast blocked kernels; zero channels fix that without changing outputs.
"""
from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np

from ..format.dtypes import INT32
from .cpu import nchwc_block
from .elemwise_modes import CLIP_MODE, mode_name
from .fusions import fuse_attention, fuse_gelu, fuse_global_pool, fuse_layer_norm, fuse_matmul_bias
from .ir import Graph, Op, Var, live_ops

# Elemwise mode name -> the ConvBias nonlinearity it adds (IDENTITY 0, RELU 1, SIGMOID 2, H_SWISH 3)
_BIAS_ACTIVATIONS = {"ADD": 0, "FUSE_ADD_RELU": 1, "FUSE_ADD_SIGMOID": 2, "FUSE_ADD_H_SWISH": 3}
_ACTIVATIONS = {"RELU": 1, "SIGMOID": 2, "H_SWISH": 3}


def _uses(graph: Graph) -> Counter:
    """How many times each var is read: by ops (folded ones included) and as a graph output."""
    uses = Counter({key: len(ops) for key, ops in graph.readers().items()})
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


def _elemwise(var: Var, *modes: str) -> Op | None:
    """The Elemwise op of one of these modes that produces ``var``."""
    op = _producer(var, "Elemwise")
    return op if op is not None and mode_name(op.params.get("mode", 0)) in modes else None


def _split_const(op: Op) -> tuple[Var, Var] | None:
    """(the non-constant operand, the constant operand) of a binary op with exactly one constant operand."""
    if len(op.inputs) != 2 or op.inputs[0].is_const == op.inputs[1].is_const:
        return None
    return (op.inputs[1], op.inputs[0]) if op.inputs[0].is_const else (op.inputs[0], op.inputs[1])


def fuse_conv_residual(graph: Graph) -> None:
    """ADD/FUSE_ADD_{RELU,...}(per-channel constant, ADD(Convolution(x, w), r)) becomes ConvBias(x, w, bias, r)
    with the activation: MegBrain's dump moves a folded BatchNorm's bias past the residual add; putting it back
    (bias added before r, a rounding-level reassociation) lets ONNX Runtime run conv, bias, sum and ReLU as one
    kernel."""
    uses = _uses(graph)
    replaced: dict[int, Op] = {}  # id(op) -> the op that takes its place in the order
    for outer in graph.ops:
        name = mode_name(outer.params.get("mode", 0)) if outer.kind == "Elemwise" else None
        split = _split_const(outer) if name in _BIAS_ACTIVATIONS else None
        inner = split and _elemwise(split[0], "ADD")
        if (not inner or uses[id(split[0])] != 1 or len(inner.inputs) != 2 or id(inner) in replaced
                or _channel_bias(outer, split[0]) is None):
            continue
        for conv_out, residual in (inner.inputs, inner.inputs[::-1]):
            conv = _producer(conv_out, "Convolution")
            if (conv is not None and id(conv) not in replaced and uses[id(conv_out)] == 1 and len(conv.inputs) == 2
                    and conv.output_dtype is None and conv_out.dtype == residual.dtype
                    and residual.shape == conv_out.shape == outer.outputs[0].shape
                    and conv_out.dtype.np_dtype == np.float32):
                break
        else:
            continue
        conv.kind = "ConvBias"
        conv.inputs = conv.inputs + [split[1], residual]
        conv.params = {**conv.params, "nonlineMode": _BIAS_ACTIVATIONS[name]}
        conv.outputs = outer.outputs
        for var in conv.outputs:
            var.producer = conv
        # the conv now reads r, which may be computed after it: it moves to the outer op's place
        replaced[id(outer)] = conv
        replaced[id(inner)] = replaced[id(conv)] = None
    graph.ops = [replaced.get(id(op), op) for op in graph.ops if replaced.get(id(op), op) is not None]


def _scalar(var: Var) -> float | None:
    """The value of a one-element float constant."""
    if not var.is_const or var.const.size != 1 or var.const.dtype.kind != "f":
        return None
    return float(var.const.reshape(-1)[0])


def fold_clip(graph: Graph) -> None:
    """MIN(MAX(x, lo), hi) with constant scalars (ReLU6 is MIN(MAX(x, 0), 6)) becomes one Elemwise CLIP, which
    ONNX Runtime fuses into the convolution before it; MAX(MIN(x, hi), lo) too when lo <= hi."""
    uses = _uses(graph)
    dropped: set[int] = set()
    for outer in graph.ops:
        outer_split = _split_const(outer) if _elemwise(outer.outputs[0], "MIN", "MAX") is outer else None
        if outer_split is None:
            continue
        inner_mode = "MAX" if mode_name(outer.params.get("mode", 0)) == "MIN" else "MIN"
        inner = _elemwise(outer_split[0], inner_mode)
        inner_split = inner and _split_const(inner)
        if not inner_split or uses[id(outer_split[0])] != 1 or id(inner) in dropped:
            continue
        x = inner_split[0]
        lo, hi = (inner_split[1], outer_split[1]) if inner_mode == "MAX" else (outer_split[1], inner_split[1])
        if (_scalar(lo) is None or _scalar(hi) is None or x.shape != outer.outputs[0].shape or x.dtype != lo.dtype
                or x.dtype != hi.dtype or (inner_mode == "MIN" and _scalar(lo) > _scalar(hi))):
            continue
        outer.inputs = [x, lo, hi]
        outer.params = {**outer.params, "mode": CLIP_MODE}
        dropped.add(id(inner))
    graph.ops = [op for op in graph.ops if id(op) not in dropped]


def _int_const(graph: Graph, value: int) -> Var:
    return graph.new_const(f"const<{value}>", INT32, np.array([value], np.int32))


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
        op.inputs = [x, _int_const(graph, k), _int_const(graph, 2)]
        op.params = {**op.params, "items": ((1, True, False, True, False),)}
    live = live_ops(graph, through_constants=True)  # the rewritten picks leave the reshapes and transpose dead
    graph.ops = [o for o in graph.ops if o in live]


def _dense_float_conv(op: Op | None, sparse: int) -> bool:
    """An NCHW float32 Convolution/ConvBias (``sparse`` 0 dense, 1 grouped) with a constant filter and, if any,
    a constant (1, C, 1, 1) bias and no residual input."""
    if (op is None or op.kind not in ("Convolution", "ConvBias") or op.params.get("format", 0) != 0
            or op.params.get("sparse", 0) != sparse or op.output_dtype is not None or len(op.inputs) > 3
            or not op.inputs[1].is_const or op.outputs[0].dtype.np_dtype != np.float32
            or len(op.inputs[1].shape) != 4 + sparse):
        return False
    channels = op.inputs[1].shape[0]
    return len(op.inputs) < 3 or (op.inputs[2].is_const and op.inputs[2].shape == (1, channels, 1, 1))


def _zero_pad(graph: Graph, op: Op, index: int, axis: int, extra: int) -> None:
    """Input ``index`` of ``op`` (a constant) grown by ``extra`` zeros along ``axis``, as a new var."""
    old = op.inputs[index]
    widths = [(0, 0)] * old.const.ndim
    widths[axis] = (0, extra)
    op.inputs[index] = graph.new_const(f"{old.name}:padded", old.dtype, np.pad(old.const, widths))


# Elemwise modes that act on each element alone (a padded channel stays a channel of its own)
_CHANNELWISE_MODES = {"RELU", "SIGMOID", "H_SWISH", "RELU6", "HSIGMOID", "TANH", "EXP", "ABS", "NEGATE"}


def _channel_region(start: Var, uses: Counter, consumers: dict[int, list[Op]]) -> list | None:
    """From ``start`` (a dense conv's output), the ops that would carry zero-padded channels through to dense convs:
    ``[(op, role)]`` with role "depthwise", "channelwise" (pooling, element-wise) or "consumer" (a dense conv
    whose filter gets zero columns). None when a var of the region reaches anything else (a graph output, a
    concat, a reshape, a residual add...), which would see the padding."""
    region: list = []
    pending = [start]
    while pending:
        var = pending.pop()
        readers = consumers.get(id(var), [])
        if uses[id(var)] != len(readers) or not readers or len(var.shape or ()) != 4:
            return None  # also a graph output
        for op in readers:
            if op.inputs[0] is not var or any(v is var for v in op.inputs[1:]):
                return None
            if _dense_float_conv(op, sparse=0):
                region.append((op, "consumer"))
                continue
            if _dense_float_conv(op, sparse=1) and op.inputs[1].shape[1:3] == (1, 1):
                region.append((op, "depthwise"))
            elif (op.kind == "Pooling" and op.params.get("format", 0) == 0 and op.params.get("mode", 0) in (0, 1, 2)
                  or op.kind == "Elemwise" and len(op.inputs) == 1
                  and mode_name(op.params.get("mode", 0)) in _CHANNELWISE_MODES):
                region.append((op, "channelwise"))
            else:
                return None
            pending.append(op.outputs[0])
    return region


def pad_channels_to_block(graph: Graph, block: int | None = None) -> None:
    """Zero channels up to a multiple of ONNX Runtime's NCHWc block (16 with AVX-512) where that lets depthwise
    convolutions and pooling run in its blocked layout (ShuffleNet's 58 channels, its 24-channel stem): a dense
    conv gets zero filter rows, the depthwise convs and poolings after it carry the extra channels, the dense convs
    that read them get zero filter columns, so their outputs are unchanged. About 4x faster depthwise convolutions
    for a few percent more work. Changes the shapes of the vars in between: see ``optimize``.
    (With inf or NaN inputs the zero rows give NaN where the original has inf or NaN of its own.)"""
    block = nchwc_block() if block is None else block
    if block <= 1:
        return
    uses = _uses(graph)
    consumers = {key: list(dict.fromkeys(ops)) for key, ops in graph.readers().items()}  # each reader once
    for op in graph.ops:
        out = op.outputs[0] if op.outputs else None
        if not _dense_float_conv(op, sparse=0) or out is None or out.shape[1] % block == 0:
            continue
        region = _channel_region(out, uses, consumers)
        if not region or all(role == "consumer" for _, role in region):
            continue
        channels = out.shape[1]
        extra = -channels % block
        for conv in [op] + [o for o, role in region if role == "depthwise"]:
            _zero_pad(graph, conv, 1, 0, extra)
            if len(conv.inputs) > 2:
                _zero_pad(graph, conv, 2, 1, extra)
        for conv in (o for o, role in region if role == "consumer"):
            _zero_pad(graph, conv, 1, 1, extra)
        for var in [out] + [o.outputs[0] for o, role in region if role != "consumer"]:
            var.shape = (var.shape[0], channels + extra, *var.shape[2:])


PASSES: list[Callable[[Graph], None]] = [fuse_conv_bias_activation, fuse_conv_residual, fold_clip,
                                         fold_channel_shuffle, fuse_layer_norm, fuse_gelu, fuse_matmul_bias,
                                         fuse_attention, fuse_global_pool, pad_channels_to_block]


def optimize(graph: Graph, pad_channels: bool = True) -> None:
    """Run every rewrite, in order. Without ``pad_channels`` the intermediate vars keep the file's shapes (for IO
    dumps) and the result suits any CPU (for ONNX export)."""
    for rewrite in PASSES:
        if pad_channels or rewrite is not pad_channels_to_block:
            rewrite(graph)

