#!/usr/bin/env python3
"""Record the input-name order that the real MegEngine Lite reports, for ``tests/graph/test_input_order.py``.

Run with the Python that has the real MegEngine 1.13.0, from the repository root::

    "$(../shared/tools/real-megengine)" tools/record_input_order.py [--cases N] [--seed S] [--out PATH]

For each random case the script builds a function of N inputs with random (ASCII) names, combines the inputs into
1..3 outputs with random elementwise ops (every input reaches some output), traces it with
``megengine.jit.trace(symbolic=True, capture_as_const=True)`` and dumps it with ``arg_names``/``output_names``.
It then

* reads the order of the ``Host2DeviceCopy`` operators in the dumped file (the *file order*; the dumper writes
  operators in its own topological order, which is often not the ``arg_names`` order) with this repository's
  pure-Python reader ``megenginelite.format.read_model``, imported under a private package name so that it does
  not clash with the real ``megenginelite``;
* loads the file with the real ``megenginelite.LiteNetwork`` and records ``get_all_input_name()`` and
  ``get_all_output_name()``, and checks that ``get_input_name(i)`` and ``get_model_io_info`` agree.

The result, ``tests/fixtures/input_order_cases.json``, is a list of objects with the keys ``file_order``,
``lite_order``, ``arg_names``, ``output_names`` and ``lite_output_order``.  Output is deterministic for a seed.
This is a development tool; the tests only read the JSON file.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import tempfile
import traceback
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "fixtures" / "input_order_cases.json"

COMMON_NAMES = [
    "data", "input", "inputs", "x", "y", "z", "a", "b", "c", "img", "image", "label", "mask", "input_ids",
    "attention_mask", "token_type_ids", "idx", "im_info", "gt_boxes", "hidden", "state", "feat", "src", "dst",
    "zeta", "alpha", "mid", "beta", "gamma", "delta", "weight", "bias", "scale", "offset", "query", "key", "value",
]  # fmt: skip
IDENT_CHARS = string.ascii_letters + string.digits + "_"
PUNCT = ".-:/#[]"


def _load_local_reader():
    """Import this repository's ``megenginelite.format.read_model`` without shadowing the real package."""
    pkg = types.ModuleType("_mgl_local")
    pkg.__path__ = [str(ROOT / "megenginelite")]
    sys.modules["_mgl_local"] = pkg
    from _mgl_local.format import read_model  # type: ignore[import-not-found]

    return read_model


def random_name(rng: random.Random, index: int) -> str:
    """One input name: a common name, ``arg_<i>``-style, a random identifier or one with punctuation."""
    kind = rng.random()
    if kind < 0.25:
        return rng.choice(COMMON_NAMES)
    if kind < 0.40:
        return f"{rng.choice(['arg', 'input', 'data', 'x', 'in'])}{rng.choice(['_', ''])}{rng.randrange(0, 40)}"
    if kind < 0.85:
        length = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 23, 24, 31, 40])
        return rng.choice(string.ascii_letters) + "".join(rng.choice(IDENT_CHARS) for _ in range(length - 1))
    length = rng.randrange(2, 20)
    return "".join(rng.choice(IDENT_CHARS + PUNCT) for _ in range(length))


