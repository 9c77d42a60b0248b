#!/usr/bin/env python3
"""Generate the BFloat16 test fixtures (``tests/fixtures/bf16/``) and their reference outputs.

Run this with a Python that has the *real* MegEngine 1.13.0 (and with it the real ``megenginelite``); from the
repository root::

    "$(../shared/tools/real-megengine)" tools/make_bf16_fixtures.py

MegEngine 1.13 expresses BFloat16 as ``megengine.core.tensor.dtype.bfloat16`` (a numpy extension type); a traced
function casts with ``x.astype(bfloat16)`` (a ``TypeCvt`` to ``BFloat16``) and bfloat16 tensors captured as
constants are dumped as ``ImmutableTensor`` with BFloat16 data (raw uint16 bits).  The real ``megenginelite``
runs such models on CPU as long as the graph inputs and outputs are float32: a BFloat16 input or output is
refused with ``unsupport dtype in lite`` (LiteDataType has no bfloat16), so every fixture here casts at its
edges.  MegDNN's CPU kernels lack BFloat16 MatrixMul/Convolution (``not support data type of BFloat16 *
BFloat16 -> BFloat16``) and PowC; BFloat16 pooling runs but returns garbage (uninitialized memory), so none of
those appear here.  See docs/compatibility.md.

For every fixture it traces and dumps ``tests/fixtures/bf16/<name>.mge``, runs it with the real
``megenginelite`` (``LiteNetwork().load``, ``set_data_by_copy``, ``forward``/``wait``, ``to_numpy``), writes
``<name>.npz`` (keys ``input:<name>`` / ``output:<name>``) and an entry of ``tests/fixtures/bf16/manifest.json``
with the same fields as ``tests/fixtures/manifest.json``.  The tests only read the committed files.
"""

from __future__ import annotations

import json

import numpy as np

from fixtures.paths import FIXTURES
from fixtures.real_megengine import F, mge, require, trace

OUT = FIXTURES / "bf16"


def fixtures():
    from megengine.core.tensor.dtype import bfloat16 as bf

    rs = np.random.RandomState(20240917)
    w = mge.tensor(rs.randn(12).astype(np.float32)).astype(bf)  # dumped as a BFloat16 ImmutableTensor
    b = mge.tensor(rs.randn(3, 1).astype(np.float32) * 0.5).astype(bf)
    one = mge.tensor(np.float32(1.0)).astype(bf)

    def elemwise(x):
        h = x.astype(bf)
        y = F.sigmoid(h) * h + F.tanh(h)
        y = F.exp(y) - h / (F.abs(h) + one)
        return F.relu(y).astype("float32")

    def weights(x):
        h = x.astype(bf) * w + b
        out = F.exp(F.minimum(h, one)).astype("float32")
        return out.reshape(3, 4, 3).transpose(0, 2, 1)

    def reduce_softmax(x):
        h = x.astype(bf)
        return F.sum(h, axis=1).astype("float32"), F.softmax(h, axis=1).astype("float32")

    x = lambda: (rs.randn(3, 12) * 3).astype(np.float32)  # noqa: E731
    exact = dict(rtol=1e-6, atol=1e-6)
    return [
        ("bf16_elemwise", elemwise, x(), ["out"], exact,
         "float32 input cast to BFloat16; sigmoid/mul/tanh/exp/abs/add/div/sub/relu computed in BFloat16 "
         "(each result rounded to nearest even), cast back to float32. Exact: ours rounds every BFloat16 result "
         "like MegDNN (one bf16 ulp, 2**-8 relative, could flip only if ONNX Runtime's float32 exp/tanh differs "
         "from MegDNN's in the last float32 bit at a rounding tie)."),
        ("bf16_weights", weights, x(), ["out"], exact,
         "BFloat16 constants (ImmutableTensor with BFloat16 data, decoded from their uint16 bits) multiplied and "
         "added in BFloat16, min/exp, cast to float32, reshape/transpose. Exact."),
        ("bf16_reduce_softmax", reduce_softmax, x(), ["sum", "softmax"], dict(rtol=2e-2, atol=2e-2),
         "Reduce SUM and Softmax on BFloat16. MegDNN's CPU kernels round every partial sum to bfloat16 "
         "(sequential accumulation for Reduce), ours computes each op in float32 and rounds its result once: "
         "results may differ by a few bfloat16 ulps, hence rtol/atol 2e-2."),
    ]


def main() -> None:
    require("tools/make_bf16_fixtures.py")
    from megenginelite import LiteNetwork  # the real one: fixtures.real_megengine dropped this checkout

    OUT.mkdir(parents=True, exist_ok=True)
    manifest = []
    for name, fn, x, out_names, tol, note in fixtures():
        traced = trace(fn, symbolic=True, capture_as_const=True)
        res = traced(mge.tensor(x))
        res = list(res) if isinstance(res, (list, tuple)) else [res]
        file = f"{name}.mge"
        traced.dump(str(OUT / file), arg_names=["x"], output_names=out_names)
        net = LiteNetwork()
        net.load(str(OUT / file))
        net.get_io_tensor("x").set_data_by_copy(x)
        net.forward()
        net.wait()
        outs = [net.get_io_tensor(n).to_numpy().copy() for n in out_names]
        arrays = {"input:x": x, **{f"output:{n}": o for n, o in zip(out_names, outs)}}
        np.savez(OUT / f"{name}.npz", **arrays)
        manifest.append({
            "name": name, "category": "bf16", "file": file, "inputs": ["x"], "file_input_order": ["x"],
            "outputs": out_names, "input_shapes": [list(x.shape)], "input_dtypes": [str(x.dtype)],
            "output_shapes": [list(o.shape) for o in outs], "output_dtypes": [str(o.dtype) for o in outs],
            "rtol": tol["rtol"], "atol": tol["atol"], "note": note,
            "megengine_vs_lite_max_abs_diff": [float(np.max(np.abs(r.numpy().astype(np.float32) - o)))
                                               for r, o in zip(res, outs)],
        })
        print(f"{name}: {[o.shape for o in outs]}")
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
