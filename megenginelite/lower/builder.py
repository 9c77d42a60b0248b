"""Collects ONNX nodes and initializers while the graph is lowered, and assembles the ONNX model."""

from __future__ import annotations

import re
from typing import Callable

import numpy as np

from ..errors import LiteError, LiteMemoryError, UnsupportedOperatorError
from ..format.dtypes import DType, is_bfloat16
from ..graph.dims import RuntimeDimError, Sym
from ..graph.infer import MALFORMED, fail
from ..graph.ir import Graph, Op, Var, live_ops
from .onnx_proto import External, Node, ValueInfo, encode_model, onnx_dtype

OPSET = 18
BFLOAT16_ONNX = 16  # TensorProto.BFLOAT16

LoweringFn = Callable[["Builder", Op], list[str]]
LOWERINGS: dict[str, LoweringFn] = {}
# kind -> the modes / formats its lowering supports (for docs/operators.md); absent when the op has no modes
SUPPORTED_MODES: dict[str, list[str]] = {}
# kinds whose outputs are input elements moved or copied, never computed (reshape, transpose, slice, concat)
MOVES_VALUES: set[str] = set()


# Node outputs that ONNX lets a model leave out (by an empty name): computing them costs time when nothing reads
# them, e.g. LayerNormalization's mean and inverse deviation, which a MegBrain LayerNorm always declares.
OPTIONAL_OUTPUTS = {"LayerNormalization": 1, "BatchNormalization": 1, "Dropout": 1, "MaxPool": 1}


def prune_unused(nodes: list[Node], outputs: set[str]) -> list[Node]:
    """``nodes`` without those whose results nothing reads (lowerings emit every output an op declares), and with
    unread optional outputs left out."""
    read = set(outputs)
    kept: list[Node] = []
    for node in reversed(nodes):
        if not any(out in read for out in node.outputs):
            continue
        first_optional = OPTIONAL_OUTPUTS.get(node.op_type) if not node.domain else None
        if first_optional is not None:
            outs = [out if i < first_optional or out in read else "" for i, out in enumerate(node.outputs)]
            while outs and not outs[-1]:
                outs.pop()
            node.outputs = outs
        read.update(node.inputs)
        kept.append(node)
    return kept[::-1]


def lowering(*kinds: str, modes=None, moves_values: bool = False):
    """Register the function that lowers MegBrain operators of these kinds to ONNX nodes; ``modes`` names the
    modes (or formats) it handles, for the coverage table; ``moves_values``: the op only moves elements (so it
    can move shifted QuantizedS8 values as they are)."""
    def register(fn: LoweringFn) -> LoweringFn:
        for k in kinds:
            if k in LOWERINGS:
                raise ValueError(f"two lowerings for {k}")
            LOWERINGS[k] = fn
            if modes is not None:
                SUPPORTED_MODES[k] = [str(m) for m in modes]
            if moves_values:
                MOVES_VALUES.add(k)
        return fn
    return register


# Node names are "<opr type>#<opr index>:<output var>/<ONNX op>_<n>" (Builder.lower): a message of ONNX Runtime
# ("in node (X)", "node with name 'X'", "node. Name:'X'") or of onnx's checker ("node name: X") naming a node names
# the operator whose lowering emitted it.
_NODE_OWNER = re.compile(r"node(?: name:| with name|\. Name:)? ?[('\"]?\w+#(\d+):")


def owner_op(graph: Graph, message: str) -> Op | None:
    """The operator whose lowering emitted the ONNX node an error message names, if it names one of ours."""
    found = _NODE_OWNER.search(message)
    return next((o for o in graph.ops if o.index == int(found.group(1))), None) if found else None


