"""Shape-dependent graphs (GetVarShape feeding shape arithmetic) re-plan for every input size.

The fixtures were recorded at one size; fed other sizes, their outputs must be what the traced function computes
at that size (checked against numpy), on one loaded network that switches sizes back and forth.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import BY_NAME, model_path, run
from run_time_cases import DYNAMIC_CASES, DYNAMIC_MANIFEST, check_run_time_case
from megenginelite import LiteNetwork

RS = np.random.RandomState(7)


def _f(*shape):
    return RS.normal(0, 1, shape).astype(np.float32)


# fixture -> (input arrays per size, numpy function of the inputs giving the outputs)
CASES = {
    "op_reshape_dynamic": ([[_f(5, 3, 2)], [_f(1, 4, 4)]], lambda x: [x.reshape(x.shape[0], -1)]),
    "op_flatten": ([[_f(3, 2, 5, 1)], [_f(1, 1, 2, 3)]], lambda x: [x.reshape(x.shape[0], -1)]),
    "op_arange_add": ([[_f(3, 7)], [_f(1, 2)]], lambda x: [x + np.arange(x.shape[1], dtype=np.float32)]),
    "op_repeat": ([[_f(4, 1)], [_f(1, 5)]], lambda x: [np.repeat(x, 2, axis=1)]),
    "op_tile": ([[_f(3, 1)], [_f(1, 4)]], lambda x: [np.tile(x, (2, 3))]),
    "op_roll": ([[_f(3, 6)], [_f(1, 3)]], lambda x: [np.roll(x, 2, axis=1)]),
    "op_full_like": ([[_f(4, 1)], [_f(2, 5)]], lambda x: [x + np.float32(1.5)]),
    "op_shape_output": ([[_f(1, 2, 3)], [_f(4, 1, 6)]], lambda x: [np.array(x.shape, np.int32)]),
    "op_split_sections": ([[_f(1, 2, 7)], [_f(3, 1, 7)]], lambda x: np.split(x, [2, 5], axis=-1)),
    "op_gather": ([[RS.randint(0, 6, (2, 3)).astype(np.int32), _f(2, 6)],
                   [RS.randint(0, 2, (4, 1)).astype(np.int32), _f(4, 2)]],
                  lambda i, x: [np.take_along_axis(x, i, 1)]),
    "op_one_hot": ([[RS.randint(0, 5, (1, 4)).astype(np.int32)], [RS.randint(0, 5, (3, 1)).astype(np.int32)]],
                   lambda i: [np.eye(5, dtype=np.int32)[i]]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_shape_dependent_graph_follows_the_input_size(name):
    entry = BY_NAME[name]
    sizes, expected = CASES[name]
    network = LiteNetwork()
    network.load(model_path(entry))
    names = entry["inputs"]
    for arrays in sizes + sizes[:1]:  # the first size again: its cached plan is reused
        outputs = [*run(network, dict(zip(names, arrays))).values()]
        for got, want in zip(outputs, expected(*arrays)):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_resize_by_scale_factor_follows_the_input_size():
    """interpolate(scale_factor=2) computes its output size from the input's shape."""
    network = LiteNetwork()
    network.load(model_path(BY_NAME["op_resize_bilinear_scale2"]))
    for shape in [(2, 1, 3, 5), (1, 3, 6, 2)]:
        (out,) = run(network, {"x": _f(*shape)}).values()
        assert out.shape == shape[:2] + (shape[2] * 2, shape[3] * 2)


def test_a_shape_seen_before_is_not_compiled_again(monkeypatch):
    """One plan per input shape: load compiles the file's shape, then switching between two others back and forth
    compiles each once, and the outputs still follow the input."""
    from megenginelite.runtime.session import CompiledModel

    compiled = []
    original = CompiledModel._compile

    def counting(self, key, config=None):
        compiled.append(key)
        return original(self, key, config)

    monkeypatch.setattr(CompiledModel, "_compile", counting)
    network = LiteNetwork()
    network.load(model_path(BY_NAME["op_reshape_dynamic"]))
    name = network.get_all_input_name()[0]
    for batch in (5, 1, 5, 1, 5):
        x = _f(batch, 3, 2)
        np.testing.assert_array_equal(run(network, {name: x})["out"], x.reshape(batch, -1))
    shapes = [dict((n, s) for n, s, _ in key)[name] for key in compiled]
    assert shapes[1:] == [(5, 3, 2), (1, 3, 2)] and shapes[0] not in shapes[1:]


# --- outputs whose length depends on the data --------------------------------------------------------------------

def test_cond_take_output_takes_each_run_length():
    """CondTake's result length comes with each run; what the real library showed for the same file: an empty
    layout before the first forward, then 7 values for the recorded input, all 12 for +100, none for -100."""
    entry = BY_NAME["op_cond_take"]
    ref = np.load(model_path(entry)[:-4] + ".npz")
    network = LiteNetwork()
    network.load(model_path(entry))
    out = network.get_io_tensor("out")
    assert out.layout.ndim == 0
    runs = [(ref["input:x"], ref["output:out"]), (np.full((3, 4), 100, np.float32), np.full(12, 100, np.float32)),
            (np.full((3, 4), -100, np.float32), np.zeros(0, np.float32)), (ref["input:x"], ref["output:out"])]
    for x, want in runs:
        got = run(network, {"x": x})["out"]
        assert out.layout.ndim == 1 and out.layout.shapes[0] == want.size
        np.testing.assert_array_equal(got, want)


