"""Fusions of what MegEngine's dump leaves as chains of small ops: layer normalization written out in
element-wise ops and reductions (the official BERT's ``BertLayerNorm``), GELU written as a formula (its
``tanh`` approximation, or ``erf``), and a linear layer's bias added after its matrix product (and after the
reshape back to 3-D, or after the residual add that follows), and a classifier's global pooling written as a mean
over W then over H (``x.mean(3).mean(2)``).

A MegEngine model computes these in 8-12 ops, each a pass over memory and, in ONNX Runtime, a kernel launch with
its own overhead; one ``LayerNormalization`` or ``Gelu`` node does the same work in one pass. The matchers are
loose about the form (operand order, ``x - m`` or ``x + (-m)``, ``* rstd`` or ``/ std``) and then *verify*: the
matched ops, run by their own fold rules on random inputs, must give what the fused op gives. A chain that only
looks like the pattern (another epsilon placement, another constant) is left as it is.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..format.dtypes import FLOAT32
from .elemwise_modes import mode_name
from .infer import FOLD_RULES
from .ir import Graph, Op, Var, live_ops

# the kinds these rewrites create; they exist only between the rewrite and the lowering (no file names them)
GELU_TANH = "FusedGeluTanh"
GELU_ERF = "FusedGeluErf"
MATMUL_BIAS = "FusedMatMulBias"  # MatrixMul inputs + a bias vector over the product's columns (ONNX Gemm's C)
ATTENTION = "FusedAttention"  # q, k, v (B, S|T, H*D) [+ an additive bias] -> softmax(q k^T * scale + bias) v
GLOBAL_POOL = "FusedGlobalPool"  # the mean (max) over H and W of an NCHW tensor, params {"mode": "MEAN" | "MAX"}

_ELEMENTWISE = ("Elemwise", "PowC")
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def _mode(op: Op | None) -> str | None:
    return mode_name(op.params.get("mode", 0)) if op is not None and op.kind == "Elemwise" else None


def _scalar_const(var: Var) -> bool:
    return var.is_const and var.const.size == 1


def _closed(ops: list[Op], out: Var, users: dict[int, list[Op]], graph_outputs: set[int]) -> bool:
    """Whether nothing outside ``ops`` reads what they compute, except ``out``."""
    inside = {id(op) for op in ops}
    for op in ops:
        for var in op.outputs:
            if var is out:
                continue
            if id(var) in graph_outputs or any(id(u) not in inside for u in users.get(id(var), [])):
                return False
    return True


PROBE_LIMIT = 1 << 20  # values in a probe input; a larger (or run-time) shape is left unfused


def _probe(x: Var, seed: int) -> np.ndarray | None:
    """Random values of ``x``'s shape (the fold rules check shapes), or None when that shape is not small and static."""
    if x.shape is None or not all(isinstance(d, int) for d in x.shape) or int(np.prod(x.shape)) > PROBE_LIMIT:
        return None
    return (np.random.default_rng(seed).standard_normal(x.shape) * 3).astype(np.float32)


def _batched_matmul(op: Op, xs: list[np.ndarray]) -> list[np.ndarray]:
    a, b = xs
    a = a.swapaxes(-1, -2) if op.params.get("transposeA") else a
    b = b.swapaxes(-1, -2) if op.params.get("transposeB") else b
    return [np.matmul(a.astype(np.float64), b).astype(np.float32)]


def _softmax(op: Op, xs: list[np.ndarray]) -> list[np.ndarray]:
    x = xs[0].astype(np.float64)
    e = np.exp(x - x.max(axis=op.params.get("axis", -1), keepdims=True))
    return [(e / e.sum(axis=op.params.get("axis", -1), keepdims=True)).astype(np.float32)]


# float evaluations of the kinds an attention match contains that have no fold rule (used only to verify a match)
_VERIFY_RULES = {"BatchedMatrixMul": _batched_matmul, "Softmax": _softmax}


