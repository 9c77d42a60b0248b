"""Elementwise operators: Elemwise (every mode of ``graph.elemwise_modes``), ElemwiseMultiType (fused and quantized
modes), PowC and TypeCvt, and the quantization helpers other families lower quantized ops with.

Each operator's param table, shape rule, fold rule and lowering (with the modes it declares) sit together.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import UnsupportedOperatorError
from ..format.dtypes import BOOL, DType, from_numpy, is_8bit_quantized, quant_range
from ..format.params import expect_param, param_table
from ..graph.dims import RuntimeDimError, maximum, minimum
from ..graph.elemwise_modes import BOOL_RESULT, MODES, MULTI_MODES, QUANTIZED_MODES, mode_name
from ..graph.infer import broadcast_shapes, fail, fold_rule, same, shape_rule, sym_fold_rule
from ..graph.ir import Op
from ..graph.quant import dequantize as dequantize_array, quantize as quantize_array
from ..lower.builder import Builder, lowering

param_table(17, "Elemwise", [("mode", "u32", 0)], "Elemwise")
param_table(18, "ElemwiseMultiType", [("mode", "u32", 0)], "ElemwiseMultiType")
param_table(19, "PowC", [("exp", "f32", 0.0)], "PowC")
expect_param(67, "TypeCvt")


def quantized_mode(op: Op) -> str | None:
    """The Elemwise mode a quantized ElemwiseMultiType (QADD, QFUSE_ADD_RELU, ...) computes, else None."""
    name = QUANTIZED_MODES.get(op.params.get("mode", 0))
    if name is None:
        return None
    if op.output_dtype is None or not op.output_dtype.quantized:
        raise fail(op, f"quantized ElemwiseMultiType Q{name} without a quantized output dtype")
    arity = next(a for n, a, _ in MODES.values() if n == name)
    if len(op.inputs) != arity:
        raise fail(op, f"ElemwiseMultiType Q{name} takes {arity} inputs, got {len(op.inputs)}")
    return name


def multi_type_mode(op: Op) -> tuple[str, int, object, np.dtype]:
    """The (name, arity, numpy function, output dtype) of a non-quantized ElemwiseMultiType."""
    mode = op.params.get("mode", 0)
    if mode not in MULTI_MODES:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: ElemwiseMultiType mode {mode}")
    entry = MULTI_MODES[mode]
    if len(op.inputs) != entry[1]:
        raise fail(op, f"ElemwiseMultiType {entry[0]} takes {entry[1]} inputs, got {len(op.inputs)}")
    return entry


def _c(b: Builder, value, dtype) -> str:
    return b.const(np.asarray([value], dtype=dtype).reshape(()), "k")


def _is_int(dtype) -> bool:
    return np.issubdtype(dtype, np.integer)


def _as_dtype(b: Builder, value: str, dtype) -> str:
    """A boolean result converted back to the operands' dtype (MegBrain comparisons return 0/1 of that dtype)."""
    return value if np.dtype(dtype) == np.bool_ else b.cast(value, dtype)


def _sigmoid(b, x, dt):
    return b.node("Sigmoid", [x])


def _fast_tanh(b, x, dt):
    # MegDNN's rational approximation x * (27 + x^2) / (27 + 9 x^2)
    sq = b.node("Mul", [x, x])
    num = b.node("Mul", [x, b.node("Add", [sq, _c(b, 27, dt)])])
    return b.node("Div", [num, b.node("Add", [b.node("Mul", [sq, _c(b, 9, dt)]), _c(b, 27, dt)])])


def _hswish(b, x, dt):
    return b.node("HardSwish", [x])


def _gelu(b, x, dt):
    if np.dtype(dt) == np.float32:  # one fused kernel (ONNX Runtime's erf GELU); its BiasGelu fusion takes a bias add
        return b.node("Gelu", [x], domain="com.microsoft")
    half = b.node("Mul", [x, _c(b, 0.5, dt)])
    erf = b.node("Erf", [b.node("Mul", [x, _c(b, 1 / math.sqrt(2), dt)])])
    return b.node("Mul", [half, b.node("Add", [erf, _c(b, 1.0, dt)])])


def _floor_div(b, x, y, dt):
    if _is_int(dt):
        rem = b.node("Mod", [x, y], fmod=0)
        return b.node("Div", [b.node("Sub", [x, rem]), y])
    return b.node("Floor", [b.node("Div", [x, y])])


