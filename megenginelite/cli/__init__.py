"""The ``megenginelite`` command line: ``info``, ``run``, ``bench`` and ``convert`` for ``.mge`` models, and on Ray
(the ``serve`` extra) ``serve`` and ``run-dataset``.

The command helpers sit beside it: ``summary`` (what ``info`` reports) and ``export`` (``convert``'s ONNX export);
nothing in the library imports this package.

Exit status: 0 on success, 1 when the model or the runtime fails (the message is one line on stderr,
``megenginelite: error: ...``), 2 on bad usage. Run ``megenginelite COMMAND --help`` for each command's options.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import textwrap
import time

import numpy as np

from ..base import version
from ..errors import LiteError
from ..format import ModelRecord, read_model
from ..graph.dims import format_dim
from ..lower import OPSET
from ..model_file import open_model
from ..network import LiteNetwork
from ..struct import LiteConfig, LiteDeviceType, LiteNetworkIO

PROG = "megenginelite"


class UsageError(Exception):
    """Bad command-line usage: exit status 2."""


class CommandError(Exception):
    """The command failed (model, file or runtime problem): exit status 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line on stderr, exit status 2 (raised, printed by main)
        raise UsageError(f"{message} (see '{self.prog} --help')")


class _Formatter(argparse.HelpFormatter):
    """Descriptions and epilogs: paragraphs re-wrapped, but lines starting with spaces (examples) kept as they are."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.split("\n\n"):
            if block.startswith("  "):
                blocks.append(block)
            else:
                blocks.append(textwrap.fill(" ".join(block.split()), width, initial_indent=indent,
                                            subsequent_indent=indent))
        return "\n\n".join(blocks)


# ---------------------------------------------------------------------------------------------- small helpers

def progress(label: str, done: int, total: int, enabled: bool) -> None:
    """Draw a one-line progress bar on stderr (at most 10 redraws a second); a newline when ``done == total``."""
    if not enabled or total <= 0:
        return
    now = time.monotonic()
    if done < total and now - progress.last < 0.1:
        return
    progress.last = 0.0 if done >= total else now
    filled = 24 * done // total
    end = "\n" if done >= total else ""
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (24 - filled)}] {done}/{total}{end}")
    sys.stderr.flush()


progress.last = 0.0


def _show_progress(args) -> bool:
    return bool(getattr(args, "progress", False)) or sys.stderr.isatty()


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", str(text)).strip()


def _read_record(path: str) -> ModelRecord:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror or exc}") from None
    opened = open_model(data, path, LiteConfig(), LiteNetworkIO())  # a packed model's inner model, as run loads
    # ONNX files are for LiteNetwork only: the MegEngine reader refuses them with its own message
    return opened.record if opened.record is not None else read_model(opened.plain, path)


def _check_model_file(path: str) -> None:
    if not os.path.isfile(path):
        raise CommandError(f"{path}: {'is a directory' if os.path.isdir(path) else 'No such file or directory'}")


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{option} takes comma-separated positive integers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise UsageError(f"{option} takes comma-separated positive integers, got {text!r}")
    return values


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid positive integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _network(args, threads: int) -> LiteNetwork:
    device = LiteDeviceType.LITE_CUDA if args.device == "cuda" else LiteDeviceType.LITE_CPU
    network = LiteNetwork(LiteConfig(device_type=device))
    network.threads_number = threads
    return network


def _latency(times: list[float]) -> dict:
    ms = np.asarray(times, np.float64) * 1e3
    return {"runs": len(ms), "min_ms": float(ms.min()), "median_ms": float(np.median(ms)),
            "p90_ms": float(np.percentile(ms, 90)), "mean_ms": float(ms.mean())}


def _random_input(shape, dtype, seed: int) -> np.ndarray:
    """uniform [0, 1) from ``RandomState(seed)`` (the fixtures' reference inputs), cast to the input's dtype."""
    return np.random.RandomState(seed).uniform(0, 1, shape).astype(dtype)


def _fmt_shape(shape) -> str:
    """``(1, 3, 224, 224)``; a dim known only at run time (CondTake's length) shows as its symbol, ``(n3, 4)``."""
    return "(" + ", ".join(map(format_dim, shape)) + ")" if shape is not None else "?"


def _fmt_count(n: float, unit: str = "") -> str:
    """``293 MFLOPs``, ``12 FLOPs``: three significant digits and an SI prefix."""
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {prefix}{unit}"
    return f"{n:g} {unit}".rstrip()


def _fmt_bytes(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"


# ---------------------------------------------------------------------------------------------- info

def cmd_info(args) -> int:
    from .summary import FLOP_KINDS, model_summary

    summary = model_summary(_read_record(args.model))
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        ops = summary["operators"]
        params = summary["parameters"]
        print(f"model       {summary['model']}")
        print(f"format      {summary['format']}, model version {summary['model_version']}, "
              f"dumped by MegEngine {summary['mge_version']}")
        for role in ("inputs", "outputs"):
            for i, io in enumerate(summary[role]):
                print(f"{role if i == 0 else '':<11} {io['name']}  {_fmt_shape(io['shape'])} {io['dtype'] or '?'}")
        print(f"operators   {ops['total']} in the file")
        print("  by type   " + ", ".join(f"{k} {v}" for k, v in ops["by_type"].items()))
        print("  by kind   " + ", ".join(f"{k} {v}" for k, v in ops["by_kind"].items()))
        if ops["elemwise_modes"]:
            print("  Elemwise  " + ", ".join(f"{k} {v}" for k, v in ops["elemwise_modes"].items()))
        print(f"parameters  {params['count']:,} values in {params['tensors']} constant tensors, "
              f"{_fmt_bytes(params['bytes'])} ({params['bytes']:,} bytes)")
        flops = summary["flops"]
        if flops is not None:
            parts = [f"{k.replace('_', ' ')} {_fmt_count(flops[k])}" for k in FLOP_KINDS if flops[k]]
            print(f"FLOPs       {'at most ' if flops['upper_bound'] else ''}{_fmt_count(flops['total'], 'FLOPs')} "
                  f"per forward" + (f" ({', '.join(parts)})" if parts else "")
                  + ("; sizes known only at run time counted at their bounds" if flops["upper_bound"] else ""))
    if summary["inference_error"]:
        _warn(f"output shapes and FLOPs unknown: {_one_line(summary['inference_error'])}")
    return 0


# ---------------------------------------------------------------------------------------------- run

def _parse_input_specs(specs: list[str], names: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` (or a bare ``VALUE`` for a single-input model) -> {input name: VALUE}."""
    chosen: dict[str, str] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if sep and name in names:
            pass
        elif not sep or spec in ("random", "zeros") or os.path.exists(spec):
            if len(names) != 1:
                raise UsageError(f"--input {spec!r}: the model has {len(names)} inputs, give --input NAME=VALUE "
                                 f"(inputs: {', '.join(names)})")
            name, value = names[0], spec
        else:
            raise UsageError(f"--input {spec!r}: the model has no input {name!r} (inputs: {', '.join(names)})")
        if name in chosen:
            raise UsageError(f"--input given twice for {name!r}")
        if not value:
            raise UsageError(f"--input {spec!r}: empty value (use FILE.npy, random or zeros)")
        chosen[name] = value
    return chosen


def _load_npy(path: str, name: str, dtype: np.dtype) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CommandError(f"{path}: not a readable .npy file ({_one_line(exc)})") from None
    if not isinstance(arr, np.ndarray):
        raise CommandError(f"{path}: holds several arrays (an .npz); give one .npy per input")
    if arr.dtype != dtype:
        if not np.can_cast(arr.dtype, dtype, "same_kind"):
            raise CommandError(f"{path}: dtype {arr.dtype} does not fit input {name!r} ({dtype})")
        arr = arr.astype(dtype)
    return np.ascontiguousarray(arr)


def _feed_inputs(network: LiteNetwork, specs: dict[str, str], seed: int) -> list[dict]:
    fed = []
    for i, name in enumerate(network.get_all_input_name()):
        tensor = network.get_io_tensor(name)
        dtype, shape = np.dtype(tensor.layout.dtype), tuple(tensor.layout.shapes)
        value = specs.get(name, "random")
        if value == "random":
            arr, source = _random_input(shape, dtype, seed + i), f"random (seed {seed + i})"
        elif value == "zeros":
            arr, source = np.zeros(shape, dtype), "zeros"
        else:
            arr, source = _load_npy(value, name, dtype), value
        tensor.set_data_by_copy(arr)
        fed.append({"name": name, "shape": list(arr.shape), "dtype": dtype.name, "source": source})
    return fed


def _stats(arr: np.ndarray) -> dict:
    values = np.asarray(arr, np.float64).reshape(-1)
    finite = values[np.isfinite(values)]
    out = {"nonfinite": int(values.size - finite.size)}
    if finite.size == 0:
        return {"min": None, "max": None, "mean": None, "std": None, **out}
    return {"min": float(finite.min()), "max": float(finite.max()), "mean": float(finite.mean()),
            "std": float(finite.std()), **out}


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "output"


def cmd_run(args) -> int:
    _check_model_file(args.model)
    network = _network(args, args.threads)
    for option, wanted, method in (("--profile", args.profile, "enable_profile_performance"),
                                   ("--io-dump", args.io_dump, "io_txt_dump")):
        if wanted and not hasattr(network, method):
            raise CommandError(f"{option} is not supported yet (LiteNetwork.{method} is not implemented)")
    start = time.perf_counter()
    network.load(args.model)
    load_seconds = time.perf_counter() - start
    if args.profile:
        network.enable_profile_performance(args.profile)
    if args.io_dump:
        os.makedirs(args.io_dump, exist_ok=True)
        network.io_txt_dump(os.path.join(args.io_dump, "io_dump.txt"))
    inputs = _feed_inputs(network, _parse_input_specs(args.input, network.get_all_input_name()), args.seed)

    iters = args.iter if args.iter is not None else 1
    warmup = args.warmup if args.warmup is not None else (1 if args.iter is not None else 0)
    show = _show_progress(args) and iters > 1
    times = []
    for i in range(warmup + iters):
        start = time.perf_counter()
        network.forward()
        network.wait()
        if i >= warmup:
            times.append(time.perf_counter() - start)
        progress("forward", i + 1, warmup + iters, show)

    outputs = []
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    for name in network.get_all_output_name():
        arr = network.get_io_tensor(name).to_numpy()
        entry = {"name": name, "shape": list(arr.shape), "dtype": arr.dtype.name, **_stats(arr), "file": None}
        if args.output_dir:
            entry["file"] = os.path.join(args.output_dir, _file_name(name) + ".npy")
            np.save(entry["file"], arr)
        outputs.append(entry)
    latency = _latency(times)
    latency["warmup"] = warmup

    if args.json:
        print(json.dumps({"model": args.model, "device": args.device, "threads": args.threads,
                          "load_seconds": load_seconds, "inputs": inputs, "outputs": outputs,
                          "latency": latency if args.iter is not None else None,
                          "forward_ms": latency["median_ms"] if args.iter is None else None,
                          "profile": args.profile, "io_dump": args.io_dump}, indent=1))
        return 0
    print(f"model   {args.model} (loaded in {load_seconds:.2f} s, {args.device}, {args.threads} thread"
          f"{'s' if args.threads > 1 else ''})")
    for io in inputs:
        print(f"input   {io['name']}  {_fmt_shape(io['shape'])} {io['dtype']}  {io['source']}")
    for io in outputs:
        stats = "  ".join(f"{k} {io[k]:.6g}" for k in ("min", "max", "mean", "std") if io[k] is not None)
        bad = f"  ({io['nonfinite']} non-finite)" if io["nonfinite"] else ""
        print(f"output  {io['name']}  {_fmt_shape(io['shape'])} {io['dtype']}  {stats}{bad}")
        if io["file"]:
            print(f"        saved to {io['file']}")
    if args.iter is None:
        print(f"forward {latency['median_ms']:.3f} ms")
    else:
        print(f"latency {iters} runs after {warmup} warm-up: min {latency['min_ms']:.3f} ms, median "
              f"{latency['median_ms']:.3f} ms, p90 {latency['p90_ms']:.3f} ms, mean {latency['mean_ms']:.3f} ms")
    if args.profile:
        print(f"profile written to {args.profile}")
    if args.io_dump:
        print(f"io dump written to {os.path.join(args.io_dump, 'io_dump.txt')}")
    return 0


# ---------------------------------------------------------------------------------------------- bench

def cmd_bench(args) -> int:
    threads = _int_list(args.threads, "--threads")
    batches = _int_list(args.batch, "--batch") if args.batch else [None]
    _check_model_file(args.model)
    show = _show_progress(args)
    total, done = len(threads) * len(batches) * (args.warmup + args.iter), 0
    rows = []
    for nthreads in threads:
        network = _network(args, nthreads)
        network.load(args.model)
        names = network.get_all_input_name()
        layouts = {n: (tuple(network.get_io_tensor(n).layout.shapes), np.dtype(network.get_io_tensor(n).layout.dtype))
                   for n in names}
        for batch in batches:
            for i, name in enumerate(names):
                shape, dtype = layouts[name]
                if batch is not None:
                    if not shape:
                        raise CommandError(f"--batch: input {name!r} is a scalar, it has no batch dim")
                    shape = (batch,) + shape[1:]
                network.get_io_tensor(name).set_data_by_copy(_random_input(shape, dtype, args.seed + i))
            first_shape = layouts[names[0]][0] if names else ()
            items = batch if batch is not None else (first_shape[0] if first_shape else 1)
            times = []
            for i in range(args.warmup + args.iter):
                start = time.perf_counter()
                network.forward()
                network.wait()
                if i >= args.warmup:
                    times.append(time.perf_counter() - start)
                done += 1
                progress("bench", done, total, show)
            row = {"threads": nthreads, "batch": items, **_latency(times)}
            row["items_per_s"] = items / (row["median_ms"] / 1e3)
            rows.append(row)
    if args.json:
        print(json.dumps({"model": args.model, "device": args.device, "warmup": args.warmup, "iter": args.iter,
                          "results": rows}, indent=1))
        return 0
    print(f"model {args.model} ({args.device}): {args.iter} runs after {args.warmup} warm-up per row")
    print(f"{'threads':>7} {'batch':>6} {'median ms':>10} {'p90 ms':>9} {'items/s':>10}")
    for row in rows:
        print(f"{row['threads']:>7} {row['batch']:>6} {row['median_ms']:>10.3f} {row['p90_ms']:>9.3f} "
              f"{row['items_per_s']:>10.1f}")
    return 0


# ---------------------------------------------------------------------------------------------- convert

EXTERNAL_DATA_BYTES = 1_800_000_000  # protobuf cannot serialize messages of 2 GiB or more


def cmd_convert(args) -> int:
    import onnx

    from .export import export_onnx

    opset = args.opset if args.opset is not None else OPSET
    newest = onnx.defs.onnx_opset_version()
    if not OPSET <= opset <= newest:
        raise UsageError(f"--opset {opset}: the model is lowered to opset {OPSET}; choose {OPSET} to {newest}")
    record = _read_record(args.model)
    show = _show_progress(args)
    model = export_onnx(record, opset, args.dynamic_batch,
                        progress=lambda done, total: progress("lowering", done, total, show), warn=_warn)
    weight_bytes = sum(len(t.raw_data) for t in model.graph.initializer)
    external = weight_bytes >= EXTERNAL_DATA_BYTES
    try:
        if external:
            onnx.save_model(model, args.output, save_as_external_data=True,
                            location=os.path.basename(args.output) + ".data")
            onnx.checker.check_model(args.output)
        else:
            onnx.checker.check_model(model)
            onnx.save_model(model, args.output)
    except OSError as exc:
        raise CommandError(f"{args.output}: {exc.strerror or exc}") from None
    except onnx.checker.ValidationError as exc:
        raise CommandError(f"the exported model fails onnx.checker: {_one_line(exc)}") from None

    def describe(values):
        out = []
        for v in values:
            dims = [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name
            out.append({"name": v.name, "shape": dims, "dtype": dtype})
        return out

    result = {"model": args.model, "output": args.output, "opset": opset, "dynamic_batch": args.dynamic_batch,
              "nodes": len(model.graph.node), "initializers": len(model.graph.initializer),
              "weight_bytes": weight_bytes, "external_data": external,
              "inputs": describe(model.graph.input), "outputs": describe(model.graph.output)}
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"wrote {args.output}: opset {opset}, {result['nodes']} nodes, {result['initializers']} initializers "
          f"({_fmt_bytes(weight_bytes)}{', external data' if external else ''})")
    for role in ("inputs", "outputs"):
        for io in result[role]:
            print(f"  {role[:-1]:<6} {io['name']}  {_fmt_shape(io['shape'])} {io['dtype']}")
    return 0


# ---------------------------------------------------------------------------------------------- serve, run-dataset

def _ray_module(what: str):
    """``megenginelite.ray.WHAT``; a missing Ray is a one-line error naming the extra to install."""
    import importlib

    try:
        importlib.import_module("ray")
        return importlib.import_module(f"megenginelite.ray.{what}")
    except ImportError as exc:
        raise CommandError(f"this command needs Ray: pip install 'megenginelite[serve]' ({exc})") from None


def _replicas(text: str) -> tuple[int, int | None]:
    """``N`` (a fixed count) or ``MIN-MAX`` (autoscaling bounds) -> (N or MIN, None or MAX)."""
    low, sep, high = text.partition("-")
    try:
        bounds = (int(low), int(high) if sep else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or MIN-MAX, got {text!r}") from None
    if bounds[0] <= 0 or (bounds[1] is not None and bounds[1] < bounds[0]):
        raise argparse.ArgumentTypeError(f"expected N >= 1 or 1 <= MIN <= MAX, got {text!r}")
    return bounds


def _model_bytes(path: str) -> bytes:
    _check_model_file(path)
    with open(path, "rb") as f:
        return f.read()


def cmd_serve(args) -> int:
    serving = _ray_module("serve")
    from ..ray.runner import ModelRunner

    name = args.name or os.path.splitext(os.path.basename(args.model))[0]
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise UsageError(f"--name {name!r}: use letters, digits, '_', '.' and '-' (it is part of the URLs)")
    if args.batch_wait_ms < 0 or not args.max_request_mb > 0:
        raise UsageError("--batch-wait-ms takes a number >= 0 and --max-request-mb a number > 0")
    model = _model_bytes(args.model)
    batching = ModelRunner(model, device=args.device, threads=args.threads, max_batch=min(args.max_batch, 2)).batching
    if args.max_batch > 1 and not batching:
        _warn("dim 0 of this model is not a batch dim (two stacked samples do not give the two outputs): "
              "requests are served one per forward, with the model's exact shapes")
    low, high = args.replicas
    options = serving.ServeOptions(name=name, device=args.device, threads=args.threads,
                                   max_batch=args.max_batch if batching else 1, batch_wait_ms=args.batch_wait_ms,
                                   max_request_bytes=int(args.max_request_mb * 2**20), replicas=low,
                                   min_replicas=low if high else None, max_replicas=high,
                                   num_cpus=args.replica_cpus)

    def ready(url: str) -> None:
        info = {"model": args.model, "name": name, "url": url, "replicas": f"{low}-{high}" if high else low,
                "max_batch": options.max_batch, "batch_wait_ms": args.batch_wait_ms, "address": args.address}
        if args.json:
            print(json.dumps(info), flush=True)
        else:
            batches = (f"batches of up to {options.max_batch} requests ({args.batch_wait_ms:g} ms wait)"
                       if options.max_batch > 1 else "no batching")
            print(f"serving {name} at {url} ({info['replicas']} replica(s), {batches}); Ctrl-C stops", flush=True)

    try:
        serving.serve_until_stopped(model, options, host=args.host, port=args.port, address=args.address,
                                    num_cpus=args.ray_cpus, access_log=args.access_log, ready=ready)
    except ConnectionError as exc:
        raise CommandError(f"cannot reach the Ray cluster at {args.address}: {_one_line(exc)}") from None
    return 0


def cmd_run_dataset(args) -> int:
    data = _ray_module("data")
    import ray

    from ..ray import init_ray

    model = _model_bytes(args.model)
    if not os.path.isdir(args.input_dir):
        raise CommandError(f"{args.input_dir}: not a directory")
    show = _show_progress(args)
    start = time.perf_counter()
    init_ray(args.address, args.ray_cpus)
    try:
        written = data.run_folder(model, args.input_dir, args.output_dir, batch_size=args.batch_size,
                                  concurrency=args.concurrency, threads=args.threads, device=args.device,
                                  progress=lambda done, total: progress("infer", done, total, show))
    finally:
        ray.shutdown()
    seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps({"model": args.model, "input_dir": args.input_dir, "output_dir": args.output_dir,
                          "samples": len(written), "seconds": seconds}, indent=1))
    else:
        print(f"wrote {len(written)} outputs to {args.output_dir} in {seconds:.1f} s "
              f"({len(written) / seconds:.1f} samples/s, including Ray's start)")
    return 0


# ---------------------------------------------------------------------------------------------- parser

def _ray_options(p: argparse.ArgumentParser, worker: str, address_use: str) -> None:
    """The options ``serve`` and ``run-dataset`` share: each ``worker`` (replica, actor) holds one network."""
    p.add_argument("--threads", type=_positive, default=1, metavar="N", help=f"threads per forward per {worker}")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help=f"where {worker}s run (default cpu)")
    p.add_argument("--address", help=f"a running Ray cluster to {address_use} (default: a local Ray instance)")
    p.add_argument("--ray-cpus", type=_positive, metavar="N", help="CPUs of the local Ray instance (default all)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, formatter_class=_Formatter,
                     description="Inspect, run, benchmark and convert MegEngine .mge models (megenginelite: the "
                                 "MegEngine Lite API on ONNX Runtime).",
                     epilog=f"Run '{PROG} COMMAND --help' for the options of a command. Exit status: 0 success, "
                            "1 model or runtime error, 2 bad usage.")
    parser.add_argument("--version", action="version", version=f"{PROG} {version}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("info", formatter_class=_Formatter,
                       help="show a model's format, inputs/outputs, operators, parameters and FLOPs",
                       description="Describe a model: file format and versions, inputs and outputs (in MegEngine "
                                   "Lite's order), operator histograms, constant parameters and estimated FLOPs "
                                   "(convolution, deconvolution, matmul, batched matmul: 2 per multiply-add; "
                                   "element-wise: 1 per element).")
    p.add_argument("model", metavar="MODEL", help="the .mge file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("run", formatter_class=_Formatter,
                       help="run a model once (or N times) and print/save its outputs",
                       description="Load a model with LiteNetwork, feed its inputs, run it, print each output's "
                                   "shape, dtype and statistics; optionally save outputs and time repeated runs.",
                       epilog="examples:\n\n"
                              "  megenginelite run net.mge --input data=img.npy --output-dir out/\n"
                              "  megenginelite run net.mge --iter 100 --warmup 5 --threads 4")
    p.add_argument("model", metavar="MODEL", help="the .mge file")
    p.add_argument("--input", action="append", default=[], metavar="NAME=VALUE",
                   help="VALUE is FILE.npy, 'random' (the default) or 'zeros'; for a single-input model NAME= may "
                        "be left out; repeat for several inputs")
    p.add_argument("--output-dir", metavar="DIR", help="save each output as DIR/<name>.npy")
    p.add_argument("--iter", type=_positive, metavar="N", help="timed forwards; prints latency statistics")
    p.add_argument("--warmup", type=_non_negative, metavar="N", help="untimed forwards first (default 1 with --iter)")
    p.add_argument("--profile", metavar="FILE.json",
                   help="write a per-operator profile (LiteNetwork.enable_profile_performance)")
    p.add_argument("--io-dump", metavar="DIR",
                   help="dump every operator's inputs/outputs as text to DIR/io_dump.txt (LiteNetwork.io_txt_dump)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--threads", type=_positive, default=1, metavar="N", help="threads per forward (default 1)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to run (default cpu)")
    p.add_argument("--seed", type=_non_negative, default=0, metavar="N",
                   help="seed of the random inputs: input i gets RandomState(seed + i).uniform(0, 1) cast to its "
                        "dtype, so integer inputs get 0 (default 0)")
    p.add_argument("--progress", action="store_true", help="draw the progress bar even when stderr is no TTY")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("bench", formatter_class=_Formatter,
                       help="latency and throughput for thread counts and batch sizes",
                       description="Measure forward latency (median, p90) and throughput for every combination "
                                   "of thread count and batch size, on random inputs.")
    p.add_argument("model", metavar="MODEL", help="the .mge file")
    p.add_argument("--threads", default="1", metavar="N[,N...]", help="thread counts (default 1)")
    p.add_argument("--batch", metavar="N[,N...]", help="batch sizes: dim 0 of every input (default: the model's)")
    p.add_argument("--iter", type=_positive, default=20, metavar="N", help="timed forwards per row (default 20)")
    p.add_argument("--warmup", type=_non_negative, default=2, metavar="N",
                   help="untimed forwards per row first (default 2)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to run (default cpu)")
    p.add_argument("--seed", type=_non_negative, default=0, metavar="N", help="seed of the random inputs (default 0)")
    p.add_argument("--progress", action="store_true", help="draw the progress bar even when stderr is no TTY")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("convert", formatter_class=_Formatter, help="write the model as a standalone ONNX file",
                       description="Lower the model to ONNX (the graph megenginelite runs) and write it as a "
                                   "standalone file that keeps the model's input and output names.")
    p.add_argument("model", metavar="MODEL.mge", help="the .mge file")
    p.add_argument("output", metavar="OUT.onnx", help="the ONNX file to write")
    p.add_argument("--opset", type=int, metavar="N",
                   help=f"ONNX opset (default and minimum {OPSET}, the opset the lowering targets)")
    p.add_argument("--dynamic-batch", action="store_true",
                   help="make dim 0 of inputs and outputs symbolic ('batch'); refused for models whose graph "
                        "bakes the batch size in")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--progress", action="store_true", help="draw the progress bar even when stderr is no TTY")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("serve", formatter_class=_Formatter,
                       help="serve a model over HTTP (KServe v2 / Triton protocol) on Ray Serve",
                       description="Serve the model on Ray Serve with the KServe v2 (Triton) HTTP inference "
                                   "protocol: tritonclient.http and curl work unchanged. Each replica holds one "
                                   "LiteNetwork; requests of one input shape arriving within --batch-wait-ms are "
                                   "stacked along dim 0 into one forward. Without --address a local Ray instance "
                                   "is started in this process; with it the model is deployed on that cluster. "
                                   "SIGINT or SIGTERM stops serving. Needs the 'serve' extra.",
                       epilog="examples:\n\n"
                              "  megenginelite serve net.mge --port 8000 --max-batch 16 --replicas 2\n"
                              "  curl localhost:8000/v2/models/net")
    p.add_argument("model", metavar="MODEL", help="the .mge file")
    p.add_argument("--name", help="the model's name in the URLs (default: the file's stem)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_positive, default=8000, help="HTTP port (default 8000)")
    p.add_argument("--replicas", type=_replicas, default=(1, None), metavar="N|MIN-MAX",
                   help="replicas: a fixed count, or autoscaling bounds (default 1)")
    _ray_options(p, "replica", "deploy on (e.g. 'auto' or HOST:6379)")
    p.add_argument("--max-batch", type=_positive, default=8, metavar="N",
                   help="most requests stacked into one forward; 1 turns batching off (default 8)")
    p.add_argument("--batch-wait-ms", type=float, default=5.0, metavar="MS",
                   help="how long a batch waits for more requests (default 5)")
    p.add_argument("--max-request-mb", type=float, default=16.0, metavar="MB",
                   help="larger request bodies are refused with HTTP 413 (default 16)")
    p.add_argument("--replica-cpus", type=float, metavar="X", help="Ray CPUs reserved per replica (default --threads)")
    p.add_argument("--access-log", action="store_true", help="replicas log every request (Ray Serve's logs)")
    p.add_argument("--json", action="store_true", help="print one JSON line once serving")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("run-dataset", formatter_class=_Formatter,
                       help="run a model over a folder of .npy files with Ray Data",
                       description="Run a single-input model over every *.npy file of INPUT_DIR (each one input of "
                                   "the model's shape, as 'run --input' takes) with Ray Data, one network per "
                                   "actor, and write OUTPUT_DIR/<stem>.npz holding each output. Needs the 'serve' "
                                   "extra.")
    p.add_argument("model", metavar="MODEL", help="the .mge file")
    p.add_argument("input_dir", metavar="INPUT_DIR", help="folder of .npy files")
    p.add_argument("output_dir", metavar="OUTPUT_DIR", help="folder for the .npz outputs")
    p.add_argument("--batch-size", type=_positive, default=16, metavar="N", help="samples per forward (default 16)")
    p.add_argument("--concurrency", type=_positive, default=1, metavar="N", help="actors, one network each")
    _ray_options(p, "actor", "run on")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--progress", action="store_true", help="draw the progress bar even when stderr is no TTY")
    p.set_defaults(func=cmd_run_dataset)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``megenginelite`` console script; returns the exit status."""
    parser = build_parser()
    import onnxruntime  # noqa: PLC0415

    onnxruntime.set_default_logger_severity(4)  # errors reach the user as one line from us, not as ORT log lines
    try:
        args = parser.parse_args(argv)
        return args.func(args)
    except UsageError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (CommandError, LiteError, OSError, ValueError) as exc:
        message = f"{exc.filename}: {exc.strerror}" if isinstance(exc, OSError) and exc.filename else str(exc)
        print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, with the exception type
        print(f"{PROG}: error: internal error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