def _run(ops: list[Op], values: dict[int, np.ndarray]) -> dict[int, np.ndarray] | None:
    """``values`` (var id -> array) extended by running ``ops`` in order, None if one cannot run."""
    try:
        for op in ops:
            rule = _VERIFY_RULES.get(op.kind) or FOLD_RULES[op.kind]
            args = [values[id(v)] if id(v) in values else v.const for v in op.inputs]
            for var, value in zip(op.outputs, rule(op, args)):
                values[id(var)] = np.asarray(value)
    except Exception:  # noqa: BLE001  (a match its own ops cannot evaluate is simply not fused)
        return None
    return values


def _evaluate(ops: list[Op], x: Var, probe: np.ndarray, out: Var) -> np.ndarray | None:
    """``out`` computed from ``x = probe`` by ``ops`` (in graph order), None if one refuses."""
    values = _run(ops, {id(x): probe})
    return None if values is None else values.get(id(out))


def _replace(graph: Graph, old: list[Op], new: Op) -> None:
    """Put ``new`` where the last of ``old`` was; ``old`` is then dead (removed with everything only it read)."""
    last = max(graph.ops.index(op) for op in old)
    graph.ops.insert(last + 1, new)
    for var in new.outputs:
        var.producer = new
    live = live_ops(graph, through_constants=True)
    graph.ops = [op for op in graph.ops if op in live]


def _elementwise_cone(out: Var) -> tuple[list[Op], list[Var]]:
    """The element-wise ops computing ``out`` from scalar constants and other values (the leaves: outputs of
    anything else, including element-wise ops with a non-scalar constant operand), and those leaves."""
    ops: list[Op] = []
    leaves: list[Var] = []
    stack, seen = [out], set()
    while stack:
        var = stack.pop()
        if id(var) in seen:
            continue
        seen.add(id(var))
        op = var.producer
        if (op is None or op.kind not in _ELEMENTWISE or len(op.outputs) != 1 or var.dtype != FLOAT32
                or any(arg.is_const and not _scalar_const(arg) for arg in op.inputs)):
            leaves.append(var)
            continue
        stack.extend(arg for arg in op.inputs if not arg.is_const)
        ops.append(op)
    return ops, leaves


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)))


def _gelu_erf(x: np.ndarray) -> np.ndarray:
    from math import erf

    return 0.5 * x * (1 + np.vectorize(erf)(x / math.sqrt(2)))


_GELU_FORMS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "TANH": (GELU_TANH, _gelu_tanh), "ERF": (GELU_ERF, _gelu_erf)}


def fuse_gelu(graph: Graph) -> None:
    """An element-wise chain of one input computing GELU, ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` or
    ``0.5 x (1 + erf(x / sqrt 2))`` in any arrangement, becomes one op of kind GELU_TANH / GELU_ERF."""
    users = graph.readers(at_run_time=True)
    graph_outputs = {id(var) for _, var in graph.outputs}
    fused: set[int] = set()
    for op in reversed(list(graph.ops)):  # the last op of a chain first: the largest chain that still matches wins
        if op.kind not in _ELEMENTWISE or id(op) in fused or len(op.outputs) != 1:
            continue
        out = op.outputs[0]
        ops, leaves = _elementwise_cone(out)
        if len(leaves) != 1 or any(id(o) in fused for o in ops):
            continue
        x = leaves[0]
        forms = {_mode(o) for o in ops} & set(_GELU_FORMS)
        if len(forms) != 1 or not _closed(ops, out, users, graph_outputs):
            continue
        kind, formula = _GELU_FORMS[forms.pop()]
        ops.sort(key=graph.ops.index)
        probe = _probe(x, len(ops))
        got = None if probe is None else _evaluate(ops, x, probe, out)
        if got is None or got.shape != probe.shape or not np.allclose(got, formula(probe.astype(np.float64)),
                                                                       rtol=1e-5, atol=1e-6):
            continue
        fused.update(id(o) for o in ops)
        _replace(graph, ops, Op(type=kind, kind=kind, params={}, inputs=[x], outputs=[out], index=op.index))


