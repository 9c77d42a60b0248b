"""Graph layer: the IR built from a decoded file, static inference and constant folding."""

from __future__ import annotations

# register the shape and fold rules
from . import infer_conv, infer_image, infer_index, infer_linalg, infer_nn, infer_rnn, infer_vision  # noqa: F401
from .build import build_graph, canonical_kind
from .infer import infer_graph
from .ir import Graph, Op, Var

__all__ = ["build_graph", "canonical_kind", "infer_graph", "Graph", "Op", "Var"]
