"""Malicious files: a model (or a persistent-cache file) cannot make us execute code, read other files, write files
or start unbounded work. See README "Security".
"""

from __future__ import annotations

import io
import os
import pickle
import re
import struct
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES
from tools import lite_pack
from megenginelite import LiteGlobal, LiteNetwork
from megenginelite.errors import LiteError, ModelFormatError
from megenginelite.format import read_model

PACKAGE = Path(__file__).resolve().parents[2] / "megenginelite"
TWO = FIXTURES / "two_in_two_out.mge"

# exec("open('P','w').close()") when unpickled: creates the file P in the current directory
PAYLOAD = b"cbuiltins\nexec\n(S'open(\"P\",\"w\").close()'\ntR."


def test_no_unpickling_or_code_execution_in_the_package():
    """The package never unpickles, evals or runs programs: nothing a file holds can become code."""
    pattern = re.compile(r"\bimport pickle\b|\bpickle\.|\bmarshal\b|\bshelve\b|(?<![\w.])eval\(|(?<![\w.])exec\(|"
                         r"\bsubprocess\b|os\.system|os\.popen|allow_pickle=True|yaml\.load|__import__")
    hits = [f"{path.relative_to(PACKAGE)}:{i}: {line.strip()}"
            for path in sorted(PACKAGE.rglob("*.py"))
            for i, line in enumerate(path.read_text().splitlines(), 1)
            if pattern.search(line.split("#")[0])]
    assert hits == []


def test_user_info_pickle_is_never_unpickled(tmp_path, monkeypatch):
    """A model whose Metadata.user_info holds a pickle that would run code loads, runs and is inspected without
    running it; the bytes are handed out untouched (unpickling them is the caller's decision)."""
    data = (FIXTURES / "format_user_info.mge").read_bytes()
    original = read_model(data).user_info
    assert original is not None and len(original) >= len(PAYLOAD)
    evil = PAYLOAD + b"\0" * (len(original) - len(PAYLOAD))  # bytes after the STOP opcode are ignored by pickle
    at = data.find(original)
    assert at > 0 and data.count(original) == 1
    mutant = data[:at] + evil + data[at + len(original):]
    monkeypatch.chdir(tmp_path)

    assert read_model(mutant).user_info == evil
    net = LiteNetwork()
    net.load(mutant)
    net.forward()
    net.wait()
    for name in net.get_all_output_name():
        net.get_io_tensor(name).to_numpy()
    repr(net)
    (tmp_path / "evil.mge").write_bytes(mutant)
    from megenginelite.cli import main  # the `info` command summarizes the metadata too

    assert main(["info", str(tmp_path / "evil.mge"), "--json"]) == 0
    assert not (tmp_path / "P").exists()

    # the payload is live: unpickling it (what we never do) creates the file
    pickle.loads(read_model(mutant).user_info)
    assert (tmp_path / "P").exists()


def test_names_with_path_separators_are_only_names(tmp_path):
    """Operator and var names come from the file; dumps name their files by var id (hex), never by a name."""
    data = TWO.read_bytes().replace(b"sum_out", b"../evil")
    assert b"../evil" in data
    root = tmp_path / "a" / "b"
    (root / "bin").mkdir(parents=True)
    net = LiteNetwork()
    net.load(data)
    assert "../evil" in net.get_all_output_name()
    net.io_bin_dump(str(root / "bin"))
    net.io_txt_dump(str(root / "dump.txt"))
    net.enable_profile_performance(str(root / "profile.json"))
    net.forward()
    net.wait()
    net.get_static_memory_alloc_info(str(root / "logs"))
    created = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert all(p.startswith(os.path.join("a", "b")) or p == "a" for p in created), created
    assert all(re.fullmatch(r"[0-9a-f]{6}", p.name) for p in (root / "bin").iterdir())


def _onnx_with_external_data(location: str) -> bytes:
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    w = TensorProto()
    w.name, w.data_type = "w", TensorProto.FLOAT
    w.dims.extend([1, 8])
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("length", "32")):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 8])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 8])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 8]) for n in ("sum_out", "prod_out")]
    nodes = [helper.make_node("Add", ["a", "w"], ["sum_out"]), helper.make_node("Mul", ["b", "w"], ["prod_out"])]
    graph = helper.make_graph(nodes, "g", [a, b], outs, [w])
    # IR version 8: what every onnxruntime we support reads (onnx writes its newest by default)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8).SerializeToString()


SECRET = np.arange(8, dtype=np.float32) + 1000


