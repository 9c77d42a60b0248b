"""``megenginelite serve`` on a local Ray, driven by tritonclient's HTTP client and by raw HTTP: the outputs of a
direct run, many concurrent clients, bad requests answered with 400, a replica killed under load; and Ray Data
batch inference (``Predictor``, ``megenginelite run-dataset``). Every HTTP call has a timeout."""

from __future__ import annotations

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import BY_NAME, assert_matches, model_path, reference
from megenginelite.ray import Predictor
from megenginelite.ray.runner import ModelRunner

httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient is not installed")
from tritonclient.utils import InferenceServerException  # noqa: E402

SHUFFLENET = BY_NAME["shufflenet_v2"]
MODEL = "shufflenet_v2"
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60.0  # every HTTP call and every wait: a hang fails the test instead of blocking it
MAX_REQUEST_MB = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def _start(args: list, log) -> tuple[subprocess.Popen, str]:
    """``python -m megenginelite ARGS`` (stderr into ``log``: a pipe could fill and block it) and its first line
    of output, which a server prints once it answers; fails the test if none comes within 180 s."""
    proc = subprocess.Popen([sys.executable, "-m", "megenginelite", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=log, text=True, env=_env(), cwd=ROOT)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    deadline = time.monotonic() + 180
    while True:
        try:
            return proc, lines.get(timeout=1)
        except queue.Empty:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.seek(0)
                pytest.fail(f"megenginelite {args[0]} did not start: {log.read()[-2000:]}")


def _stop(proc: subprocess.Popen, log, sig: int) -> None:
    """Send ``sig``: the server must end by itself with status 0."""
    try:
        proc.send_signal(sig)
        status = proc.wait(timeout=90)
        log.seek(0)
        assert status == 0, log.read()[-2000:]
    finally:
        proc.kill()


@pytest.fixture(scope="module")
def server(ray_session, tmp_path_factory):
    """``megenginelite serve`` in a subprocess, deployed on the test session's Ray (replicas reserve no CPU, so
    Ray Data has the session's 2); stopped with SIGTERM."""
    port = _free_port()
    with open(tmp_path_factory.mktemp("serve") / "log", "w+") as log:
        proc, line = _start(["serve", model_path(SHUFFLENET), "--port", port, "--json", "--address",
                             ray_session.get_runtime_context().gcs_address, "--replica-cpus", "0",
                             "--max-request-mb", MAX_REQUEST_MB], log)
        try:
            assert json.loads(line)["url"] == f"http://127.0.0.1:{port}/v2/models/{MODEL}"
            yield f"127.0.0.1:{port}"
        finally:
            _stop(proc, log, signal.SIGTERM)


def _client(url: str):
    return httpclient.InferenceServerClient(url, connection_timeout=TIMEOUT_S, network_timeout=TIMEOUT_S)


def _infer(client, x: np.ndarray, binary: bool = True, model: str = MODEL) -> np.ndarray:
    tensor = httpclient.InferInput("data", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    result = client.infer(model, [tensor], outputs=[httpclient.InferRequestedOutput("Softmax", binary_data=binary)])
    return result.as_numpy("Softmax")


def _inputs(n: int, seed: int) -> list[np.ndarray]:
    return [np.random.default_rng(seed + i).random((1, 3, 224, 224), np.float32) for i in range(n)]


@pytest.fixture(scope="module")
def direct():
    """Direct runs: one ``LiteNetwork`` (through the runner), one forward per input."""
    runner = ModelRunner(model_path(SHUFFLENET), max_batch=1)
    return lambda x: runner.forward({"data": x})["Softmax"]


def test_health_and_metadata(server):
    client = _client(server)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(MODEL)
    assert not client.is_model_ready("nosuch")
    meta = client.get_model_metadata(MODEL)
    assert meta["inputs"] == [{"name": "data", "datatype": "FP32", "shape": [-1, 3, 224, 224]}]
    assert meta["outputs"] == [{"name": "Softmax", "datatype": "FP32", "shape": [-1, 1000]}]
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_gets_exactly_the_direct_runs_outputs(server, direct, binary):
    ref = reference(SHUFFLENET)
    got = _infer(_client(server), ref["input:data"], binary)
    np.testing.assert_array_equal(got, direct(ref["input:data"]))
    assert_matches(SHUFFLENET, got, ref["output:Softmax"], "Softmax")


def test_a_batch_in_one_request_matches_megengines_batch_4_reference(server):
    with np.load(ROOT / "tests" / "fixtures" / "shufflenet_v2_b4.npz") as ref:
        got = _infer(_client(server), ref["input:data"])
        assert_matches(SHUFFLENET, got, ref["output:Softmax"], "Softmax (batch 4)")


def test_500_requests_from_16_concurrent_clients_each_get_their_own_answer(server, direct):
    inputs = _inputs(500, seed=1000)
    want = [direct(x) for x in inputs]
    local = threading.local()

    def call(i: int) -> np.ndarray:
        if not hasattr(local, "client"):
            local.client = _client(server)
        return _infer(local.client, inputs[i])

    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(call, range(500), timeout=600))
    for i, (g, w) in enumerate(zip(got, want)):  # batched forwards may differ from single ones in the last bits
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-7, err_msg=f"request {i}")


