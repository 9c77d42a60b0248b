"""GPU latency, side by side in one run: ours (LITE_CUDA) vs plain ONNX Runtime (CUDA provider) vs torchvision.

    source .ortgpu/activate.sh && PYTHONPATH=$PWD:$PYTHONPATH python3 bench/bench_gpu.py \\
        shufflenet_v2=tests/fixtures/shufflenet_v2.mge resnet18=/tmp/resnet18.mge --batch 1,16

(bench/gpu_check.sh runs it on the GPU machine.) Rows, for each model and batch size, all on one GPU:

* ``ours host IO``: input copied from host memory, output read back to host (``set_data_by_copy``, ``forward``,
  ``to_numpy``: the quick start's calls), with the CUDA graph our LITE_CUDA networks replay by default;
* ``ours host IO, shared input``: the same with the caller's array shared once (``set_data_by_share``);
* ``ours device IO``: input and output left in device memory (``LiteIO(..., is_host=False)``), CUDA graph;
* ``ours device IO, no graph``: the same with ``MEGENGINELITE_CUDA_GRAPH=0``: our wrapper's overhead over the
  next row, which does the same work;
* ``plain ORT IOBinding``: ONNX Runtime on the same ONNX graph, input and output bound to device buffers;
* ``plain ORT run()``: the same session fed numpy arrays through ``InferenceSession.run`` (host IO);
* ``ours host IO, TF32``: ours with TF32 convolutions, to show what keeping float32 costs;
* ``plain ORT run(), default options (TF32)``: ``run()`` as a user gets it: ONNX Runtime allows TF32 by default;
* ``plain ORT IOBinding, prefer_nhwc``: the CUDA provider's NHWC convolutions (measured, not adopted);
* ``torchvision eager``: torchvision's model of the same architecture, input on the device, no TF32.

Each runtime is warmed up, then measured in alternating rounds (medians of all forwards); TF32 is off everywhere
except in the rows that say so. Writes a Markdown table to stdout and the raw figures to --json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
TORCHVISION = {"shufflenet_v2": "shufflenet_v2_x1_0", "resnet18": "resnet18"}


def _timed(step) -> "callable":
    def run(n: int) -> list[float]:
        times = []
        for _ in range(n):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        return times
    return run


def ours(model: str, batch: int, device_io: bool, graph: bool = True, tf32: bool = False, share: bool = False):
    from dataclasses import replace

    from megenginelite import LiteConfig, LiteDeviceType, LiteIO, LiteNetwork, LiteNetworkIO

    probe = LiteNetwork()
    probe.load(model)
    input_name, output_name = probe.get_all_input_name()[0], probe.get_all_output_name()[0]
    os.environ["MEGENGINELITE_CUDA_GRAPH"] = "1" if graph else "0"
    io = LiteNetworkIO(inputs=[LiteIO(input_name, is_host=not device_io)],
                       outputs=[LiteIO(output_name, is_host=not device_io)])
    net = LiteNetwork(LiteConfig(device_type=LiteDeviceType.LITE_CUDA), io)
    if tf32:  # no public switch: the session configuration the network would use, with TF32 allowed
        session_config = net._session_config
        net._session_config = lambda: replace(session_config(), tf32=True)
    net.load(model)
    data, out = net.get_io_tensor(input_name), net.get_io_tensor(output_name)
    image = np.random.RandomState(0).uniform(0, 1, (batch, 3, 224, 224)).astype("float32")
    if share:
        data.set_data_by_share(image)  # the caller's (pageable) array, read in place
    else:
        data.set_data_by_copy(image)

    def host_step():
        if not share:
            data.set_data_by_copy(image)
        net.forward()
        net.wait()
        out.to_numpy()

    def device_step():
        net.forward()
        net.wait()

    return _timed(device_step if device_io else host_step)


def plain_ort(model: str, batch: int, iobinding: bool, cuda_options: dict | None = None):
    import onnxruntime as ort

    from megenginelite.format import read_model
    from megenginelite.cli.export import lower_model

    proto, _ = lower_model(read_model(Path(model).read_bytes(), model), {"data": (batch, 3, 224, 224)})
    options = {"use_tf32": "0"} if cuda_options is None else cuda_options
    session = ort.InferenceSession(proto.SerializeToString(), providers=[
        ("CUDAExecutionProvider", options), "CPUExecutionProvider"])
    image = np.random.RandomState(0).uniform(0, 1, (batch, 3, 224, 224)).astype("float32")
    if not iobinding:
        return _timed(lambda: session.run(None, {"data": image}))
    x = ort.OrtValue.ortvalue_from_numpy(image, "cuda", 0)
    output = session.get_outputs()[0]
    y = ort.OrtValue.ortvalue_from_shape_and_type(session.run(None, {"data": image})[0].shape, np.float32, "cuda", 0)
    binding = session.io_binding()
    binding.bind_ortvalue_input("data", x)
    binding.bind_ortvalue_output(output.name, y)
    return _timed(lambda: session.run_with_iobinding(binding))


def torchvision_eager(name: str, batch: int):
    import torch
    import torchvision

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model = getattr(torchvision.models, TORCHVISION[name])().eval().cuda()
    x = torch.rand(batch, 3, 224, 224, device="cuda")

    def step():
        with torch.no_grad():
            model(x)
        torch.cuda.synchronize()
    return _timed(step)


def accuracy() -> list[dict]:
    """Largest differences of every model fixture's outputs on the GPU from real Lite's CPU references, with TF32
    off (our default) and on: the tolerance tests/runtime/test_gpu.py needs, measured."""
    from dataclasses import replace

    from megenginelite import LiteConfig, LiteDeviceType, LiteNetwork

    rows = []
    for entry in json.loads((FIXTURES / "manifest.json").read_text()):
        if entry["category"] != "model":
            continue
        with np.load(FIXTURES / f"{entry['name']}.npz") as data:  # recorded inputs and real Lite's outputs
            ref = {key: data[key] for key in data.files}
        for tf32 in (False, True):
            net = LiteNetwork(LiteConfig(device_type=LiteDeviceType.LITE_CUDA))
            session_config = net._session_config
            net._session_config = lambda: replace(session_config(), tf32=tf32)
            try:
                net.load(str(FIXTURES / entry["file"]))
                for name in entry["inputs"]:
                    net.get_io_tensor(name).set_data_by_copy(ref[f"input:{name}"])
                net.forward()
                net.wait()
            except Exception as exc:  # reported as a row
                rows.append({"fixture": entry["name"], "tf32": tf32, "error": str(exc)[:200]})
                continue
            for name in entry["outputs"]:
                if name not in net.get_all_output_name():  # e.g. format_keep_var_name0 (tests/lower/test_models.py)
                    continue
                got, want = net.get_io_tensor(name).to_numpy(), ref[f"output:{name}"]
                if got.shape != want.shape or not np.issubdtype(want.dtype, np.floating):
                    rows.append({"fixture": entry["name"], "output": name, "tf32": tf32,
                                 "equal": bool(got.shape == want.shape and (got == want).all())})
                    continue
                diff = np.abs(got.astype(np.float64) - want)
                rows.append({"fixture": entry["name"], "output": name, "tf32": tf32, "max_abs": float(diff.max()),
                             "max_rel": float((diff / np.maximum(np.abs(want), 1e-6)).max()),
                             "graph": net._plan.graph_io is not None})
    for row in rows:
        print(json.dumps(row), flush=True)
    return rows


def machine() -> dict:
    import onnxruntime as ort

    from machine import describe

    info = {"python": platform.python_version(), "onnxruntime": ort.__version__, "cpu": describe()}
    try:
        import torch

        info["gpu"] = torch.cuda.get_device_name(0)
        info["torch"] = torch.__version__
    except Exception as exc:  # no torch: the table has no torchvision rows
        info["gpu"] = f"unknown ({exc})"
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="NAME=PATH.mge (NAME shufflenet_v2 or resnet18 for torchvision)")
    parser.add_argument("--batch", default="1,16", help="comma-separated batch sizes")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--json", help="write the raw figures here")
    parser.add_argument("--accuracy", action="store_true", help="first, the model fixtures' GPU errors (TF32 off/on)")
    args = parser.parse_args()
    info = machine()
    print(f"machine: {info}", flush=True)
    errors = accuracy() if args.accuracy else []
    results = []
    for spec in args.models:
        name, path = spec.split("=", 1)
        for batch in [int(b) for b in args.batch.split(",")]:
            runners = {
                "ours host IO": lambda: ours(path, batch, device_io=False),
                "ours host IO, shared input": lambda: ours(path, batch, device_io=False, share=True),
                "ours device IO": lambda: ours(path, batch, device_io=True),
                "ours device IO, no graph": lambda: ours(path, batch, device_io=True, graph=False),
                "plain ORT IOBinding": lambda: plain_ort(path, batch, iobinding=True),
                "plain ORT run()": lambda: plain_ort(path, batch, iobinding=False),
                "ours host IO, TF32": lambda: ours(path, batch, device_io=False, tf32=True),
                "plain ORT run(), default options (TF32)": lambda: plain_ort(path, batch, iobinding=False,
                                                                             cuda_options={}),
                "plain ORT IOBinding, prefer_nhwc": lambda: plain_ort(path, batch, iobinding=True, cuda_options={
                    "use_tf32": "0", "prefer_nhwc": "1"}),
                "torchvision eager": lambda: torchvision_eager(name, batch),
            }
            ready = {}
            for label, make in runners.items():
                try:
                    run = make()
                    run(args.warmup)
                    ready[label] = run
                except Exception as exc:  # a runtime missing here (e.g. torchvision) drops its row, not the table
                    print(f"{name} b{batch} {label}: skipped ({type(exc).__name__}: {exc})", flush=True)
            times: dict[str, list[float]] = {label: [] for label in ready}
            for _ in range(args.rounds):
                for label, run in ready.items():
                    times[label] += run(args.per_round)
            for label, ts in times.items():
                ms = np.asarray(ts) * 1e3
                results.append({"model": name, "batch": batch, "runtime": label, "median_ms": float(np.median(ms)),
                                "p90_ms": float(np.percentile(ms, 90)), "runs": len(ms)})
            os.environ.pop("MEGENGINELITE_CUDA_GRAPH", None)
    print("\n| model | batch | runtime | median ms | p90 ms | vs plain ORT run() | vs plain ORT IOBinding |")
    print("|---|---|---|---|---|---|---|")
    for row in results:
        group = {r["runtime"]: r["median_ms"] for r in results if (r["model"], r["batch"]) == (row["model"], row["batch"])}
        ratios = [f"{row['median_ms'] / group[k]:.2f}" if k in group else "-"
                  for k in ("plain ORT run()", "plain ORT IOBinding")]
        print(f"| {row['model']} | {row['batch']} | {row['runtime']} | {row['median_ms']:.3f} | {row['p90_ms']:.3f} | "
              f"{ratios[0]} | {ratios[1]} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "results": results, "accuracy": errors}, indent=1))


if __name__ == "__main__":
    main()