def _reduce_mean_last(var: Var) -> Var | None:
    """``x`` when ``var`` is the mean of ``x`` over its last axis, kept as size 1."""
    op = var.producer
    if op is None or op.kind != "Reduce" or op.params.get("mode") != 5 or not op.inputs[0].shape:
        return None
    x = op.inputs[0]
    ndim = len(x.shape)
    if op.params.get("axis") not in (ndim - 1, -1) or var.shape != (*x.shape[:-1], 1):
        return None
    return x


def _product_factors(var: Var, limit: int = 4) -> tuple[list[Var], list[Op]] | None:
    """The factors of a tree of Elemwise MULs ending in ``var`` (up to ``limit``), with the MULs."""
    factors, ops, stack = [], [], [var]
    while stack:
        v = stack.pop()
        op = v.producer
        if _mode(op) == "MUL" and len(ops) < limit:
            ops.append(op)
            stack.extend(op.inputs)
        else:
            factors.append(v)
    return factors, ops


def _vector_for(var: Var, width: int) -> np.ndarray | None:
    """A constant broadcast along the last axis only, as a vector of ``width`` values."""
    if not var.is_const or var.const.dtype != np.float32:
        return None
    value = var.const
    if value.size == 1:
        return np.full(width, value.reshape(()), np.float32)
    if value.shape[-1] != width or value.size != width:
        return None
    return value.reshape(width)


def _match_layer_norm(out: Var) -> tuple[Var, np.ndarray, np.ndarray, float, list[Op]] | None:
    """``(x, weight, bias, eps, ops)`` when ``out`` is ``(x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps)``
    times an optional weight plus an optional bias, over the last axis."""
    ops: list[Op] = []
    top = out.producer
    bias_var = None
    if _mode(top) == "ADD":
        a, b = top.inputs
        bias_var, prod = (a, b) if a.is_const else (b, a) if b.is_const else (None, None)
        if prod is None:
            return None
        ops.append(top)
    else:
        prod = out
    divisor = None
    if _mode(prod.producer) == "TRUE_DIV":
        ops.append(prod.producer)
        prod, divisor = prod.producer.inputs
    factors, muls = _product_factors(prod)
    ops += muls
    consts = [f for f in factors if f.is_const]
    rest = [f for f in factors if not f.is_const]
    if len(consts) > 1 or len(rest) != (1 if divisor is not None else 2):
        return None
    if divisor is None:  # one factor is eps-ed variance ** -0.5
        rstd = next((f for f in rest if f.producer is not None and f.producer.kind == "PowC"
                     and f.producer.params.get("exp") == -0.5), None)
        if rstd is None:
            return None
        centered = rest[1] if rest[0] is rstd else rest[0]
        root, eps_sum = rstd.producer, rstd.producer.inputs[0]
    else:
        centered = rest[0]
        root = divisor.producer
        if root is None or not ((root.kind == "PowC" and root.params.get("exp") == 0.5) or _mode(root) == "SQRT"):
            return None
        eps_sum = root.inputs[0]
    ops.append(root)
    eps_op = eps_sum.producer
    if _mode(eps_op) != "ADD" or not any(_scalar_const(v) for v in eps_op.inputs):
        return None
    ops.append(eps_op)
    eps_var = next(v for v in eps_op.inputs if _scalar_const(v))
    var_mean = next(v for v in eps_op.inputs if v is not eps_var)
    squared = _reduce_mean_last(var_mean)
    if squared is None or squared.producer is None:
        return None
    ops += [var_mean.producer, squared.producer]
    sq = squared.producer
    if not ((sq.kind == "PowC" and sq.params.get("exp") == 2 and sq.inputs[0] is centered)
            or (_mode(sq) == "MUL" and sq.inputs[0] is centered and sq.inputs[1] is centered)):
        return None
    sub = centered.producer
    if _mode(sub) == "SUB":
        x, mean = sub.inputs
    elif _mode(sub) == "ADD" and _mode(sub.inputs[1].producer) == "NEGATE":
        x, mean = sub.inputs[0], sub.inputs[1].producer.inputs[0]
        ops.append(sub.inputs[1].producer)
    elif _mode(sub) == "ADD" and _mode(sub.inputs[0].producer) == "NEGATE":
        x, mean = sub.inputs[1], sub.inputs[0].producer.inputs[0]
        ops.append(sub.inputs[0].producer)
    else:
        return None
    ops += [sub, mean.producer] if mean.producer is not None else [sub]
    if (_reduce_mean_last(mean) is not x or x.dtype != FLOAT32 or len(x.shape) < 2
            or not isinstance(x.shape[-1], int)):
        return None
    width = x.shape[-1]
    weight = _vector_for(consts[0], width) if consts else np.ones(width, np.float32)
    bias = _vector_for(bias_var, width) if bias_var is not None else np.zeros(width, np.float32)
    if weight is None or bias is None or out.shape != x.shape:
        return None
    return x, weight, bias, float(eps_var.const.reshape(())), ops


