"""Elemwise modes: value -> name, with a numpy evaluation used for constant folding."""

from __future__ import annotations

import math

import numpy as np


def round_half_away(x):
    return np.where(x >= 0, np.floor(x + 0.5), np.ceil(x - 0.5)).astype(x.dtype)


def _floor_div(x, y):
    if np.issubdtype(x.dtype, np.integer):
        return np.floor_divide(x, y)
    return np.floor(x / y).astype(x.dtype)


def _mod(x, y):
    return np.mod(x, y) if np.issubdtype(x.dtype, np.integer) else np.fmod(x, y)


def _sigmoid(x):
    return (1 / (1 + np.exp(-x))).astype(x.dtype)


def _hswish(x):
    return (x * np.clip(x + 3, 0, 6) / 6).astype(x.dtype)


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _gelu(x):
    return (x * 0.5 * (1 + _erf(x / math.sqrt(2)))).astype(x.dtype)


def _as(x, like):
    return np.asarray(x).astype(like.dtype)


# value -> (name, number of inputs, numpy function or None when not folded)
MODES: dict[int, tuple[str, int, object]] = {
    0: ("RELU", 1, lambda x: np.maximum(x, 0).astype(x.dtype)),
    1: ("ABS", 1, np.abs),
    2: ("ACOS", 1, np.arccos),
    3: ("ASIN", 1, np.arcsin),
    4: ("CEIL", 1, np.ceil),
    5: ("COS", 1, np.cos),
    6: ("EXP", 1, np.exp),
    7: ("EXPM1", 1, np.expm1),
    8: ("FLOOR", 1, np.floor),
    9: ("LOG", 1, np.log),
    10: ("LOG1P", 1, np.log1p),
    11: ("NEGATE", 1, np.negative),
    12: ("SIGMOID", 1, _sigmoid),
    13: ("SIN", 1, np.sin),
    14: ("TANH", 1, np.tanh),
    15: ("ABS_GRAD", 2, lambda x, y: _as(np.where(x > 0, y, -y), x)),
    16: ("ADD", 2, np.add),
    17: ("FLOOR_DIV", 2, _floor_div),
    18: ("MAX", 2, np.maximum),
    19: ("MIN", 2, np.minimum),
    20: ("MOD", 2, _mod),
    21: ("MUL", 2, np.multiply),
    22: ("POW", 2, np.power),
    23: ("SIGMOID_GRAD", 2, lambda x, y: x * (1 - x) * y),
    24: ("SUB", 2, np.subtract),
    25: ("SWITCH_GT0", 2, lambda x, y: _as(np.where(x > 0, y, 0), x)),
    26: ("TANH_GRAD", 2, lambda x, y: (1 - x * x) * y),
    27: ("TRUE_DIV", 2, lambda x, y: _as(np.true_divide(x, y), x)),
    28: ("LOG_SUM_EXP", 2, np.logaddexp),
    29: ("LT", 2, lambda x, y: _as(x < y, x)),
    30: ("LEQ", 2, lambda x, y: _as(x <= y, x)),
    31: ("EQ", 2, lambda x, y: _as(x == y, x)),
    32: ("SHL", 2, np.left_shift),
    33: ("SHR", 2, np.right_shift),
    34: ("COND_LEQ_MOV", 3, lambda x, y, z: _as(np.where(x <= y, z, 0), z)),
    35: ("FUSE_MUL_ADD3", 3, lambda x, y, z: x * y + z),
    36: ("FUSE_MUL_ADD4", 4, lambda x, y, z, w: x * y + z * w),
    37: ("FUSE_ADD_RELU", 2, lambda x, y: np.maximum(x + y, 0).astype(x.dtype)),
    38: ("FUSE_ADD_SIGMOID", 2, lambda x, y: _sigmoid(x + y)),
    39: ("FUSE_ADD_TANH", 2, lambda x, y: np.tanh(x + y)),
    40: ("FAST_TANH", 1, lambda x: (x * (27 + x * x) / (27 + 9 * x * x)).astype(x.dtype)),
    41: ("FAST_TANH_GRAD", 2, None),
    42: ("ROUND", 1, round_half_away),
    43: ("RMULH", 2, None),
    44: ("ATAN2", 2, np.arctan2),
    45: ("ERF", 1, lambda x: _as(_erf(x), x)),
    46: ("ERFINV", 1, None),
    47: ("ERFC", 1, lambda x: _as(1 - _erf(x), x)),
    48: ("ERFCINV", 1, None),
    49: ("H_SWISH", 1, _hswish),
    50: ("H_SWISH_GRAD", 2, None),
    51: ("FUSE_ADD_H_SWISH", 2, lambda x, y: _hswish(x + y)),
    52: ("NOT", 1, np.logical_not),
    53: ("AND", 2, np.logical_and),
    54: ("OR", 2, np.logical_or),
    55: ("XOR", 2, np.logical_xor),
    56: ("SILU", 1, lambda x: (x * _sigmoid(x)).astype(x.dtype)),
    57: ("SILU_GRAD", 2, None),
    58: ("GELU", 1, _gelu),
    59: ("GELU_GRAD", 2, None),
    60: ("COND_LT_MOV", 3, lambda x, y, z: _as(np.where(x < y, z, 0), z)),
    61: ("NEQ", 2, lambda x, y: _as(x != y, x)),
    62: ("ISNAN", 1, np.isnan),
    63: ("ISINF", 1, np.isinf),
    64: ("SINH", 1, np.sinh),
    65: ("COSH", 1, np.cosh),
    66: ("ASINH", 1, np.arcsinh),
    67: ("ACOSH", 1, np.arccosh),
    68: ("ATANH", 1, np.arctanh),
    69: ("TAN", 1, np.tan),
    70: ("ASINH_GRAD", 2, None),
    71: ("ACOSH_GRAD", 2, None),
    72: ("ATANH_GRAD", 2, None),
    73: ("PRELU", 2, lambda x, y: _as(np.where(x > 0, x, x * y), x)),
    74: ("CLIP", 3, lambda x, y, z: np.minimum(np.maximum(x, y), z)),
    75: ("PRELU_GRAD", 3, None),
    76: ("SOFTPLUS", 1, lambda x: _as(np.logaddexp(0, x), x)),
    77: ("SOFTPLUS_GRAD", 2, None),
    78: ("RELU6", 1, lambda x: np.clip(x, 0, 6).astype(x.dtype)),
    79: ("RELU6_GRAD", 2, None),
    80: ("HSIGMOID", 1, lambda x: (np.clip(x + 3, 0, 6) / 6).astype(x.dtype)),
    81: ("HSIGMOID_GRAD", 2, None),
    82: ("LOGSIGMOID", 1, lambda x: _as(-np.logaddexp(0, -x), x)),
    83: ("SQRT", 1, np.sqrt),
    84: ("SQUARE", 1, np.square),
    85: ("SIGN", 1, np.sign),
}

