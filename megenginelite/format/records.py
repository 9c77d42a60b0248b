"""Plain records a model file decodes into; the graph layer builds its IR from these."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .dtypes import DType


@dataclass
class TensorRecord:
    """A tensor stored in an operator: graph input description (no data) or a constant value."""

    name: str
    shape: tuple[int, ...]
    dtype: DType
    data: np.ndarray | None = None


@dataclass
class OprRecord:
    """One operator as written in the file."""

    type: str
    inputs: list[int]
    outputs: list[int]
    param_name: str | None = None
    params: dict = field(default_factory=dict)
    tensors: list[TensorRecord] = field(default_factory=list)
    output_dtype: DType | None = None
    name: str | None = None


@dataclass
class ModelRecord:
    """A decoded model file: operators in topological order, var names and the graph outputs."""

    source: str
    format: str
    model_version: int
    mge_version: int
    oprs: list[OprRecord]
    var_names: dict[int, str]
    var_shapes: dict[int, tuple[int, ...]]
    outputs: list[tuple[int, str]]
    optimize_options: int = 0
    user_info: bytes | None = None
    extra: dict = field(default_factory=dict)
