"""What a new input shape costs: the first forward at a new batch size, later ones, and switching back and forth.

    python bench/bench_new_shape.py tests/fixtures/shufflenet_v2.mge --real-python "$(../shared/tools/real-megengine)"

Each runtime runs in a fresh process (ours with this Python, the real library with the given Python 3.10): load,
forward at the file's shape, then the first forward at ``--batch`` (ours compiles a plan for it), the median of
later forwards at that batch, and the median forward over alternating batches (ours keeps one plan per shape,
so switching back costs nothing; the number of plans compiled is reported).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench_startup import run_child
from machine import describe

CHILD = r"""
import json, sys, time
import numpy as np
from megenginelite import LiteNetwork
path, batch, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
net = LiteNetwork()
net.load(path)
name = net.get_all_input_name()[0]
tensor = net.get_io_tensor(name)
shape = list(tensor.layout.shapes)
inputs = {n: np.random.RandomState(0).uniform(0, 1, [n] + shape[1:]).astype(np.float32) for n in (shape[0], batch)}

def forward(n):
    tensor.set_data_by_copy(inputs[n])
    start = time.perf_counter()
    net.forward()
    net.wait()
    return time.perf_counter() - start

forward(shape[0])
result = {"first_new_s": forward(batch)}
result["later_new_s"] = float(np.median([forward(batch) for _ in range(repeats)]))
result["same_shape_base_s"] = float(np.median([forward(shape[0]) for _ in range(repeats)]))
result["alternating_s"] = float(np.median([forward(batch if i % 2 else shape[0]) for i in range(2 * repeats)]))
model = getattr(net, "_model", None)
result["plans"] = len(model._plans) if model is not None and hasattr(model, "_plans") else None
print(json.dumps(result))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--real-python")
    args = parser.parse_args()
    print(describe(), flush=True)
    model = str(Path(args.model).resolve())
    runtimes = {"ours": (sys.executable, True)}
    if args.real_python:
        runtimes["real_lite"] = (args.real_python, False)
    print(f"model {args.model}, new batch {args.batch}, medians of {args.repeats} forwards")
    for name, (python, ours) in runtimes.items():
        r = run_child(python, CHILD, [model, str(args.batch), str(args.repeats)], ours)
        plans = f", plans compiled {r['plans']}" if r["plans"] is not None else ""
        print(f"{name:10s} first forward at the new shape {r['first_new_s'] * 1e3:.1f} ms, later "
              f"{r['later_new_s'] * 1e3:.1f} ms; alternating with the old shape {r['alternating_s'] * 1e3:.1f} ms "
              f"per forward (old shape alone {r['same_shape_base_s'] * 1e3:.1f} ms){plans}")


if __name__ == "__main__":
    main()
