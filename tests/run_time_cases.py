"""The recorded cases of the run-time-length fixtures (tests/fixtures/dynamic, tests/fixtures/detect), shared by
graph/test_dynamic_shapes.py and runtime/test_gpu.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from conftest import run
from megenginelite import LiteNetwork

# per-operator chains (tools/make_dynamic_fixtures.py) and whole detectors (tools/make_detect_fixtures.py)
FIXTURE_DIRS = [Path(__file__).parent / "fixtures" / d for d in ("dynamic", "detect")]
DYNAMIC_MANIFEST = {name: dict(entry, dir=d) for d in FIXTURE_DIRS
                    for name, entry in json.loads((d / "manifest.json").read_text()).items()}
DYNAMIC_CASES = [(name, i) for name, entry in sorted(DYNAMIC_MANIFEST.items()) for i in range(len(entry["cases"]))]

def check_run_time_case(network: LiteNetwork, name: str, case: int, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """One recorded case of a run-time-length fixture on a loaded network (also used by the GPU tests)."""
    entry = DYNAMIC_MANIFEST[name]
    ref = np.load(entry["dir"] / f"{name}.npz")
    outputs = [*run(network, {n: ref[f"case{case}:input:{n}"] for n in entry["inputs"]}).values()]
    recorded = entry["cases"][case]
    for out_name, got in zip(network.get_all_output_name(), outputs):
        layout = tuple(network.get_io_tensor(out_name).layout.shapes[:network.get_io_tensor(out_name).layout.ndim])
        if "error" in recorded:
            want_shape = tuple(recorded["shapes"][out_name])
            assert layout == want_shape
            assert got.size == 0 or 0 not in want_shape
            continue
        want = ref[f"case{case}:output:{out_name}"]
        assert layout == want.shape
        np.testing.assert_allclose(got.reshape(layout), want, rtol=rtol, atol=atol)  # to_numpy of empty: (0,)
