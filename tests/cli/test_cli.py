"""The ``megenginelite`` command line, run as a subprocess (``python -m megenginelite``) on the fixture models."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import BY_NAME, FIXTURES, model_path, reference
from megenginelite import LiteNetwork
from megenginelite.lower import OPSET

REPO = Path(__file__).resolve().parents[2]


def cli(*args, check: int | None = 0) -> subprocess.CompletedProcess:
    """Run ``python -m megenginelite ARGS`` from the repository root; assert its exit status."""
    proc = subprocess.run([sys.executable, "-m", "megenginelite", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("megenginelite: error: "), lines[0]
    return lines[0]


def entry(name: str) -> dict:
    if name not in BY_NAME or not (FIXTURES / BY_NAME[name]["file"]).exists():
        pytest.skip(f"fixture {name} is not in tests/fixtures")
    return BY_NAME[name]


def assert_close(entry: dict, got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, (what, got.shape, got.dtype, want.shape, want.dtype)
    np.testing.assert_allclose(got, want, rtol=entry["rtol"], atol=entry["atol"], err_msg=what)


# ---------------------------------------------------------------------------------------------- usage and errors

def cli_many(arg_lists: list[list]) -> list[subprocess.CompletedProcess]:
    """Run several commands at once (each pays the interpreter start-up), in order of ``arg_lists``."""
    procs = [subprocess.Popen([sys.executable, "-m", "megenginelite", *map(str, args)], cwd=REPO, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for args in arg_lists]
    results = []
    for args, proc in zip(arg_lists, procs):
        out, err = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return results


def test_help_on_every_command():
    commands = [[], ["info"], ["run"], ["bench"], ["convert"], ["serve"], ["run-dataset"]]
    for command, proc in zip(commands, cli_many([c + ["--help"] for c in commands])):
        assert proc.returncode == 0, (command, proc.stderr)
        assert proc.stdout.startswith(" ".join(["usage: megenginelite"] + command)), proc.stdout
    assert all(name in cli_many([["--help"]])[0].stdout
               for name in ("info", "run", "bench", "convert", "serve", "run-dataset"))


BAD_USAGE = {
    "no command": ([], "required"),
    "unknown command": (["frobnicate"], "invalid choice"),
    "missing model": (["run"], "required"),
    "bad --iter": (["run", "M", "--iter", "0"], "--iter"),
    "bad --threads": (["bench", "M", "--threads", "one"], "--threads"),
    "old --opset": (["convert", "M", "out.onnx", "--opset", str(OPSET - 1)], "--opset"),
    "unknown input": (["run", "M", "--input", "nosuch=zeros"], "no input 'nosuch'"),
    "unnamed input, 2 inputs": (["run", "M2", "--input", "zeros"], "give --input NAME=VALUE"),
}


def test_bad_usage_exits_2():
    paths = {"M": model_path(entry("resnet18_small")), "M2": model_path(entry("two_in_two_out"))}
    cases = list(BAD_USAGE.items())
    procs = cli_many([[paths.get(a, a) for a in args] for _, (args, _) in cases])
    for (what, (_, message)), proc in zip(cases, procs):
        assert proc.returncode == 2, (what, proc.returncode, proc.stderr)
        assert message in one_line_error(proc), what
        assert proc.stdout == "", what


def test_missing_model_exits_1(tmp_path):
    missing = tmp_path / "missing.mge"
    commands = [["info", missing], ["run", missing], ["bench", missing], ["convert", missing, tmp_path / "o.onnx"]]
    for command, proc in zip(commands, cli_many(commands)):
        assert proc.returncode == 1, (command, proc.stderr)
        line = one_line_error(proc)
        assert str(missing) in line and "No such file" in line, line


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers()
                    or os.environ.get("MEGENGINELITE_EMULATE_CUDA", "") not in ("", "0"),
                    reason="CUDA (or its emulation) is available here")
def test_unavailable_device_exits_1():
    line = one_line_error(cli("run", model_path(entry("resnet18_small")), "--device", "cuda", check=1))
    assert "CUDAExecutionProvider is not available" in line


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed")
def test_serve_and_run_dataset_refuse_bad_options_and_models_before_starting_ray(tmp_path):
    model = model_path(entry("shufflenet_v2"))
    bogus = tmp_path / "bogus.mge"
    bogus.write_bytes(b"this is not a model file at all")
    cases = {("serve", model, "--replicas", "3-1"): (2, "expected N >= 1 or 1 <= MIN <= MAX"),
             ("serve", model, "--name", "a/b"): (2, "--name 'a/b'"),
             ("serve", model, "--batch-wait-ms", "-1"): (2, "--batch-wait-ms"),
             ("serve", tmp_path / "missing.mge"): (1, "No such file"),
             ("serve", bogus): (1, "invalid model format"),
             ("run-dataset", model, tmp_path / "nodir", tmp_path / "out"): (1, "not a directory"),
             ("run-dataset", tmp_path / "missing.mge", tmp_path, tmp_path / "out"): (1, "No such file")}
    for (args, (status, message)), proc in zip(cases.items(), cli_many([list(a) for a in cases])):
        assert proc.returncode == status, (args, proc.stderr)
        assert message in one_line_error(proc), args


def test_not_a_model_exits_1(tmp_path):
    bogus = tmp_path / "bogus.mge"
    bogus.write_bytes(b"this is not a model file at all")
    assert "invalid model format" in one_line_error(cli("info", bogus, check=1))


# ---------------------------------------------------------------------------------------------- info

def test_info_sees_through_a_packed_model():
    """info reads a packed model's inner model, as run does (one load pipeline): the recorded real load of this
    AES-packed file gives the same inputs and outputs as the plain two_in_two_out."""
    real = json.loads((FIXTURES / "crypto" / "manifest.json").read_text())
    real = next(e["real"] for e in real if e["name"] == "two_in_two_out.packed_aes.lite")
    info = json.loads(cli("info", FIXTURES / "crypto" / "two_in_two_out.packed_aes.lite", "--json").stdout)
    assert {io["name"]: io["shape"] for io in info["inputs"]} == real["input_layouts"]
    assert {io["name"]: io["shape"] for io in info["outputs"]} == real["output_shapes"]


def test_info_json_describes_shufflenet():
    fx = entry("shufflenet_v2")
    info = json.loads(cli("info", model_path(fx), "--json").stdout)
    assert info["format"] == "mgv2"
    assert info["mge_version"] == "1.13.0"
    assert info["model_version"] == 2
    assert [(io["name"], io["shape"], io["dtype"]) for io in info["inputs"]] == \
        list(zip(fx["inputs"], fx["input_shapes"], fx["input_dtypes"]))
    assert [(io["name"], io["shape"], io["dtype"]) for io in info["outputs"]] == \
        list(zip(fx["outputs"], fx["output_shapes"], fx["output_dtypes"]))
    ops = info["operators"]
    assert set(ops["by_type"]) == set(fx["ops"])
    assert set(ops["elemwise_modes"]) == set(fx["elemwise_modes"])
    assert ops["total"] == sum(ops["by_type"].values()) == sum(ops["by_kind"].values())
    assert ops["by_kind"]["Reshape"] == ops["by_type"]["ReshapeV1"]
    params = info["parameters"]
    assert params["tensors"] == ops["by_type"]["ImmutableTensor"]
    assert 2_000_000 < params["count"] < 2_500_000 and params["bytes"] == 4 * params["count"]  # all 4-byte values
    flops = info["flops"]
    # ShuffleNetV2 1.0x: ~146 M multiply-adds in its convolutions, a 1024x1000 classifier
    assert 2.8e8 < flops["convolution"] < 3.0e8
    assert flops["matmul"] == 2 * 1024 * 1000
    assert flops["total"] == sum(flops[k] for k in ("convolution", "deconvolution", "matmul", "batched_matmul",
                                                    "elementwise"))
    assert info["inference_error"] is None


@pytest.mark.parametrize("name, kind, expected", [
    ("op_matmul_nn", "matmul", 2 * 3 * 4 * 5),                      # (3,4) @ (4,5)
    ("op_batched_matmul_3d", "batched_matmul", 2 * 2 * 3 * 4 * 5),  # 2 x (3,4) @ (4,5)
    ("op_conv_group", "convolution", 2 * (6 * 8 * 8) * (4 // 2) * 3 * 3),   # 2 * out elems * IC/groups * K*K
    ("op_deconv_group", "deconvolution", 2 * (4 * 5 * 5) * (6 // 2) * 3 * 3),  # 2 * in elems * OC/groups * K*K
])
def test_info_flops_of_single_ops(name, kind, expected):
    flops = json.loads(cli("info", model_path(entry(name)), "--json").stdout)["flops"]
    assert flops[kind] == expected
    assert flops["total"] == expected


def test_info_text():
    out = cli("info", model_path(entry("transformer_block"))).stdout
    assert "format      mgv2, model version 2, dumped by MegEngine 1.13.0" in out
    assert "inputs      data  (2, 16, 32) float32" in out
    assert "outputs     out  (2, 16, 32) float32" in out
    assert "BatchedMatrixMulV2 2" in out and "Elemwise  " in out and "GELU" in out
    assert "FLOPs" in out and "batched matmul" in out


def test_info_and_run_with_an_output_length_known_at_run_time(tmp_path):
    """CondTake: info shows the length as its symbol, run saves what this input gives (the recorded reference)."""
    fx = entry("op_cond_take")
    ref = reference(fx)
    assert re.search(r"outputs     out  \(n\d+\) float32", cli("info", model_path(fx)).stdout)
    np.save(tmp_path / "x.npy", ref["input:x"])
    cli("run", model_path(fx), "--input", tmp_path / "x.npy", "--output-dir", tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), ref["output:out"])


# ---------------------------------------------------------------------------------------------- run

def test_run_saves_outputs_matching_reference(tmp_path):
    fx = entry("two_in_two_out")
    ref = reference(fx)
    args = ["run", model_path(fx), "--output-dir", tmp_path / "out", "--json"]
    for name in fx["inputs"]:
        np.save(tmp_path / f"{name}.npy", ref[f"input:{name}"])
        args += ["--input", f"{name}={tmp_path / f'{name}.npy'}"]
    result = json.loads(cli(*args).stdout)
    assert [o["name"] for o in result["outputs"]] == fx["outputs"]
    assert [i["source"] for i in result["inputs"]] == [str(tmp_path / f"{n}.npy") for n in fx["inputs"]]
    for out in result["outputs"]:
        saved = np.load(tmp_path / "out" / f"{out['name']}.npy")
        assert out["file"] == str(tmp_path / "out" / f"{out['name']}.npy")
        assert_close(fx, saved, ref[f"output:{out['name']}"], out["name"])
        assert out["shape"] == list(saved.shape) and out["dtype"] == saved.dtype.name
        assert out["min"] == pytest.approx(float(saved.min())) and out["std"] == pytest.approx(float(saved.std()))


def test_run_single_input_file_without_name(tmp_path):
    fx = entry("resnet18_small")
    ref = reference(fx)
    np.save(tmp_path / "x.npy", ref["input:data"].astype(np.float64))  # float64 is cast to the input's float32
    cli("run", model_path(fx), "--input", tmp_path / "x.npy", "--output-dir", tmp_path)
    assert_close(fx, np.load(tmp_path / "logits.npy"), ref["output:logits"], "logits")


def test_run_default_random_input_is_the_reference_input():
    """Random inputs are RandomState(seed).uniform(0, 1): shufflenet_v2's reference input for seed 0."""
    fx = entry("shufflenet_v2")
    want = reference(fx)["output:Softmax"]
    proc = cli("run", model_path(fx))
    assert "input   data  (1, 3, 224, 224) float32  random (seed 0)" in proc.stdout
    line = next(line for line in proc.stdout.splitlines() if line.startswith("output  Softmax"))
    assert "(1, 1000) float32" in line
    words = line.split()
    stats = dict(zip(words[5::2], map(float, words[6::2])))
    assert stats["max"] == pytest.approx(float(want.max()), rel=1e-4)
    assert stats["mean"] == pytest.approx(float(want.mean()), rel=1e-4)
    assert "forward " in proc.stdout