BOOL_RESULT = {"ISNAN", "ISINF"}
CLIP_MODE = 74


def mode_name(mode: int) -> str:
    return MODES[mode][0] if mode in MODES else f"mode {mode}"


def _fma3_to_int8(x, y, z):
    """k * x + b in float32, rounded half to even and saturated to int8 (MegDNN's Fma3iXxf32xf32xiYOp)."""
    return np.clip(np.rint(y * x.astype(np.float32) + z), -128, 127).astype(np.int8)


def round_shr(x, k) -> np.ndarray:
    """x / 2**k rounded half away from zero, as float64 (exact for 32-bit x): MegDNN's
    rounding_shift_right_away_from_zero."""
    v = np.asarray(x, np.float64) / np.exp2(np.asarray(k, np.float64))
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def _round_shr_saturate(out):
    def fn(x, k):
        info = np.iinfo(out)
        return np.clip(round_shr(x, k), info.min, info.max).astype(out)
    return fn


def rmulh(a, m) -> np.ndarray:
    """MegDNN's round_mulh_saturate: the rounded high half of the doubled product (a*m + 2**(n-1)) >> n, n the
    value bits of a's type; MIN * MIN saturates to MAX."""
    info = np.iinfo(a.dtype)
    bits = info.bits - 1
    p = a.astype(np.int64) * np.asarray(m).astype(np.int64)
    out = (p + (1 << (bits - 1))) >> bits
    return np.where((a == info.min) & (np.asarray(m) == info.min), info.max, out)


