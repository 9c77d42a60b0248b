"""Shape-dependent graphs (GetVarShape feeding shape arithmetic) re-plan for every input size.

The fixtures were recorded at one size; fed other sizes, their outputs must be what the traced function computes
at that size (checked against numpy), on one loaded network that switches sizes back and forth.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import BY_NAME, model_path
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


def _run(network: LiteNetwork, names, arrays):
    for name, value in zip(names, arrays):
        network.get_io_tensor(name).set_data_by_copy(value)
    network.forward()
    network.wait()
    return [network.get_io_tensor(n).to_numpy() for n in network.get_all_output_name()]


@pytest.mark.parametrize("name", sorted(CASES))
def test_shape_dependent_graph_follows_the_input_size(name):
    entry = BY_NAME[name]
    sizes, expected = CASES[name]
    network = LiteNetwork()
    network.load(model_path(entry))
    names = entry["inputs"]
    for arrays in sizes + sizes[:1]:  # the first size again: its cached plan is reused
        outputs = _run(network, names, arrays)
        for got, want in zip(outputs, expected(*arrays)):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_resize_by_scale_factor_follows_the_input_size():
    """interpolate(scale_factor=2) computes its output size from the input's shape."""
    network = LiteNetwork()
    network.load(model_path(BY_NAME["op_resize_bilinear_scale2"]))
    for shape in [(2, 1, 3, 5), (1, 3, 6, 2)]:
        (out,) = _run(network, ["x"], [_f(*shape)])
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
        np.testing.assert_array_equal(_run(network, [name], [x])[0], x.reshape(batch, -1))
    shapes = [dict((n, s) for n, s, _ in key)[name] for key in compiled]
    assert shapes[1:] == [(5, 3, 2), (1, 3, 2)] and shapes[0] not in shapes[1:]
