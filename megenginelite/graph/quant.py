"""Quantized dtypes: MegDNN's quantize (x / scale, rounded half away from zero, saturated) and dequantize."""

from __future__ import annotations

import numpy as np

from ..format.dtypes import DType, quant_range
from .elemwise_modes import round_half_away


def dequantize(x: np.ndarray, dtype: DType) -> np.ndarray:
    """(q - zero_point) * scale as float32; plain dtypes are just cast."""
    if not dtype.quantized:
        return x.astype(np.float32)
    return ((x.astype(np.float32) - np.float32(dtype.zero_point or 0)) * np.float32(dtype.scale)).astype(np.float32)


def quantize(x: np.ndarray, dtype: DType) -> np.ndarray:
    """round(x / scale) + zero_point saturated to the storage type (MegDNN's ``DTypeParam::quantize``)."""
    v = round_half_away(x.astype(np.float32) / np.float32(dtype.scale)) + (dtype.zero_point or 0)
    return np.clip(v, *quant_range(dtype)).astype(dtype.np_dtype)
