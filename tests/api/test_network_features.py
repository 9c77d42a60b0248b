"""The rest of LiteNetwork: batching program, async and callbacks, profiling, IO dumps, weight sharing."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from conftest import BY_NAME, model_path, reference
from megenginelite import *  # noqa: F401,F403  (as user code does)

import struct  # after the star import: the package must not shadow it, but be safe
from megenginelite.errors import LiteUsageError

SMALL = BY_NAME["resnet18_small"]
SHUFFLE = BY_NAME["shufflenet_v2"]


def small_network(**kwargs) -> LiteNetwork:
    network = LiteNetwork(**kwargs)
    network.load(model_path(SMALL))
    return network


def feed_reference(network: LiteNetwork, entry=SMALL) -> dict:
    ref = reference(entry)
    for name in entry["inputs"]:
        network.get_io_tensor(name).set_data_by_copy(ref[f"input:{name}"])
    return ref


def test_batching_program_on_cpu():
    """The quick start's second program (TensorBatchCollector + share_memory_with), with LITE_CPU."""
    config = LiteConfig(device_type=LiteDeviceType.LITE_CPU)
    network = LiteNetwork(config=config, io=LiteNetworkIO(inputs=[LiteIO("data", is_host=False)]))
    network.load(model_path(SHUFFLE))
    data = network.get_io_tensor("data")
    layout = data.layout
    shape = list(layout.shapes)[0:layout.ndim]
    sample = np.ones(shape[1:], "float32")
    batch = 4
    shape[0] = batch
    collector = TensorBatchCollector(shape, dtype=LiteDataType.LITE_FLOAT, device_type=LiteDeviceType.LITE_CPU)
    single = LiteNetwork()
    single.load(model_path(SHUFFLE))
    for round_ in range(2):
        if round_ == 0:
            with pytest.warns(UserWarning, match="has not collected before free it"):
                collector.free(range(batch))
        else:
            collector.free(range(batch))
        expected = []
        for i in range(batch):
            assert collector.collect(sample) == i
            single.get_io_tensor("data").set_data_by_copy(sample[None])
            single.forward()
            single.wait()
            expected.append(single.get_io_tensor("Softmax").to_numpy())
            sample += 1
        data.share_memory_with(collector.get())
        network.forward()
        network.wait()
        out = network.get_io_tensor(network.get_all_output_name()[0]).to_numpy()
        assert out.shape == (batch, 1000)
        np.testing.assert_allclose(out, np.concatenate(expected), rtol=1e-4, atol=1e-6)


def test_async_forward_returns_and_calls_back_once():
    network = LiteNetwork()
    calls = []
    done = threading.Event()

    def on_done():
        calls.append(threading.current_thread().name)
        done.set()
        return 0

    network.async_with_callback(on_done)
    network.load(model_path(SMALL))
    ref = feed_reference(network)
    network.forward()
    network.wait()
    assert done.is_set() and calls == ["megenginelite-forward"]
    name = SMALL["outputs"][0]
    np.testing.assert_allclose(network.get_io_tensor(name).to_numpy(), ref[f"output:{name}"], rtol=1e-4, atol=1e-5)


def test_async_error_surfaces_at_wait():
    network = small_network()
    network.async_with_callback(lambda: 0)
    network.get_io_tensor("data").set_data_by_copy(np.zeros((1, 3, 64, 64), np.int32))
    network.forward()
    with pytest.raises(RuntimeError, match="dtype mismatch: get=Int32 expect=Float32"):
        network.wait()


def test_start_and_finish_callbacks_see_the_io_tensors():
    network = small_network()
    seen = {}

    def start(ios):
        seen["start"] = {io.name: tensor.to_numpy().copy() for io, tensor in ios.items()}
        return 0

    def finish(ios):
        seen["finish"] = {io.name: tensor.to_numpy().copy() for io, tensor in ios.items()}
        raise ValueError("ignored, as the original ignores it")

    network.set_start_callback(start)
    network.set_finish_callback(finish)
    ref = feed_reference(network)
    network.forward()
    network.wait()
    np.testing.assert_array_equal(seen["start"]["data"], ref["input:data"])
    name = SMALL["outputs"][0]
    np.testing.assert_allclose(seen["finish"][name], ref[f"output:{name}"], rtol=1e-4, atol=1e-5)


