"""Lowering layer: MegBrain graph IR -> ONNX model, one registered function per operator kind."""

from __future__ import annotations

import onnx

from ..graph.ir import Graph
from . import elemwise, image, index, linalg, nn, norm, shape, vision  # noqa: F401  (register the lowerings)
from .builder import LOWERINGS, OPSET, Builder, lowering

__all__ = ["to_onnx", "LOWERINGS", "OPSET", "lowering"]


def to_onnx(graph: Graph, name: str = "megengine", expose_vars: bool = False) -> onnx.ModelProto:
    """The ONNX model computing ``graph``; the graph must already carry inferred shapes and dtypes.

    With ``expose_vars`` every computed var is also an output, named ``var<id>``.
    """
    return Builder(graph).build(name, expose_vars)