def fuse_layer_norm(graph: Graph) -> None:
    """Layer normalization over the last axis written out in element-wise ops and mean reductions becomes one
    LayerNorm op (the kind MegEngine's own ``layer_norm`` dumps)."""
    users = graph.readers(at_run_time=True)
    graph_outputs = {id(var) for _, var in graph.outputs}
    for op in reversed(list(graph.ops)):  # from the end of a chain: the bias add is taken in, not left behind
        if op not in graph.ops or op.kind != "Elemwise" or len(op.outputs) != 1:
            continue
        out = op.outputs[0]
        match = _match_layer_norm(out)
        if match is None:
            continue
        x, weight, bias, eps, ops = match
        ops = sorted(set(ops), key=graph.ops.index)
        if not _closed(ops, out, users, graph_outputs):
            continue
        probe = _probe(x, len(ops))
        got = None if probe is None else _evaluate(ops, x, probe + 2, out)
        if got is None:
            continue
        centered = probe - probe.mean(-1, keepdims=True, dtype=np.float64)
        want = centered / np.sqrt((centered ** 2).mean(-1, keepdims=True) + eps) * weight + bias
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-4, atol=1e-5):
            continue
        stats_shape = (*x.shape[:-1], 1)
        new_id = max(graph.vars) + 1
        extra = [Var(new_id + i, f"{out.name}:{what}", FLOAT32, stats_shape) for i, what in enumerate(("mean", "rstd"))]
        consts = [Var(new_id + 2 + i, f"{out.name}:{what}", FLOAT32, (x.shape[-1],), value)
                  for i, (what, value) in enumerate((("weight", weight), ("bias", bias)))]
        for var in extra + consts:
            graph.vars[var.id] = var
        fused = Op(type="LayerNorm", kind="LayerNorm", inputs=[x, *consts], outputs=[out, *extra], index=op.index,
                   params={"affine": True, "eps": eps, "normalized_dim": 1})
        _replace(graph, ops, fused)


def _linear_product(var: Var, users: dict[int, list[Op]], graph_outputs: set[int]) -> tuple[Op, Op | None] | None:
    """``(MatrixMul, Reshape or None)`` when ``var`` is a float MatrixMul's (M, N) product, possibly reshaped
    keeping its last axis N, and nothing else reads the product or the reshape."""
    reshape = var.producer if var.producer is not None and var.producer.kind == "Reshape" else None
    product = reshape.inputs[0] if reshape is not None else var
    mm = product.producer
    if (mm is None or mm.kind != "MatrixMul" or mm.output_dtype is not None or mm.params.get("format", 0) != 0
            or product.dtype != FLOAT32 or var.shape is None or product.shape is None
            or var.shape[-1] != product.shape[1]):
        return None
    private = [product] + ([var] if reshape is not None else [])
    if any(id(v) in graph_outputs or len(users.get(id(v), [])) != 1 for v in private):
        return None
    return mm, reshape


