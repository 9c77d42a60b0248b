"""A small, bounds-checked FlatBuffers reader.

Every access checks that the bytes it reads lie inside the buffer, so a truncated or corrupted file raises a
``ModelFormatError`` that says what was wrong and where, never an IndexError, a crash or a huge allocation.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Callable

import numpy as np

from ..errors import ModelFormatError

_U8 = struct.Struct("<B")
_I8 = struct.Struct("<b")
_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_U64 = struct.Struct("<Q")
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")

SCALARS: dict[str, struct.Struct] = {
    "bool": _U8, "u8": _U8, "i8": _I8, "u16": _U16, "i32": _I32, "u32": _U32,
    "i64": _I64, "u64": _U64, "f32": _F32, "f64": _F64,
}


@lru_cache(maxsize=None)
def _little_endian(dtype: str) -> np.dtype:
    return np.dtype(dtype).newbyteorder("<")


class Buffer:
    """A FlatBuffer inside ``data`` starting at ``base``: positions are absolute in ``data``."""

    def __init__(self, data: bytes | memoryview, base: int, end: int, source: str):
        self.data = memoryview(data)
        self.base = base
        self.end = end
        self.source = source

    def fail(self, what: str) -> ModelFormatError:
        return ModelFormatError(f"{self.source}: corrupted or truncated model file: {what}")

    def check(self, pos: int, size: int, what: str) -> None:
        if pos < self.base or size < 0 or pos + size > self.end:
            raise self.fail(f"{what} at byte {pos} (+{size}) lies outside the buffer [{self.base}, {self.end})")

    def scalar(self, kind: str, pos: int, what: str = "scalar"):
        st = SCALARS[kind]
        if pos < self.base or pos + st.size > self.end:
            self.check(pos, st.size, what)  # raises, saying where
        value = st.unpack_from(self.data, pos)[0]
        return bool(value) if kind == "bool" else value

    def uoffset(self, pos: int, what: str) -> int:
        target = pos + self.scalar("u32", pos, what)
        if target >= self.end:
            raise self.fail(f"{what} points to byte {target}, past the end ({self.end})")
        return target

    def root(self) -> Table:
        return Table(self, self.uoffset(self.base, "root table offset"), "root")


class Table:
    """A FlatBuffers table: fields addressed by slot number, absent fields give the caller's default."""

    __slots__ = ("buf", "pos", "name", "_vt", "_vt_len", "_size")

    def __init__(self, buf: Buffer, pos: int, name: str):
        self.buf = buf
        self.pos = pos
        self.name = name
        vt = pos - buf.scalar("i32", pos, f"{name} vtable offset")
        buf.check(vt, 4, f"{name} vtable")
        vt_len = buf.scalar("u16", vt)
        if vt_len < 4 or vt_len % 2:
            raise buf.fail(f"{name} vtable has a bad length {vt_len}")
        buf.check(vt, vt_len, f"{name} vtable")
        self._size = buf.scalar("u16", vt + 2)
        buf.check(pos, max(self._size, 4), f"{name} table")
        self._vt = vt
        self._vt_len = vt_len

    def _field(self, slot: int) -> int:
        """Absolute position of a field, or 0 when the field is absent."""
        if 4 + 2 * slot >= self._vt_len:
            return 0
        off = _U16.unpack_from(self.buf.data, self._vt + 4 + 2 * slot)[0]  # inside the vtable, checked at __init__
        if off == 0:
            return 0
        if off >= self._size:
            raise self.buf.fail(f"{self.name} field {slot} at offset {off} lies outside its table of {self._size} bytes")
        return self.pos + off

    def has(self, slot: int) -> bool:
        return self._field(slot) != 0

    def scalar(self, slot: int, kind: str, default=0):
        p = self._field(slot)
        return default if p == 0 else self.buf.scalar(kind, p, f"{self.name} field {slot}")

    def table(self, slot: int, name: str) -> Table | None:
        p = self._field(slot)
        return None if p == 0 else Table(self.buf, self.buf.uoffset(p, f"{self.name}.{name}"), name)

    def string(self, slot: int, default: str | None = None) -> str | None:
        p = self._field(slot)
        if p == 0:
            return default
        return self.buf_string(self.buf.uoffset(p, f"{self.name} string {slot}"), f"{self.name} string {slot}")

    def buf_string(self, pos: int, what: str) -> str:
        raw = self._vector_bytes(pos, 1, what)
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise self.buf.fail(f"{what} is not valid UTF-8") from None

    def _vector_header(self, slot: int) -> int | None:
        p = self._field(slot)
        return None if p == 0 else self.buf.uoffset(p, f"{self.name} vector {slot}")

    def _vector_bytes(self, vec: int, elem_size: int, what: str) -> memoryview:
        count = self.buf.scalar("u32", vec, f"{what} length")
        self.buf.check(vec + 4, count * elem_size, f"{what} of {count} elements")
        return self.buf.data[vec + 4: vec + 4 + count * elem_size]

    def vector_len(self, slot: int) -> int:
        vec = self._vector_header(slot)
        return 0 if vec is None else self.buf.scalar("u32", vec, f"{self.name} vector {slot} length")

    def scalar_vector(self, slot: int, dtype: str) -> np.ndarray:
        """A vector of scalars as a numpy array (a view on the file bytes, read only)."""
        dt = _little_endian(dtype)
        vec = self._vector_header(slot)
        if vec is None:
            return np.zeros(0, dt)
        raw = self._vector_bytes(vec, dt.itemsize, f"{self.name} vector {slot}")
        return np.frombuffer(raw, dt)

    def bytes_vector(self, slot: int) -> memoryview | None:
        vec = self._vector_header(slot)
        return None if vec is None else self._vector_bytes(vec, 1, f"{self.name} bytes {slot}")

    def table_vector(self, slot: int, name: str) -> list[Table]:
        return [Table(self.buf, p, f"{name}[{i}]") for i, p in enumerate(self._offsets(slot, name))]

    def string_vector(self, slot: int) -> list[str]:
        return [self.buf_string(p, f"{self.name} string vector {slot}") for p in self._offsets(slot, "string")]

    def struct_vector(self, slot: int, size: int, decode: Callable[[Buffer, int], object]) -> list:
        vec = self._vector_header(slot)
        if vec is None:
            return []
        raw = self._vector_bytes(vec, size, f"{self.name} struct vector {slot}")
        return [decode(self.buf, vec + 4 + i * size) for i in range(len(raw) // size)]

    def _offsets(self, slot: int, what: str) -> list[int]:
        vec = self._vector_header(slot)
        if vec is None:
            return []
        count = len(self._vector_bytes(vec, 4, f"{self.name}.{what} vector"))
        return [self.buf.uoffset(vec + 4 + 4 * i, f"{what}[{i}]") for i in range(count // 4)]