def rejection_error(graph: Graph, source: str, exc: Exception) -> Exception:
    """What to raise when ONNX Runtime (or onnx's checker) refuses a lowered model: an ``UnsupportedOperatorError``
    naming the MegBrain operator whose lowering produced the rejected node, or (no node named) a ``LiteError`` that
    says it is an internal error."""
    message = " ".join(str(exc).split())
    op = owner_op(graph, message)
    if op is not None:
        return UnsupportedOperatorError(f"{source}: unsupported operator {op.describe()}: its lowering was rejected "
                                        f"({op.kind} on {[str(v.dtype) for v in op.inputs]}): {message}")
    return LiteError(f"{source}: internal error: the lowered model was rejected: {message}")


def onnx_type(dtype: np.dtype) -> int:
    return dtype if isinstance(dtype, int) else onnx_dtype(dtype)


def shifted_dtype(dtype: DType) -> DType:
    """How a QuantizedS8 value is held when shifted: uint8 q + 128, i.e. Quantized8Asymm with zero point 128."""
    return DType("Quantized8Asymm", np.dtype(np.uint8), dtype.scale, (dtype.zero_point or 0) + 128)


def shifted_array(q: np.ndarray) -> np.ndarray:
    """QuantizedS8 values as held shifted (``shifted_dtype``): uint8 q + 128."""
    return (q.astype(np.int16) + 128).astype(np.uint8)