def fuse_matmul_bias(graph: Graph) -> None:
    """``ADD(bias, [Reshape](MatrixMul))`` and ``ADD(bias, ADD(r, [Reshape](MatrixMul)))``, with a constant
    ``bias`` along the last axis (``F.linear`` on a 3-D input, as MegEngine dumps it: a 2-D product reshaped back,
    then the bias, sometimes moved past the residual add) become one MATMUL_BIAS op: ONNX Gemm adds the bias in
    its output loop instead of a pass of its own."""
    users = graph.readers(at_run_time=True)
    graph_outputs = {id(var) for _, var in graph.outputs}
    dropped: set[int] = set()
    for add in list(graph.ops):
        if _mode(add) != "ADD" or len(add.inputs) != 2 or id(add) in dropped:
            continue
        bias_var, y = add.inputs if add.inputs[0].is_const else add.inputs[::-1]
        out = add.outputs[0]
        if not bias_var.is_const or y.is_const or out.shape != y.shape or out.dtype != FLOAT32:
            continue
        residual = None
        match = _linear_product(y, users, graph_outputs)
        if match is None and _mode(y.producer) == "ADD" and len(users.get(id(y), [])) == 1 and id(y) not in graph_outputs:
            residual = y.producer
            for z in residual.inputs:
                match = match or (_linear_product(z, users, graph_outputs) if z.shape == y.shape else None)
        if match is None:
            continue
        mm, reshape = match
        bias = _vector_for(bias_var, mm.outputs[0].shape[1])
        if bias is None:
            continue
        fused = Op(type=mm.type, kind=MATMUL_BIAS, params=dict(mm.params), index=mm.index, outputs=mm.outputs,
                   inputs=[*mm.inputs[:2], graph.new_const(f"{out.name}:bias", FLOAT32, bias)])
        graph.ops[graph.ops.index(mm)] = fused
        mm.outputs[0].producer = fused
        last = residual or reshape or fused  # what now computes the ADD's result
        last.outputs = [out]
        out.producer = last
        dropped.add(id(add))
    graph.ops = [op for op in graph.ops if id(op) not in dropped]


_MOVES = ("Reshape", "AxisAddRemove", "Dimshuffle")  # ops that only rearrange values


def _split_source(var: Var, users: dict[int, list[Op]], ops: list[Op]) -> tuple[Var, tuple] | None:
    """``(source, (B, S, H, D))`` when ``var`` is the source's values split into heads: a chain of single-use
    reshapes and transposes, the first transpose's input (B, S, H, D); the chain's ops go to ``ops``."""
    split = None
    while var.producer is not None and var.producer.kind in _MOVES and len(users.get(id(var), [])) == 1:
        op = var.producer
        if op.kind == "Dimshuffle":  # the first transpose (forward) splits (B, S, H, D); k may be transposed twice
            split = op.inputs[0].shape
        ops.append(op)
        var = op.inputs[0]
    return (var, split) if split is not None and len(split) == 4 else None


def _merged_output(var: Var, users: dict[int, list[Op]], ops: list[Op]) -> Var | None:
    """The reshape that merges the heads back, following single-use reshapes and one transpose from ``var``."""
    transposed = False
    while len(users.get(id(var), [])) == 1 and users[id(var)][0].kind in _MOVES:
        op = users[id(var)][0]
        if transposed and op.kind != "Dimshuffle":
            ops.append(op)
            return op.outputs[0]
        transposed = op.kind == "Dimshuffle"
        ops.append(op)
        var = op.outputs[0]
    return None


