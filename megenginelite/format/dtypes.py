"""MegEngine data types as stored in model files (``DTypeEnum``) and their numpy storage types."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DType:
    """A MegEngine dtype: its name, numpy storage type and, for quantized types, scale and zero point."""

    name: str
    np_dtype: np.dtype
    scale: float | None = None
    zero_point: int | None = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    def __str__(self) -> str:
        if self.quantized:
            zp = f", zp={self.zero_point}" if self.zero_point is not None else ""
            return f"{self.name}(scale={self.scale:g}{zp})"
        return self.name


# DTypeEnum value -> (name, numpy storage dtype or None when the storage is packed low-bit)
DTYPE_ENUM: dict[int, tuple[str, np.dtype | None]] = {
    0: ("Float32", np.dtype(np.float32)),
    1: ("Uint8", np.dtype(np.uint8)),
    2: ("Int8", np.dtype(np.int8)),
    3: ("Int16", np.dtype(np.int16)),
    4: ("Int32", np.dtype(np.int32)),
    5: ("IntB1", None),
    6: ("IntB2", None),
    7: ("IntB4", None),
    8: ("Byte", np.dtype(np.uint8)),
    9: ("Float16", np.dtype(np.float16)),
    10: ("UintB4", None),
    11: ("Quantized8Asymm", np.dtype(np.uint8)),
    12: ("QuantizedS32", np.dtype(np.int32)),
    13: ("QuantizedS8", np.dtype(np.int8)),
    14: ("Quantized4Asymm", None),
    15: ("QuantizedS4", None),
    16: ("QuantizedS16", np.dtype(np.int16)),
    17: ("BFloat16", np.dtype(np.uint16)),
    18: ("Bool", np.dtype(np.bool_)),
    19: ("Uint16", np.dtype(np.uint16)),
    20: ("QuantizedS1", None),
    21: ("Complex64", np.dtype(np.complex64)),
}

# 4-bit quantized dtypes inside the graph: one value per int8 / uint8 (files pack two per byte); their range
LOW_BIT = {"QuantizedS4": (np.dtype(np.int8), -8, 7), "Quantized4Asymm": (np.dtype(np.uint8), 0, 15)}


def quant_range(dtype: DType) -> tuple[int, int]:
    """The smallest and largest stored value of an integer (or quantized) dtype, 4-bit ones included."""
    if dtype.name in LOW_BIT:
        return LOW_BIT[dtype.name][1:]
    info = np.iinfo(dtype.np_dtype)
    return int(info.min), int(info.max)


def is_8bit_quantized(dtype: DType) -> bool:
    """QuantizedS8 / Quantized8Asymm: what ONNX Runtime's quantized (QLinear*) operators take."""
    return dtype.name in ("QuantizedS8", "Quantized8Asymm")


FLOAT32 = DType("Float32", np.dtype(np.float32))
INT32 = DType("Int32", np.dtype(np.int32))
BOOL = DType("Bool", np.dtype(np.bool_))
BYTE = DType("Byte", np.dtype(np.uint8))  # the empty workspace outputs of some operators

# BFloat16 inside the graph IR.  Files store BFloat16 tensors as their raw uint16 bits (``DTYPE_ENUM`` above, what
# the format readers decode); numpy has no bfloat16, so the graph carries BFloat16 values as float32 numbers that
# are exactly representable in bfloat16 (``bfloat16_round``), and the ONNX lowering re-rounds every BFloat16
# result the same way (``Cast`` to BFLOAT16 and back, which ONNX Runtime rounds like MegDNN).
BFLOAT16 = DType("BFloat16", np.dtype(np.float32))


def is_bfloat16(dtype: DType | None) -> bool:
    return dtype is not None and dtype.name == "BFloat16"


def bfloat16_round(x) -> np.ndarray:
    """float32 values rounded to bfloat16 precision exactly like MegDNN's ``float2bfloat16`` (dnn/include/megdnn/
    dtype/bfloat16.hpp): round to nearest, ties to even, on the raw bits; overflow goes to infinity; infinities
    stay; NaNs stay NaN (MegDNN sets the quiet bit of a NaN whose payload would be lost)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    finite = (bits & 0x7F800000) != 0x7F800000
    rounded = np.where(finite, bits + 0x7FFF + ((bits >> 16) & 1),
                       np.where(bits & 0xFFFF, bits | 0x10000, bits))
    return ((rounded & 0xFFFF0000).astype(np.uint32)).view(np.float32)


def bfloat16_bits_to_float32(bits) -> np.ndarray:
    """Raw bfloat16 bits (uint16, as stored in model files) as the float32 values they denote (exact)."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def float32_to_bfloat16_bits(x) -> np.ndarray:
    """float32 values as raw bfloat16 bits, rounded like MegDNN (``bfloat16_round``)."""
    return (bfloat16_round(x).view(np.uint32) >> 16).astype(np.uint16)

_BY_NUMPY = {np.dtype(t): DType(n, np.dtype(t)) for n, t in [
    ("Float32", np.float32), ("Float16", np.float16), ("Int32", np.int32), ("Int16", np.int16),
    ("Int8", np.int8), ("Uint8", np.uint8), ("Uint16", np.uint16), ("Bool", np.bool_)]}


NUMPY_DTYPES = frozenset(_BY_NUMPY)


def from_numpy(dt) -> DType:
    """The plain (non-quantized) MegEngine dtype stored as numpy type ``dt``."""
    try:
        return _BY_NUMPY[np.dtype(dt)]
    except KeyError:
        raise TypeError(f"numpy dtype {np.dtype(dt)} has no MegEngine counterpart") from None