def test_run_iter_prints_latency_and_progress():
    proc = cli("run", model_path(entry("resnet18_small")), "--iter", "3", "--warmup", "1", "--threads", "2",
               "--progress")
    assert "latency 3 runs after 1 warm-up: min " in proc.stdout and "p90" in proc.stdout
    assert "2 threads" in proc.stdout
    assert "forward [" in proc.stderr and "4/4" in proc.stderr
    result = json.loads(cli("run", model_path(entry("resnet18_small")), "--iter", "2", "--json").stdout)
    assert result["latency"]["runs"] == 2 and result["latency"]["warmup"] == 1
    assert set(result["latency"]) >= {"min_ms", "median_ms", "p90_ms", "mean_ms"}


@pytest.mark.parametrize("option, method", [("--profile", "enable_profile_performance"),
                                            ("--io-dump", "io_txt_dump")])
def test_run_profile_and_io_dump(option, method, tmp_path):
    target = tmp_path / ("profile.json" if option == "--profile" else "dump")
    proc = cli("run", model_path(entry("resnet18_small")), option, target, check=None)
    if hasattr(LiteNetwork, method):
        assert proc.returncode == 0, proc.stderr
        assert (target if option == "--profile" else target / "io_dump.txt").exists()
    else:
        assert proc.returncode == 1
        assert "not supported yet" in one_line_error(proc)


