#!/usr/bin/env python3
"""Generate the fixtures of the older / other model container formats: ``tests/fixtures/formats/``.

Run with a Python that has the *real* MegEngine 1.13.0 (and the real ``megenginelite``), from the repository root::

    "$(../shared/tools/real-megengine)" tools/make_format_fixtures.py

It traces a few tiny models with ``megengine.jit.trace(symbolic=True, capture_as_const=True)`` and dumps each in

* the V1 FlatBuffers format (``dump_format="FBS"``: ``MGBC`` header, tensor blobs, ``mgb1`` FlatBuffer),
* FBS_V2 with ``model_version=1`` (V1 operator type names such as ``ConvolutionV2``),
* the default FBS_V2 format (the baseline the other dumps are compared with),
* ``mgbtest0`` test-case containers (``dump(..., input_data=[...])``), with and without ``AssertEqual`` oprs,
* the legacy ``MGBS`` V1 variant, which MegEngine 1.13.0 cannot write (1.13.2's ``compat_older_version="8.14"``
  can): it is derived from the ``MGBC`` dump by rewriting the header and every operator ``type_id`` to the
  unversioned id (``xxh64(name without "V<n>", no NUL)``), then checked by loading it with the real library.

Every file is then loaded by the real ``megenginelite`` (``LiteNetwork().load``/``forward``) with seeded inputs. When
the real library cannot load a format (``model_version=1`` graphs with convolutions, ``mgbtest0`` containers), the
error is recorded in the manifest (``real_lite_error``) and the reference outputs come from the real library run on
the FBS_V2 dump of the same traced function (``reference_file``). Outputs: ``<name>.mge``, ``<name>.npz`` (keys
``input:<name>`` / ``output:<name>``; for containers also ``case<i>:input:<name>`` / ``case<i>:output:<name>``) and
``manifest.json``. Deterministic: running it twice gives byte-identical files.

This is a development tool: the project's tests only read the committed fixtures and never need MegEngine.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import struct
import tempfile
import traceback
from pathlib import Path

import numpy as np

from fixtures.helpers import f32
from fixtures.mgefile import FlatBuffer
from fixtures.npz import save_npz
from fixtures.paths import ROOT
from fixtures.real_megengine import F, M, mge, require, trace
from fixtures.registry import DEFAULT_ATOL, DEFAULT_RTOL

OUT = ROOT / "tests" / "fixtures" / "formats"


def _load_by_path(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# Our pure-Python xxh64 (no package-relative imports; this checkout's megenginelite cannot be imported next to the
# real one) and the registry names of our V1 reader: used only to derive the legacy MGBS variant, which the real
# library then validates by loading it.
_xxh = _load_by_path("_fmt_xxh64", ROOT / "megenginelite" / "format" / "xxh64.py")


def _registry_names() -> tuple[str, ...]:
    tree = ast.parse((ROOT / "megenginelite" / "format" / "mgb1.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "REGISTRY_NAMES":
            return ast.literal_eval(node.value)
    raise SystemExit("REGISTRY_NAMES not found in megenginelite/format/mgb1.py")


# ---------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------


def _rs(salt: int) -> np.random.RandomState:
    return np.random.RandomState(1234 + salt)


class ConvBN(M.Module):
    def __init__(self):
        super().__init__()
        self.conv = M.Conv2d(3, 4, 3, padding=1)
        self.bn = M.BatchNorm2d(4)
        self.conv2 = M.Conv2d(4, 2, 3, stride=2)

    def forward(self, x):
        return self.conv2(F.relu(self.bn(self.conv(x))))


def model_conv_bn():
    rs = _rs(1)
    net = ConvBN()
    net.conv.weight._reset(mge.tensor(f32(rs.normal(0, 0.4, (4, 3, 3, 3)))))
    net.conv.bias._reset(mge.tensor(f32(rs.normal(0, 0.1, (1, 4, 1, 1)))))
    net.conv2.weight._reset(mge.tensor(f32(rs.normal(0, 0.3, (2, 4, 3, 3)))))
    net.conv2.bias._reset(mge.tensor(f32(rs.normal(0, 0.1, (1, 2, 1, 1)))))
    net.bn.weight._reset(mge.tensor(f32(rs.uniform(0.5, 1.5, (4,)))))
    net.bn.bias._reset(mge.tensor(f32(rs.normal(0, 0.2, (4,)))))
    net.bn.running_mean._reset(mge.tensor(f32(rs.normal(0, 0.3, (1, 4, 1, 1)))))
    net.bn.running_var._reset(mge.tensor(f32(rs.uniform(0.5, 2.0, (1, 4, 1, 1)))))
    net.eval()
    inputs = [("data", f32(rs.uniform(-1, 1, (1, 3, 8, 8))))]
    return (lambda x: net(x)), inputs, ["out"], "Conv2d(3,4,3,pad 1) + BatchNorm2d + ReLU + Conv2d(4,2,3,stride 2)"


class LNSplit(M.Module):
    def __init__(self):
        super().__init__()
        self.ln = M.LayerNorm(12)

    def forward(self, x):
        y = self.ln(x)
        a, b = F.split(y, [5], axis=2)
        return a * 2.0, F.relu(b)


def model_multi_out():
    rs = _rs(2)
    net = LNSplit()
    net.ln.weight._reset(mge.tensor(f32(rs.uniform(0.5, 1.5, (12,)))))
    net.ln.bias._reset(mge.tensor(f32(rs.normal(0, 0.2, (12,)))))
    net.eval()
    inputs = [("x", f32(rs.normal(0, 1, (2, 3, 12))))]
    return (lambda x: net(x)), inputs, ["head", "tail"], "LayerNorm (3 outputs) then Split into 5 + 7 (2 outputs)"


def model_topk():
    rs = _rs(3)

    def fn(x):
        values, indices = F.topk(x, 3, descending=True)
        sorted_x, order = F.sort(x)
        return values, indices, sorted_x, order

    # distinct values, so that the order of ties cannot differ
    x = f32(rs.permutation(30).reshape(3, 10) * 0.25 - 3.0)
    return fn, [("x", x)], ["values", "indices", "sorted", "order"], "TopK and Argsort (2 outputs each)"


def model_two_input():
    rs = _rs(4)
    w = f32(rs.normal(0, 0.5, (4,)))

    def fn(zb, ya):
        return F.relu(F.matmul(zb, ya)) + mge.tensor(w) * ya.sum()

    # arg names deliberately not in sorted order: test cases list the inputs sorted by name (ya, zb)
    inputs = [("zb", f32(rs.normal(0, 1, (2, 3)))), ("ya", f32(rs.normal(0, 1, (3, 4))))]
    return fn, inputs, ["out"], "two inputs whose argument order (zb, ya) differs from their sorted order"


def model_holder():
    rs = _rs(5)

    def fn(x):
        return x * F.linspace(0, 1, 4) + F.arange(0, 4, dtype="float32")

    return fn, [("x", f32(rs.normal(0, 1, (2, 4))))], ["out"], \
        "folded linspace/arange constants end up in one MultipleDeviceTensorHolder (2 outputs)"


class Deconv(M.Module):
    def __init__(self):
        super().__init__()
        self.deconv = M.ConvTranspose2d(2, 3, 3, stride=2)
        self.conv = M.Conv2d(3, 2, 1)

    def forward(self, x):
        return F.relu(self.conv(self.deconv(x)))


def model_deconv():
    rs = _rs(6)
    net = Deconv()
    net.deconv.weight._reset(mge.tensor(f32(rs.normal(0, 0.4, (2, 3, 3, 3)))))
    net.deconv.bias._reset(mge.tensor(f32(rs.normal(0, 0.1, (1, 3, 1, 1)))))
    net.conv.weight._reset(mge.tensor(f32(rs.normal(0, 0.4, (2, 3, 1, 1)))))
    net.conv.bias._reset(mge.tensor(f32(rs.normal(0, 0.1, (1, 2, 1, 1)))))
    net.eval()
    return (lambda x: net(x)), [("x", f32(rs.uniform(-1, 1, (1, 2, 4, 4))))], ["out"], \
        "ConvTranspose2d + Conv2d + ReLU dumped with enable_fuse_conv_bias_nonlinearity (ConvBiasForward)"


MODELS = {"conv_bn": model_conv_bn, "multi_out": model_multi_out, "topk": model_topk, "two_input": model_two_input,
          "holder": model_holder, "deconv": model_deconv}


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------


def run_real_lite(path: Path, feed: dict) -> tuple[list[str], list[tuple[str, np.ndarray]]]:
    import megenginelite as lite

    if Path(lite.__file__).resolve().is_relative_to(ROOT):
        raise RuntimeError(f"imported this project's megenginelite ({lite.__file__}), not the real one")
    net = lite.LiteNetwork()
    net.load(str(path))
    in_names = list(net.get_all_input_name())
    out_names = list(net.get_all_output_name())
    if sorted(in_names) != sorted(feed):
        raise RuntimeError(f"real megenginelite reports inputs {in_names}, the fixture feeds {sorted(feed)}")
    for n in in_names:
        net.get_io_tensor(n).set_data_by_copy(np.ascontiguousarray(feed[n]))
    net.forward()
    net.wait()
    return in_names, [(n, net.get_io_tensor(n).to_numpy().copy()) for n in out_names]


def short_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text.split("\nbacktrace:")[0].strip()


def mgbc_to_mgbs(data: bytes) -> bytes:
    """The legacy form of an MGBC file: ``MGBS`` header without feature bits and unversioned operator ids."""
    assert data[:4] == b"MGBC"
    names = _registry_names()
    full = {_xxh.mgb_type_id(n): n for n in names}
    offset = struct.unpack_from("<Q", data, 16)[0]
    body = bytearray(data[24:])  # blobs, then the size-prefixed FlatBuffer
    fbs = offset
    fb = FlatBuffer(body)
    root = fb.deref(fbs + 4)
    for entry in fb.vector(root, 3):
        op = fb.deref(entry)
        p = fb.field(op, 0)
        tid = struct.unpack_from("<Q", body, p)[0]
        name = full[tid]
        stem = name[:-2] if len(name) > 2 and name[-1].isdigit() and name[-2] == "V" else name
        struct.pack_into("<Q", body, p, _xxh.mgb_type_id(stem, nul=False))
    return b"MGBS" + bytes(4) + struct.pack("<Q", offset) + bytes(body)


# ---------------------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------------------

# name -> (model, variant, dump kwargs, note)
FIXTURES = [
    ("conv_bn_v2", "conv_bn", "v2", {}, "FBS_V2 baseline"),
    ("conv_bn_fbs", "conv_bn", "fbs", {"dump_format": "FBS"}, "V1 MGBC; BN folded into the conv"),
    ("conv_bn_fbs_noopt", "conv_bn", "fbs", {"dump_format": "FBS", "optimize_for_inference": False},
     "V1 MGBC without optimize_for_inference: BatchNormV1 (4 non-volatile outputs, y last) stays"),
    ("conv_bn_mgbs", "conv_bn", "mgbs", {"dump_format": "FBS"},
     "legacy MGBS derived from the MGBC dump (unversioned type ids)"),
    ("conv_bn_v1", "conv_bn", "v1", {"model_version": 1}, "FBS_V2 with model_version=1 (ConvolutionV2)"),
    ("conv_bn_testcase", "conv_bn", "testcase", {"no_assert": True}, "mgbtest0: FBS_V2 model + 2 cases"),
    ("multi_out_v2", "multi_out", "v2", {}, "FBS_V2 baseline"),
    ("multi_out_fbs", "multi_out", "fbs", {"dump_format": "FBS"}, "V1 MGBC; LayerNorm 3 outputs, Split 2"),
    ("multi_out_fbs_names", "multi_out", "fbs", {"dump_format": "FBS", "keep_var_name": 2},
     "V1 MGBC with keep_var_name=2: every operator lists its output names"),
    ("multi_out_mgbs", "multi_out", "mgbs", {"dump_format": "FBS"}, "legacy MGBS derived from the MGBC dump"),
    ("multi_out_v1", "multi_out", "v1", {"model_version": 1}, "FBS_V2 with model_version=1"),
    ("topk_v2", "topk", "v2", {}, "FBS_V2 baseline"),
    ("topk_fbs", "topk", "fbs", {"dump_format": "FBS"}, "V1 MGBC; TopK and Argsort 2 outputs each"),
    ("topk_v1", "topk", "v1", {"model_version": 1}, "FBS_V2 with model_version=1"),
    ("two_input_v2", "two_input", "v2", {}, "FBS_V2 baseline"),
    ("two_input_fbs", "two_input", "fbs", {"dump_format": "FBS"}, "V1 MGBC with two inputs"),
    ("two_input_v1", "two_input", "v1", {"model_version": 1}, "FBS_V2 with model_version=1"),
    ("two_input_testcase", "two_input", "testcase", {"no_assert": True}, "mgbtest0: FBS_V2 model + 2 cases"),
    ("two_input_testcase_fbs", "two_input", "testcase", {"no_assert": True, "dump_format": "FBS"},
     "mgbtest0 whose model graph is a V1 MGBC dump (the cases stay FBS_V2)"),
    ("two_input_testcase_assert", "two_input", "testcase", {},
     "mgbtest0 with asserts: the model gets an 'out:expect' input and an AssertEqual opr; 1 case"),
    ("holder_v2", "holder", "v2", {}, "FBS_V2 baseline"),
    ("holder_fbs", "holder", "fbs", {"dump_format": "FBS"},
     "V1 MGBC: the holder stores its value count in a blob, then one tensor per output"),
    ("holder_mgbs", "holder", "mgbs", {"dump_format": "FBS"}, "legacy MGBS derived from the MGBC dump"),
    ("deconv_v2", "deconv", "v2", {"enable_fuse_conv_bias_nonlinearity": True}, "FBS_V2 baseline"),
    ("deconv_fbs", "deconv", "fbs", {"dump_format": "FBS", "enable_fuse_conv_bias_nonlinearity": True},
     "V1 MGBC: ConvolutionBackwardDataV2 and ConvBiasForwardV4"),
    ("deconv_v1", "deconv", "v1", {"model_version": 1, "enable_fuse_conv_bias_nonlinearity": True},
     "FBS_V2 with model_version=1: ConvolutionBackwardDataV2 and ConvBiasForwardV4"),
]


def main() -> None:
    require("tools/make_format_fixtures.py")
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = []
    traced = {}
    for name, model, variant, kw, note in FIXTURES:
        np.random.seed(0)
        mge.random.seed(0)
        if model not in traced:
            fn, inputs, out_names, model_note = MODELS[model]()
            tr = trace(fn, symbolic=True, capture_as_const=True)
            tr(*[mge.tensor(a) for _, a in inputs])  # trace once, recording the graph
            traced[model] = (tr, inputs, out_names, model_note)
        tr, inputs, out_names, model_note = traced[model]
        feed = dict(inputs)
        path = OUT / f"{name}.mge"
        entry = {"name": name, "category": "format", "file": path.name, "model": model, "variant": variant}
        dump_kw = dict(kw)
        cases = []
        with tempfile.TemporaryDirectory() as td:
            if variant == "testcase":
                # case 0: the fixture inputs; case 1: a second, different set (only without asserts)
                n_cases = 1 if not kw.get("no_assert") else 2
                specs = []
                for c in range(n_cases):
                    case = {n: a if c == 0 else f32(_rs(100 + c).uniform(-2, 2, a.shape)) for n, a in inputs}
                    cases.append(case)
                    parts = []
                    for n, a in case.items():
                        p = Path(td) / f"{n}_{c}.npy"
                        np.save(p, a)
                        parts.append(f"{n}:{p}")
                    specs.append(";".join(parts))
                dump_kw["input_data"] = specs
            tmp = Path(td) / "model.mge"
            tr.dump(str(tmp), arg_names=[n for n, _ in inputs], output_names=out_names, **dump_kw)
            data = tmp.read_bytes()
        if variant == "mgbs":
            data = mgbc_to_mgbs(data)
        path.write_bytes(data)

        arrays = {}
        try:
            in_names, outs = run_real_lite(path, feed)
            entry["real_lite"] = "ok"
            entry["reference_file"] = path.name
        except Exception as exc:  # the real library cannot load this format: use the FBS_V2 dump of the same fn
            entry["real_lite"] = "error"
            entry["real_lite_error"] = short_error(exc)
            baseline = OUT / f"{model}_v2.mge"
            in_names, outs = run_real_lite(baseline, feed)
            entry["reference_file"] = baseline.name
        for n in in_names:
            arrays[f"input:{n}"] = feed[n]
        for n, a in outs:
            arrays[f"output:{n}"] = a
        if cases:
            entry["test_cases"] = len(cases)
            baseline = OUT / f"{model}_v2.mge"
            for c, case in enumerate(cases):
                _, couts = run_real_lite(baseline, case)
                for n in in_names:
                    arrays[f"case{c}:input:{n}"] = case[n]
                for n, a in couts:
                    arrays[f"case{c}:output:{n}"] = a
            if not kw.get("no_assert"):
                entry["extra_inputs"] = [f"{n}:expect" for n in out_names]
        save_npz(OUT / f"{name}.npz", arrays)
        entry.update({
            "inputs": in_names,
            "outputs": [n for n, _ in outs],
            "input_shapes": [list(feed[n].shape) for n in in_names],
            "input_dtypes": [str(feed[n].dtype) for n in in_names],
            "output_shapes": [list(a.shape) for _, a in outs],
            "output_dtypes": [str(a.dtype) for _, a in outs],
            "dump_options": {k: v for k, v in kw.items()},
            "rtol": DEFAULT_RTOL,
            "atol": DEFAULT_ATOL,
            "bytes": len(data),
            "note": f"{model_note}. {note}",
        })
        manifest.append(entry)
        print(f"{name}: {len(data)} bytes, real lite {entry['real_lite']}"
              + (f" ({entry['real_lite_error'][:100]})" if entry["real_lite"] != "ok" else ""))
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    write_readme(manifest)


def write_readme(manifest: list[dict]) -> None:
    lines = [
        "# Container-format fixtures",
        "",
        "Generated by `tools/make_format_fixtures.py` with the real MegEngine 1.13.0; do not edit by hand.",
        "Each `<name>.mge` has a `<name>.npz` (`input:<n>` / `output:<n>`, and `case<i>:input:<n>` /",
        "`case<i>:output:<n>` for `mgbtest0` containers) and an entry in `manifest.json`. `real lite` says whether",
        "the real megenginelite 1.13.0 loads the file; where it does not, the reference outputs come from the real",
        "library run on the FBS_V2 dump of the same traced function (`reference_file`).",
        "",
        "| fixture | variant | bytes | real lite | note |",
        "|---|---|---|---|---|",
    ]
    for e in manifest:
        status = "ok" if e["real_lite"] == "ok" else f"fails: {e['real_lite_error'][:80]}"
        lines.append(f"| {e['name']} | {e['variant']} | {e['bytes']} | {status} | {e['note']} |")
    (OUT / "README.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        raise SystemExit(1)