def _round(b, x, dt):
    # half away from zero: sign(x) * floor(|x| + 0.5)
    return b.node("Mul", [b.node("Sign", [x]), b.node("Floor", [b.node("Add", [b.node("Abs", [x]), _c(b, 0.5, dt)])])])


def _where(b, cond, x, dt):
    return b.node("Where", [cond, x, _c(b, 0, dt)])


def _softplus(b, x, dt):
    # log(1 + exp(x)) computed stably: relu(x) + log1p(exp(-|x|))
    tail = b.node("Log", [b.node("Add", [b.node("Exp", [b.node("Neg", [b.node("Abs", [x])])]), _c(b, 1, dt)])])
    return b.node("Add", [b.node("Relu", [x]), tail])


def _log1p(b, x, dt):
    return b.node("Log", [b.node("Add", [x, _c(b, 1, dt)])])


def _unsigned_shift(b, x, y, dt, direction):
    u = np.dtype(dt).str.replace("i", "u")
    return b.cast(b.node("BitShift", [b.cast(x, u), b.cast(y, u)], direction=direction), dt)


def _shl(b, x, y, dt):
    if not _is_int(dt):
        raise TypeError("shift needs integers")
    return _unsigned_shift(b, x, y, dt, "LEFT")


def _shr(b, x, y, dt):
    """Arithmetic shift right, as C's >> on signed ints: negative x shifts as ~((~x) >> y)."""
    if not _is_int(dt):
        raise TypeError("shift needs integers")
    if not np.issubdtype(dt, np.signedinteger):
        return _unsigned_shift(b, x, y, dt, "RIGHT")
    neg = b.node("Less", [x, _c(b, 0, dt)])
    inverted = b.node("Sub", [b.node("Neg", [x]), _c(b, 1, dt)])
    shifted = _unsigned_shift(b, b.node("Where", [neg, inverted, x]), y, dt, "RIGHT")
    return b.node("Where", [neg, b.node("Sub", [b.node("Neg", [shifted]), _c(b, 1, dt)]), shifted])


def _rmulh(b, x, y, dt):
    """Rounding high half of the doubled product, (x*y + 2**(n-1)) >> n with n = value bits; MIN*MIN saturates."""
    if not _is_int(dt):
        raise TypeError("RMULH needs integers")
    info = np.iinfo(dt)
    bits = info.bits - 1
    prod = b.node("Mul", [b.cast(x, np.int64), b.cast(y, np.int64)])
    prod = b.node("Add", [prod, _c(b, 1 << (bits - 1), np.int64)])
    out = _floor_div(b, prod, _c(b, 1 << bits, np.int64), np.int64)
    overflow = b.node("And", [b.node("Equal", [x, y]), b.node("Equal", [x, _c(b, info.min, dt)])])
    return b.node("Where", [overflow, _c(b, info.max, dt), b.cast(out, dt)])


def _grad_where(b, cond, then, other):
    return b.node("Where", [cond, then, other])


def _fast_tanh_grad(b, x, dy, dt):
    sq = b.node("Mul", [x, x])
    deno = b.node("Add", [sq, _c(b, 3, dt)])
    num = b.node("Add", [b.node("Div", [b.node("Mul", [sq, _c(b, -48, dt)]), deno]), b.node("Add", [sq, _c(b, 27, dt)])])
    return b.node("Mul", [b.node("Div", [num, b.node("Mul", [deno, _c(b, 9, dt)])]), dy])


def _silu_grad(b, x, dy, dt):
    sig = b.node("Sigmoid", [x])
    inner = b.node("Add", [_c(b, 1, dt), b.node("Mul", [x, b.node("Sub", [_c(b, 1, dt), sig])])])
    return b.node("Mul", [b.node("Mul", [dy, sig]), inner])


def _gelu_grad(b, x, dy, dt):
    phi = b.node("Mul", [_c(b, 0.3989422804014327, dt), b.node("Exp", [b.node("Mul", [_c(b, -0.5, dt), b.node("Mul", [x, x])])])])
    cdf = b.node("Mul", [_c(b, 0.5, dt), b.node("Add", [_c(b, 1, dt), b.node("Erf", [b.node("Mul", [x, _c(b, 1 / math.sqrt(2), dt)])])])])
    return b.node("Mul", [dy, b.node("Add", [cdf, b.node("Mul", [x, phi])])])


def _softplus_grad(b, x, dy, dt):
    e = b.node("Exp", [b.node("Neg", [b.node("Abs", [x])])])
    logg = b.node("Div", [b.node("Mul", [b.node("Neg", [dy]), e]), b.node("Add", [_c(b, 1, dt), e])])
    zero = _c(b, 0, dt)
    grad0 = _grad_where(b, b.node("Greater", [x, zero]), logg, b.node("Neg", [logg]))
    grad1 = _grad_where(b, b.node("Greater", [x, zero]), dy, zero)
    return b.node("Add", [grad0, grad1])


