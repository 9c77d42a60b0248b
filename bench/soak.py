"""Soak test: many forwards and many load/unload cycles, with the process's resident memory sampled.

    python bench/soak.py                                   # 10,000 forwards + 1,000 loads (a few minutes)
    python bench/soak.py --forwards 300 --loads 30         # the short version tests/runtime/test_soak.py runs
    python bench/soak.py --json soak.json

Phase 1 runs ``--forwards`` forwards of one network (``--model``, default resnet18_small), setting its input by copy
before each and reading the output with ``to_numpy``. Phase 2 creates, loads (from bytes), runs once and drops
``--loads`` networks (``--load-model``, default two_in_two_out, plus every ``--heavy-every``-th cycle on
``--model``). RSS (``/proc/self/statm``) is sampled ``--samples`` times per phase; the figures reported are the RSS
after the warm-up (the first ``--warmup`` fraction of the phase), at the end, and the least-squares slope of RSS
against iterations after the warm-up (KiB per 1,000 forwards, KiB per 100 loads). A leak of even one small numpy
array per forward shows as a slope of several hundred KiB per 1,000 forwards; memory that is only reused stays
flat (slope within noise, a few KiB).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

from megenginelite import LiteNetwork

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def rss_kib() -> float:
    """Current resident set size in KiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1024


def _feed(net: LiteNetwork, rng: np.random.RandomState) -> None:
    for name in net.get_all_input_name():
        t = net.get_io_tensor(name)
        t.set_data_by_copy(rng.uniform(0, 1, t.layout.shapes).astype(t.layout.dtype))


def _slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of RSS (KiB) per iteration."""
    if len(points) < 2:
        return 0.0
    x = np.array([p[0] for p in points], float)
    y = np.array([p[1] for p in points], float)
    return float(np.polyfit(x, y, 1)[0])


def _summary(points: list[tuple[int, float]], total: int, warmup: float, per: int, seconds: float) -> dict:
    after = [p for p in points if p[0] >= warmup * total]
    return {"iterations": total, "seconds": round(seconds, 2),
            "rss_start_mib": round(points[0][1] / 1024, 1),
            "rss_after_warmup_mib": round(after[0][1] / 1024, 1),
            "rss_end_mib": round(points[-1][1] / 1024, 1),
            "growth_after_warmup_mib": round((after[-1][1] - after[0][1]) / 1024, 2),
            "max_rss_after_warmup_mib": round(max(p[1] for p in after) / 1024, 1),
            f"slope_kib_per_{per}": round(_slope(after) * per, 2),
            "samples": [(i, round(r / 1024, 2)) for i, r in points]}


def soak_forwards(model: Path, n: int, samples: int = 50, warmup: float = 0.1, seed: int = 0) -> dict:
    """``n`` forwards of one network; RSS sampled ``samples`` times."""
    net = LiteNetwork()
    net.load(str(model))
    rng = np.random.RandomState(seed)
    out_name = net.get_all_output_name()[0]
    every = max(1, n // samples)
    points = [(0, rss_kib())]
    start = time.perf_counter()
    for i in range(1, n + 1):
        _feed(net, rng)
        net.forward()
        net.wait()
        net.get_io_tensor(out_name).to_numpy()
        if i % every == 0 or i == n:
            points.append((i, rss_kib()))
    result = _summary(points, n, warmup, 1000, time.perf_counter() - start)
    result["model"] = str(model.relative_to(ROOT)) if model.is_relative_to(ROOT) else str(model)
    result["ms_per_forward"] = round(result["seconds"] / n * 1000, 3)
    return result


def soak_loads(model: Path, n: int, heavy: Path | None = None, heavy_every: int = 10, samples: int = 50,
               warmup: float = 0.1, seed: int = 0) -> dict:
    """``n`` cycles of: new network, load from bytes, one forward, drop it."""
    data = model.read_bytes()
    heavy_data = heavy.read_bytes() if heavy is not None else None
    rng = np.random.RandomState(seed)
    every = max(1, n // samples)
    gc.collect()
    points = [(0, rss_kib())]
    start = time.perf_counter()
    for i in range(1, n + 1):
        net = LiteNetwork()
        net.load(heavy_data if heavy_data is not None and heavy_every and i % heavy_every == 0 else data)
        _feed(net, rng)
        net.forward()
        net.wait()
        del net
        if i % every == 0 or i == n:
            points.append((i, rss_kib()))
    result = _summary(points, n, warmup, 100, time.perf_counter() - start)
    result["model"] = str(model.relative_to(ROOT))
    result["heavy_model"] = str(heavy.relative_to(ROOT)) if heavy is not None else None
    result["heavy_every"] = heavy_every if heavy is not None else None
    result["gc_objects_end"] = len(gc.get_objects())
    return result


def machine() -> str:
    import onnxruntime

    return (f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, numpy {np.__version__}, onnxruntime {onnxruntime.__version__}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(FIXTURES / "resnet18_small.mge"))
    parser.add_argument("--load-model", default=str(FIXTURES / "two_in_two_out.mge"))
    parser.add_argument("--forwards", type=int, default=10000)
    parser.add_argument("--loads", type=int, default=1000)
    parser.add_argument("--heavy-every", type=int, default=10,
                        help="every N-th load cycle loads --model instead of --load-model (0: never)")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=0.1, help="fraction of each phase counted as warm-up")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    report = {"machine": machine(), "initial_rss_mib": round(rss_kib() / 1024, 1)}
    if args.forwards:
        report["forwards"] = soak_forwards(Path(args.model), args.forwards, args.samples, args.warmup)
        f = report["forwards"]
        print(f"forwards: {f['iterations']} of {f['model']} in {f['seconds']} s ({f['ms_per_forward']} ms each); RSS "
              f"{f['rss_start_mib']} MiB at start, {f['rss_after_warmup_mib']} after warm-up, {f['rss_end_mib']} at "
              f"the end; slope after warm-up {f['slope_kib_per_1000']} KiB per 1,000 forwards")
    if args.loads:
        report["loads"] = soak_loads(Path(args.load_model), args.loads,
                                     Path(args.model) if args.heavy_every else None, args.heavy_every, args.samples,
                                     args.warmup)
        r = report["loads"]
        print(f"loads: {r['iterations']} load+forward+drop cycles of {r['model']}"
              + (f" (every {r['heavy_every']}th: {r['heavy_model']})" if r["heavy_model"] else "")
              + f" in {r['seconds']} s; RSS {r['rss_start_mib']} MiB at start, {r['rss_after_warmup_mib']} after "
                f"warm-up, {r['rss_end_mib']} at the end; slope after warm-up {r['slope_kib_per_100']} KiB per 100 "
                f"loads")
    print(f"machine: {report['machine']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