def _match_attention(softmax: Op, users: dict[int, list[Op]]) -> tuple | None:
    """``(q, k, v, bias or None, out, (B, S, T, H, D), scale, ops)`` when ``softmax`` (over the last axis) is the
    middle of scaled dot-product attention: its input a batched product of q and k split into heads, scaled by
    constants and plus at most one other value (the mask term), its output multiplied by v and merged back. q, k,
    v hold (B, S|T, H*D) values in any shape of that many elements; so does ``out``."""
    scores = softmax.inputs[0]
    if scores.dtype != FLOAT32 or not scores.shape or softmax.params.get("axis", -1) not in (-1, len(scores.shape) - 1):
        return None
    ops: list[Op] = [softmax]
    bias, scale, var = None, 1.0, scores
    while var.producer is not None and var.producer.kind != "BatchedMatrixMul":  # the scores' element-wise cone
        op = var.producer
        mode = _mode(op)
        if op.kind in _MOVES[:2] and len(op.inputs[0].shape or ()) >= 3:
            var = op.inputs[0]
        elif mode == "TRUE_DIV" and _scalar_const(op.inputs[1]):  # x / sqrt(d)
            scale /= float(op.inputs[1].const.reshape(()))
            var = op.inputs[0]
        elif mode == "MUL" and len(op.inputs) == 2 and any(_scalar_const(x) for x in op.inputs):  # x * d ** -0.5
            const, var = op.inputs if _scalar_const(op.inputs[0]) else op.inputs[::-1]
            scale *= float(const.const.reshape(()))
        elif mode == "ADD" and len(op.inputs) == 2 and bias is None and not any(v.is_const for v in op.inputs):
            a, b = op.inputs
            var, bias = (a, b) if _depends_on_matmul(a) else (b, a)
        else:
            return None
        if len(users.get(id(var), [])) != 1:
            return None
        ops.append(op)
    first = var.producer
    if first is None or first.params.get("transposeA"):
        return None
    ops.append(first)
    probs = _moved_to_matmul(softmax.outputs[0], users, ops)
    if probs is None:
        return None
    second, probs_in = probs
    if second.params.get("transposeA") or second.params.get("transposeB") or second.inputs[0] is not probs_in:
        return None
    ops.append(second)
    sources = [_split_source(x, users, ops) for x in (first.inputs[0], first.inputs[1], second.inputs[1])]
    out = _merged_output(second.outputs[0], users, ops)
    if None in sources or out is None:
        return None
    (q, (batch, length, heads, depth)), (k, k_split), (v, v_split) = sources
    kv_length = k_split[1]
    if (k_split != (batch, kv_length, heads, depth) or v_split != k_split
            or not all(x.dtype == FLOAT32 for x in (q, k, v, out))):
        return None
    return q, k, v, bias, out, (batch, length, kv_length, heads, depth), scale, ops


def _depends_on_matmul(var: Var, depth: int = 8) -> bool:
    """Whether a chain of rearrangements and element-wise ops leads from a BatchedMatrixMul to ``var``."""
    op = var.producer
    if op is None or depth == 0:
        return False
    if op.kind == "BatchedMatrixMul":
        return True
    return (op.kind in _MOVES or op.kind == "Elemwise") and any(_depends_on_matmul(x, depth - 1) for x in op.inputs)


def _moved_to_matmul(var: Var, users: dict[int, list[Op]], ops: list[Op]) -> tuple[Op, Var] | None:
    """The BatchedMatrixMul that single-use reshapes of ``var`` lead to, and the var it reads."""
    while len(users.get(id(var), [])) == 1:
        op = users[id(var)][0]
        if op.kind == "BatchedMatrixMul":
            return op, var
        if op.kind not in _MOVES[:2]:
            return None
        ops.append(op)
        var = op.outputs[0]
    return None


def _attention_reference(q, k, v, bias, dims: tuple, scale: float) -> np.ndarray:
    """Attention over heads in float64; q, k, v of (B, S|T, H*D) elements, the result (B, S, H*D)."""
    b, s, t, heads, depth = dims
    split = lambda x, n: x.astype(np.float64).reshape(b, n, heads, depth).transpose(0, 2, 1, 3)  # noqa: E731
    scores = split(q, s) @ split(k, t).transpose(0, 1, 3, 2) * scale
    if bias is not None:
        scores = scores + bias.reshape((1,) * (4 - bias.ndim) + bias.shape)
    e = np.exp(scores - scores.max(-1, keepdims=True))
    return ((e / e.sum(-1, keepdims=True)) @ split(v, t)).transpose(0, 2, 1, 3).reshape(b, s, heads * depth)