def _hswish_grad(b, x, dy, dt):
    inner = b.node("Mul", [b.node("Div", [b.node("Add", [b.node("Mul", [x, _c(b, 2, dt)]), _c(b, 3, dt)]), _c(b, 6, dt)]), dy])
    upper = _grad_where(b, b.node("Greater", [x, _c(b, 3, dt)]), dy, inner)
    return _grad_where(b, b.node("Less", [x, _c(b, -3, dt)]), _c(b, 0, dt), upper)


def _band_grad(low, high, value):
    """dy-like value where low < x < high, else 0 (RELU6_GRAD, HSIGMOID_GRAD)."""
    def emit(b, x, dy, dt):
        inside = b.node("And", [b.node("Greater", [x, _c(b, low, dt)]), b.node("Less", [x, _c(b, high, dt)])])
        return _grad_where(b, inside, value(b, dy, dt), _c(b, 0, dt))
    return emit


def _erfinv(b, x, dt):
    # Giles' single-precision approximation, refined by two Newton steps on erf.
    w = b.node("Neg", [b.node("Log", [b.node("Mul", [b.node("Sub", [_c(b, 1, dt), x]), b.node("Add", [_c(b, 1, dt), x])])])])
    small = [2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
             -0.00417768164, 0.246640727, 1.50140941]
    big = [-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
           0.00943887047, 1.00167406, 2.83297682]

    def poly(t, coeffs):
        acc = _c(b, coeffs[0], dt)
        for c in coeffs[1:]:
            acc = b.node("Add", [b.node("Mul", [acc, t]), _c(b, c, dt)])
        return acc

    p_small = poly(b.node("Sub", [w, _c(b, 2.5, dt)]), small)
    p_big = poly(b.node("Sub", [b.node("Sqrt", [w]), _c(b, 3.0, dt)]), big)
    y = b.node("Mul", [b.node("Where", [b.node("Less", [w, _c(b, 5.0, dt)]), p_small, p_big]), x])
    for _ in range(2):
        err = b.node("Sub", [b.node("Erf", [y]), x])
        deriv = b.node("Mul", [_c(b, 2 / math.sqrt(math.pi), dt), b.node("Exp", [b.node("Neg", [b.node("Mul", [y, y])])])])
        y = b.node("Sub", [y, b.node("Div", [err, deriv])])
    return y


