"""Serving throughput and latency: ``megenginelite serve`` (Ray Serve) against a hand-written HTTP server.

    python bench/bench_serve.py tests/fixtures/shufflenet_v2.mge [--seconds 8] [--clients 1,8,32] [--json out.json]

Every server speaks the same KServe v2 ``infer`` endpoint and gets the same requests: one (1, 3, 224, 224) float32
input as binary tensor data (what tritonclient sends), the output asked back as binary. The clients are threads
of this process, each with its own keep-alive connection sending its next request when the last one is
answered; each cell warms up for 2 s (new batch sizes compile then), then counts answered requests and their
latencies for ``--seconds``.

Servers (each in its own process, started and stopped here, with the machine's cores given to the forwards):
- **plain**: ``ThreadingHTTPServer`` around one ``LiteNetwork`` (a lock around set-input/forward/read-output,
  ``--threads`` = all cores): what a user would write by hand. It parses and answers with our protocol module,
  so the only difference from the Ray cells is the serving machinery.
- **ray**: ``megenginelite serve`` on a local Ray, batching on (``--max-batch 32 --batch-wait-ms 2``) and off,
  with 1 replica (all cores) and 2 replicas (cores split).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from machine import describe  # bench/, the script's own folder
from megenginelite.ray.protocol import HEADER_LENGTH, encode_infer, error_body, parse_infer

ROOT = Path(__file__).resolve().parents[1]

WARMUP_S = 2.0


# ------------------------------------------------------------------------------------------- the plain server

def plain_server(model: str, port: int, threads: int) -> None:
    """Serve ``model`` at /v2/models/NAME/infer with http.server, one network behind a lock."""
    from megenginelite import LiteNetwork

    network = LiteNetwork()
    network.threads_number = threads
    network.load(model)
    name = Path(model).stem
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the clients expect
        disable_nagle_algorithm = True  # else headers and body in two writes wait 40 ms for a delayed ACK

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                request = parse_infer(body, self.headers.get(HEADER_LENGTH))
                with lock:
                    for key, arr in request.inputs.items():
                        network.get_io_tensor(key).set_data_by_copy(arr)
                    network.forward()
                    network.wait()
                    outputs = {n: network.get_io_tensor(n).to_numpy() for n in network.get_all_output_name()}
                payload, headers = encode_infer(name, request, outputs)
                status = 200
            except Exception as exc:
                payload, headers, status = error_body(str(exc)), {"Content-Type": "application/json"}, 400
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(json.dumps({"url": f"http://127.0.0.1:{port}/v2/models/{name}"}), flush=True)
    server.serve_forever()


# ------------------------------------------------------------------------------------------- the clients

def request_body(name: str, x: np.ndarray) -> tuple[bytes, dict]:
    header = json.dumps({"inputs": [{"name": name, "datatype": "FP32", "shape": list(x.shape),
                                     "parameters": {"binary_data_size": x.nbytes}}],
                         "parameters": {"binary_data_output": True}}).encode()
    return header + x.tobytes(), {HEADER_LENGTH: str(len(header)), "Content-Type": "application/octet-stream"}


def load(port: int, path: str, body: bytes, headers: dict, clients: int, seconds: float) -> dict:
    """``clients`` closed-loop clients for WARMUP_S + ``seconds``; requests/s and latency percentiles of the
    requests sent after the warm-up."""
    start = time.monotonic()
    measure_from, stop_at = start + WARMUP_S, start + WARMUP_S + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while (sent := time.monotonic()) < stop_at:
            try:
                conn.request("POST", path, body, headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn, ok = http.client.HTTPConnection("127.0.0.1", port, timeout=60), False
            if sent >= measure_from:
                if ok:
                    latencies[i].append(time.monotonic() - sent)
                else:
                    errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ms = np.array([v for per in latencies for v in per]) * 1e3
    return {"clients": clients, "requests": int(ms.size), "errors": sum(errors), "rps": ms.size / seconds,
            "p50_ms": float(np.percentile(ms, 50)) if ms.size else None,
            "p99_ms": float(np.percentile(ms, 99)) if ms.size else None}


# ------------------------------------------------------------------------------------------- driving servers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        json.loads(lines.get(timeout=180))
    except queue.Empty:
        proc.kill()
        raise SystemExit(f"server did not start: {command}")
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per cell (default 8)")
    parser.add_argument("--clients", default="1,8,32", help="concurrent clients per cell (default 1,8,32)")
    parser.add_argument("--cores", type=int, default=os.cpu_count(), help="threads for the forwards in all")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--plain-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    print(describe(), flush=True)
    if args.plain_server:
        plain_server(args.model, args.plain_server, args.cores)
        return
    name = Path(args.model).stem
    x = np.random.RandomState(0).uniform(0, 1, (1, 3, 224, 224)).astype(np.float32)
    body, headers = request_body("data", x)
    path = f"/v2/models/{name}/infer"
    servers = [("plain (http.server)", [__file__, args.model, "--cores", str(args.cores)], True)]
    for replicas in (1, 2):
        for batching in (True, False):
            label = (f"ray serve, {replicas} replica{'s' if replicas > 1 else ''}, "
                     f"batching {'on' if batching else 'off'}")
            servers.append((label, ["-m", "megenginelite", "serve", args.model, "--json", "--ray-cpus",
                                    str(args.cores), "--replicas", str(replicas),
                                    "--threads", str(max(1, args.cores // replicas)),
                                    "--max-batch", "32" if batching else "1", "--batch-wait-ms", "2"], False))
    results = []
    print(f"{'server':<40} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}", flush=True)
    for label, command, plain in servers:
        port = free_port()
        proc = start([sys.executable, *command, *(["--plain-server", str(port)] if plain else ["--port", str(port)])])
        try:
            for clients in (int(c) for c in args.clients.split(",")):
                row = {"server": label, **load(port, path, body, headers, clients, args.seconds)}
                results.append(row)
                print(f"{label:<40} {clients:>7} {row['rps']:>8.1f} {row['p50_ms'] or 0:>8.1f} "
                      f"{row['p99_ms'] or 0:>8.1f} {row['errors']:>6}", flush=True)
        finally:
            stop(proc)
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "cores": args.cores, "seconds": args.seconds,
                                               "results": results}, indent=1))


if __name__ == "__main__":
    main()