def fuse_attention(graph: Graph) -> None:
    """Scaled dot-product attention written out (the official BERT's heads: reshape and transpose q, k and v,
    batched q k^T, scale, add the mask term, softmax, times v, transpose and reshape back) becomes one ATTENTION
    op (ONNX Runtime's fused MultiHeadAttention kernel instead of some 20 nodes). Every match is verified: its ops,
    run on random q, k, v and bias, must give what attention gives."""
    users = graph.readers(at_run_time=True)
    graph_outputs = {id(var) for _, var in graph.outputs}
    for softmax in [op for op in graph.ops if op.kind == "Softmax"]:
        match = _match_attention(softmax, users)
        if match is None:
            continue
        q, k, v, bias, out, dims, scale, ops = match
        ops = sorted(set(ops), key=graph.ops.index)
        static = all(x.shape is not None and all(isinstance(d, int) for d in x.shape)
                     for x in (q, k, v, out) + ((bias,) if bias is not None else ()))
        if not static or not _closed(ops, out, users, graph_outputs) or (bias is not None and len(bias.shape) > 4):
            continue
        rng = np.random.default_rng(len(ops))
        probes = {id(x): rng.standard_normal(x.shape).astype(np.float32) for x in (q, k, v)}
        if bias is not None:
            probes[id(bias)] = (rng.standard_normal(bias.shape) * 3).astype(np.float32)
        values = _run(ops, dict(probes))
        if values is None or id(out) not in values:
            continue
        want = _attention_reference(probes[id(q)], probes[id(k)], probes[id(v)],
                                    None if bias is None else probes[id(bias)], dims, scale)
        if values[id(out)].size != want.size or not np.allclose(values[id(out)].reshape(want.shape), want,
                                                                 rtol=1e-4, atol=1e-5):
            continue
        fused = Op(type=ATTENTION, kind=ATTENTION, params={"dims": dims, "scale": scale},
                   inputs=[q, k, v] + ([bias] if bias is not None else []), outputs=[out], index=softmax.index)
        _replace(graph, ops, fused)
        users = graph.readers(at_run_time=True)


_GLOBAL_POOLS = {5: ("MEAN", np.mean), 4: ("MAX", np.max)}  # Reduce modes


def _global_pool_chain(last: Op) -> tuple[Var, list[Op]] | None:
    """``(x, ops)`` when ``last`` is a MEAN/MAX Reduce ending a chain from a 4-D float32 ``x``: one Reduce, or a
    Reduce of the same mode, an optional AxisAddRemove, then ``last`` (which axes they take is checked later)."""
    mode = last.params.get("mode", 0)
    if last.kind != "Reduce" or mode not in _GLOBAL_POOLS:
        return None
    ops = [last]
    var = last.inputs[0]
    if var.producer is not None and var.producer.kind == "AxisAddRemove":
        ops.insert(0, var.producer)
        var = var.producer.inputs[0]
    first = var.producer
    if first is not None and first.kind == "Reduce" and first.params.get("mode", 0) == mode:
        ops.insert(0, first)
        var = first.inputs[0]
    elif len(ops) > 1:
        return None
    if var.dtype != FLOAT32 or var.shape is None or len(var.shape) != 4:
        return None
    return var, ops


def fuse_global_pool(graph: Graph) -> None:
    """A mean (or max) over the spatial axes of NCHW, written as one Reduce or as two (``x.mean(3).mean(2)``, with
    the AxisAddRemove between), becomes one op of kind GLOBAL_POOL: ONNX Runtime runs ``GlobalAveragePool`` in its
    blocked layout straight after the last convolution, where ``ReduceMean`` needs the tensor reordered first."""
    users = graph.readers(at_run_time=True)
    graph_outputs = {id(var) for _, var in graph.outputs}
    fused: set[int] = set()
    for op in list(graph.ops):
        chain = _global_pool_chain(op)
        if chain is None or any(id(o) in fused for o in chain[1]):
            continue
        x, ops = chain
        out = op.outputs[0]
        name, reduce = _GLOBAL_POOLS[op.params.get("mode", 0)]
        probe = _probe(x, len(ops))
        if probe is None or not _closed(ops, out, users, graph_outputs):
            continue
        got, want = _evaluate(ops, x, probe, out), reduce(probe, axis=(2, 3))
        if got is None or got.size != want.size or not np.allclose(got.reshape(-1), want.reshape(-1), rtol=1e-5,
                                                                   atol=1e-6):
            continue
        fused.update(id(o) for o in ops)
        _replace(graph, ops, Op(type=op.type, kind=GLOBAL_POOL, params={"mode": name}, inputs=[x], outputs=[out],
                                index=op.index))