# mode name -> emitter(builder, *inputs, dtype) -> value name
EMITTERS = {
    "RELU": lambda b, x, dt: b.node("Relu", [x]) if not _is_int(dt) else b.node("Max", [x, _c(b, 0, dt)]),
    "ABS": lambda b, x, dt: b.node("Abs", [x]),
    "ACOS": lambda b, x, dt: b.node("Acos", [x]),
    "ASIN": lambda b, x, dt: b.node("Asin", [x]),
    "CEIL": lambda b, x, dt: b.node("Ceil", [x]),
    "COS": lambda b, x, dt: b.node("Cos", [x]),
    "EXP": lambda b, x, dt: b.node("Exp", [x]),
    "EXPM1": lambda b, x, dt: b.node("Sub", [b.node("Exp", [x]), _c(b, 1, dt)]),
    "FLOOR": lambda b, x, dt: b.node("Floor", [x]),
    "LOG": lambda b, x, dt: b.node("Log", [x]),
    "LOG1P": _log1p,
    "NEGATE": lambda b, x, dt: b.node("Neg", [x]),
    "SIGMOID": _sigmoid,
    "SIN": lambda b, x, dt: b.node("Sin", [x]),
    "TANH": lambda b, x, dt: b.node("Tanh", [x]),
    "FAST_TANH": _fast_tanh,
    "ROUND": _round,
    "ERF": lambda b, x, dt: b.node("Erf", [x]),
    "ERFC": lambda b, x, dt: b.node("Sub", [_c(b, 1, dt), b.node("Erf", [x])]),
    "ERFINV": _erfinv,
    "ERFCINV": lambda b, x, dt: _erfinv(b, b.node("Sub", [_c(b, 1, dt), x]), dt),
    "H_SWISH": _hswish,
    "NOT": lambda b, x, dt: b.node("Not", [x]),
    "SILU": lambda b, x, dt: b.node("Mul", [x, b.node("Sigmoid", [x])]),
    "GELU": _gelu,
    "ISNAN": lambda b, x, dt: b.node("IsNaN", [x]),
    "ISINF": lambda b, x, dt: b.node("IsInf", [x]),
    "SINH": lambda b, x, dt: b.node("Sinh", [x]),
    "COSH": lambda b, x, dt: b.node("Cosh", [x]),
    "ASINH": lambda b, x, dt: b.node("Asinh", [x]),
    "ACOSH": lambda b, x, dt: b.node("Acosh", [x]),
    "ATANH": lambda b, x, dt: b.node("Atanh", [x]),
    "TAN": lambda b, x, dt: b.node("Tan", [x]),
    "SOFTPLUS": _softplus,
    "RELU6": lambda b, x, dt: b.node("Clip", [x, _c(b, 0, dt), _c(b, 6, dt)]),
    "HSIGMOID": lambda b, x, dt: b.node("HardSigmoid", [x], alpha=1 / 6, beta=0.5),
    "LOGSIGMOID": lambda b, x, dt: b.node("Neg", [_softplus(b, b.node("Neg", [x]), dt)]),
    "SQRT": lambda b, x, dt: b.node("Sqrt", [x]),
    "SQUARE": lambda b, x, dt: b.node("Mul", [x, x]),
    "SIGN": lambda b, x, dt: b.node("Sign", [x]),
    "ADD": lambda b, x, y, dt: b.node("Add", [x, y]),
    "SUB": lambda b, x, y, dt: b.node("Sub", [x, y]),
    "MUL": lambda b, x, y, dt: b.node("Mul", [x, y]),
    "TRUE_DIV": lambda b, x, y, dt: b.node("Div", [x, y]),
    "FLOOR_DIV": _floor_div,
    "MAX": lambda b, x, y, dt: b.node("Max", [x, y]),
    "MIN": lambda b, x, y, dt: b.node("Min", [x, y]),
    "MOD": lambda b, x, y, dt: b.node("Mod", [x, y], fmod=0 if _is_int(dt) else 1),
    "POW": lambda b, x, y, dt: b.node("Pow", [x, y]),
    "SWITCH_GT0": lambda b, x, y, dt: _where(b, b.node("Greater", [x, _c(b, 0, dt)]), y, dt),
    "LOG_SUM_EXP": lambda b, x, y, dt: b.node("Add", [b.node("Max", [x, y]), _log1p(
        b, b.node("Exp", [b.node("Neg", [b.node("Abs", [b.node("Sub", [x, y])])])]), dt)]),
    "LT": lambda b, x, y, dt: _as_dtype(b, b.node("Less", [x, y]), dt),
    "LEQ": lambda b, x, y, dt: _as_dtype(b, b.node("LessOrEqual", [x, y]), dt),
    "EQ": lambda b, x, y, dt: _as_dtype(b, b.node("Equal", [x, y]), dt),
    "NEQ": lambda b, x, y, dt: _as_dtype(b, b.node("Not", [b.node("Equal", [x, y])]), dt),
    "SHL": _shl,
    "SHR": _shr,
    "RMULH": _rmulh,
    "FAST_TANH_GRAD": _fast_tanh_grad,
    "H_SWISH_GRAD": _hswish_grad,
    "SILU_GRAD": _silu_grad,
    "GELU_GRAD": _gelu_grad,
    "SOFTPLUS_GRAD": _softplus_grad,
    "ASINH_GRAD": lambda b, x, y, dt: b.node("Div", [y, b.node("Sqrt", [b.node("Add", [b.node("Mul", [x, x]), _c(b, 1, dt)])])]),
    "ACOSH_GRAD": lambda b, x, y, dt: b.node("Div", [y, b.node("Sqrt", [b.node("Sub", [b.node("Mul", [x, x]), _c(b, 1, dt)])])]),
    "ATANH_GRAD": lambda b, x, y, dt: b.node("Div", [y, b.node("Sub", [_c(b, 1, dt), b.node("Mul", [x, x])])]),
    "RELU6_GRAD": _band_grad(0, 6, lambda b, dy, dt: dy),
    "HSIGMOID_GRAD": _band_grad(-3, 3, lambda b, dy, dt: b.node("Div", [dy, _c(b, 6, dt)])),
    "PRELU_GRAD": lambda b, x, y, z, dt: _grad_where(b, b.node("GreaterOrEqual", [x, _c(b, 0, dt)]), y, b.node("Mul", [y, z])),
    "FUSE_ADD_RELU": lambda b, x, y, dt: EMITTERS["RELU"](b, b.node("Add", [x, y]), dt),
    "FUSE_ADD_SIGMOID": lambda b, x, y, dt: b.node("Sigmoid", [b.node("Add", [x, y])]),
    "FUSE_ADD_TANH": lambda b, x, y, dt: b.node("Tanh", [b.node("Add", [x, y])]),
    "FUSE_ADD_H_SWISH": lambda b, x, y, dt: b.node("HardSwish", [b.node("Add", [x, y])]),
    "ATAN2": None,
    "AND": lambda b, x, y, dt: b.node("And", [x, y]),
    "OR": lambda b, x, y, dt: b.node("Or", [x, y]),
    "XOR": lambda b, x, y, dt: b.node("Xor", [x, y]),
    "PRELU": lambda b, x, y, dt: b.node("Where", [b.node("Greater", [x, _c(b, 0, dt)]), x, b.node("Mul", [x, y])]),
    "ABS_GRAD": lambda b, x, y, dt: b.node("Where", [b.node("Greater", [x, _c(b, 0, dt)]), y, b.node("Neg", [y])]),
    "SIGMOID_GRAD": lambda b, x, y, dt: b.node("Mul", [b.node("Mul", [x, b.node("Sub", [_c(b, 1, dt), x])]), y]),
    "TANH_GRAD": lambda b, x, y, dt: b.node("Mul", [b.node("Sub", [_c(b, 1, dt), b.node("Mul", [x, x])]), y]),
    "FUSE_MUL_ADD3": lambda b, x, y, z, dt: b.node("Add", [b.node("Mul", [x, y]), z]),
    "FUSE_MUL_ADD4": lambda b, x, y, z, w, dt: b.node("Add", [b.node("Mul", [x, y]), b.node("Mul", [z, w])]),
    "COND_LEQ_MOV": lambda b, x, y, z, dt: _where(b, b.node("LessOrEqual", [x, y]), z, dt),
    "COND_LT_MOV": lambda b, x, y, z, dt: _where(b, b.node("Less", [x, y]), z, dt),
    "CLIP": lambda b, x, y, z, dt: b.node("Min", [b.node("Max", [x, y]), z]),
}