def test_run_bad_npy_exits_1(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 64, 64), np.complex64))
    line = one_line_error(cli("run", model_path(entry("resnet18_small")), "--input", f"data={tmp_path / 'x.npy'}",
                              check=1))
    assert "complex64" in line


# ---------------------------------------------------------------------------------------------- bench

def test_bench_json_and_table():
    model = model_path(entry("resnet18_small"))
    result = json.loads(cli("bench", model, "--threads", "1,2", "--batch", "1,2", "--iter", "2", "--warmup", "1",
                            "--json").stdout)
    rows = result["results"]
    assert [(r["threads"], r["batch"]) for r in rows] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    for r in rows:
        assert r["runs"] == 2 and 0 < r["min_ms"] <= r["median_ms"] <= r["p90_ms"]
        assert r["items_per_s"] == pytest.approx(r["batch"] / (r["median_ms"] / 1e3))
    proc = cli("bench", model, "--iter", "2", "--warmup", "0", "--progress")
    header, row = proc.stdout.splitlines()[1:3]
    assert header.split() == ["threads", "batch", "median", "ms", "p90", "ms", "items/s"]
    assert row.split()[:2] == ["1", "1"]
    assert "bench [" in proc.stderr and "2/2" in proc.stderr


# ---------------------------------------------------------------------------------------------- convert

