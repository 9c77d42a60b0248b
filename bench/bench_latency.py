"""Steady-state latency of one model: ours vs plain ONNX Runtime vs (optionally) the real megenginelite.

All runtimes are measured in one run, alternating in rounds so that machine noise hits them alike:

    python bench/bench_latency.py tests/fixtures/shufflenet_v2.mge --real-python "$(../shared/tools/real-megengine)"

The zoo set (``tools/zoo_models.py``, dumped by ``tools/make_bench_models.py --zoo`` into bench/models/zoo/), every
model at batch 1 and 16 and 1 and 2 threads, each fed its recorded input; ours and the real library's outputs are
compared (max abs difference) before the timing, and each row carries the model's FLOPs and our GFLOP/s::

    python bench/bench_latency.py --zoo all --zoo-batches 1 --rounds 3 --real-python "$PY"
    python bench/bench_latency.py --zoo bert,yolox_nano,dcgan,resnext50 --zoo-batches 16 --rounds 2 --round-s 1.5 \
        --real-python "$PY"
    python bench/bench_latency.py --zoo bert --zoo-batches 16 --threads 1 --profile 10   # where our time goes

"plain ONNX Runtime" runs our exported ONNX graph with default session options (only the thread count set),
through ``InferenceSession.run``: what a user converting the model to ONNX by hand would get. The real library
runs in a Python 3.10 worker process (MegEngine 1.13 has no wheel for newer Pythons) driven over a pipe.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from machine import describe  # bench/, the script's own folder

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
        value = np.ascontiguousarray(np.broadcast_to(np.load(recorded[0])[recorded[1] + name], shape))
    net.get_io_tensor(name).set_data_by_copy(value)
print("ready", flush=True)
for line in sys.stdin:
    if line.startswith("save "):  # one forward, its outputs written to the .npz named
        net.forward(); net.wait()
        np.savez(line[5:].strip(), **{n: net.get_io_tensor(n).to_numpy() for n in net.get_all_output_name()})
        print("[]", flush=True)
        continue
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

    def outputs(self) -> dict[str, np.ndarray]:
        """The outputs of one forward."""
        with tempfile.TemporaryDirectory() as tmp:
            self.run(f"save {tmp}/out.npz")
            with np.load(f"{tmp}/out.npz") as data:
                return dict(data)

    def run(self, n: int | str) -> list[float]:
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
    if recorded:  # a batch-1 recording is repeated up to the batch asked for
        data = np.load(recorded[0])
        return {name: np.ascontiguousarray(np.broadcast_to(data[recorded[1] + name], shape))
                for name, (shape, _) in feeds.items()}
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

    def outputs() -> dict[str, np.ndarray]:
        net.forward()
        net.wait()
        return {name: net.get_io_tensor(name).to_numpy() for name in net.get_all_output_name()}
    run.outputs = outputs  # the real worker's outputs() counterpart, for the zoo's agreement check
    return run


def plain_ort_runner(model: str, threads: int, feeds: dict, recorded: list | None = None):
    from megenginelite.format import read_model
    from megenginelite.graph import build_graph, infer_graph
    from megenginelite.lower import to_onnx_bytes

    # Our exported graph before the MegBrain-level rewrites (graph/passes.py): what converting the model to ONNX
    # op by op gives a user of plain ONNX Runtime.
    graph = build_graph(read_model(Path(model).read_bytes(), model))
    infer_graph(graph, {name: shape for name, (shape, _) in feeds.items()})
    return ort_runner(to_onnx_bytes(graph), threads, input_arrays(feeds, recorded))


def exported_onnx_runner(path: str, threads: int, feeds: dict, recorded: list | None = None):
    """Plain ONNX Runtime on the same network exported by its users' framework (e.g. torchvision's ShuffleNetV2
    by ``torch.onnx.export``): its inputs, taken in order, get ours' arrays."""
    import onnxruntime as ort

    names = [i.name for i in ort.InferenceSession(path, providers=["CPUExecutionProvider"]).get_inputs()]
    return ort_runner(path, threads, dict(zip(names, input_arrays(feeds, recorded).values())))


