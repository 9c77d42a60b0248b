"""What the CPU offers, for the choices that depend on it: ONNX Runtime's kernels differ by vector extension.

- ``nchwc_block``: the channel block of its NCHWc convolutions (16 with AVX-512, 8 with AVX2), which the channel
  padding rewrite aligns to.
- ``int8_products_saturate``: whether its uint8 x int8 integer GEMM (QLinearConv, MatMulInteger) sums pairs of
  products in int16 with saturation (``vpmaddubsw``: x86 with AVX2 or AVX-512BW but no VNNI), so that
  255 x 127 + 255 x 127 comes out as 32767: wrong results, silently. There the quantized lowerings give the
  integer kernels uint8 x uint8 operands (weights + 128, zero point 128), which it widens to int16 first: exact.
  With VNNI (``vpdpbusd``, int32 accumulators) and on other architectures uint8 x int8 is exact and the faster.
"""

from __future__ import annotations

import platform
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Iterator

_portable: ContextVar[bool] = ContextVar("portable", default=False)


@contextmanager
def portable() -> Iterator[None]:
    """Lower for any CPU (an exported ONNX file runs wherever its user takes it): the integer kernels get the
    operands that are exact on every CPU."""
    token = _portable.set(True)
    try:
        yield
    finally:
        _portable.reset(token)


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The flags of /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return frozenset(next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []))
    except OSError:
        return frozenset()


def nchwc_block() -> int:
    """The channel block of ONNX Runtime's NCHWc convolutions on this CPU: 16 with AVX-512, 8 with AVX2, else 0
    (no NCHWc kernels)."""
    flags = cpu_flags()
    return 16 if "avx512f" in flags else 8 if "avx2" in flags else 0


def int8_products_saturate() -> bool:
    """Whether ONNX Runtime's uint8 x int8 GEMM saturates pairs of products in int16 on this CPU (see above);
    True inside ``portable()``."""
    if _portable.get():
        return True
    flags = cpu_flags()
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
    return x86 and bool(flags & {"avx2", "avx512bw"}) and not flags & {"avx512_vnni", "avx_vnni", "amx_int8"}
