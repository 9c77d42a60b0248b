"""Lowering layer: MegBrain graph IR -> ONNX model, one registered function per operator kind (registered by
``megenginelite.ops``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..graph.ir import Graph
from .builder import LOWERINGS, OPSET, Builder, lowering

if TYPE_CHECKING:
    import numpy as np
    import onnx

__all__ = ["to_onnx", "to_onnx_bytes", "to_onnx_external", "LOWERINGS", "OPSET", "lowering"]


def to_onnx_bytes(graph: Graph, name: str = "megengine", expose_vars: bool = False) -> bytes:
    """The serialized ONNX model computing ``graph`` (written without the ``onnx`` package); the graph must
    already carry inferred shapes and dtypes. With ``expose_vars`` every computed var is also an output,
    named ``var<id>``."""
    return Builder(graph).build(name, expose_vars)


def to_onnx_external(graph: Graph, expose_vars: bool = False,
                     min_bytes: int = 1024) -> tuple[bytes, list[tuple[str, "np.ndarray"]], frozenset[str]]:
    """Like ``to_onnx_bytes``, but initializers of ``min_bytes`` or more are returned beside the model instead of
    inside it, for ``SessionOptions.add_external_initializers`` (ONNX Runtime then uses them without a copy).
    Also returns the node types the model uses (``domain:op_type``, domain empty for standard ONNX)."""
    builder = Builder(graph)
    data = builder.build("megengine", expose_vars, external_min_bytes=min_bytes)
    return data, builder.external, frozenset(f"{n.domain}:{n.op_type}" for n in builder.nodes)


def to_onnx(graph: Graph, name: str = "megengine", expose_vars: bool = False) -> "onnx.ModelProto":
    """``to_onnx_bytes`` parsed into an ``onnx.ModelProto`` (imports ``onnx``)."""
    import onnx

    return onnx.load_from_string(to_onnx_bytes(graph, name, expose_vars))
