"""Graph layer: the IR built from a decoded file, static inference and constant folding (the rules themselves are
registered by ``megenginelite.ops``)."""

from __future__ import annotations

from .build import build_graph, canonical_kind
from .infer import infer_graph
from .ir import Graph, Op, Var

__all__ = ["build_graph", "canonical_kind", "infer_graph", "Graph", "Op", "Var"]