def _fuse_add_rmulh_round_shr(x, b, m, k, low, high):
    """clamp(round_shr(rmulh(x + b, m), k), low, high) as int8 (x + b wraps like the C++ integers)."""
    with np.errstate(over="ignore"):
        t = (x + b).astype(x.dtype)
    return np.clip(round_shr(rmulh(t, m.astype(x.dtype)), k), low.astype(np.float64), high.astype(np.float64)) \
        .astype(np.int8)


# ElemwiseMultiType modes that are not quantized: value -> (name, inputs, numpy function, output numpy dtype)
MULTI_MODES: dict[int, tuple[str, int, object, np.dtype]] = {
    0: ("FUSE_MUL_ADD3_INT16x32x32x32", 3, lambda x, y, z: x.astype(np.int32) * y + z, np.dtype(np.int32)),
    1: ("FUSE_MUL_ADD3_IXxF32xF32xI8", 3, _fma3_to_int8, np.dtype(np.int8)),
    2: ("ROUND_SHR_SATURATE_IXxI8xI8", 2, _round_shr_saturate(np.int8), np.dtype(np.int8)),
    3: ("FUSE_ADD_RMULH_ROUND_SHR_SATURATE_INT16x16x16x8", 6, _fuse_add_rmulh_round_shr, np.dtype(np.int8)),
    4: ("FUSE_ADD_RMULH_ROUND_SHR_SATURATE_INT32x32x32x8", 6, _fuse_add_rmulh_round_shr, np.dtype(np.int8)),
    5: ("ROUND_SHR_SATURATE_IXxI8xI16", 2, _round_shr_saturate(np.int16), np.dtype(np.int16)),
    54: ("FUSE_MUL_ADD3_INT16xF32xF32xF32", 3, lambda x, y, z: x.astype(np.float32) * y + z, np.dtype(np.float32)),
    55: ("MUL_INT16xF32xF32", 2, lambda x, y: x.astype(np.float32) * y, np.dtype(np.float32)),
    56: ("FUSE_MUL_ADD3_UINT8xF32xF32xF32", 3, lambda x, y, z: x.astype(np.float32) * y + z, np.dtype(np.float32)),
    58: ("EQ", 2, np.equal, np.dtype(np.bool_)),
    59: ("NEQ", 2, np.not_equal, np.dtype(np.bool_)),
    60: ("LT", 2, np.less, np.dtype(np.bool_)),
    61: ("LEQ", 2, np.less_equal, np.dtype(np.bool_)),
    62: ("ISNAN", 1, np.isnan, np.dtype(np.bool_)),
    63: ("ISINF", 1, np.isinf, np.dtype(np.bool_)),
}

# Quantized ElemwiseMultiType modes: value -> the Elemwise mode computed on the dequantized inputs (the result is
# quantized to the op's output dtype)
QUANTIZED_MODES: dict[int, str] = {
    value: name for value, name in zip(
        [*range(6, 54), 57],
        ["ADD", "FUSE_ADD_RELU", "MUL", "MIN", "MAX", "SUB", "TRUE_DIV", "FUSE_ADD_SIGMOID", "FUSE_ADD_TANH", "RELU",
         "ABS", "SIGMOID", "EXP", "TANH", "FUSE_MUL_ADD3", "FAST_TANH", "NEGATE", "ACOS", "ASIN", "CEIL", "COS", "EXPM1",
         "FLOOR", "LOG", "LOG1P", "SIN", "ROUND", "ERF", "ERFINV", "ERFC", "ERFCINV", "ABS_GRAD", "FLOOR_DIV", "MOD",
         "SIGMOID_GRAD", "SWITCH_GT0", "TANH_GRAD", "LT", "LEQ", "EQ", "POW", "LOG_SUM_EXP", "FAST_TANH_GRAD", "ATAN2",
         "COND_LEQ_MOV", "H_SWISH", "FUSE_ADD_H_SWISH", "H_SWISH_GRAD", "COND_LT_MOV"])
}
