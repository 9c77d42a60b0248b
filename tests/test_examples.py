"""The quick-start program runs as a user would run it and prints what the real library printed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import BY_NAME, model_path

ROOT = Path(__file__).resolve().parents[1]
PRINTED = re.compile(r"shufflenet output max=([-+\de.]+), sum=([-+\de.]+)")


def test_inference_example_prints_the_real_librarys_numbers(shufflenet):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "inference.py"), model_path(shufflenet)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    ours = PRINTED.fullmatch(result.stdout.strip())
    real = PRINTED.fullmatch(BY_NAME["shufflenet_v2"]["seed_print"])
    assert ours and real, (result.stdout, BY_NAME["shufflenet_v2"]["seed_print"])
    np.testing.assert_allclose([float(v) for v in ours.groups()], [float(v) for v in real.groups()], rtol=1e-4)