def _atan2(b: Builder, y: str, x: str, dt) -> str:
    """atan2(y, x) from Atan with quadrant fixes."""
    base = b.node("Atan", [b.node("Div", [y, x])])
    pi = _c(b, math.pi, dt)
    zero = _c(b, 0, dt)
    x_neg = b.node("Less", [x, zero])
    y_neg = b.node("Less", [y, zero])
    shift = b.node("Where", [x_neg, b.node("Where", [y_neg, b.node("Neg", [pi]), pi]), zero])
    out = b.node("Add", [base, shift])
    # x == 0: +-pi/2 by the sign of y (0 when y == 0)
    half = b.node("Mul", [b.node("Sign", [y]), _c(b, math.pi / 2, dt)])
    return b.node("Where", [b.node("Equal", [x, zero]), half, out])


EMITTERS["ATAN2"] = _atan2


def _f32(b: Builder, x: str) -> str:
    return b.cast(x, np.float32)


def _fma3_to_int8(b, x, y, z):
    rounded = b.node("Round", [b.node("Add", [b.node("Mul", [y, _f32(b, x)]), z])])
    return b.cast(b.node("Clip", [rounded, _c(b, -128, np.float32), _c(b, 127, np.float32)]), np.int8)


def _round_shr(b, x, k):
    """x / 2**k rounded half away from zero, in float64 (exact for 32-bit integers)."""
    v = b.node("Div", [b.cast(x, np.float64), b.node("Pow", [_c(b, 2.0, np.float64), b.cast(k, np.float64)])])
    return _round(b, v, np.float64)


def _saturate(b, v, low: str, high: str, out) -> str:
    return b.cast(b.node("Clip", [v, low, high]), out)


def _round_shr_saturate(out):
    info = np.iinfo(out)
    return lambda b, x, k: _saturate(b, _round_shr(b, x, k), _c(b, info.min, np.float64), _c(b, info.max, np.float64),
                                     out)