class Builder:
    """Accumulates the ONNX graph: one value name per var, fresh names for intermediate values.

    QuantizedS8 vars may be held shifted (``shifted_dtype``): ONNX Runtime's integer convolution runs uint8
    activations x int8 weights several times faster than int8 x int8 on x86 (u8s8 is the VNNI instruction), so
    the quantized lowerings take and give QuantizedS8 activations as uint8 (``quantized`` / ``bind_quantized``);
    any other lowering reading such a var gets its int8 form (made once, on first use)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.nodes: list[Node] = []
        self.initializers: list[tuple[str, np.ndarray]] = []
        self._names: dict[int, str] = {}
        self._shifted: dict[int, str] = {}  # var id -> its uint8 (q + 128) value
        self._const_cache: dict[tuple, str] = {}
        self._counter = 0
        self._node_prefix = "graph"
        self._owner_tag = ""
        self.external: list[tuple[str, np.ndarray]] = []
        # run-time dims: where each symbol can be read (a tensor's dim or a shape vector's entry), and the ONNX
        # value computed for it (int64, shape (1,))
        self._sym_sources: dict[Sym, tuple[str, str, int]] = {}
        self._sym_values: dict[Sym, str] = {}

    def fresh(self, hint: str = "t") -> str:
        """A new value name; inside an op's lowering it starts with ``o<opr index>.`` (profiles map it back)."""
        self._counter += 1
        return f"{self._owner_tag}{hint}_{self._counter}"

    def name(self, var: Var) -> str:
        """The ONNX value holding ``var``; constants become initializers on first use."""
        if var.id not in self._names and var.id in self._shifted:
            self._names[var.id] = self._move_zero(self._shifted[var.id], np.uint8(128), np.int8(0))
        if var.id not in self._names:
            if var.const is None:
                raise UnsupportedOperatorError(f"var {var.name!r} is used before it is computed")
            self._names[var.id] = self.const(var.const, f"c{var.id}")
        return self._names[var.id]

    def bind(self, var: Var, value: str) -> None:
        self._names[var.id] = value
        entries = [("dim", axis, d) for axis, d in enumerate(var.shape or ())]
        if var.sym_value is not None:
            entries += [("entry", i, d) for i, d in enumerate(var.sym_value.reshape(-1))]
        for where, i, d in entries:
            if isinstance(d, Sym) and d.op is None and d not in self._sym_sources:
                self._sym_sources[d] = (where, value, i)

    def dim(self, d) -> str:
        """An int64 (1,) value holding dim ``d``: a constant, or computed from the tensors that carry the symbol."""
        if not isinstance(d, Sym):
            return self.ints([d])
        if d in self._sym_values:
            return self._sym_values[d]
        if d.op is None:
            if d not in self._sym_sources:
                raise RuntimeDimError(f"the run-time dim {d!r} is needed before a tensor that has it is computed")
            where, value, i = self._sym_sources[d]
            if where == "dim":
                out = self.node("Shape", [value], start=i, end=i + 1)
            else:
                out = self.cast(self.node("Slice", [self.reshape(value, [-1]), self.ints([i]), self.ints([i + 1])]),
                                np.int64)
        elif d.op == "FLOORDIV":
            out = self.node("Div", [self.dim(d.args[0]), self.dim(d.args[1])])
        else:
            onnx_op = {"ADD": "Add", "MUL": "Mul", "MIN": "Min", "MAX": "Max"}[d.op]
            args = [self.dim(a) for a in d.args]
            out = args[0]
            for a in args[1:]:
                out = self.node(onnx_op, [out, a])
        self._sym_values[d] = out
        return out

    def quantized(self, var: Var) -> tuple[str, DType]:
        """The ONNX value of a quantized var and the dtype it is held in there (shifted or its own)."""
        if var.id in self._shifted:
            return self._shifted[var.id], shifted_dtype(var.dtype)
        return self.name(var), var.dtype

    def shifted(self, var: Var) -> tuple[str, DType]:
        """Like ``quantized``, with a QuantizedS8 var shifted first if it is not yet (made once)."""
        if var.dtype.name == "QuantizedS8" and var.id not in self._shifted:
            self._shifted[var.id] = self._move_zero(self.name(var), np.int8(0), np.uint8(128))
        return self.quantized(var)

    def _move_zero(self, value: str, zero, new_zero) -> str:
        """``value`` - ``zero`` + ``new_zero`` in ``new_zero``'s type (int8 <-> uint8 shifted; exact)."""
        one = self.const(np.float32(1))
        return self.node("QuantizeLinear", [self.node("DequantizeLinear", [value, one, self.const(zero)]), one,
                                            self.const(new_zero)])

    def storage(self, dtype: DType) -> DType:
        """The dtype a lowering should produce a value of ``dtype`` in (then ``bind_quantized``)."""
        return shifted_dtype(dtype) if dtype.name == "QuantizedS8" else dtype

    def bind_quantized(self, var: Var, value: str, held: DType) -> None:
        """Bind ``var`` to ``value`` held as ``held`` (its dtype or the shifted one)."""
        if held.np_dtype != var.dtype.np_dtype:
            self._shifted[var.id] = value
        else:
            self.bind(var, value)

    def inp(self, op: Op, i: int) -> str:
        return self.name(op.inputs[i])

    def const(self, value, hint: str = "const", dtype=None) -> str:
        """An initializer holding ``value`` (0-d values stay 0-d); identical small constants are shared."""
        arr = np.asarray(value, dtype=dtype)
        arr = np.ascontiguousarray(arr) if arr.ndim else arr
        key = None
        if arr.size <= 16:
            key = (arr.dtype.str, arr.shape, arr.tobytes())
            if key in self._const_cache:
                return self._const_cache[key]
        name = self.fresh(hint)
        self.initializers.append((name, arr))
        if key is not None:
            self._const_cache[key] = name
        return name

    def ints(self, values, hint: str = "shape") -> str:
        """An int64 vector; entries known only at run time (``Sym``) are computed in the graph."""
        values = list(values)
        if not any(isinstance(v, Sym) for v in values):
            return self.const(np.asarray(values, np.int64), hint)
        parts, run = [], []
        for v in values:
            if isinstance(v, Sym):
                if run:
                    parts.append(self.const(np.asarray(run, np.int64), hint))
                    run = []
                parts.append(self.dim(v))
            else:
                run.append(v)
        if run:
            parts.append(self.const(np.asarray(run, np.int64), hint))
        return self.node("Concat", parts, axis=0)

    def scalar(self, d) -> str:
        """Dim ``d`` as a 0-d int64 value (for Range)."""
        return self.const(np.int64(d)) if not isinstance(d, Sym) else self.node("Squeeze", [self.dim(d)])

    def node(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs) -> str | list[str]:
        """Append one ONNX node; returns its output name (a list when ``n_out`` > 1)."""
        outs = [self.fresh(op_type.lower()) for _ in range(n_out)]
        domain = attrs.pop("domain", "")
        self.nodes.append(Node(op_type, list(inputs), outs, f"{self._node_prefix}/{op_type}_{self._counter}", attrs,
                               domain))
        return outs if n_out > 1 else outs[0]

    def cast(self, value: str, dtype) -> str:
        return self.node("Cast", [value], to=onnx_type(dtype))

    def float32(self, op: Op, i: int) -> str:
        """Input i as float32, for kernels that MegDNN runs in float32 whatever the storage dtype."""
        value = self.inp(op, i)
        return value if op.inputs[i].dtype.np_dtype == np.float32 else self.cast(value, np.float32)

    def from_float32(self, value: str, dtype) -> str:
        """A float32 result stored as ``dtype``; integers are saturated and rounded half away from zero like
        MegDNN's RoundingConverter (std::round)."""
        dtype = np.dtype(dtype)
        if dtype == np.float32:
            return value
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            value = self.node("Clip", [value, self.const(np.float32(info.min)), self.const(np.float32(info.max))])
            half = self.const(np.float32(0.5))
            value = self.node("Where", [self.node("GreaterOrEqual", [value, self.const(np.float32(0))]),
                                        self.node("Floor", [self.node("Add", [value, half])]),
                                        self.node("Ceil", [self.node("Sub", [value, half])])])
        return self.cast(value, dtype)

    def reshape(self, value: str, shape) -> str:
        if all(not isinstance(d, Sym) for d in shape):
            return self.node("Reshape", [value, self.ints(shape)])
        # a run-time dim may be 0, which ONNX reads as "copy the input's dim" unless allowzero (not with -1)
        return self.node("Reshape", [value, self.ints(shape)], allowzero=int(-1 not in shape))

    def lower(self, op: Op) -> None:
        fn = LOWERINGS.get(op.kind)
        if fn is None:
            raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: no lowering for {op.kind!r}")
        self._node_prefix = f"{op.type}#{op.index}:{op.outputs[0].name if op.outputs else ''}"
        self._owner_tag = f"o{op.index}."
        shifted = self._moves_shifted(op)
        saved = {v.id: self._names.get(v.id) for v in shifted}
        try:
            for var in shifted:  # the lowering moves the uint8 values; its outputs are shifted too
                self._names[var.id] = self._shifted[var.id]
            outs = fn(self, op)
            if shifted:
                for var, value in zip(op.outputs, outs):
                    if value is not None and var.dtype == shifted[0].dtype:
                        self._shifted[var.id] = value
                outs = [None if var.dtype == shifted[0].dtype else value for var, value in zip(op.outputs, outs)]
        except RuntimeDimError as exc:  # a lowering that needs this dim as a number
            raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: {exc}") from None
        except MemoryError as exc:  # tables sized by a huge declared shape (e.g. a corrupted file)
            raise LiteMemoryError(f"{op.describe()}: lowering needs more memory than this process may use: "
                                  f"{exc}") from None
        except MALFORMED as exc:  # an op that is not what its kind promises (corrupted params or dtypes)
            raise fail(op, f"malformed operator ({len(op.inputs)} inputs, params {op.params}) cannot be lowered: "
                           f"{type(exc).__name__}: {exc}") from None
        finally:
            self._owner_tag = ""
            for vid, value in saved.items():
                if value is None:
                    self._names.pop(vid, None)
                else:
                    self._names[vid] = value
        for var, value in zip(op.outputs, outs):
            if value is not None:
                if is_bfloat16(var.dtype):
                    value = self.round_bfloat16(value)
                self.bind(var, value)

    def _moves_shifted(self, op: Op) -> list[Var]:
        """The QuantizedS8 inputs of a value-moving op whose quantized inputs are all shifted and of the output's
        dtype (the op then runs on the uint8 values); empty otherwise."""
        if op.kind not in MOVES_VALUES or not op.outputs or op.outputs[0].dtype is None:
            return []
        quantized = [v for v in op.inputs if v.dtype is not None and v.dtype.quantized]
        if not quantized or any(v.dtype != op.outputs[0].dtype or v.id not in self._shifted for v in quantized):
            return []
        return quantized

    def round_bfloat16(self, value: str) -> str:
        """A float32 value rounded to bfloat16 precision and carried on as float32.

        BFloat16 vars (``format.dtypes.BFLOAT16``) are float32 in the ONNX graph, so that every lowering works
        on them unchanged (numpy and most ONNX Runtime CPU kernels have no bfloat16); MegDNN rounds each result
        it stores as bfloat16, so the builder re-rounds every BFloat16 op output here: ``Cast`` to BFLOAT16 and
        back, which ONNX Runtime rounds to nearest, ties to even, like MegDNN's ``float2bfloat16``."""
        return self.cast(self.cast(value, BFLOAT16_ONNX), np.float32)

    def build(self, name: str = "megengine", expose_vars: bool = False, external_min_bytes: int | None = None) -> bytes:
        """Lower every non-constant op, wire graph inputs and outputs, and return the serialized ONNX model;
        the graph must be inferred. ``expose_vars`` also makes every computed var an output named ``var<id>``.

        With ``external_min_bytes``, initializers of at least that size are left out of the bytes and listed in
        ``self.external`` instead, for ONNX Runtime to use in place (no copy of the weights in the model)."""
        inputs = []
        for var in self.graph.inputs:
            self.bind(var, var.name)
            if is_bfloat16(var.dtype):  # a BFloat16 input is fed as float32: round it like the original would
                self._node_prefix = f"input:{var.name}"
                self._names[var.id] = self.round_bfloat16(var.name)
            inputs.append(ValueInfo(var.name, var.dtype.np_dtype, tuple(var.shape)))
        live = live_ops(self.graph)
        for op in self.graph.ops:
            if op in live and not all(v.is_const for v in op.outputs):
                self.lower(op)
        outputs = []
        taken = {v.name for v in self.graph.inputs}
        for out_name, var in self.graph.outputs:
            name = out_name if out_name not in taken else self.fresh(out_name)
            taken.add(name)
            self._node_prefix = f"output:{out_name}"
            self.nodes.append(Node("Identity", [self.name(var)], [name], f"output/{name}"))
            outputs.append(ValueInfo(name, var.dtype.np_dtype, tuple(var.shape)))
        if expose_vars:
            for op in self.graph.ops:
                for var in op.outputs:
                    if (var.id in self._names or var.id in self._shifted) and not var.is_const \
                            and f"var{var.id}" not in taken:
                        self.nodes.append(Node("Identity", [self.name(var)], [f"var{var.id}"],
                                               f"expose/var{var.id}"))
                        outputs.append(ValueInfo(f"var{var.id}", var.dtype.np_dtype, tuple(var.shape)))
        self.nodes = prune_unused(self.nodes, {o.name for o in outputs})
        domains = sorted({n.domain for n in self.nodes if n.domain})  # e.g. com.microsoft for ORT contrib ops
        read = {name for n in self.nodes for name in n.inputs}
        initializers: list = [(n, a) for n, a in self.initializers if n in read]
        if external_min_bytes is not None:
            self.external = [(n, a) for n, a in initializers if a.nbytes >= external_min_bytes]
            initializers = [(n, External(a) if a.nbytes >= external_min_bytes else a) for n, a in initializers]
        return encode_model(self.nodes, initializers, inputs, outputs,
                            opsets=[("", OPSET)] + [(d, 1) for d in domains], name=name)