@pytest.mark.parametrize("location", ["secret.bin", "../secret.bin", "/secret.bin"])
def test_onnx_model_external_data_is_not_read(tmp_path, monkeypatch, location):
    """An ONNX model (loadable through LiteNetwork) whose weights live in an external file: refused, the file is
    not read (ONNX Runtime would read it relative to the current directory for a model given as bytes)."""
    (tmp_path / "secret.bin").write_bytes(SECRET.tobytes())
    work = tmp_path / "work"
    work.mkdir()
    (work / "secret.bin").write_bytes(SECRET.tobytes())
    monkeypatch.chdir(work)
    location = str(tmp_path / "secret.bin") if location == "/secret.bin" else location
    model = _onnx_with_external_data(location)
    path = work / "m.onnx"
    path.write_bytes(model)
    for source in (model, str(path)):
        with pytest.raises(LiteError, match="external|outside the directory|absolute path") as info:
            net = LiteNetwork()
            net.load(source)
            net.forward()
        assert "1000" not in str(info.value)


def test_persistent_cache_entry_with_external_data_is_not_read(tmp_path, monkeypatch):
    """A persistent-cache file is ONNX models in a zip: an entry that names an external data file does not make
    ONNX Runtime read it (external data is looked up in a directory that cannot exist)."""
    from megenginelite.runtime import cache

    monkeypatch.setattr(cache, "_active", None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.bin").write_bytes(SECRET.tobytes())
    path = str(tmp_path / "lite.cache")
    LiteGlobal.set_persistent_cache(path)
    net = LiteNetwork()
    net.load(str(TWO))
    LiteGlobal.dump_persistent_cache(path)
    with zipfile.ZipFile(path) as archive:
        (name,) = archive.namelist()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(name, _onnx_with_external_data("secret.bin"))
    LiteGlobal.set_persistent_cache(path)
    with pytest.raises(LiteError, match="does not exist|external"):
        net = LiteNetwork()
        net.load(str(TWO))
        net.forward()
    monkeypatch.setattr(cache, "_active", None)


def test_persistent_cache_zip_is_read_safely(tmp_path, monkeypatch):
    """Entry names are dictionary keys, never paths (nothing is extracted); only stored, unencrypted entries named
    like ours are read (a deflated entry could be a zip bomb)."""
    from megenginelite.runtime import cache

    monkeypatch.setattr(cache, "_active", None)
    good = "0123456789abcdef" * 2
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{good}.onnx", b"stored entry")
        archive.writestr("../../escape.onnx", b"traversal")
        archive.writestr("/abs/escape.onnx", b"absolute")
        archive.writestr("fedcba9876543210" * 2 + ".onnx", b"\0" * (1 << 20), compress_type=zipfile.ZIP_DEFLATED)
    before = sorted(tmp_path.parent.rglob("*"))
    path = tmp_path / "evil.cache"
    path.write_bytes(buf.getvalue())
    loaded = cache.PersistentCache(str(path))
    assert dict(loaded._entries) == {good: b"stored entry"}
    assert sorted(tmp_path.parent.rglob("*")) == sorted(before + [path])


@pytest.mark.parametrize("threads", [100_000, 2**32 - 1])
def test_packed_info_cannot_start_unbounded_threads(threads):
    """A packed model's info asking for 100,000 threads: threads_number says so (as the original), but ONNX Runtime
    gets at most MAX_THREADS, so the load stays fast."""
    from megenginelite.runtime.session import MAX_THREADS

    info = {"valid": True, "name": "m", "version": "1.13.0", "device": {"type": "CPU", "number_threads": threads}}
    blob = lite_pack.pack(TWO.read_bytes(), name="m", info=info, info_cache_parse_method=None, is_fast_run_cache=None)
    before = threading.active_count()
    start = time.perf_counter()
    net = LiteNetwork()
    net.load(blob)
    net.forward()
    net.wait()
    assert time.perf_counter() - start < 30
    assert net.threads_number == threads
    if not Path("/proc/self/status").exists():
        return
    with open("/proc/self/status") as f:
        native_threads = int(re.search(r"Threads:\s+(\d+)", f.read()).group(1))
    assert native_threads <= before + MAX_THREADS + 8


def test_model_cannot_point_outside_itself():
    """Offsets and lengths are bounds-checked against the file (a tensor claiming bytes past the end is refused),
    so nothing outside the given bytes is ever read."""
    data = bytearray(TWO.read_bytes())
    model = read_model(bytes(data))
    weight = next(t for op in model.oprs for t in op.tensors if t.data is not None and t.data.nbytes >= 64)
    raw = weight.data.tobytes()
    at = bytes(data).find(raw)
    struct.pack_into("<I", data, at - 4, len(raw) + 4096)  # the value vector's length: past the end of the file
    with pytest.raises(ModelFormatError, match="outside the buffer|past the end|needs"):
        LiteNetwork().load(bytes(data))