def _fuse_add_rmulh_round_shr(int_type):
    """clamp(round_shr(rmulh(x + b, m), k), low, high) as int8, x + b wrapping like the C++ integers."""
    bits = np.iinfo(int_type).bits

    def emit(b, x, bias, m, k, low, high):
        total = b.node("Add", [b.cast(x, np.int64), b.cast(bias, np.int64)])
        half = _c(b, 1 << (bits - 1), np.int64)
        wrapped = b.node("Sub", [b.node("Mod", [b.node("Add", [total, half]), _c(b, 1 << bits, np.int64)]), half])
        m = b.cast(m, np.int64)  # rmulh in int64 (ONNX Runtime's Where has no int16 kernel)
        prod = b.node("Add", [b.node("Mul", [wrapped, m]), _c(b, 1 << (bits - 2), np.int64)])
        high_half = _floor_div(b, prod, _c(b, 1 << (bits - 1), np.int64), np.int64)
        low_end = _c(b, -(1 << (bits - 1)), np.int64)
        both_min = b.node("And", [b.node("Equal", [wrapped, low_end]), b.node("Equal", [m, low_end])])
        high_half = b.node("Where", [both_min, _c(b, (1 << (bits - 1)) - 1, np.int64), high_half])
        return _saturate(b, _round_shr(b, high_half, k), b.cast(low, np.float64), b.cast(high, np.float64), np.int8)
    return emit


# ElemwiseMultiType mode name -> emitter(builder, *inputs) -> value name
MULTI_EMITTERS = {
    "ROUND_SHR_SATURATE_IXxI8xI8": _round_shr_saturate(np.int8),
    "ROUND_SHR_SATURATE_IXxI8xI16": _round_shr_saturate(np.int16),
    "FUSE_ADD_RMULH_ROUND_SHR_SATURATE_INT16x16x16x8": _fuse_add_rmulh_round_shr(np.int16),
    "FUSE_ADD_RMULH_ROUND_SHR_SATURATE_INT32x32x32x8": _fuse_add_rmulh_round_shr(np.int32),
    "FUSE_MUL_ADD3_INT16x32x32x32": lambda b, x, y, z: b.node("Add", [b.node("Mul", [b.cast(x, np.int32), y]), z]),
    "FUSE_MUL_ADD3_IXxF32xF32xI8": _fma3_to_int8,
    "FUSE_MUL_ADD3_INT16xF32xF32xF32": lambda b, x, y, z: b.node("Add", [b.node("Mul", [_f32(b, x), y]), z]),
    "MUL_INT16xF32xF32": lambda b, x, y: b.node("Mul", [_f32(b, x), y]),
    "FUSE_MUL_ADD3_UINT8xF32xF32xF32": lambda b, x, y, z: b.node("Add", [b.node("Mul", [_f32(b, x), y]), z]),
    "EQ": lambda b, x, y: b.node("Equal", [x, y]),
    "NEQ": lambda b, x, y: b.node("Not", [b.node("Equal", [x, y])]),
    "LT": lambda b, x, y: b.node("Less", [x, y]),
    "LEQ": lambda b, x, y: b.node("LessOrEqual", [x, y]),
    "ISNAN": lambda b, x: b.node("IsNaN", [x]),
    "ISINF": lambda b, x: b.node("IsInf", [x]),
}


def to_units(b: Builder, value: str, dtype: DType) -> str:
    """A quantized value as float32 integers less the zero point: its real value in units of its scale (exact)."""
    value = b.cast(value, np.float32)
    return b.node("Sub", [value, _c(b, dtype.zero_point, np.float32)]) if dtype.zero_point else value


def from_units(b: Builder, value: str, dtype: DType) -> str:
    """float32 units of ``dtype``'s scale stored as ``dtype``: rounded half away from zero (MegDNN), plus the zero
    point, saturated."""
    value = _round(b, value, np.float32)
    if dtype.zero_point:
        value = b.node("Add", [value, _c(b, dtype.zero_point, np.float32)])
    low, high = quant_range(dtype)
    return b.cast(b.node("Clip", [value, _c(b, low, np.float32), _c(b, high, np.float32)]), dtype.np_dtype)


def dequantize(b: Builder, value: str, dtype: DType) -> str:
    """A value as float32: (q - zero_point) * scale for quantized dtypes, a plain cast otherwise."""
    if not dtype.quantized:
        return b.cast(value, np.float32) if dtype.np_dtype != np.float32 else value
    return b.node("Mul", [to_units(b, value, dtype), _c(b, dtype.scale, np.float32)])


def quantize(b: Builder, value: str, dtype: DType) -> str:
    """A float32 value in a quantized dtype: round(x / scale) half away from zero, + zero_point, saturated."""
    return from_units(b, b.node("Div", [value, _c(b, dtype.scale, np.float32)]), dtype)


