"""Lowerings of the kinds that graph/fusions.py makes: from written-out GELU formulas, ONNX Runtime's fused
kernels (com.microsoft ``FastGelu`` for the tanh form, ``Gelu`` for the erf form), which also take a bias add
into themselves (its BiasGelu fusion); from a matrix product and its bias, one Gemm; from attention written out,
com.microsoft ``MultiHeadAttention``; from a spatial mean (max), ``GlobalAveragePool`` (``GlobalMaxPool``)."""

from __future__ import annotations

from ..graph.fusions import ATTENTION, GELU_ERF, GELU_TANH, GLOBAL_POOL, MATMUL_BIAS
from ..graph.ir import Op
from ..lower.builder import Builder, lowering


@lowering(GELU_TANH)
def lower_gelu_tanh(b: Builder, op: Op) -> list[str]:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return [b.node("FastGelu", [b.inp(op, 0)], domain="com.microsoft")]


@lowering(GELU_ERF)
def lower_gelu_erf(b: Builder, op: Op) -> list[str]:
    """0.5 x (1 + erf(x / sqrt 2))."""
    return [b.node("Gelu", [b.inp(op, 0)], domain="com.microsoft")]


@lowering(MATMUL_BIAS)
def lower_matmul_bias(b: Builder, op: Op) -> list[str]:
    """A @ B + bias (one value per column), with MatrixMul's optional transposes."""
    return [b.node("Gemm", [b.inp(op, 0), b.inp(op, 1), b.inp(op, 2)], transA=int(op.params.get("transposeA", False)),
                   transB=int(op.params.get("transposeB", False)))]


@lowering(ATTENTION)
def lower_attention(b: Builder, op: Op) -> list[str]:
    """softmax(q k^T * scale + bias) v over H heads of q, k, v (B, S|T, H*D), the bias (the mask term) broadcast
    to (B|1, H|1, S, T): the shapes MultiHeadAttention takes."""
    batch, length, kv_length, heads, depth = op.params["dims"]
    inputs = [b.reshape(b.inp(op, i), (batch, n, heads * depth)) if op.inputs[i].shape != (batch, n, heads * depth)
              else b.inp(op, i) for i, n in ((0, length), (1, kv_length), (2, kv_length))]
    if len(op.inputs) == 4:
        shape = op.inputs[3].shape
        shape = (1,) * (4 - len(shape)) + tuple(shape)
        bias = b.reshape(b.inp(op, 3), shape) if len(op.inputs[3].shape) != 4 else b.inp(op, 3)
        if shape[2:] != (length, kv_length):
            bias = b.node("Expand", [bias, b.ints((*shape[:2], length, kv_length))])
        inputs += ["", "", bias]
    out = b.node("MultiHeadAttention", inputs, domain="com.microsoft", num_heads=heads, scale=float(op.params["scale"]))
    return [out if op.outputs[0].shape == (batch, length, heads * depth) else b.reshape(out, op.outputs[0].shape)]


@lowering(GLOBAL_POOL, modes=["MEAN", "MAX"])
def lower_global_pool(b: Builder, op: Op) -> list[str]:
    """The mean (max) over H and W, (N, C, 1, 1), reshaped to the shape the file's chain of reductions gives."""
    pooled = b.node({"MEAN": "GlobalAveragePool", "MAX": "GlobalMaxPool"}[op.params["mode"]], [b.inp(op, 0)])
    n, c = op.inputs[0].shape[:2]
    return [pooled if tuple(op.outputs[0].shape) == (n, c, 1, 1) else b.reshape(pooled, op.outputs[0].shape)]
