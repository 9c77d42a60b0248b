"""Threads: networks used concurrently give the results of sequential runs.

- Several networks (of one model or of several, loaded separately or sharing weights with ``share_weights_with``)
  run in parallel threads: ONNX Runtime releases the GIL while it computes, sessions are safe to run concurrently
  and each network binds its own input and output memory.
- One network used from several threads at once: ``forward`` takes a per-network lock, so concurrent forwards run
  one after the other; each reads one consistent set of inputs and writes complete outputs (never a mix of two
  runs). Setting inputs, forwarding and reading outputs are separate calls on state the network owns, so threads
  that feed *different* inputs to one network must hold their own lock across the three (as with the original);
  the simplest is one network per thread, sharing weights.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import FIXTURES, run
from megenginelite import LiteNetwork
from megenginelite.runtime import session as session_module

MODELS = {"resnet18_small.mge": {"data": (1, 3, 64, 64)}, "two_in_two_out.mge": {"a": (1, 8), "b": (1, 8)},
          "mobilenetv2_small.mge": {"data": (1, 3, 64, 64)}}
ROUNDS = 6


def load(name: str) -> LiteNetwork:
    net = LiteNetwork()
    net.load(str(FIXTURES / name))
    return net


def inputs_for(name: str, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(seed)
    return {k: rng.uniform(-1, 1, shape).astype(np.float32) for k, shape in MODELS[name].items()}


def sequential(name: str, seeds) -> dict[int, dict[str, np.ndarray]]:
    net = load(name)
    return {s: run(net, inputs_for(name, s)) for s in seeds}


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def expected() -> dict[str, dict[int, dict[str, np.ndarray]]]:
    return {name: sequential(name, range(8)) for name in MODELS}


def test_separate_networks_in_threads(expected):
    jobs = [(name, t) for name in MODELS for t in range(2)]
    barrier = threading.Barrier(len(jobs))

    def work(job):
        name, t = job
        net = load(name)
        barrier.wait()
        return [(s, same(run(net, inputs_for(name, s)), expected[name][s]))
                for _ in range(ROUNDS) for s in range(t, 8, 2)]

    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(work, jobs))
    assert all(ok for r in results for _, ok in r)


def test_networks_sharing_weights_in_threads(expected):
    name = "resnet18_small.mge"
    src = load(name)
    nets = [src]
    for _ in range(3):
        net = LiteNetwork()
        net.share_weights_with(src)
        nets.append(net)
    barrier = threading.Barrier(len(nets))

    def work(i):
        barrier.wait()
        return all(same(run(nets[i], inputs_for(name, s)), expected[name][s])
                   for _ in range(ROUNDS) for s in (i, i + 4))

    with ThreadPoolExecutor(len(nets)) as pool:
        assert all(pool.map(work, range(len(nets))))


def test_one_network_from_several_threads_serializes(expected, monkeypatch):
    """Concurrent forward() calls on one network run one at a time and every result is the sequential one."""
    name = "resnet18_small.mge"
    net = load(name)
    feeds = inputs_for(name, 3)
    for k, v in feeds.items():
        net.get_io_tensor(k).set_data_by_copy(v)
    inside = {"now": 0, "max": 0}
    lock = threading.Lock()
    original = session_module.Plan.run

    def counting_run(self, *args, **kwargs):
        with lock:
            inside["now"] += 1
            inside["max"] = max(inside["max"], inside["now"])
        try:
            return original(self, *args, **kwargs)
        finally:
            with lock:
                inside["now"] -= 1

    monkeypatch.setattr(session_module.Plan, "run", counting_run)
    barrier = threading.Barrier(4)
    out_name = net.get_all_output_name()[0]

    def work(_):
        barrier.wait()
        results = []
        for _ in range(ROUNDS):
            net.forward()
            net.wait()
            results.append(net.get_io_tensor(out_name).to_numpy())
        return results

    with ThreadPoolExecutor(4) as pool:
        outputs = [o for r in pool.map(work, range(4)) for o in r]
    assert inside["max"] == 1
    assert all(np.array_equal(o, expected[name][3][out_name]) for o in outputs)


def test_networks_sharing_weights_run_in_parallel(monkeypatch):
    """The lock is per network: networks sharing one compiled model still run at the same time."""
    name = "resnet18_small.mge"
    src = load(name)
    other = LiteNetwork()
    other.share_weights_with(src)
    inside = {"now": 0, "max": 0}
    lock = threading.Lock()
    original = session_module.Plan.run

    def slow_run(self, *args, **kwargs):
        with lock:
            inside["now"] += 1
            inside["max"] = max(inside["max"], inside["now"])
        try:
            result = original(self, *args, **kwargs)
            barrier.wait(timeout=10)  # both runs must be inside at once to pass
            return result
        finally:
            with lock:
                inside["now"] -= 1

    barrier = threading.Barrier(2)
    monkeypatch.setattr(session_module.Plan, "run", slow_run)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda n: n.forward(), [src, other]))
    assert inside["max"] == 2


def test_one_network_different_inputs_under_a_caller_lock(expected):
    """Different inputs per thread on one network: correct when the caller holds a lock across set/forward/read."""
    name = "two_in_two_out.mge"
    net = load(name)
    user_lock = threading.Lock()

    def work(seed):
        out = []
        for _ in range(20):
            with user_lock:
                out.append(same(run(net, inputs_for(name, seed)), expected[name][seed]))
        return all(out)

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(4)))


def test_shape_changes_from_two_threads_on_one_network():
    """Two threads alternating batch sizes on one network (each under a caller lock): the compiled-plan cache and
    the plan switch stay consistent, every result has the batch it was fed."""
    name = "two_in_two_out.mge"
    net = load(name)
    user_lock = threading.Lock()
    ref = {b: sequential_batch(name, b) for b in (1, 3)}

    def work(batch):
        ok = True
        for _ in range(15):
            with user_lock:
                out = run(net, {"a": np.ones((batch, 8), np.float32), "b": np.ones((1, 8), np.float32)})
            ok &= same(out, ref[batch])
        return ok

    with ThreadPoolExecutor(2) as pool:
        assert all(pool.map(work, (1, 3)))


def sequential_batch(name: str, batch: int) -> dict[str, np.ndarray]:
    return run(load(name), {"a": np.ones((batch, 8), np.float32), "b": np.ones((1, 8), np.float32)})


def test_async_forwards_from_threads_do_not_overlap(expected):
    """In asynchronous mode too (the run happens on a worker thread), runs of one network take turns."""
    name = "two_in_two_out.mge"
    net = LiteNetwork()
    done = []
    net.async_with_callback(lambda: done.append(1))
    net.load(str(FIXTURES / name))
    feeds = inputs_for(name, 5)
    for k, v in feeds.items():
        net.get_io_tensor(k).set_data_by_copy(v)
    for _ in range(10):
        net.forward()
        net.wait()
    assert len(done) == 10
    assert same({k: net.get_io_tensor(k).to_numpy() for k in net.get_all_output_name()}, expected[name][5])