def test_profile_maps_times_to_megbrain_operators(tmp_path):
    network = small_network()
    path = tmp_path / "profile.json"
    network.enable_profile_performance(str(path))
    feed_reference(network)
    network.forward()
    network.wait()
    profile = json.loads(path.read_text())
    operators = profile["graph_exec"]["operator"]
    timed = profile["profiler"]["host"]
    assert timed and set(timed) <= set(operators)
    assert {operators[k]["type"] for k in timed} >= {"Convolution", "MatrixMulV2"}
    summary = profile["summary"]
    assert summary["by_operator"][0]["time_ms"] >= summary["by_operator"][-1]["time_ms"]
    assert summary["unattributed_ms"] <= 0.5 * summary["total_ms"]
    trace = json.loads((tmp_path / "profile.trace.json").read_text())
    assert any(e.get("cat") == "Node" for e in trace)


def test_io_dumps(tmp_path):
    network = small_network()
    text = tmp_path / "io.txt"
    bins = tmp_path / "bins"
    bins.mkdir()
    network.io_txt_dump(str(text))
    network.io_bin_dump(str(bins))
    ref = feed_reference(network)
    network.forward()
    dump = text.read_text()
    assert "produced: name=" in dump and " val: [" in dump
    name = SMALL["outputs"][0]
    out_files = sorted(os.listdir(bins))
    assert len(out_files) >= 10 and all(len(f) == 6 for f in out_files)
    # The last opr's file holds the network output after its header.
    want = ref[f"output:{name}"]
    for fname in out_files:
        raw = (bins / fname).read_bytes()
        name_len, dtype, max_ndim, *shape = struct.unpack_from("<3I7I", raw)
        assert max_ndim == 7
        values = np.frombuffer(raw[40 + name_len:], np.float32) if dtype == 0 else None
        if values is not None and values.size == want.size and np.allclose(values, want.ravel(), rtol=1e-4, atol=1e-5):
            break
    else:
        pytest.fail("no dumped var holds the output")


def test_io_dumps_show_the_model_own_shapes(tmp_path, monkeypatch):
    """The channel-padding rewrite widens ShuffleNet's 58-channel vars: dumps must show the file's shapes."""
    from megenginelite.format import read_model
    from megenginelite.graph import build_graph, infer_graph, passes

    monkeypatch.setattr(passes, "nchwc_block", lambda: 16)
    network = LiteNetwork()
    network.load(model_path(SHUFFLE))
    network.io_bin_dump(str(tmp_path))
    feed_reference(network, SHUFFLE)
    network.forward()
    network.wait()
    dumped = set()
    for path in tmp_path.iterdir():
        name_len, dtype, ndim, *shape = struct.unpack_from("<3I7I", path.read_bytes())
        dumped.add(tuple(d for d in shape if d))
    graph = build_graph(read_model(open(model_path(SHUFFLE), "rb").read(), "shufflenet"))
    infer_graph(graph)
    shapes = {tuple(v.shape) for v in graph.vars.values() if v.shape}
    assert len(dumped) > 10 and dumped <= shapes


