"""What the figures of a benchmark were measured on: every bench script prints ``describe()`` before its table.

Speed depends on the CPU's vector units (ONNX Runtime's MLAS picks AVX2, AVX-512 or VNNI kernels; our channel
padding follows the NCHWc block they use), so a figure without them cannot be compared with another machine's.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu() -> tuple[str, set[str]]:
    """The CPU model name and its flags, from /proc/cpuinfo ("?" and none elsewhere)."""
    model, flags = platform.processor() or "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    return model, flags


def describe() -> str:
    """One line: CPU model, logical CPUs, the vector flags that matter, onnxruntime and Python versions."""
    import onnxruntime

    model, flags = cpu()
    present = [f for f in CPU_FLAGS if f in flags]
    return (f"CPU: {model}, {os.cpu_count()} logical CPUs, flags {' '.join(present) or 'none of ' + ' '.join(CPU_FLAGS)}; "
            f"onnxruntime {onnxruntime.__version__}, Python {platform.python_version()}")