def ort_runner(model: bytes | str, threads: int, inputs: dict[str, np.ndarray]):
    """``InferenceSession.run`` with default session options, only the thread count set."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

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


ZOO_DIR = Path(__file__).resolve().parent / "models" / "zoo"
ZOO = ("resnext50", "fcos_gn", "deeplabv3plus", "simplebaseline", "bert", "dcgan", "yolox_nano")
TORCHVISION_DIR = Path(__file__).resolve().parent / "models" / "torchvision"  # bench/export_torchvision.py
ZOO_TORCHVISION = {"resnext50": "resnext50_32x4d"}  # zoo models torchvision has too: plain ORT runs its export beside
FLOP_KINDS = ("Convolution", "ConvolutionBackwardData", "MatrixMul", "BatchedMatrixMul")


def alternate(runners: dict, rounds: int, per_round: int) -> dict[str, list[float]]:
    """The latencies of each runner over ``rounds`` rounds of ``per_round`` forwards, the runners taking turns.
    A turn of 10 or more forwards starts with a tenth of them untimed: a millisecond-sized model runs slower for a
    while after another runtime's turn (its caches refilled; on a 2-core VM, BERT's round medians 2.47 ms right
    after the real Lite's turn against 1.6-1.7 otherwise)."""
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            time.sleep(0.05)  # the previous runtime's spinning pool threads go idle before this one runs
            run(per_round // 10)
            times[name].extend(run(per_round))
    return times


def measure(model: str, threads: int, feeds: dict, recorded: list | None, real_python: str | None, rounds: int,
            per_round: int, round_s: float | None = None, exported: str | None = None) -> dict:
    """One row: the runtimes alternate ``rounds`` times, ``per_round`` forwards each (with ``round_s``: fewer, so
    that one round of ours takes about ``round_s`` seconds, at least 2); ``exported``: an ONNX file of the same
    network as its users' framework exports it, run by plain ONNX Runtime too."""
    runners = {"ours": ours_runner(model, threads, feeds, recorded),
               "plain_ort": plain_ort_runner(model, threads, feeds, recorded)}
    if exported:
        runners["exported_ort"] = exported_onnx_runner(exported, threads, feeds, recorded)
    worker = None
    if real_python:
        worker = RealWorker(real_python, model, threads, feeds, recorded)
        runners["real_lite"] = worker.run
    for run in runners.values():
        run(1)  # the first forward compiles
    if round_s:
        per_round = min(per_round, max(2, int(round_s / np.median(runners["ours"](2)))))
    for run in runners.values():
        run(min(per_round, 5))  # warm-up
    times = alternate(runners, rounds, per_round)
    if worker:
        worker.close()
    row = {"threads": threads, "batch": feeds[next(iter(feeds))][0][0], "gflops": flops(model, feeds) / 1e9,
           "sgemm_gflops": matmul_gflops(threads)}
    row["at_matmul_rate_ms"] = row["gflops"] / row["sgemm_gflops"] * 1e3
    row.update({name: summarize(t) for name, t in times.items()})
    row["ours/plain_ort"] = row["ours"]["median_ms"] / row["plain_ort"]["median_ms"]
    if exported:
        row["ours/exported_ort"] = row["ours"]["median_ms"] / row["exported_ort"]["median_ms"]
    if "real_lite" in row:
        row["ours/real_lite"] = row["ours"]["median_ms"] / row["real_lite"]["median_ms"]
    return row


def output_agreement(model: str, feeds: dict, recorded: list | None, real_python: str) -> dict[str, tuple]:
    """Per output: (max |ours - real|, max |real|) of one forward, at 1 thread."""
    ours = ours_runner(model, 1, feeds, recorded).outputs()
    worker = RealWorker(real_python, model, 1, feeds, recorded)
    real = worker.outputs()
    worker.close()
    return {name: (float(np.abs(ours[name].astype(np.float64) - ref).max(initial=0)),
                   float(np.abs(ref).max(initial=0))) for name, ref in real.items()}


def flops(model: str, feeds: dict) -> float:
    """2 x the multiply-adds of the convolutions, deconvolutions and matrix products (the arithmetic the cores'
    FMA peak is about), from our graph's inferred shapes."""
    from megenginelite.format import read_model
    from megenginelite.graph import build_graph, infer_graph

    graph = build_graph(read_model(Path(model).read_bytes(), model))
    infer_graph(graph, {name: shape for name, (shape, _) in feeds.items()})
    total = 0
    for op in graph.ops:
        if op.kind not in FLOP_KINDS:
            continue
        out = int(np.prod(op.outputs[0].shape))
        if op.kind == "Convolution":  # weight (OC, IC/g, kh, kw) or grouped (g, OC/g, IC/g, kh, kw)
            total += out * int(np.prod(op.inputs[1].shape[-3:]))
        elif op.kind == "ConvolutionBackwardData":  # weight (OC of the forward, IC/g, kh, kw); diff has OC channels
            total += int(np.prod(op.inputs[1].shape)) * int(np.prod(op.inputs[0].shape[-3:]))
        else:  # (batched) A x B: the reduced dimension is A's last unless A is transposed
            a = op.inputs[0].shape
            total += out * (a[-2] if op.params.get("transposeA") else a[-1])
    return 2.0 * total


@lru_cache(maxsize=None)
def matmul_gflops(threads: int) -> float:
    """GFLOP/s of ONNX Runtime's float32 MatMul 1024x1024x1024 at ``threads`` threads (median of 20): a yardstick
    of this CPU's float32 arithmetic, printed beside each row's own GFLOP/s. Not a hard bound: ONNX Runtime's
    NCHWc convolutions can beat it (ResNet-18 on an AVX2 EPYC: 37 against 31 GFLOP/s)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    n = 1024
    io = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n]) for name in "abc"]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "sgemm", io[:2], io[2:])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
                                   .SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {name: np.random.RandomState(0).uniform(-1, 1, (n, n)).astype(np.float32) for name in "ab"}
    times = []
    for _ in range(23):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / float(np.median(times[3:])) / 1e9


def profile(model: str, threads: int, feeds: dict, recorded: list | None, runs: int) -> dict:
    """ONNX Runtime's profile of ``runs`` forwards of our session (after one left out): kernel ms per forward by
    ONNX op type (``onnx``) and by the MegBrain operator type each kernel was lowered from (``megbrain``)."""
    from dataclasses import replace

    from megenginelite import LiteNetwork
    from megenginelite.runtime.introspect import onnx_profile_report, profile_report

    net = LiteNetwork()
    net.threads_number = threads
    net.load(model)
    inputs = input_arrays(feeds, recorded)
    compiled = net._model  # a plan with profiling on: our session options and rewritten graph, as forward() runs
    with tempfile.TemporaryDirectory() as tmp:
        plan = compiled.compile({k: v.shape for k, v in inputs.items()}, {k: v.dtype for k, v in inputs.items()},
                                replace(compiled.config, profile_prefix=f"{tmp}/ort"))
        outputs = {spec.name: np.empty(spec.shape, spec.dtype.np_dtype) for spec in plan.outputs}
        for _ in range(runs + 1):
            plan.run(inputs, outputs)
        with open(plan.session.end_profiling()) as f:
            trace = json.load(f)
    first = min((e for e in trace if e.get("name") == "model_run"), key=lambda e: e["ts"])
    trace = [e for e in trace if e.get("ts", 0) >= first["ts"] + first["dur"]]  # the first run warms up
    per_run = {"onnx": onnx_profile_report(trace)["summary"]["by_type_ms"],
               "megbrain": profile_report(plan.graph, trace)["summary"]["by_type_ms"]}
    return {kind: {k: v / runs for k, v in table.items()} for kind, table in per_run.items()}


def print_profile(label: str, table: dict) -> None:
    for kind, times in table.items():
        total = sum(times.values())
        print(f"{label}{kind} {total:.2f} ms/forward: " + ", ".join(
            f"{name} {ms:.2f} ({ms / total:.0%})" for name, ms in times.items() if ms >= total * 0.005), flush=True)


def print_row(label: str, row: dict) -> None:
    parts = [f"{label}threads={row['threads']} batch={row['batch']}"]
    for name in ("ours", "plain_ort", "exported_ort", "real_lite"):
        if name in row:
            parts.append(f"{name} {row[name]['median_ms']:.2f} ({row[name]['p90_ms']:.2f})")
    parts.append(f"ours/plain_ort={row['ours/plain_ort']:.2f}")
    if "ours/exported_ort" in row:
        parts.append(f"ours/exported_ort={row['ours/exported_ort']:.2f}")
    if "ours/real_lite" in row:
        parts.append(f"ours/real_lite={row['ours/real_lite']:.2f}")
    if "gflops" in row:
        parts.append(f"{row['gflops']:.2f} GFLOP, ours {row['gflops'] / row['ours']['median_ms'] * 1e3:.0f} GFLOP/s")
    if "at_matmul_rate_ms" in row:
        rate = f"at MatMul-1024 speed ({row['sgemm_gflops']:.0f} GFLOP/s) {row['at_matmul_rate_ms']:.2f} ms"
        if "real_lite" in row:
            rate += f" = {row['at_matmul_rate_ms'] / row['real_lite']['median_ms']:.2f}x real"
        parts.append(rate)
    print("  ".join(parts), flush=True)


def run_zoo(args) -> None:
    """Every zoo model (``tools/make_bench_models.py --zoo``) at each batch and thread count, fed its recorded input
    (repeated up to the batch); the outputs of ours and the real library compared first."""
    names = args.zoo.split(",") if args.zoo != "all" else list(ZOO)
    print(describe())
    print(f"zoo: {args.rounds} rounds per runtime, forwards per round: about {args.round_s} s of ours, 2 to "
          f"{args.per_round}; medians (p90) in ms")
    results = []
    for name in names:
        model, recorded = str(ZOO_DIR / f"{name}.mge"), [str(ZOO_DIR / f"{name}.npz"), "input:"]
        for batch in (int(b) for b in args.zoo_batches.split(",")):
            feeds = model_feeds(model, batch)
            if args.real_python:
                agreement = output_agreement(model, feeds, recorded, args.real_python)
                print(f"{name} b{batch} ours vs real, max abs diff (max abs real): " + ", ".join(
                    f"{out} {diff:.2e} ({ref:.2e})" for out, (diff, ref) in agreement.items()), flush=True)
            if args.profile:
                for threads in (int(t) for t in args.threads.split(",")):
                    print_profile(f"{name} b{batch} t{threads} ", profile(model, threads, feeds, recorded, args.profile))
                continue
            exported = TORCHVISION_DIR / f"{ZOO_TORCHVISION[name]}_b{batch}.onnx" if name in ZOO_TORCHVISION else None
            for threads in (int(t) for t in args.threads.split(",")):
                row = measure(model, threads, feeds, recorded, args.real_python, args.rounds, args.per_round,
                              args.round_s, str(exported) if exported and exported.exists() else None)
                row["model"] = name
                print_row(f"{name} ", row)
                results.append(row)
    if args.json:
        print(json.dumps({"machine": describe(), "results": results}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--batch", type=int, default=None, help="override the batch size of every input")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per runtime")
    parser.add_argument("--per-round", type=int, default=10, help="forwards per round (after warm-up)")
    parser.add_argument("--real-python", help="a Python that has the real megenginelite (MegEngine 1.13)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--exported", metavar="ONNX",
                        help="also plain ONNX Runtime on this ONNX export of the same network (e.g. torchvision's)")
    parser.add_argument("--inputs", metavar="NPZ[:PREFIX]",
                        help="feed the arrays <PREFIX><input name> of a recorded .npz instead of uniform [0, 1), e.g. "
                             "tests/fixtures/detect/faster_rcnn.npz:case0:input:")
    parser.add_argument("--zoo", metavar="all|NAME,...", help=f"the zoo set instead of one model: {', '.join(ZOO)}")
    parser.add_argument("--zoo-batches", default="1,16", help="comma-separated batch sizes of the zoo models")
    parser.add_argument("--round-s", type=float, default=1.0,
                        help="zoo: forwards per round so that one round of ours takes about this long")
    parser.add_argument("--profile", type=int, metavar="N",
                        help="instead of timing, ONNX Runtime's profile of N forwards of ours, per op type")
    args = parser.parse_args()
    if args.zoo:
        run_zoo(args)
        return
    if not args.model:
        parser.error("a model or --zoo is needed")

    feeds = model_feeds(args.model, args.batch)
    recorded = list(args.inputs.partition(":")[::2]) if args.inputs else None
    if args.profile:
        for threads in (int(t) for t in args.threads.split(",")):
            print_profile(f"t{threads} ", profile(args.model, threads, feeds, recorded, args.profile))
        return
    results = [measure(args.model, threads, feeds, recorded, args.real_python, args.rounds, args.per_round,
                       exported=args.exported)
               for threads in (int(t) for t in args.threads.split(","))]
    if args.json:
        print(json.dumps({"machine": describe(), "results": results}, indent=1))
        return
    print(describe())
    print(f"model {args.model}, {args.rounds}x{args.per_round} forwards per runtime, medians (p90) in ms")
    for row in results:
        print_row("", row)


if __name__ == "__main__":
    main()
