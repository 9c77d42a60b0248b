"""Lowerings of the kinds that graph/fusions.py makes from written-out GELU formulas: ONNX Runtime's fused
kernels (com.microsoft ``FastGelu`` for the tanh form, ``Gelu`` for the erf form), which also take a bias add
into themselves (its BiasGelu fusion)."""

from __future__ import annotations

from ..graph.fusions import GELU_ERF, GELU_TANH
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