def bind_units(b: Builder, var, value: str, real: bool = False) -> list[None]:
    """Bind quantized ``var`` to a float32 ``value`` in units of its scale (``real``: a real value), rounded like
    MegDNN and stored the way the builder holds ``var``'s dtype; the lowering's output list."""
    held = b.storage(var.dtype)
    b.bind_quantized(var, quantize(b, value, held) if real else from_units(b, value, held), held)
    return [None]


QLINEAR_ADD = ("ADD", "FUSE_ADD_RELU")


def _qlinear_add(b: Builder, op: Op, name: str) -> bool:
    """QADD / QFUSE_ADD_RELU of two 8-bit quantized tensors into an 8-bit one in ONNX Runtime's QLinearAdd (one
    pass over uint8 values instead of a dozen float passes). It rounds the rescaled sum half to even where MegDNN
    rounds half away from zero: one step apart where a sum lands exactly halfway. False if the dtypes do not fit."""
    out = op.output_dtype
    if not all(is_8bit_quantized(v.dtype) for v in op.inputs) or not is_8bit_quantized(out):
        return False
    held_out = b.storage(out)
    inputs = []
    for var in op.inputs:
        value, held = b.shifted(var)
        if held.np_dtype != held_out.np_dtype:
            return False
        inputs += [value, _c(b, held.scale, np.float32), _c(b, held.zero_point or 0, held.np_dtype)]
    inputs += [_c(b, held_out.scale, np.float32), _c(b, held_out.zero_point or 0, held_out.np_dtype)]
    value = b.node("QLinearAdd", inputs, domain="com.microsoft")
    if name == "FUSE_ADD_RELU":
        value = b.node("Max", [value, _c(b, held_out.zero_point or 0, held_out.np_dtype)])
    b.bind_quantized(op.outputs[0], value, held_out)
    return True


@shape_rule("Elemwise")
def _elemwise_shape(op: Op):
    mode = op.params.get("mode", 0)
    if mode not in MODES:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: Elemwise {mode_name(mode)}")
    name, arity, _ = MODES[mode]
    if len(op.inputs) != arity:
        raise fail(op, f"Elemwise {name} takes {arity} inputs, got {len(op.inputs)}")
    shape = broadcast_shapes(op, [v.shape for v in op.inputs])
    dtype = BOOL if name in BOOL_RESULT else op.inputs[0].dtype
    return [(shape, dtype)]


