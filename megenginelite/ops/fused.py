"""Lowerings of the kinds that graph/fusions.py makes: from written-out GELU formulas, ONNX Runtime's fused
kernels (com.microsoft ``FastGelu`` for the tanh form, ``Gelu`` for the erf form), which also take a bias add
into themselves (its BiasGelu fusion); from a matrix product and its bias, one Gemm."""

from __future__ import annotations

from ..graph.fusions import GELU_ERF, GELU_TANH, MATMUL_BIAS
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