def test_forwards_rebind_only_when_the_buffers_change():
    """Repeated forwards reuse one IOBinding; a tensor given new memory (set_data_by_share) is bound anew."""
    network = small_network()
    ref = feed_reference(network)
    name, out = SMALL["inputs"][0], SMALL["outputs"][0]
    network.forward()
    network.wait()
    binding = network._plan._binding
    network.forward()
    network.wait()
    assert network._plan._binding is binding
    first = network.get_io_tensor(out).to_numpy()
    shared = np.ascontiguousarray(ref[f"input:{name}"][..., ::-1])  # other data in other memory
    network.get_io_tensor(name).set_data_by_share(shared)
    network.forward()
    network.wait()
    assert network._plan._binding is not binding
    assert not np.allclose(network.get_io_tensor(out).to_numpy(), first)
    shared[...] = ref[f"input:{name}"]  # written in place: the next forward reads it without rebinding
    binding = network._plan._binding
    network.forward()
    network.wait()
    assert network._plan._binding is binding
    np.testing.assert_allclose(network.get_io_tensor(out).to_numpy(), first, rtol=1e-6)


def test_share_weights_with_reuses_the_compiled_model():
    src = small_network()
    dst = LiteNetwork()
    with pytest.raises(RuntimeError, match="should be used after the src network loaded"):
        dst.share_weights_with(LiteNetwork())
    dst.share_weights_with(src)
    assert dst._model is src._model
    ref = feed_reference(dst)
    feed_reference(src)
    src.get_io_tensor("data").set_data_by_copy(np.zeros((1, 3, 64, 64), np.float32))
    dst.forward()
    name = SMALL["outputs"][0]
    np.testing.assert_allclose(dst.get_io_tensor(name).to_numpy(), ref[f"output:{name}"], rtol=1e-4, atol=1e-5)


def test_options_without_meaning_are_accepted_in_the_right_state(tmp_path):
    network = LiteNetwork()
    network.enable_cpu_inplace_mode()
    network.use_tensorrt()
    network.share_runtime_memroy(LiteNetwork())
    network.extra_configure(LiteExtraConfig())
    network.enable_global_layout_transform()
    network.set_network_algo_policy(LiteAlgoSelectStrategy.LITE_ALGO_PROFILE | LiteAlgoSelectStrategy.LITE_ALGO_REPRODUCIBLE)
    with pytest.raises(RuntimeError, match="set_network_algo_policy should be used after model loaded"):
        network.set_network_algo_workspace_limit(1 << 20)
    assert network.is_cpu_inplace_mode()
    network.load(model_path(SMALL))
    network.set_network_algo_workspace_limit(1 << 20)
    for call in (network.enable_cpu_inplace_mode, network.use_tensorrt, network.enable_global_layout_transform,
                 lambda: network.extra_configure(LiteExtraConfig())):
        with pytest.raises(LiteUsageError, match="should be (used|configured) before model loaded"):
            call()
    with pytest.raises(LiteUsageError, match="should call enable_global_layout_transform before"):
        small_network().dump_layout_transform_model(str(tmp_path / "again.mge"))
    network.dump_layout_transform_model(str(tmp_path / "again.mge"))
    again = LiteNetwork()
    again.load(str(tmp_path / "again.mge"))
    assert again.get_all_output_name() == network.get_all_output_name()
    network.get_static_memory_alloc_info(str(tmp_path / "mem"))
    info = json.loads((tmp_path / "mem" / "static_memory.json").read_text())
    assert info["weights_bytes"] > 10000 and info["vars"]


def test_discrete_input_tensors_form_the_batch():
    config = LiteConfig()
    config.discrete_input_name = "data"
    io = LiteNetworkIO(inputs=[LiteIO("data", layout=LiteLayout([3, 3, 64, 64]))])
    network = LiteNetwork(config=config, io=io)
    network.load(model_path(SMALL))
    parts = [np.random.RandomState(i).uniform(0, 1, (1, 3, 64, 64)).astype("float32") for i in range(3)]
    for i, part in enumerate(parts):
        network.get_discrete_tensor("data", i).set_data_by_copy(part)
    with pytest.raises(RuntimeError, match="n_idx should be less than 3"):
        network.get_discrete_tensor("data", 3)
    network.forward()
    batched = small_network()
    batched.get_io_tensor("data").set_data_by_copy(np.concatenate(parts))
    batched.forward()
    name = SMALL["outputs"][0]
    np.testing.assert_allclose(network.get_io_tensor(name).to_numpy(), batched.get_io_tensor(name).to_numpy(),
                               rtol=1e-5, atol=1e-6)


