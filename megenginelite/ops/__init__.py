"""The operators, one module per family: each operator's param table, shape rule, fold rule and ONNX lowering
(with the modes it declares) side by side. Importing this package registers them all into the registries of
``format.params``, ``graph.infer`` and ``lower.builder``; ``runtime.session`` imports it before compiling."""

from __future__ import annotations

from . import conv, elemwise, fused, image, index, linalg, norm, pooling, reduce, rnn, shape, vision  # noqa: F401
