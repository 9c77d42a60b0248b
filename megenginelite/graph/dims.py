"""Dims known only at run time: symbols, and the little arithmetic shape code does on them.

A dim is an ``int`` (known when the graph is inferred) or a ``Sym``: an *atom* (a length the data decides, e.g. the
count of CondTake's survivors, named ``n<k>`` with an upper bound when one is known) or an expression over atoms
(``4*n1``, ``n1+n2``, ``min(n1,8)``). Shape inference keeps equal dims equal (the same atom), so that broadcasting
and reshapes of run-time-sized tensors stay checkable; the lowering computes a symbol's value in the ONNX graph from
the first tensor that has it as a dim (or a shape vector that holds it), see ``lower.builder``.
"""

from __future__ import annotations

import itertools
import math

from ..errors import UnsupportedOperatorError


class RuntimeDimError(UnsupportedOperatorError):
    """A dim known only at run time where a number is needed when the graph is built."""


class Sym:
    """A run-time dim. ``op`` is None for an atom; else one of ADD, MUL, FLOORDIV, MIN, MAX over ``args``
    (ints and Syms). ``bound`` is an upper bound when known (an atom's, or derived from its arguments')."""

    __slots__ = ("name", "op", "args", "bound", "_key")
    _ids = itertools.count(1)

    def __init__(self, name: str | None = None, bound: int | None = None, op: str | None = None, args: tuple = ()):
        self.op, self.args, self.bound = op, args, bound
        self.name = name or f"n{next(Sym._ids)}"
        self._key = (op, args) if op else id(self)

    # atoms compare by identity, expressions by structure
    def __eq__(self, other) -> bool:
        return isinstance(other, Sym) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        if self.op is None:
            return self.name
        if self.op == "MUL":
            return "*".join(map(repr, self.args))
        if self.op == "ADD":
            return "(" + "+".join(map(repr, self.args)) + ")"
        if self.op == "FLOORDIV":
            return f"({self.args[0]!r}//{self.args[1]!r})"
        return f"{self.op.lower()}({','.join(map(repr, self.args))})"

    def __int__(self):
        raise RuntimeDimError(f"the dim {self!r} is known only at run time here")

    __index__ = __int__

    def __add__(self, other):
        return add(self, other)

    __radd__ = __add__

    def __mul__(self, other):
        return mul(self, other)

    __rmul__ = __mul__

    def __neg__(self):
        return mul(self, -1)

    def __sub__(self, other):
        return add(self, mul(other, -1))

    def __rsub__(self, other):
        return add(other, mul(self, -1))

    def __floordiv__(self, other):
        return floordiv(self, other)

    def __rfloordiv__(self, other):
        return floordiv(other, self)


def _valid(x) -> bool:
    return isinstance(x, (int, Sym)) and not isinstance(x, bool)


def _bound(xs, fn):
    bounds = [x if isinstance(x, int) else x.bound for x in xs]
    return None if any(b is None for b in bounds) else fn(bounds)


def mul(a, b):
    """a * b, with products kept as (int coefficient, atoms sorted by name) so that reshapes cancel."""
    if not (_valid(a) and _valid(b)):
        return NotImplemented
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    coeff, factors = 1, []
    for x in (a, b):
        for f in (x.args if isinstance(x, Sym) and x.op == "MUL" else (x,)):
            if isinstance(f, int):
                coeff *= f
            else:
                factors.append(f)
    if coeff == 0:
        return 0
    factors.sort(key=repr)
    if coeff == 1 and len(factors) == 1:
        return factors[0]
    args = tuple(factors) if coeff == 1 else (coeff, *factors)
    bound = _bound(factors, math.prod) if coeff > 0 else None
    return Sym(op="MUL", args=args, bound=None if bound is None else coeff * bound)


def _split(x) -> tuple[int, tuple]:
    """(coefficient, atoms) of a product."""
    if isinstance(x, Sym) and x.op == "MUL":
        return (x.args[0], x.args[1:]) if isinstance(x.args[0], int) else (1, x.args)
    return (1, (x,))


def add(a, b):
    """a + b; like terms combined (n + n = 2*n, n - n = 0), ints summed."""
    if not (_valid(a) and _valid(b)):
        return NotImplemented
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    const, terms = 0, {}
    for x in (a, b):
        for t in (x.args if isinstance(x, Sym) and x.op == "ADD" else (x,)):
            if isinstance(t, int):
                const += t
            else:
                c, atoms = _split(t)
                terms[atoms] = terms.get(atoms, 0) + c
    parts = [p for atoms, c in sorted(terms.items(), key=repr) if c for p in [mul(c, _product(atoms))]]
    if not parts:
        return const
    if const:
        parts.append(const)
    if len(parts) == 1:
        return parts[0]
    bound = _bound(parts, sum) if all(isinstance(p, int) or _split(p)[0] > 0 for p in parts) else None
    return Sym(op="ADD", args=tuple(parts), bound=bound)


def _product(atoms: tuple):
    out = 1
    for a in atoms:
        out = mul(out, a)
    return out


def floordiv(a, b):
    """a // b; exact when b's atoms and coefficient divide a product (``(4*n) // 4 == n``)."""
    if not (_valid(a) and _valid(b)):
        return NotImplemented
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    if b == 1:
        return a
    ca, fa = _split(a) if isinstance(a, Sym) else (a, ())
    cb, fb = _split(b) if isinstance(b, Sym) else (b, ())
    rest = list(fa)
    if cb and ca % cb == 0 and all(f in rest and not rest.remove(f) for f in fb):
        return mul(ca // cb, _product(tuple(rest)))
    bound = a.bound if isinstance(a, Sym) and isinstance(b, int) and b > 0 and a.bound is not None else None
    return Sym(op="FLOORDIV", args=(a, b), bound=None if bound is None else bound // b)


def minimum(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return min(a, b)
    if a == b:
        return a
    known = [x if isinstance(x, int) else x.bound for x in (a, b)]
    known = [k for k in known if k is not None]
    return Sym(op="MIN", args=(a, b), bound=min(known) if known else None)


def maximum(a, b):
    """max(a, b); nested maxima flattened, repeated arguments dropped (the broadcast of several run-time dims)."""
    if isinstance(a, int) and isinstance(b, int):
        return max(a, b)
    args = []
    for x in (a, b):
        for y in (x.args if isinstance(x, Sym) and x.op == "MAX" else (x,)):
            if y not in args:
                args.append(y)
    if len(args) == 1:
        return args[0]
    args.sort(key=repr)
    return Sym(op="MAX", args=tuple(args), bound=_bound(args, max))


def is_static(shape) -> bool:
    return all(isinstance(d, int) for d in shape)


def sign(d) -> int:
    """+1 or -1 when the sign of ``d`` is known (run-time lengths are >= 0), else 0."""
    if isinstance(d, int):
        return (d > 0) - (d < 0)
    if d.op is None or d.op in ("MIN", "MAX", "FLOORDIV"):
        return 1 if d.op is None or all(sign(x) > 0 for x in d.args) else 0
    if d.op == "MUL":
        return -1 if isinstance(d.args[0], int) and d.args[0] < 0 else 1
    signs = {sign(x) for x in d.args}
    return signs.pop() if len(signs) == 1 else 0


def dims_equal(a, b) -> bool | None:
    """True / False when known, None when only the run decides (two different symbols)."""
    if a == b:
        return True
    if isinstance(a, int) and isinstance(b, int):
        return False
    return None


def product(dims):
    out = 1
    for d in dims:
        out = mul(out, d)
    return out


def format_dim(d) -> str:
    return repr(d) if isinstance(d, Sym) else str(d)