def test_model_io_info_without_a_session():
    info = get_model_io_info(model_path(SHUFFLE))
    assert [io.name for io in info.inputs] == ["data"]
    assert info.inputs[0].config_layout.shapes == [1, 3, 224, 224]
    assert [io.name for io in info.outputs] == ["Softmax"]
    assert info.outputs[0].config_layout.shapes == [1, 1000]
    with pytest.raises(RuntimeError, match="failed to open"):
        get_model_io_info("/nonexistent/model.mge")


def test_global_settings():
    assert LiteGlobal.get_device_count(LiteDeviceType.LITE_CPU) == os.cpu_count()
    with pytest.raises(RuntimeError, match="unsupported compnode type"):
        LiteGlobal.get_device_count(LiteDeviceType.LITE_NPU)
    LiteGlobal.try_coalesce_all_free_memory()
    with pytest.raises(AssertionError):
        LiteGlobal.clear_memory_pair(1, 2, LiteDeviceType.LITE_CPU)


def test_persistent_cache_skips_lowering_on_the_next_load(tmp_path, monkeypatch):
    from megenginelite.runtime import cache, session

    path = str(tmp_path / "lite.cache")
    monkeypatch.setattr(cache, "_active", None)
    LiteGlobal.set_persistent_cache(path)
    first = small_network()
    ref = feed_reference(first)
    first.forward()
    LiteGlobal.dump_persistent_cache(path)
    assert len(cache.active_cache()) == 1

    # A new process would read the file: simulate it, and make lowering impossible.
    LiteGlobal.set_persistent_cache(path)
    monkeypatch.setattr(session, "to_onnx_bytes", lambda *a, **k: pytest.fail("lowered despite the cache"))
    second = small_network()
    feed_reference(second)
    second.forward()
    name = SMALL["outputs"][0]
    np.testing.assert_allclose(second.get_io_tensor(name).to_numpy(), ref[f"output:{name}"], rtol=1e-4, atol=1e-5)
    monkeypatch.setattr(cache, "_active", None)


def test_persistent_cache_entry_is_not_reused_on_another_kind_of_cpu(monkeypatch):
    """An entry holds a graph lowered and laid out for one CPU (NCHWc block, integer-kernel operands); a cache
    file carried to a machine that chooses otherwise must miss, not run that graph."""
    from megenginelite.graph import cpu
    from megenginelite.runtime.cache import cache_key

    shapes = (("x", (1, 3), "float32"),)
    key, saturate = cache_key("digest", shapes, "all"), cpu.int8_products_saturate()
    monkeypatch.setattr(cpu, "int8_products_saturate", lambda: not saturate)
    other_kernels = cache_key("digest", shapes, "all")
    monkeypatch.setattr(cpu, "int8_products_saturate", lambda: saturate)
    monkeypatch.setattr(cpu, "nchwc_block", lambda: 4)
    assert len({key, other_kernels, cache_key("digest", shapes, "all")}) == 3


def test_persistent_cache_rejects_a_foreign_file(tmp_path, monkeypatch):
    from megenginelite.runtime import cache

    monkeypatch.setattr(cache, "_active", None)
    bogus = tmp_path / "bogus.cache"
    bogus.write_bytes(b"not a zip at all")
    with pytest.raises(RuntimeError, match="not a megenginelite persistent cache"):
        LiteGlobal.set_persistent_cache(str(bogus))
    LiteGlobal.set_persistent_cache("/nonexistent-dir/x.cache")  # as the original: only writing fails
    with pytest.raises(RuntimeError, match="failed to open"):
        LiteGlobal.dump_persistent_cache("/nonexistent-dir/x.cache")
