"""Steady-state latency of one model: ours vs plain ONNX Runtime vs (optionally) the real megenginelite.

All runtimes are measured in one run, alternating in rounds so that machine noise hits them alike:

    python bench/bench_latency.py tests/fixtures/shufflenet_v2.mge --real-python "$(../shared/tools/real-megengine)"

"plain ONNX Runtime" runs our exported ONNX graph with default session options (only the thread count set),
through ``InferenceSession.run``: what a user converting the model to ONNX by hand would get. The real library
runs in a Python 3.10 worker process (MegEngine 1.13 has no wheel for newer Pythons) driven over a pipe.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import describe  # noqa: E402  (bench/ is the script's own folder)

# The worker runs inside the real MegEngine's Python: it loads the model and answers "N" with N latencies.
REAL_WORKER = r"""
import json, sys, time
import numpy as np
from megenginelite import LiteNetwork
path, threads, feeds, recorded = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
net = LiteNetwork()
net.threads_number = threads
net.load(path)
for name, (shape, dtype) in feeds.items():
    value = np.random.RandomState(0).uniform(0, 1, shape).astype(dtype)
    if recorded:
        value = np.load(recorded[0])[recorded[1] + name]
    net.get_io_tensor(name).set_data_by_copy(value)
print("ready", flush=True)
for line in sys.stdin:
    times = []
    for _ in range(int(line)):
        start = time.perf_counter(); net.forward(); net.wait(); times.append(time.perf_counter() - start)
    print(json.dumps(times), flush=True)
"""


class RealWorker:
    """The real megenginelite in a child process; ``run(n)`` returns n forward latencies in seconds."""

    def __init__(self, python: str, model: str, threads: int, feeds: dict, recorded: list | None = None):
        self.proc = subprocess.Popen([python, "-I", "-c", REAL_WORKER, model, str(threads), json.dumps(feeds),
                                      json.dumps(recorded or [])],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        for line in self.proc.stdout:  # MegEngine prints banners on stdout before the worker is ready
            if line.strip() == "ready":
                break
        else:
            raise RuntimeError("the real megenginelite worker failed to start")

    def run(self, n: int) -> list[float]:
        self.proc.send_signal(signal.SIGCONT)
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        times = json.loads(self.proc.stdout.readline())
        # stopped between its rounds: idle pool threads that keep spinning must not take a core from the others
        self.proc.send_signal(signal.SIGSTOP)
        return times

    def close(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def input_arrays(feeds: dict, recorded: list | None = None) -> dict[str, np.ndarray]:
    """uniform [0, 1) inputs, or the arrays ``<prefix><name>`` of a recorded ``.npz`` (``recorded`` = [path,
    prefix]): a detector's input decides how much work its run-time-sized part does."""
    if recorded:
        data = np.load(recorded[0])
        return {name: data[recorded[1] + name] for name in feeds}
    return {name: np.random.RandomState(0).uniform(0, 1, shape).astype(dtype) for name, (shape, dtype) in feeds.items()}


def ours_runner(model: str, threads: int, feeds: dict, recorded: list | None = None):
    from megenginelite import LiteNetwork

    net = LiteNetwork()
    net.threads_number = threads
    net.load(model)
    for name, value in input_arrays(feeds, recorded).items():
        net.get_io_tensor(name).set_data_by_copy(value)

    def run(n: int) -> list[float]:
        times = []
        for _ in range(n):
            start = time.perf_counter()
            net.forward()
            net.wait()
            times.append(time.perf_counter() - start)
        return times
    return run


def plain_ort_runner(model: str, threads: int, feeds: dict, recorded: list | None = None):
    import onnxruntime as ort

    from megenginelite.format import read_model
    from megenginelite.graph import build_graph, infer_graph
    from megenginelite.lower import to_onnx_bytes

    # Our exported graph before the MegBrain-level rewrites (graph/passes.py): what converting the model to ONNX
    # op by op gives a user of plain ONNX Runtime.
    graph = build_graph(read_model(Path(model).read_bytes(), model))
    infer_graph(graph, {name: shape for name, (shape, _) in feeds.items()})
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(to_onnx_bytes(graph), options, providers=["CPUExecutionProvider"])
    inputs = input_arrays(feeds, recorded)

    def run(n: int) -> list[float]:
        times = []
        for _ in range(n):
            start = time.perf_counter()
            session.run(None, inputs)
            times.append(time.perf_counter() - start)
        return times
    return run


def model_feeds(model: str, batch: int | None) -> dict:
    from megenginelite.format import read_model
    from megenginelite.graph import build_graph

    graph = build_graph(read_model(Path(model).read_bytes(), model))
    feeds = {}
    for var in graph.inputs:
        shape = list(var.shape)
        if batch:
            shape[0] = batch
        feeds[var.name] = (shape, var.dtype.np_dtype.name)
    return feeds


def summarize(times: list[float]) -> dict:
    ms = np.asarray(times) * 1e3
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)), "runs": len(ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--batch", type=int, default=None, help="override the batch size of every input")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per runtime")
    parser.add_argument("--per-round", type=int, default=10, help="forwards per round (after warm-up)")
    parser.add_argument("--real-python", help="a Python that has the real megenginelite (MegEngine 1.13)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--inputs", metavar="NPZ[:PREFIX]",
                        help="feed the arrays <PREFIX><input name> of a recorded .npz instead of uniform [0, 1), e.g. "
                             "tests/fixtures/detect/faster_rcnn.npz:case0:input:")
    args = parser.parse_args()

    feeds = model_feeds(args.model, args.batch)
    recorded = list(args.inputs.partition(":")[::2]) if args.inputs else None
    results = []
    for threads in [int(t) for t in args.threads.split(",")]:
        runners = {"ours": ours_runner(args.model, threads, feeds, recorded),
                   "plain_ort": plain_ort_runner(args.model, threads, feeds, recorded)}
        worker = None
        if args.real_python:
            worker = RealWorker(args.real_python, args.model, threads, feeds, recorded)
            runners["real_lite"] = worker.run
        times = {name: [] for name in runners}
        for name, run in runners.items():
            run(5)  # warm-up
        for _ in range(args.rounds):
            for name, run in runners.items():
                time.sleep(0.05)  # the previous runtime's spinning pool threads go idle before this one runs
                times[name].extend(run(args.per_round))
        if worker:
            worker.close()
        row = {"threads": threads, "batch": args.batch or feeds[next(iter(feeds))][0][0]}
        row.update({name: summarize(t) for name, t in times.items()})
        row["ours/plain_ort"] = row["ours"]["median_ms"] / row["plain_ort"]["median_ms"]
        if "real_lite" in row:
            row["ours/real_lite"] = row["ours"]["median_ms"] / row["real_lite"]["median_ms"]
        results.append(row)

    if args.json:
        print(json.dumps({"machine": describe(), "results": results}, indent=1))
        return
    print(describe())
    print(f"model {args.model}, {args.rounds}x{args.per_round} forwards per runtime, medians (p90) in ms")
    for row in results:
        parts = [f"threads={row['threads']} batch={row['batch']}"]
        for name in ("ours", "plain_ort", "real_lite"):
            if name in row:
                parts.append(f"{name} {row[name]['median_ms']:.2f} ({row[name]['p90_ms']:.2f})")
        parts.append(f"ours/plain_ort={row['ours/plain_ort']:.2f}")
        if "ours/real_lite" in row:
            parts.append(f"ours/real_lite={row['ours/real_lite']:.2f}")
        print("  ".join(parts))


if __name__ == "__main__":
    main()