def _post(server: str, path: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    host, port = server.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT_S)
    try:
        conn.request("POST", path, body, headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _json_request(**fields) -> bytes:
    tensor = {"name": "data", "datatype": "FP32", "shape": [1, 3, 224, 224], **fields}
    if "data" not in tensor and "parameters" not in tensor:
        tensor["data"] = [0.5] * int(np.prod(tensor["shape"]))
    return json.dumps({"inputs": [tensor]}).encode()


def _binary_request(size: int, data: bytes) -> tuple[bytes, dict]:
    header = json.dumps({"inputs": [{"name": "data", "datatype": "FP32", "shape": [1, 3, 224, 224],
                                     "parameters": {"binary_data_size": size}}]}).encode()
    return header + data, {"Inference-Header-Content-Length": str(len(header))}


INFER = f"/v2/models/{MODEL}/infer"
BAD_REQUESTS = {
    "unknown input name": (INFER, _json_request(name="image"), {}, 400, "unknown input 'image'"),
    "wrong dtype": (INFER, _json_request(datatype="INT32", data=[1] * 3 * 224 * 224), {}, 400,
                    "datatype int32 does not match"),
    "wrong shape": (INFER, _json_request(shape=[1, 3, 224, 223]), {}, 400, "does not match the model's"),
    "unknown datatype string": (INFER, _json_request(datatype="float"), {}, 400, "unsupported datatype 'float'"),
    "malformed JSON": (INFER, b'{"inputs": [', {}, 400, "malformed JSON"),
    "too few values": (INFER, _json_request(data=[0.5] * 10), {}, 400, "holds 10 values"),
    "binary size mismatch": (INFER, *_binary_request(16, bytes(16)), 400, "binary_data_size 16 does not match"),
    "header length past the body": (INFER, b"{}", {"Inference-Header-Content-Length": "1000"}, 400,
                                    "outside the body"),
    "too large": (INFER, bytes(MAX_REQUEST_MB * 2**20 + 1), {}, 413, "exceeds the limit"),
    "unknown model": ("/v2/models/nosuch/infer", _json_request(), {}, 404, "unknown model 'nosuch'"),
    "unknown version": (f"/v2/models/{MODEL}/versions/2/infer", _json_request(), {}, 404, "unknown version '2'"),
}


def test_bad_requests_get_a_v2_error_and_the_replica_lives_on(server, direct):
    for what, (path, body, headers, status, message) in BAD_REQUESTS.items():
        got_status, got = _post(server, path, body, headers)
        assert (got_status, list(got)) == (status, ["error"]), what
        assert message in got["error"], (what, got["error"])
    x = _inputs(1, seed=7)[0]
    np.testing.assert_array_equal(_infer(_client(server), x), direct(x))


def test_ray_data_over_200_samples_equals_direct_runs(ray_session, direct):
    import ray

    def sample(i: int) -> np.ndarray:  # sample i, without the batch dim (defined here: Ray pickles it by value)
        return np.random.default_rng(5000 + int(i)).random((1, 3, 224, 224), np.float32)[0]

    def make(batch: dict) -> dict:
        return {"id": batch["id"], "data": np.stack([sample(i) for i in batch["id"]])}

    dataset = (ray.data.range(200).map_batches(make, batch_size=25, num_cpus=0.5)
               .map_batches(Predictor, fn_constructor_args=(model_path(SHUFFLENET),),
                            fn_constructor_kwargs={"keep": ("id",)}, concurrency=1, batch_size=16, num_cpus=1))
    rows = {int(i): out for batch in dataset.iter_batches(batch_size=None, batch_format="numpy")
            for i, out in zip(batch["id"], batch["Softmax"])}
    assert sorted(rows) == list(range(200))
    for i in range(200):
        np.testing.assert_allclose(rows[i][None], direct(sample(i)[None]), rtol=1e-4, atol=1e-7)


def test_run_dataset_writes_the_direct_runs_outputs(ray_session, direct, tmp_path):
    inputs = _inputs(6, seed=300)
    for i, x in enumerate(inputs):
        np.save(tmp_path / f"sample{i}.npy", x)
    out = subprocess.run([sys.executable, "-m", "megenginelite", "run-dataset", model_path(SHUFFLENET), str(tmp_path),
                          str(tmp_path / "out"), "--batch-size", "4", "--json",
                          "--address", ray_session.get_runtime_context().gcs_address],
                         capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout)["samples"] == 6
    for i, x in enumerate(inputs):
        with np.load(tmp_path / "out" / f"sample{i}.npz") as saved:
            np.testing.assert_allclose(saved["Softmax"], direct(x), rtol=1e-4, atol=1e-7)


def _replicas(ray) -> list[str]:
    from ray.util import list_named_actors

    return sorted(a["name"] for a in list_named_actors(all_namespaces=True)
                  if "SERVE_REPLICA" in a["name"] and MODEL in a["name"])


def test_a_replica_killed_under_load_is_replaced_and_no_request_hangs(server, direct, ray_session):
    """Kill the only replica while 8 clients send 200 requests: each request is answered correctly or gets a
    clean error (none hangs, none gets a wrong answer), and Ray starts a new replica that serves again."""
    ray = ray_session
    (victim,) = _replicas(ray)
    inputs = _inputs(200, seed=2000)
    want = [direct(x) for x in inputs]
    done = threading.Semaphore(0)
    local = threading.local()

    def call(i: int) -> str:
        if not hasattr(local, "client"):
            local.client = _client(server)
        start = time.monotonic()
        try:
            got = _infer(local.client, inputs[i])
        except InferenceServerException:
            return "error"
        except Exception as exc:  # a timeout or a broken connection: the kind is the finding
            return f"{type(exc).__name__} after {time.monotonic() - start:.1f} s"
        finally:
            done.release()
        np.testing.assert_allclose(got, want[i], rtol=1e-4, atol=1e-7, err_msg=f"request {i}")
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(call, i) for i in range(200)]
        for _ in range(40):
            assert done.acquire(timeout=TIMEOUT_S)
        ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
        outcomes = [f.result(timeout=10 * TIMEOUT_S) for f in futures]
    counts = {kind: outcomes.count(kind) for kind in sorted(set(outcomes))}
    print(f"\nreplica killed after 40 of 200 requests: {counts}")
    assert set(counts) <= {"ok", "error"}, counts
    assert counts.get("ok", 0) >= 40
    deadline = time.monotonic() + TIMEOUT_S
    while not (_replicas(ray) and _replicas(ray) != [victim]):
        assert time.monotonic() < deadline, "no new replica"
        time.sleep(0.5)
    x = _inputs(1, seed=9)[0]
    np.testing.assert_array_equal(_infer(_client(server), x), direct(x))


def test_serve_without_address_starts_its_own_ray_and_stops_on_sigint(ray_session, direct, tmp_path):
    """Beside the session's Ray (which it must not join), a local instance of its own; Ctrl-C ends it with 0."""
    port = _free_port()
    with open(tmp_path / "log", "w+") as log:
        proc, line = _start(["serve", model_path(SHUFFLENET), "--port", port, "--ray-cpus", 1, "--max-batch", 1,
                             "--name", "local_model"], log)
        try:
            assert line.startswith(f"serving local_model at http://127.0.0.1:{port}/v2/models/local_model"), line
            client = _client(f"127.0.0.1:{port}")
            assert client.is_model_ready("local_model")
            x = _inputs(1, seed=11)[0]
            np.testing.assert_array_equal(_infer(client, x, model="local_model"), direct(x))
            assert "local_model" not in str(ray_session.util.list_named_actors(all_namespaces=True))
        finally:
            _stop(proc, log, signal.SIGINT)
