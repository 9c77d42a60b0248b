"""Cold start and memory: a fresh process from ``import megenginelite`` through ``load`` to the first output.

    python bench/bench_startup.py tests/fixtures/shufflenet_v2.mge --real-python "$(../shared/tools/real-megengine)"

Each run is a new process (ours with this Python, the real library with the given Python 3.10); runs alternate,
after one unmeasured run of each that warms the page cache and writes the bytecode caches an installed package
has (children run with ``PYTHONDONTWRITEBYTECODE`` removed, so neither side compiles its sources every time).
The child reports its own wall times (import, load, first forward) and its peak RSS (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from machine import describe

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
start = time.perf_counter()
import numpy as np
from megenginelite import LiteNetwork
imported = time.perf_counter()
net = LiteNetwork()
net.load(sys.argv[1])
loaded = time.perf_counter()
for name in net.get_all_input_name():
    tensor = net.get_io_tensor(name)
    tensor.set_data_by_copy(np.zeros(tensor.layout.shapes, tensor.layout.dtype))
net.forward()
net.wait()
net.get_io_tensor(net.get_all_output_name()[0]).to_numpy()
done = time.perf_counter()
print(json.dumps({"import_s": imported - start, "load_s": loaded - imported, "first_forward_s": done - loaded,
                  "total_s": done - start, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_child(python: str, script: str, args: list[str], ours: bool) -> dict:
    """Run ``script`` in a fresh process of ``python``; the JSON its last output line holds. The real library's
    interpreter runs with "-I", so that it does not import our package from the working directory."""
    cmd = [python] + ([] if ours else ["-I"]) + ["-c", script] + args
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT if ours else "/", timeout=600, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"child failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--real-python")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(describe(), flush=True)
    model = str(Path(args.model).resolve())
    runtimes = {"ours": (sys.executable, True)}
    if args.real_python:
        runtimes["real_lite"] = (args.real_python, False)
    samples: dict[str, list[dict]] = {name: [] for name in runtimes}
    for python, ours in runtimes.values():
        run_child(python, CHILD, [model], ours)
    for _ in range(args.runs):
        for name, (python, ours) in runtimes.items():
            samples[name].append(run_child(python, CHILD, [model], ours))
    summary = {name: {key: float(np.median([s[key] for s in runs])) for key in runs[0]}
               for name, runs in samples.items()}
    if "real_lite" in summary:
        summary["ratios"] = {key: summary["ours"][key] / summary["real_lite"][key] for key in ("total_s", "peak_rss_mb")}
    if args.json:
        print(json.dumps(summary, indent=1))
        return
    print(f"model {args.model}, median of {args.runs} fresh processes each")
    for name in runtimes:
        s = summary[name]
        print(f"{name:10s} import {s['import_s']:.3f}s  load {s['load_s']:.3f}s  first forward {s['first_forward_s']:.3f}s  "
              f"total {s['total_s']:.3f}s  peak RSS {s['peak_rss_mb']:.0f} MB")
    if "ratios" in summary:
        print(f"ours/real_lite: cold start {summary['ratios']['total_s']:.2f}x, peak RSS {summary['ratios']['peak_rss_mb']:.2f}x")


if __name__ == "__main__":
    main()
