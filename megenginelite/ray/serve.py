"""``megenginelite serve``: a model served on Ray Serve over the KServe v2 / Triton HTTP protocol.

Each replica holds one ``ModelRunner`` (one ``LiteNetwork``); requests of one input shape that arrive within the
batch wait are stacked into one forward by ``@serve.batch``. Ray runs the HTTP proxy, routes requests to
replicas, restarts replicas that die and scales them, on one machine or a cluster.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from dataclasses import dataclass
from typing import Callable

import ray
from ray import serve
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ..base import version
from ..errors import RequestError
from . import init_ray
from .protocol import HEADER_LENGTH, encode_infer, error_body, model_metadata, parse_infer
from .runner import ModelRunner, Tensors


@dataclass(frozen=True)
class ServeOptions:
    """How a model is served (the ``megenginelite serve`` options)."""

    name: str
    device: str = "cpu"
    threads: int = 1
    max_batch: int = 8  # 1: no batching
    batch_wait_ms: float = 5.0
    max_request_bytes: int = 16 << 20  # with max_ongoing_requests: what the bodies a replica holds can take
    replicas: int = 1
    min_replicas: int | None = None  # with max_replicas: autoscaling instead of a fixed count
    max_replicas: int | None = None
    num_cpus: float | None = None  # Ray CPUs reserved per replica; default: threads


def _json(status: int, value) -> Response:
    return Response(json.dumps(value).encode(), status, media_type="application/json")


def _error(status: int, message: str) -> Response:
    return Response(error_body(message), status, media_type="application/json")


@serve.deployment
class LiteModel:
    """The replica: routes the v2 endpoints of one model, batches ``infer`` calls."""

    def __init__(self, model: bytes, options: ServeOptions):
        self.options = options
        self.runner = ModelRunner(model, device=options.device, threads=options.threads,
                                  max_batch=options.max_batch)
        self._batched.set_max_batch_size(options.max_batch)
        self._batched.set_batch_wait_timeout_s(options.batch_wait_ms / 1e3)
        self.metadata = model_metadata(options.name,
                                       [(s.name, s.dtype, self.runner.shape(s)) for s in self.runner.inputs],
                                       [(s.name, s.dtype, self.runner.shape(s)) for s in self.runner.outputs])

    @serve.batch
    async def _batched(self, requests: list[Tensors]) -> list[Tensors]:
        return await asyncio.to_thread(self.runner.run_many, requests)

    async def _run(self, inputs: Tensors) -> Tensors:
        if self.runner.batching:
            return await self._batched(inputs)
        return await asyncio.to_thread(self.runner.forward, inputs)

    async def _body(self, request: Request) -> bytes:
        """The body, refused (413) past ``max_request_bytes`` before it is read when the client says its length,
        while it is read otherwise."""
        limit = self.options.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestError(f"request body of {int(declared)} bytes exceeds the limit of {limit} bytes", 413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestError(f"request body exceeds the limit of {limit} bytes", 413)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _infer(self, request: Request) -> Response:
        if request.headers.get("content-encoding", "identity") != "identity":
            raise RequestError(f"Content-Encoding {request.headers['content-encoding']!r} is not supported")
        parsed = parse_infer(await self._body(request), request.headers.get(HEADER_LENGTH))
        self.runner.check(parsed.inputs)
        outputs = await self._run(parsed.inputs)
        body, headers = encode_infer(self.options.name, parsed, outputs)
        return Response(body, 200, headers=headers)

    async def __call__(self, request: Request) -> Response:
        parts = request.url.path.strip("/").split("/")
        name = self.options.name
        try:
            if parts[:1] != ["v2"]:
                return _error(404, f"no such endpoint {request.url.path!r} (this server speaks the v2 protocol)")
            rest = parts[1:]
            if rest in ([], ["health", "live"], ["health", "ready"]):
                if request.method != "GET":
                    return _error(405, f"{request.method} is not allowed on {request.url.path}")
                if rest:
                    return _json(200, {"live": True} if rest[1] == "live" else {"ready": True})
                return _json(200, {"name": "megenginelite", "version": version, "extensions": ["binary_tensor_data"]})
            if rest[:1] != ["models"] or len(rest) < 2:
                return _error(404, f"no such endpoint {request.url.path!r}")
            if rest[1] != name:
                return _error(404, f"unknown model {rest[1]!r} (this server has {name!r})")
            rest = rest[2:]
            if rest[:1] == ["versions"]:
                if rest[1:2] != ["1"]:
                    return _error(404, f"unknown version {'/'.join(rest[1:2])!r} of model {name!r} (it has '1')")
                rest = rest[2:]
            if rest == ["infer"]:
                if request.method != "POST":
                    return _error(405, "infer takes POST")
                return await self._infer(request)
            if rest in ([], ["ready"]):
                if request.method != "GET":
                    return _error(405, f"{request.method} is not allowed on {request.url.path}")
                return _json(200, self.metadata if not rest else {"name": name, "ready": True})
            return _error(404, f"no such endpoint {request.url.path!r}")
        except RequestError as exc:
            return _error(exc.status, str(exc))
        except ClientDisconnect:
            return _error(400, "the client disconnected before sending the whole body")
        except Exception as exc:  # the model failed: the request gets the reason, the replica lives on
            return _error(500, f"{type(exc).__name__}: {exc}")


HEALTH_CHECK_PERIOD_S = 2.0  # a dead replica is noticed and replaced within seconds (Ray's default: 10 s)


def build_app(model: bytes, options: ServeOptions) -> serve.Application:
    """The Ray Serve application serving ``model`` (the file's bytes: replicas on other nodes need no copy of
    the file) as ``options`` say."""
    max_ongoing = max(64, 4 * options.max_batch)
    deployment_options = {"max_ongoing_requests": max_ongoing, "health_check_period_s": HEALTH_CHECK_PERIOD_S,
                          "ray_actor_options": {"num_cpus": options.num_cpus if options.num_cpus is not None
                                                else options.threads,
                                                **({"num_gpus": 1} if options.device == "cuda" else {})}}
    if options.max_replicas is not None:
        deployment_options["autoscaling_config"] = {
            "min_replicas": options.min_replicas or 1, "max_replicas": options.max_replicas,
            "target_ongoing_requests": max(2, options.max_batch)}
    else:
        deployment_options["num_replicas"] = options.replicas
    return LiteModel.options(name=options.name, **deployment_options).bind(model, options)


def serve_until_stopped(model: bytes, options: ServeOptions, *, host: str, port: int, address: str | None,
                        num_cpus: int | None, access_log: bool = False, ready: Callable[[str], None]) -> None:
    """Deploy on Ray (a new local instance, or the cluster at ``address``), call ``ready(url)`` once it answers,
    and serve until SIGINT or SIGTERM; then the application is deleted (and a local Ray shut down). Replicas log
    each request only with ``access_log`` (the log lines cost CPU per request)."""
    stop = threading.Event()
    previous: dict = {}
    local = address is None
    try:
        init_ray(address, num_cpus)
        # after ray.init, which installs a SIGTERM handler of its own that ends the process at once
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        serve.start(http_options={"host": host, "port": port})
        serve.run(build_app(model, options), name=options.name, route_prefix="/",
                  logging_config={"enable_access_log": access_log, "log_level": "INFO" if access_log else "WARNING"})
        ready(f"http://{host}:{port}/v2/models/{options.name}")
        while not stop.wait(0.2):
            pass
    finally:
        if ray.is_initialized():
            # bounded: after a Ctrl-C in a terminal the local Ray processes got the SIGINT too and may be gone
            _bounded(serve.shutdown if local else lambda: serve.delete(options.name), STOP_TIMEOUT_S)
        ray.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


STOP_TIMEOUT_S = 30.0


def _bounded(call, seconds: float) -> None:
    """Run ``call`` on a daemon thread and wait at most ``seconds`` for it."""
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
