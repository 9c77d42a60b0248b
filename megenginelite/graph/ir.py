"""The graph IR: vars with dtype, shape (dims known only at run time as ``dims.Sym``) and (when known) a constant
value; operators in topological order."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..format.dtypes import DType
from .dims import format_dim, is_static

# A shape: ints, and ``Sym`` for dims known only at run time (CondTake's length, a slice ending at a computed value).
Shape = tuple  # tuple[int | Sym, ...]


def shape_before_run(shape: Shape) -> tuple[int, ...]:
    """The shape an output's layout shows before a run: empty when a dim is known only at run time (as the
    original reports it)."""
    return shape if is_static(shape) else ()


@dataclass(eq=False)
class Var:
    """One tensor of the graph. ``const`` holds its value when it is known before running; ``sym_value`` (an
    object array of ints and ``Sym``) the value of a small integer vector whose entries are partly known only at
    run time (a shape computed from a run-time-sized tensor)."""

    id: int
    name: str
    dtype: DType | None = None
    shape: Shape | None = None
    const: np.ndarray | None = None
    producer: Op | None = None
    sym_value: np.ndarray | None = None

    @property
    def is_const(self) -> bool:
        return self.const is not None

    def __repr__(self) -> str:
        shape = "?" if self.shape is None else "x".join(map(format_dim, self.shape)) or "scalar"
        return f"<var{self.id} {self.name!r} {self.dtype} {shape}{' const' if self.is_const else ''}>"


@dataclass(eq=False)
class Op:
    """One MegBrain operator. ``type`` is the file's type name; ``kind`` the canonical name it lowers by."""

    type: str
    kind: str
    params: dict
    inputs: list[Var]
    outputs: list[Var]
    output_dtype: DType | None = None
    index: int = 0

    def describe(self) -> str:
        out = self.outputs[0].name if self.outputs else "?"
        return f"{self.type} (opr #{self.index}, output var {out!r})"


@dataclass
class Graph:
    """A MegBrain graph: inputs (Host2DeviceCopy vars), computing ops, and named outputs."""

    source: str
    inputs: list[Var]
    ops: list[Op]
    outputs: list[tuple[str, Var]]
    vars: dict[int, Var] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def input_names(self) -> list[str]:
        return [v.name for v in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [name for name, _ in self.outputs]

    def input(self, name: str) -> Var:
        for v in self.inputs:
            if v.name == name:
                return v
        raise KeyError(name)

    def new_const(self, name: str, dtype: DType, value: np.ndarray) -> Var:
        """A new constant var of this graph (for the rewrites)."""
        var = Var(max(self.vars) + 1, name, dtype, value.shape, value)
        self.vars[var.id] = var
        return var

    def readers(self, at_run_time: bool = False) -> dict[int, list[Op]]:
        """The ops reading each var (keyed by the var's id; an op reading a var twice is listed twice).
        ``at_run_time`` leaves out ops whose outputs are all constants: they were folded (GetVarShape reads only a
        shape), so a rewrite that removes the var does not disturb them."""
        readers: dict[int, list[Op]] = {}
        for op in self.ops:
            if at_run_time and op.outputs and all(var.is_const for var in op.outputs):
                continue
            for var in op.inputs:
                readers.setdefault(id(var), []).append(op)
        return readers


def live_ops(graph: Graph, through_constants: bool = False) -> set[Op]:
    """Ops whose results reach a graph output (dead-code elimination). By default the walk stops at constant
    vars (their producers were folded and need not run); ``through_constants`` keeps those producers too."""
    live: set[Op] = set()
    stack = [var for _, var in graph.outputs]
    seen: set[int] = set()
    while stack:
        var = stack.pop()
        if id(var) in seen or (var.is_const and not through_constants):
            continue
        seen.add(id(var))
        if var.producer is not None and var.producer not in live:
            live.add(var.producer)
            stack.extend(var.producer.inputs)
    return live
