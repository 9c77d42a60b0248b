"""Running examples/batch_inference.py and comparing its per-round lines, shared by api/test_examples.py and
runtime/test_gpu.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

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
