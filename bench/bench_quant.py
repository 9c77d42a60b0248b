"""Quantized models, side by side in one run: ours on the quantized file vs the real Lite on the same file vs ours
on the float model of the same network.

    PY="$(cd .. && shared/tools/real-megengine)"; "$PY" tools/make_bench_models.py --quantized
    python bench/bench_quant.py --real-python "$PY"

The models (bench/models/q_<net>_b<batch>.mge and q_<net>_float_b<batch>.mge, 224x224, full width) come from
tools/make_bench_models.py: the structure of MegEngine's official quantization example, calibrated and quantized
by MegEngine 1.13. Runtimes alternate in rounds (as in bench_latency.py) so that machine noise hits them alike.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench_latency import RealWorker, alternate, model_feeds, ours_runner, summarize
from machine import describe

MODELS = Path(__file__).resolve().parent / "models"
def measure(net: str, batch: int, threads: int, rounds: int, per_round: int, real_python: str | None) -> dict:
    quantized, floating = str(MODELS / f"q_{net}_b{batch}.mge"), str(MODELS / f"q_{net}_float_b{batch}.mge")
    feeds = model_feeds(quantized, batch)
    runners = {"ours_int8": ours_runner(quantized, threads, feeds), "ours_float": ours_runner(floating, threads, feeds)}
    worker = None
    if real_python:
        worker = RealWorker(real_python, quantized, threads, feeds)
        runners["real_lite_int8"] = worker.run
    for run in runners.values():
        run(2)  # warm-up
    times = alternate(runners, rounds, per_round)
    if worker:
        worker.close()
    row = {"net": net, "batch": batch, "threads": threads}
    row.update({name: summarize(t) for name, t in times.items()})
    row["int8/float"] = row["ours_int8"]["median_ms"] / row["ours_float"]["median_ms"]
    if worker:
        row["ours/real_lite"] = row["ours_int8"]["median_ms"] / row["real_lite_int8"]["median_ms"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="resnet18,mobilenetv2")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds per runtime")
    parser.add_argument("--forwards", type=int, default=40, help="forwards per runtime and configuration at batch 1 "
                                                                  "(divided by the batch size, at least 2 per round)")
    parser.add_argument("--real-python", help="a Python that has the real megenginelite (MegEngine 1.13)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    print(describe(), flush=True)
    rows = []
    for net in args.nets.split(","):
        for batch in [int(b) for b in args.batches.split(",")]:
            for threads in [int(t) for t in args.threads.split(",")]:
                per_round = max(2, args.forwards // (batch * args.rounds))
                row = measure(net, batch, threads, args.rounds, per_round, args.real_python)
                rows.append(row)
                if not args.json:
                    parts = [f"{net:12s} batch={batch:<3d} threads={threads}"]
                    for name in ("ours_int8", "real_lite_int8", "ours_float"):
                        if name in row:
                            parts.append(f"{name} {row[name]['median_ms']:8.2f} ms ({row[name]['runs']} runs)")
                    if "ours/real_lite" in row:
                        parts.append(f"ours/real_lite={row['ours/real_lite']:.2f}")
                    parts.append(f"int8/float={row['int8/float']:.2f}")
                    print("  ".join(parts), flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
