"""The quick-start program runs as a user would run it and prints what the real library printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np

from conftest import BY_NAME, model_path
from example_runs import ROOT, ROUND, assert_same_rounds, batch_inference_rounds

PRINTED = re.compile(r"shufflenet output max=([-+\de.]+), sum=([-+\de.]+)")


def test_inference_example_prints_the_real_librarys_numbers(shufflenet):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "inference.py"), model_path(shufflenet)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    ours = PRINTED.fullmatch(result.stdout.strip())
    real = PRINTED.fullmatch(BY_NAME["shufflenet_v2"]["seed_print"])
    assert ours and real, (result.stdout, BY_NAME["shufflenet_v2"]["seed_print"])
    np.testing.assert_allclose([float(v) for v in ours.groups()], [float(v) for v in real.groups()], rtol=1e-4)


def test_batch_inference_example_prints_the_real_librarys_numbers(shufflenet):
    real = (ROOT / "tests" / "fixtures" / "batch_inference_real_cpu.txt").read_text().splitlines()
    want = [ROUND.fullmatch(line).groups() for line in real]
    assert_same_rounds(batch_inference_rounds(model_path(shufflenet), "--device", "cpu"), want, rtol=1e-4)


def test_batch_inference_example_on_the_emulated_device(shufflenet):
    """--device cuda takes the device code paths (device input, device batch, no-copy sharing) on the emulation."""
    env = {**os.environ, "MEGENGINELITE_EMULATE_CUDA": "1"}
    cpu = batch_inference_rounds(model_path(shufflenet), "--device", "cpu")
    assert_same_rounds(batch_inference_rounds(model_path(shufflenet), "--device", "cuda", env=env), cpu, rtol=1e-6)
