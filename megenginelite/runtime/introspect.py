"""Readable views of a run: per-operator profiles mapped back to MegBrain operators, and IO dumps."""

from __future__ import annotations

import json
import os
import re
import struct
from collections import defaultdict

import numpy as np

from ..errors import LiteError
from ..graph.dims import format_dim
from ..graph.ir import Graph, Var

# Our ONNX node names start with "<file op type>#<opr index>:<output var name>/", and the values an op's lowering
# creates start with "o<opr index>." (see lower/builder.py); ONNX Runtime names the nodes it makes after either.
_NODE_OWNER = re.compile(r"^(?:[^#/]+#(?P<index>\d+):|o(?P<value_index>\d+)\.)")
CPU_COMP_NODE = 'CompNode("cpu0:0" from "xpux:0")'


def _kernel_events(ort_trace: list[dict]) -> list[dict]:
    return [e for e in ort_trace if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]


def onnx_profile_report(ort_trace: list[dict]) -> dict:
    """The profile of an ONNX model: kernel times per ONNX node, slowest first."""
    per_node: dict[str, float] = defaultdict(float)
    per_type: dict[str, float] = defaultdict(float)
    for event in _kernel_events(ort_trace):
        per_node[event["name"][:-len("_kernel_time")]] += event["dur"] / 1e3
        per_type[event.get("args", {}).get("op_name", "?")] += event["dur"] / 1e3
    return {"summary": {"total_ms": sum(per_node.values()),
                        "by_type_ms": dict(sorted(per_type.items(), key=lambda kv: -kv[1])),
                        "by_operator": [{"opr": n, "time_ms": t} for n, t in
                                        sorted(per_node.items(), key=lambda kv: -kv[1])]}}


def profile_report(graph: Graph, ort_trace: list[dict]) -> dict:
    """A MegEngine-style profile (``profiler`` and ``graph_exec`` sections) from ONNX Runtime's node trace.

    Each ONNX kernel's time is credited to the MegBrain operator it was lowered from; kernels ONNX Runtime
    created by fusing nodes are credited to the operator whose node they kept the name of.
    """
    ops = {op.index: op for op in graph.ops}
    host: dict[str, dict] = {}
    device: dict[str, dict] = {}
    per_type: dict[str, float] = defaultdict(float)
    unmapped = 0.0
    events = _kernel_events(ort_trace)
    origin = min((e["ts"] for e in events), default=0)
    for event in events:
        match = _NODE_OWNER.match(event["name"])
        start, end = (event["ts"] - origin) / 1e6, (event["ts"] - origin + event["dur"]) / 1e6
        key = match and (match["index"] or match["value_index"])
        if not key or int(key) not in ops:
            unmapped += event["dur"] / 1e6
            continue
        span = host.setdefault(key, {"main": {"start": start, "kern": start, "end": end}})["main"]
        span["start"], span["end"] = min(span["start"], start), max(span["end"], end)
        device[key] = {CPU_COMP_NODE: dict(span)}
        per_type[ops[int(key)].type] += event["dur"] / 1e6

    def opr_time(key: str) -> float:
        span = host[key]["main"]
        return span["end"] - span["start"]

    total = sum(per_type.values()) + unmapped
    operators = {str(op.index): {"type": op.type, "name": op.outputs[0].name if op.outputs else op.type,
                                 "input": [str(v.id) for v in op.inputs], "output": [str(v.id) for v in op.outputs]}
                 for op in graph.ops}
    variables = {str(v.id): _var_info(v) for v in graph.vars.values()}
    table = sorted(({"opr": operators[k]["name"], "type": operators[k]["type"], "id": int(k),
                     "time_ms": opr_time(k) * 1e3} for k in host), key=lambda r: -r["time_ms"])
    return {
        "profiler": {"opr_internal_pf": {}, "host": host, "device": device,
                     "opr_footprint": {str(op.index): {"out_shapes": [_shape(v) for v in op.outputs],
                                                       "in_shapes": [_shape(v) for v in op.inputs]}
                                       for op in graph.ops}},
        "graph_exec": {"comp_seq": [op.index for op in graph.ops], "operator": operators, "var": variables},
        "summary": {
            "total_ms": total * 1e3,
            "unattributed_ms": unmapped * 1e3,
            "by_type_ms": dict(sorted(((t, s * 1e3) for t, s in per_type.items()), key=lambda kv: -kv[1])),
            "by_operator": table,
        },
    }


