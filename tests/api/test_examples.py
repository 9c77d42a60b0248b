"""The quick-start program runs as a user would run it and prints what the real library printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import BY_NAME, model_path

ROOT = Path(__file__).resolve().parents[2]
PRINTED = re.compile(r"shufflenet output max=([-+\de.]+), sum=([-+\de.]+)")


def test_inference_example_prints_the_real_librarys_numbers(shufflenet):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "inference.py"), model_path(shufflenet)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    ours = PRINTED.fullmatch(result.stdout.strip())
    real = PRINTED.fullmatch(BY_NAME["shufflenet_v2"]["seed_print"])
    assert ours and real, (result.stdout, BY_NAME["shufflenet_v2"]["seed_print"])
    np.testing.assert_allclose([float(v) for v in ours.groups()], [float(v) for v in real.groups()], rtol=1e-4)


# What the real MegEngine Lite 1.13 printed for examples/batch_inference.py on the bundled ShuffleNet with
# --device cpu (recorded with: cd /tmp && "$(shared/tools/real-megengine)" .../examples/batch_inference.py
# .../tests/fixtures/shufflenet_v2.mge --device cpu | grep ^round).
ROUND = re.compile(r"round (\d+) output shape=\((\d+), (\d+)\), max=([-+\de.]+), sum=([-+\de.]+), top classes=(\[.*\])")


def batch_inference_rounds(*args: str, env: dict | None = None) -> list[tuple]:
    """Run examples/batch_inference.py and parse its per-round lines."""
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "batch_inference.py"), *args],
                            capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    return [ROUND.fullmatch(line).groups() for line in result.stdout.splitlines() if line.startswith("round")]


def assert_same_rounds(got: list[tuple], want: list[tuple], rtol: float) -> None:
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        assert g[:3] == w[:3] and g[5] == w[5]  # round, shape, top classes
        np.testing.assert_allclose([float(v) for v in g[3:5]], [float(v) for v in w[3:5]], rtol=rtol)


def test_batch_inference_example_prints_the_real_librarys_numbers(shufflenet):
    real = (ROOT / "tests" / "fixtures" / "batch_inference_real_cpu.txt").read_text().splitlines()
    want = [ROUND.fullmatch(line).groups() for line in real]
    assert_same_rounds(batch_inference_rounds(model_path(shufflenet), "--device", "cpu"), want, rtol=1e-4)


def test_batch_inference_example_on_the_emulated_device(shufflenet):
    """--device cuda takes the device code paths (device input, device batch, no-copy sharing) on the emulation."""
    env = {**os.environ, "MEGENGINELITE_EMULATE_CUDA": "1"}
    cpu = batch_inference_rounds(model_path(shufflenet), "--device", "cpu")
    assert_same_rounds(batch_inference_rounds(model_path(shufflenet), "--device", "cuda", env=env), cpu, rtol=1e-6)