def random_names(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct random names."""
    names: list[str] = []
    while len(names) < count:
        name = random_name(rng, len(names))
        if name not in names:
            names.append(name)
    return names


def build_and_dump(rng: random.Random, arg_names: list[str], path: Path) -> list[str]:
    """Trace a random elementwise model over ``arg_names``, dump it to ``path``; return its output names."""
    import megengine as mge
    import megengine.functional as F
    from megengine.jit import trace

    n_in = len(arg_names)
    n_out = rng.randint(1, min(3, n_in))
    # each input goes to one output (so every input is used); outputs get extra inputs at random
    owner = list(range(n_out)) + [rng.randrange(n_out) for _ in range(n_in - n_out)]
    rng.shuffle(owner)
    groups = [[i for i in range(n_in) if owner[i] == o or rng.random() < 0.15] for o in range(n_out)]
    for g in groups:
        rng.shuffle(g)
    ops = [[rng.choice(["add", "mul", "sub", "max"]) for _ in g] for g in groups]

    def combine(op: str, a, b):
        if op == "add":
            return a + b
        if op == "mul":
            return a * b
        if op == "sub":
            return a - b
        return F.maximum(a, b)

    def model(*args):
        outs = []
        for g, gops in zip(groups, ops):
            acc = args[g[0]]
            for idx, op in zip(g[1:], gops[1:]):
                acc = combine(op, acc, args[idx])
            outs.append(acc * (1.5 + len(outs)))  # distinct factor: no two outputs are the same var
        return outs[0] if len(outs) == 1 else tuple(outs)

    traced = trace(symbolic=True, capture_as_const=True)(model)
    traced(*[mge.tensor(np.full((2,), i + 1.0, np.float32)) for i in range(n_in)])
    output_names = random_names(rng, n_out)
    traced.dump(str(path), arg_names=arg_names, output_names=output_names)
    return output_names


def record_case(rng: random.Random, arg_names: list[str], path: Path, read_model) -> dict:
    """Dump one model and collect the orders seen in the file and reported by the real library."""
    import megenginelite as lite

    output_names = build_and_dump(rng, arg_names, path)
    record = read_model(path.read_bytes(), str(path))
    file_order = [op.tensors[0].name for op in record.oprs if op.type == "Host2DeviceCopy"]
    if sorted(file_order) != sorted(arg_names):
        raise RuntimeError(f"file inputs {file_order} differ from arg_names {arg_names}")

    net = lite.LiteNetwork()
    net.load(str(path))
    lite_order = net.get_all_input_name()
    lite_outputs = net.get_all_output_name()
    by_index = [net.get_input_name(i) for i in range(len(lite_order))]
    io_info = lite.get_model_io_info(str(path))
    info_inputs = [io.name for io in io_info.inputs]
    info_outputs = [io.name for io in io_info.outputs]
    if by_index != lite_order or info_inputs != lite_order or info_outputs != lite_outputs:
        raise RuntimeError(
            f"inconsistent orders: all={lite_order} by_index={by_index} io_info={info_inputs} "
            f"outputs={lite_outputs} io_info_outputs={info_outputs}"
        )
    return {
        "file_order": file_order,
        "lite_order": lite_order,
        "arg_names": arg_names,
        "output_names": output_names,
        "lite_output_order": lite_outputs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=240, help="random cases with 1..12 inputs (default 240)")
    parser.add_argument("--large", type=int, default=60, help="extra cases with 13..40 inputs (rehash)")
    parser.add_argument("--seed", type=int, default=20240613)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--verbose", action="store_true", help="print tracebacks of failed cases")
    args = parser.parse_args(argv)

    try:
        import megenginelite  # noqa: F401
    except ImportError:
        raise SystemExit('needs the real MegEngine 1.13.0: run with "$(../shared/tools/real-megengine)"')
    read_model = _load_local_reader()

    rng = random.Random(args.seed)
    name_lists = [["zeta", "alpha", "mid", "beta"], ["b", "a"], ["data"], [f"arg_{i}" for i in range(12)]]
    name_lists += [random_names(rng, 1 + i % 12) for i in range(args.cases)]
    name_lists += [random_names(rng, rng.randint(13, 40)) for _ in range(args.large)]

    cases = []
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, names in enumerate(name_lists):
            path = Path(tmp) / f"case{i}.mge"
            try:
                cases.append(record_case(rng, names, path, read_model))
            except Exception as exc:  # keep going; report at the end
                failures += 1
                print(f"case {i} {names!r}: {type(exc).__name__}: {exc}", file=sys.stderr)
                if args.verbose:
                    traceback.print_exc()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(cases, indent=1) + "\n")
    same_as_file = sum(c["lite_order"] == c["file_order"] for c in cases)
    outputs_kept = sum(c["lite_output_order"] == c["output_names"] for c in cases)
    args_are_file = sum(c["arg_names"] == c["file_order"] for c in cases)
    print(
        f"wrote {len(cases)} cases to {args.out} ({failures} failed); lite order == file order in {same_as_file}, "
        f"arg_names == file order in {args_are_file}, output order kept in {outputs_kept}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