def run_onnx(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


@pytest.mark.parametrize("name", ["shufflenet_v2", "resnet18_small", "transformer_block", "two_in_two_out",
                                  "q_resnet18_small", "q_shufflenet_v1_small", "q_mobilenetv2_small"])
def test_convert_matches_reference(name, tmp_path):
    fx = entry(name)
    ref = reference(fx)
    out = tmp_path / f"{name}.onnx"
    proc = cli("convert", model_path(fx), out)
    assert proc.stdout.startswith(f"wrote {out}: opset {OPSET}")
    model = onnx.load(out)
    onnx.checker.check_model(model)
    assert sorted(i.name for i in model.graph.input) == sorted(fx["inputs"])
    assert [o.name for o in model.graph.output] == fx["outputs"]
    got = run_onnx(out, {n: ref[f"input:{n}"] for n in fx["inputs"]})
    for n in fx["outputs"]:
        assert_close(fx, got[n], ref[f"output:{n}"], n)


DETECT = Path(__file__).parents[1] / "fixtures" / "detect"


def test_info_and_convert_a_detector_with_run_time_sizes(tmp_path):
    """Faster R-CNN: info prints the number of detections as a symbol and bounds the FLOPs; the converted ONNX model
    keeps the data-dependent chain, so plain ONNX Runtime gives real Lite's outputs for every number of boxes (and
    0 rows where nothing is left)."""
    info = cli("info", DETECT / "faster_rcnn.mge").stdout
    assert re.search(r"outputs     scores  \(n\d+, 4\) float32", info) and "FLOPs       at most" in info
    summary = json.loads(cli("info", DETECT / "faster_rcnn.mge", "--json").stdout)
    rows = summary["outputs"][0]["shape"][0]
    assert re.fullmatch(r"n\d+", rows) and summary["outputs"][1]["shape"][1:] == [4, 4]
    assert summary["flops"]["upper_bound"] and summary["flops"]["total"] > 0
    out = tmp_path / "faster_rcnn.onnx"
    cli("convert", DETECT / "faster_rcnn.mge", out)
    onnx.checker.check_model(onnx.load(out))
    ref = np.load(DETECT / "faster_rcnn.npz")
    lengths = set()
    for case in range(4):
        got = run_onnx(out, {n: ref[f"case{case}:input:{n}"] for n in ("image", "im_info")})
        lengths.add(got["scores"].shape[0])
        if f"case{case}:output:scores" not in ref:  # real Lite fails with no proposal left
            assert got["scores"].shape == (0, 4) and got["boxes"].shape == (0, 4, 4)
            continue
        for n in ("scores", "boxes"):
            np.testing.assert_allclose(got[n], ref[f"case{case}:output:{n}"], rtol=1e-4, atol=1e-5)
    assert len(lengths) == 3


def test_convert_dynamic_batch_runs_at_batch_1_and_4(tmp_path):
    small, big = entry("shufflenet_v2"), entry("shufflenet_v2_b4")
    out = tmp_path / "dyn.onnx"
    result = json.loads(cli("convert", model_path(small), out, "--dynamic-batch", "--json").stdout)
    assert result["inputs"] == [{"name": "data", "shape": ["batch", 3, 224, 224], "dtype": "float32"}]
    assert result["outputs"] == [{"name": "Softmax", "shape": ["batch", 1000], "dtype": "float32"}]
    onnx.checker.check_model(onnx.load(out))
    for fx in (small, big):
        ref = reference(fx)
        got = run_onnx(out, {"data": ref["input:data"]})
        assert_close(fx, got["Softmax"], ref["output:Softmax"], fx["name"])


def test_convert_dynamic_batch_refuses_a_model_without_batch(tmp_path):
    out = tmp_path / "refused.onnx"
    line = one_line_error(cli("convert", model_path(entry("op_reduce_sum_all")), out, "--dynamic-batch", check=1))
    assert "cannot make the batch dim dynamic" in line
    assert not out.exists()


def test_convert_newer_opset(tmp_path):
    fx = entry("resnet18_small")
    ref = reference(fx)
    out = tmp_path / "r19.onnx"
    cli("convert", model_path(fx), out, "--opset", OPSET + 1, "--progress")
    model = onnx.load(out)
    onnx.checker.check_model(model)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [OPSET + 1]
    assert_close(fx, run_onnx(out, {"data": ref["input:data"]})["logits"], ref["output:logits"], "logits")


def test_console_script_is_declared():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["megenginelite"] == "megenginelite.cli:main"


def test_newer_opset_without_a_converter_adapter(monkeypatch):
    """If onnx's version converter fails, the opset import is raised alone (with a warning) and still checks."""
    from onnx import version_converter

    from megenginelite.format import read_model
    from megenginelite.cli.export import export_onnx

    def broken(model, opset):
        raise RuntimeError("no adapter")

    monkeypatch.setattr(version_converter, "convert_version", broken)
    warnings = []
    path = model_path(entry("two_in_two_out"))
    model = export_onnx(read_model(Path(path).read_bytes(), path), OPSET + 1, warn=warnings.append)
    onnx.checker.check_model(model)
    assert [o.version for o in model.opset_import] == [OPSET + 1]
    assert len(warnings) == 1 and "no adapter" in warnings[0]