def _shape(var: Var) -> list:
    """The inferred shape; a dim known only at run time as its symbol (``"n3"``): the plan serves every length."""
    return [d if isinstance(d, int) else format_dim(d) for d in var.shape or ()]


def _var_info(var: Var) -> dict:
    return {"name": var.name, "shape": _shape(var), "dtype": str(var.dtype),
            "owner_opr": var.producer.index if var.producer else None}


def write_profile(path: str, graph: Graph | None, ort_trace_file: str) -> None:
    """Write the MegEngine-style profile to ``path`` and ONNX Runtime's Chrome trace next to it."""
    with open(ort_trace_file) as f:
        trace = json.load(f)
    report = profile_report(graph, trace) if graph is not None else onnx_profile_report(trace)
    try:
        with open(path, "w") as f:
            json.dump(report, f, indent=1)
        stem = path[:-5] if path.endswith(".json") else path
        os.replace(ort_trace_file, f"{stem}.trace.json")
    except OSError as exc:
        raise LiteError(f"failed to write the profile {path}: {exc}") from exc


def _value_stats(arr: np.ndarray) -> str:
    flat = arr.reshape(-1)
    head = ", ".join(f"{v:.4g}" if np.issubdtype(flat.dtype, np.floating) else str(v) for v in flat[:5])
    if flat.size == 0:
        return "[]"
    f64 = flat.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf values (e.g. -inf masks) give nan statistics
        return (f"[{head}{', ...' if flat.size > 5 else ''}] min={f64.min():.4g} max={f64.max():.4g} "
                f"mean={f64.mean():.4g} l2={np.sqrt(np.mean(f64 * f64)):.4g} sd={f64.std():.4g}")


def var_values(graph: Graph, exposed: dict[str, np.ndarray], feeds: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
    """Every var's value after a run: inputs, constants and the exposed computed vars."""
    values = {v.id: feeds[v.name] for v in graph.inputs if v.name in feeds}
    for var in graph.vars.values():
        if var.is_const:
            values[var.id] = var.const
        elif f"var{var.id}" in exposed:
            values[var.id] = exposed[f"var{var.id}"]
    return values


def write_txt_dump(path: str, graph: Graph, values: dict[int, np.ndarray]) -> None:
    """Append one record per operator output: name, layout, owner, the inputs it came from, and its values."""
    lines = []
    for op in graph.ops:
        for var in op.outputs:
            if var.id not in values:
                continue
            arr = values[var.id]
            lines.append(f"var{var.id} produced: name={var.name} layout={{{','.join(map(str, arr.shape))} "
                         f"{var.dtype}}} owner_opr={op.type} opr{op.index}")
            lines.append(" deps:")
            for i, dep in enumerate(op.inputs):
                if dep.id in values:
                    lines.append(f"  [i{i}]var{dep.id}: {_value_stats(np.asarray(values[dep.id]))}")
            lines.append(f" val: {_value_stats(arr)}")
    try:
        with open(path, "a") as f:
            f.write("\n".join(lines) + "\n")
    except OSError as exc:
        raise LiteError(f"failed to open {path}: {exc}") from exc


# the real library's enum values; its quantized (parameterized) dtypes count from 100000
_BIN_DTYPES = {"Float32": 0, "Uint8": 1, "Int8": 2, "Int16": 3, "Int32": 4, "Float16": 9, "Bool": 18, "Uint16": 19,
               "Quantized8Asymm": 100000, "QuantizedS32": 100001, "QuantizedS8": 100002}


def write_bin_dump(directory: str, graph: Graph, values: dict[int, np.ndarray]) -> None:
    """One file per operator output, named by its 6-hex-digit var id: a header then the raw values.

    Header: u32 name length, u32 dtype enum, u32 max ndim (7), u32 shape[7]; then the name text.
    """
    if not os.path.isdir(directory):
        raise LiteError(f"failed to open {directory}: not a directory")
    for op in graph.ops:
        for var in op.outputs:
            if var.id not in values:
                continue
            arr = np.ascontiguousarray(values[var.id])
            name = f"var={{id:{var.id}, layout:{list(arr.shape)}, {var.dtype}, owner:{op.type}, name:{var.name}}}"
            shape = list(arr.shape) + [0] * (7 - arr.ndim)
            header = struct.pack("<3I7I", len(name.encode()), _BIN_DTYPES.get(var.dtype.name, 0), 7, *shape)
            with open(os.path.join(directory, f"{var.id:06x}"), "wb") as f:
                f.write(header + name.encode() + arr.tobytes())
