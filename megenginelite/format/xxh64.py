"""XXH64, the 64-bit xxHash, in pure Python: MegEngine's V1 format names operator types by its value.

Only small inputs (registry names) are hashed, so speed does not matter; the algorithm follows the reference
implementation (https://github.com/Cyan4973/xxHash, ``XXH64``) exactly, including the tail handling.
"""

from __future__ import annotations

import struct

MASK = (1 << 64) - 1
P1 = 0x9E3779B185EBCA87
P2 = 0xC2B2AE3D27D4EB4F
P3 = 0x165667B19E3779F9
P4 = 0x85EBCA77C2B2AE63
P5 = 0x27D4EB2F165667C5

# The seed MegEngine uses for operator type ids (``MGB_HASH_STR`` / ``XXHash`` in src/core).
MGB_SEED = 20160701


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & MASK


def _round(acc: int, lane: int) -> int:
    acc = (acc + lane * P2) & MASK
    return (_rotl(acc, 31) * P1) & MASK


def _merge(acc: int, val: int) -> int:
    acc ^= _round(0, val)
    return (acc * P1 + P4) & MASK


def xxh64(data: bytes | str, seed: int = 0) -> int:
    """The XXH64 hash of ``data`` (a str is hashed as its UTF-8 bytes) with ``seed``."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    data = bytes(data)
    n = len(data)
    seed &= MASK
    pos = 0
    if n >= 32:
        v1 = (seed + P1 + P2) & MASK
        v2 = (seed + P2) & MASK
        v3 = seed
        v4 = (seed - P1) & MASK
        limit = n - 32
        while pos <= limit:
            a, b, c, d = struct.unpack_from("<4Q", data, pos)
            v1, v2, v3, v4 = _round(v1, a), _round(v2, b), _round(v3, c), _round(v4, d)
            pos += 32
        h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & MASK
        for v in (v1, v2, v3, v4):
            h = _merge(h, v)
    else:
        h = (seed + P5) & MASK
    h = (h + n) & MASK
    while pos + 8 <= n:
        (k,) = struct.unpack_from("<Q", data, pos)
        h ^= _round(0, k)
        h = (_rotl(h, 27) * P1 + P4) & MASK
        pos += 8
    if pos + 4 <= n:
        (k,) = struct.unpack_from("<I", data, pos)
        h ^= (k * P1) & MASK
        h = (_rotl(h, 23) * P2 + P3) & MASK
        pos += 4
    while pos < n:
        h ^= (data[pos] * P5) & MASK
        h = (_rotl(h, 11) * P1) & MASK
        pos += 1
    h ^= h >> 33
    h = (h * P2) & MASK
    h ^= h >> 29
    h = (h * P3) & MASK
    h ^= h >> 32
    return h


def mgb_type_id(name: str, nul: bool = True) -> int:
    """MegEngine's operator type id: ``xxh64(name + "\\0")`` (or without the NUL), seed 20160701."""
    return xxh64(name.encode("utf-8") + (b"\0" if nul else b""), MGB_SEED)