# The Elemwise modes shape arithmetic uses, on ints and symbols.
SYM_ELEMWISE = {"ADD": lambda a, b: a + b, "SUB": lambda a, b: a - b, "MUL": lambda a, b: a * b,
                "FLOOR_DIV": lambda a, b: a // b, "MIN": minimum, "MAX": maximum, "NEGATE": lambda a: -a}


@sym_fold_rule("Elemwise")
def _elemwise_sym_fold(op: Op, xs):
    name = MODES.get(op.params.get("mode", 0), ("?",))[0]
    if name not in SYM_ELEMWISE:
        raise RuntimeDimError(f"Elemwise {name} on run-time dims")
    return [np.frompyfunc(SYM_ELEMWISE[name], len(xs), 1)(*xs)]


@fold_rule("Elemwise")
def _elemwise_fold(op: Op, xs):
    mode = op.params.get("mode", 0)
    name, arity, fn = MODES.get(mode, (mode_name(mode), 0, None))
    if fn is None:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: cannot fold Elemwise {name}")
    dt = xs[0].dtype
    with np.errstate(all="ignore"):
        out = np.asarray(fn(*xs))
    return [out if name in BOOL_RESULT or out.dtype == np.bool_ else out.astype(dt, copy=False)]


@lowering("Elemwise", modes=[name for name, emit in EMITTERS.items() if emit])
def lower_elemwise(b: Builder, op: Op) -> list[str]:
    """Element-wise math with numpy broadcasting; the mode picks the function (see mge_format.md 5.3)."""
    name = mode_name(op.params.get("mode", 0))
    emit = EMITTERS.get(name)
    if emit is None:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: Elemwise mode {name}")
    dt = op.inputs[0].dtype.np_dtype
    if name == "CLIP" and all(v.is_const and v.const.size == 1 for v in op.inputs[1:]) \
            and op.outputs[0].shape == op.inputs[0].shape:
        # constant bounds: one ONNX Clip, which ONNX Runtime fuses into a convolution before it
        return [b.node("Clip", [b.inp(op, 0)] + [_c(b, v.const.reshape(-1)[0], dt) for v in op.inputs[1:]])]
    try:
        return [emit(b, *[b.name(v) for v in op.inputs], dt)]
    except TypeError as exc:
        raise UnsupportedOperatorError(f"unsupported operator {op.describe()}: Elemwise {name} on {dt}: {exc}") from None


@shape_rule("ElemwiseMultiType")
def _elemwise_multi_type_shape(op: Op):
    shape = broadcast_shapes(op, [v.shape for v in op.inputs])
    if quantized_mode(op):
        return [(shape, op.output_dtype)]
    return [(shape, op.output_dtype or from_numpy(multi_type_mode(op)[3]))]


@fold_rule("ElemwiseMultiType")
def _elemwise_multi_type_fold(op: Op, xs):
    name = quantized_mode(op)
    with np.errstate(all="ignore"):
        if name:
            fn = next(f for n, _, f in MODES.values() if n == name)
            real = fn(*[dequantize_array(x, v.dtype) for x, v in zip(xs, op.inputs)])
            return [quantize_array(np.asarray(real, np.float32), op.output_dtype)]
        _, _, fn, out = multi_type_mode(op)
        return [np.asarray(fn(*xs)).astype(out)]


@lowering("ElemwiseMultiType", modes=list(MULTI_EMITTERS) + [f"Q{name}" for name in QUANTIZED_MODES.values()])
def lower_elemwise_multi_type(b: Builder, op: Op) -> list[str]:
    """Mixed-dtype element-wise ops: bool comparisons, int/float fused mul-adds, quantized Q* modes."""
    name = quantized_mode(op)
    if name in QLINEAR_ADD and _qlinear_add(b, op, name):
        return [None]
    if name:
        reals = [dequantize(b, *(b.quantized(v) if v.dtype.quantized else (b.name(v), v.dtype))) for v in op.inputs]
        return bind_units(b, op.outputs[0], EMITTERS[name](b, *reals, np.float32), real=True)
    return [MULTI_EMITTERS[multi_type_mode(op)[0]](b, *[b.name(v) for v in op.inputs])]


@shape_rule("PowC")
def _powc_shape(op: Op):
    return same(op)


@fold_rule("PowC")
def _powc_fold(op: Op, xs):
    x = xs[0]
    return [np.power(x, np.asarray(op.params["exp"], x.dtype)).astype(x.dtype)]


@lowering("PowC")
def lower_powc(b: Builder, op: Op) -> list[str]:
    """x ** exp for a constant exponent; squares and square roots use cheaper nodes."""
    x = b.inp(op, 0)
    exp = float(op.params.get("exp", 0.0))
    dt = op.inputs[0].dtype.np_dtype
    if exp == 2:
        return [b.node("Mul", [x, x])]
    if exp == 3:  # BERT's tanh GELU: ONNX Runtime's Pow takes a quarter of a small BERT's time, two Muls next to none
        return [b.node("Mul", [b.node("Mul", [x, x]), x])]
    if exp == 0.5:
        return [b.node("Sqrt", [x])]
    if exp == -0.5:
        return [b.node("Reciprocal", [b.node("Sqrt", [x])])]
    if exp == 1:
        return [b.node("Identity", [x])]
    if exp == -1:
        return [b.node("Reciprocal", [x])]
    return [b.node("Pow", [x, _c(b, exp, dt)])]


@shape_rule("TypeCvt")
def _typecvt_shape(op: Op):
    return [(op.inputs[0].shape, op.params["dtype"])]


@sym_fold_rule("TypeCvt")
def _typecvt_sym_fold(op: Op, xs):
    return [xs[0]]


@fold_rule("TypeCvt")
def _typecvt_fold(op: Op, xs):
    target: DType = op.params["dtype"]
    x = xs[0]
    if target.quantized or op.inputs[0].dtype.quantized:
        real = dequantize_array(x, op.inputs[0].dtype)
        return [quantize_array(real, target) if target.quantized else real.astype(target.np_dtype)]
    if target.np_dtype == np.bool_:
        return [x != 0]
    return [x.astype(target.np_dtype)]


@lowering("TypeCvt")
def lower_typecvt(b: Builder, op: Op) -> list[str]:
    """Cast to the param dtype (float -> int truncates, -> bool is != 0; quantized via round(x / scale) + zp)."""
    src, dst = op.inputs[0].dtype, op.params["dtype"]
    if src.quantized or dst.quantized:
        real = dequantize(b, *(b.quantized(op.inputs[0]) if src.quantized else (b.inp(op, 0), src)))
        return bind_units(b, op.outputs[0], real, real=True) if dst.quantized else [b.cast(real, dst.np_dtype)]
    return [b.cast(b.inp(op, 0), dst.np_dtype)]