def _megbrain_nms(boxes, scores, thresh=0.5, max_output=4):
    """MegBrain's greedy NMS in score order: box i is dropped when a kept box j has
    inter > (area_i + area_j - inter) * thresh (raw areas)."""
    def overlaps(a, b):
        w = max(min(a[2], b[2]) - max(a[0], b[0]), 0)
        h = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
        inter = w * h
        return inter > ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter) * thresh
    kept = []
    for i in np.argsort(-scores, kind="stable"):
        if not any(overlaps(boxes[i], boxes[j]) for j in kept):
            kept.append(i)
        if len(kept) == max_output:
            break
    return np.array(kept, np.int32)


@pytest.mark.parametrize("seed", range(6))
def test_nms_slice_takes_each_run_length(seed):
    """F.vision.nms's graph ends in keep[:size], a slice whose end is computed: on valid boxes the result and its
    length follow the data (fewer boxes kept when they overlap more)."""
    network = LiteNetwork()
    network.load(model_path(BY_NAME["op_nms"]))
    rs = np.random.RandomState(seed)
    corner = rs.uniform(0, 4 + 4 * seed, (6, 2))
    boxes = np.concatenate([corner, corner + rs.uniform(1, 5, (6, 2))], 1).astype(np.float32)
    scores = rs.uniform(0, 1, 6).astype(np.float32)
    got = run(network, {"b": boxes, "s": scores})["out"]
    np.testing.assert_array_equal(got, _megbrain_nms(boxes, scores))


# --- run-time lengths flowing through the graph (tests/fixtures/dynamic, tools/make_dynamic_fixtures.py) -------

@pytest.fixture(scope="module")
def dynamic_networks():
    """One network per fixture, shared by its cases: a run with another length must not need a new load."""
    networks = {}
    for name, entry in DYNAMIC_MANIFEST.items():
        network = LiteNetwork()
        network.load(str(entry["dir"] / entry["file"]))
        networks[name] = network
    return networks


@pytest.mark.parametrize("name,case", DYNAMIC_CASES)
def test_run_time_lengths_flow_through_operators(dynamic_networks, name, case):
    """Real Lite's outputs on inputs that keep many values, few, or none. With none left, real Lite 1.13 fails in
    forward (its NMS path reduces over no boxes, or an empty TopK input): we return the outputs, empty ones with
    their shapes (0 rows)."""
    check_run_time_case(dynamic_networks[name], name, case)


def test_a_new_length_does_not_recompile(monkeypatch):
    """Run-time lengths live inside one compiled plan: cases with different survivor counts, run back to back on
    one network, compile nothing after the load."""
    from megenginelite.runtime.session import CompiledModel

    name = "faster_rcnn"
    entry = DYNAMIC_MANIFEST[name]
    ref = np.load(entry["dir"] / f"{name}.npz")
    network = LiteNetwork()
    network.load(str(entry["dir"] / entry["file"]))
    compiled = []
    original = CompiledModel._compile
    monkeypatch.setattr(CompiledModel, "_compile", lambda self, *a, **k: compiled.append(a) or original(self, *a, **k))
    lengths = set()
    for case in [0, 2, 3, 0]:
        run(network, {n: ref[f"case{case}:input:{n}"] for n in entry["inputs"]})
        lengths.add(network.get_io_tensor("boxes").layout.shapes[0])
    assert compiled == [] and len(lengths) == 3


def test_profile_and_io_dump_of_run_time_sizes(tmp_path):
    """The profile lists run-time dims by their symbols (one plan serves every length); the text dump shows each
    run's actual lengths, also 0 when no proposal is left."""
    entry = DYNAMIC_MANIFEST["faster_rcnn"]
    ref = np.load(entry["dir"] / "faster_rcnn.npz")
    network = LiteNetwork()
    network.load(str(entry["dir"] / entry["file"]))
    network.enable_profile_performance(str(tmp_path / "profile.json"))
    network.io_txt_dump(str(tmp_path / "io.txt"))
    for case in (0, 3):
        run(network, {n: ref[f"case{case}:input:{n}"] for n in entry["inputs"]})
    profile = json.loads((tmp_path / "profile.json").read_text())
    shapes = [s for v in profile["graph_exec"]["var"].values() for s in v["shape"]]
    assert any(isinstance(s, str) and s.startswith("n") for s in shapes)
    condtake = [line for line in (tmp_path / "io.txt").read_text().splitlines()
                if "name=CondTake[0]:o0" in line and "produced" in line]
    assert [line.split("layout={")[1].split()[0] for line in condtake] == ["172", "0"]


def test_a_detector_fed_a_new_image_size_compiles_once(monkeypatch):
    """A new input shape on a model with run-time sizes is compiled once (its plan then serves every number of
    boxes): 160x160 after the file's 128x128, back and forth, compiles only the new size."""
    from megenginelite.runtime.session import CompiledModel

    network = LiteNetwork()
    network.load(str(DYNAMIC_MANIFEST["faster_rcnn"]["dir"] / "faster_rcnn.mge"))
    compiled = []
    original = CompiledModel._compile
    monkeypatch.setattr(CompiledModel, "_compile", lambda self, *a, **k: compiled.append(a) or original(self, *a, **k))
    rs = np.random.RandomState(5)
    for size in (160, 128, 160, 160, 128):
        image = rs.randint(0, 256, (1, 3, size, size)).astype(np.float32)
        run(network, {"image": image, "im_info": np.full((1, 4), size, np.float32)})
        layout = network.get_io_tensor("boxes").layout
        assert layout.shapes[1:3] == [4, 4] and layout.shapes[0] <= 16
    assert len(compiled) == 1
