"""The short version of ``bench/soak.py``: repeated forwards and repeated load/unload do not grow memory.

The full soak (10,000 forwards, 1,000 loads; figures in docs/reliability.md) is too slow for CI; this runs 300
forwards and 30 loads with generous bounds, which still catch a leak of a tensor-sized buffer per forward or of a
compiled model per load.
"""

from __future__ import annotations

from bench import soak
from conftest import FIXTURES


def test_forwards_do_not_grow_memory():
    # resnet18_small: a 1x3x64x64 input (48 KiB) and many intermediate buffers; leaking one input-sized buffer per
    # forward would add about 14 MiB over the 270 forwards after warm-up
    result = soak.soak_forwards(FIXTURES / "resnet18_small.mge", 300, samples=30, warmup=0.1)
    assert result["growth_after_warmup_mib"] < 8, result


def test_loads_do_not_grow_memory():
    # every 5th cycle loads resnet18_small (285 KB of weights); keeping the compiled models alive would add
    # megabytes per such cycle
    result = soak.soak_loads(FIXTURES / "two_in_two_out.mge", 30, heavy=FIXTURES / "resnet18_small.mge",
                             heavy_every=5, samples=10, warmup=0.2)
    assert result["growth_after_warmup_mib"] < 16, result
