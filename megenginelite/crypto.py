"""Model decryption: the ciphers MegEngine Lite ships, and the registry of named decryption methods.

The original library keeps a process-wide table ``name -> (function, key)`` of decryption methods.  Three are
built in, with default keys:

``AES_default``
    AES-256-CBC.  File layout: 16-byte IV, the ciphertext (the plaintext padded to a multiple of 16 bytes; the
    original's tool ``aes_encrypt.sh`` uses ``openssl enc -aes-256-cbc``, i.e. PKCS#7 padding), then the plaintext
    length as an 8-byte big-endian integer.  Decryption takes the first 32 bytes of the key, decrypts everything
    between the IV and the length field and cuts the result to that length; the padding itself is not checked
    (as in the original).  Default key: bytes 0x00, 0x01, ..., 0x1F.
``RC4_default``
    Not textbook RC4: a keyed RC4-like byte generator (a 64-bit seed, 768 + n dropped bytes, a nonlinear output
    function) plus a 64-bit "fast-hash" that chains the whole file into the key stream, so that damage to any
    byte destroys the whole model.  Layout: the body (the plaintext zero-padded to a multiple of 8 bytes),
    then an 8-byte protected hash.  The key is at least 16 bytes: a little-endian 64-bit hash key, then a
    little-endian 64-bit stream key (the default key is 128 bytes, only the first 16 are used).
``SIMPLE_FAST_RC4_default``
    The same generator without the hash chaining: the body XOR one key stream, then an 8-byte checksum of the
    encrypted body, which decryption verifies ("The checksum of the file cannot be verified...").

As in the original, RC4/SIMPLE_FAST_RC4 decryption returns as many bytes as it was given: the zero padding and
the 8 decrypted hash bytes stay at the end of the model (the MegEngine model readers ignore trailing bytes).

The name ``"NONE"`` (and the empty name) means "not encrypted": :func:`decrypt` returns the data unchanged.

User-defined methods follow the Python wrapper's :func:`decryption_func` convention:
``func(in_arr, key_arr, out_arr)`` where ``in_arr`` and ``key_arr`` are read-only ``numpy.uint8`` arrays; with
``out_arr`` None the function returns the output length in bytes; otherwise ``out_arr`` is a writable
``numpy.uint8`` array of that length for the function to fill (its return value is then ignored).  ``out_arr``
is always true in a boolean context, so the documented ``if not out_arr:`` test works.

Everything here is plain Python (AES CBC decryption of large inputs is vectorised over blocks with numpy, which
CBC decryption allows; a pure-Python block cipher is the reference and does encryption).
"""

from __future__ import annotations

import operator
import struct
import threading
from typing import Any, Callable, Iterable

import numpy as np

from .errors import LiteError, ModelFormatError

__all__ = [
    "AES_DEFAULT_KEY", "RC4_DEFAULT_KEY", "SIMPLE_FAST_RC4_DEFAULT_KEY", "BUILTIN_METHODS",
    "DecryptionFunc", "decryption_func", "register_decryption", "update_decryption_key", "update_decryption",
    "decrypt", "get_decryption_key", "is_registered", "registered_methods",
    "aes_encrypt", "aes_decrypt", "rc4_encrypt", "rc4_decrypt", "sfrc4_encrypt", "sfrc4_decrypt",
    "aes_cbc_encrypt", "aes_cbc_decrypt", "aes_encrypt_block", "aes_decrypt_block",
    "rc4_keystream", "fast_hash64",
]

_M64 = (1 << 64) - 1


def _u64le(data: bytes | memoryview, pos: int) -> int:
    return int.from_bytes(data[pos:pos + 8], "little")


def _xor_bytes(*parts: bytes | memoryview) -> bytes:
    """Bytewise XOR of equally long byte strings (via big integers: fast for megabytes)."""
    n = len(parts[0])
    acc = 0
    for p in parts:
        acc ^= int.from_bytes(p, "little")
    return acc.to_bytes(n, "little")


def _key_bytes(key: Any, what: str = "key") -> bytes:
    """A key given as bytes-like or as an iterable of ints 0..255 (the original took ``(c_uint8 * n)(*key)``)."""
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    if isinstance(key, np.ndarray):
        return np.ascontiguousarray(key, dtype=np.uint8).tobytes()
    if isinstance(key, str):
        raise TypeError(f"the {what} must be bytes or a sequence of ints in [0, 255], not str")
    try:
        values = [operator.index(v) for v in key]
    except TypeError:
        raise TypeError(f"the {what} must be bytes or a sequence of ints in [0, 255], "
                        f"got {type(key).__name__}") from None
    try:
        return bytes(values)
    except ValueError:
        raise ValueError(f"the {what} must hold ints in [0, 255]") from None


def _name_str(name: Any) -> str:
    if isinstance(name, bytes):
        return name.decode("utf-8")
    if isinstance(name, str):
        return name
    raise TypeError(f"a decryption method name must be str or bytes, not {type(name).__name__}")


# ====================================================================================================== AES

def _xtime(b: int) -> int:
    b <<= 1
    return (b ^ 0x11B) if b & 0x100 else b


def _gmul(a: int, b: int) -> int:
    r = 0
    while b:
        if b & 1:
            r ^= a
        a = _xtime(a)
        b >>= 1
    return r


def _make_sbox() -> tuple[list[int], list[int]]:
    # multiplicative inverses in GF(2^8) via powers of the generator 3, then the affine map
    exp = [0] * 255
    log = [0] * 256
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x ^= _xtime(x)          # x *= 3
    sbox = [0] * 256
    for v in range(256):
        inv = 0 if v == 0 else exp[(255 - log[v]) % 255]
        s = inv
        for shift in (1, 2, 3, 4):
            s ^= ((inv << shift) | (inv >> (8 - shift))) & 0xFF
        sbox[v] = s ^ 0x63
    inv_sbox = [0] * 256
    for v, s in enumerate(sbox):
        inv_sbox[s] = v
    return sbox, inv_sbox


def _rotr(w: int, n: int) -> int:
    return ((w >> n) | (w << (32 - n))) & 0xFFFFFFFF


def _make_tables():
    te0 = []
    td0 = []
    for x in range(256):
        s = _SBOX[x]
        te0.append((_gmul(s, 2) << 24) | (s << 16) | (s << 8) | _gmul(s, 3))
        si = _INV_SBOX[x]
        td0.append((_gmul(si, 14) << 24) | (_gmul(si, 9) << 16) | (_gmul(si, 13) << 8) | _gmul(si, 11))
    te = [te0] + [[_rotr(w, 8 * k) for w in te0] for k in (1, 2, 3)]
    td = [td0] + [[_rotr(w, 8 * k) for w in td0] for k in (1, 2, 3)]
    return te, td


_tables_built = False


def _build_tables() -> None:
    """Fill the AES tables the first time a key is made: loading a model that is not AES-encrypted (or importing
    the package) does not pay for them. Every use of the tables goes through ``_AESKey``."""
    global _SBOX, _INV_SBOX, _TE0, _TE1, _TE2, _TE3, _TD0, _TD1, _TD2, _TD3
    global _S3, _S2, _S1, _IS3, _IS2, _IS1, _NP_TD, _NP_IS, _tables_built
    _SBOX, _INV_SBOX = _make_sbox()
    (_TE0, _TE1, _TE2, _TE3), (_TD0, _TD1, _TD2, _TD3) = _make_tables()
    # final-round tables: the (inverse) S-box value already shifted into each byte position
    _S3, _S2, _S1 = ([s << shift for s in _SBOX] for shift in (24, 16, 8))
    _IS3, _IS2, _IS1 = ([s << shift for s in _INV_SBOX] for shift in (24, 16, 8))
    _NP_TD = [np.array(t, dtype=np.uint32) for t in (_TD0, _TD1, _TD2, _TD3)]
    _NP_IS = [np.array(t, dtype=np.uint32) for t in (_IS3, _IS2, _IS1, _INV_SBOX)]
    _tables_built = True


def _expand_key(key: bytes) -> list[int]:
    """The AES key schedule (words, big-endian) for 16-, 24- or 32-byte keys."""
    nk = len(key) // 4
    if len(key) not in (16, 24, 32):
        raise ValueError(f"an AES key has 16, 24 or 32 bytes, not {len(key)}")
    nr = nk + 6
    w = [int.from_bytes(key[4 * i:4 * i + 4], "big") for i in range(nk)]
    rcon = 1
    for i in range(nk, 4 * (nr + 1)):
        t = w[i - 1]
        if i % nk == 0:
            t = ((t << 8) | (t >> 24)) & 0xFFFFFFFF
            t = (_S3[t >> 24] | _S2[(t >> 16) & 255] | _S1[(t >> 8) & 255] | _SBOX[t & 255]) ^ (rcon << 24)
            rcon = _xtime(rcon)
        elif nk > 6 and i % nk == 4:
            t = _S3[t >> 24] | _S2[(t >> 16) & 255] | _S1[(t >> 8) & 255] | _SBOX[t & 255]
        w.append(w[i - nk] ^ t)
    return w


def _inv_mix_word(w: int) -> int:
    return (_TD0[_SBOX[w >> 24]] ^ _TD1[_SBOX[(w >> 16) & 255]] ^ _TD2[_SBOX[(w >> 8) & 255]]
            ^ _TD3[_SBOX[w & 255]])


def _decrypt_schedule(ek: list[int]) -> list[int]:
    """Round keys of the equivalent inverse cipher: reversed, with InvMixColumns on the middle rounds."""
    nr = len(ek) // 4 - 1
    dk: list[int] = []
    for r in range(nr, -1, -1):
        words = ek[4 * r:4 * r + 4]
        if 0 < r < nr:
            words = [_inv_mix_word(x) for x in words]
        dk.extend(words)
    return dk


class _AESKey:
    __slots__ = ("ek", "dk", "nr", "_np_dk")

    def __init__(self, key: bytes):
        if not _tables_built:
            _build_tables()
        self.ek = _expand_key(key)
        self.dk = _decrypt_schedule(self.ek)
        self.nr = len(self.ek) // 4 - 1
        self._np_dk = None

    def encrypt_words(self, s0: int, s1: int, s2: int, s3: int) -> tuple[int, int, int, int]:
        k = self.ek
        s0 ^= k[0]
        s1 ^= k[1]
        s2 ^= k[2]
        s3 ^= k[3]
        te0, te1, te2, te3 = _TE0, _TE1, _TE2, _TE3
        i = 4
        for _ in range(self.nr - 1):
            t0 = te0[s0 >> 24] ^ te1[(s1 >> 16) & 255] ^ te2[(s2 >> 8) & 255] ^ te3[s3 & 255] ^ k[i]
            t1 = te0[s1 >> 24] ^ te1[(s2 >> 16) & 255] ^ te2[(s3 >> 8) & 255] ^ te3[s0 & 255] ^ k[i + 1]
            t2 = te0[s2 >> 24] ^ te1[(s3 >> 16) & 255] ^ te2[(s0 >> 8) & 255] ^ te3[s1 & 255] ^ k[i + 2]
            t3 = te0[s3 >> 24] ^ te1[(s0 >> 16) & 255] ^ te2[(s1 >> 8) & 255] ^ te3[s2 & 255] ^ k[i + 3]
            s0, s1, s2, s3 = t0, t1, t2, t3
            i += 4
        a, b, c, d = _S3, _S2, _S1, _SBOX
        return ((a[s0 >> 24] | b[(s1 >> 16) & 255] | c[(s2 >> 8) & 255] | d[s3 & 255]) ^ k[i],
                (a[s1 >> 24] | b[(s2 >> 16) & 255] | c[(s3 >> 8) & 255] | d[s0 & 255]) ^ k[i + 1],
                (a[s2 >> 24] | b[(s3 >> 16) & 255] | c[(s0 >> 8) & 255] | d[s1 & 255]) ^ k[i + 2],
                (a[s3 >> 24] | b[(s0 >> 16) & 255] | c[(s1 >> 8) & 255] | d[s2 & 255]) ^ k[i + 3])

    def decrypt_words(self, s0: int, s1: int, s2: int, s3: int) -> tuple[int, int, int, int]:
        k = self.dk
        s0 ^= k[0]
        s1 ^= k[1]
        s2 ^= k[2]
        s3 ^= k[3]
        td0, td1, td2, td3 = _TD0, _TD1, _TD2, _TD3
        i = 4
        for _ in range(self.nr - 1):
            t0 = td0[s0 >> 24] ^ td1[(s3 >> 16) & 255] ^ td2[(s2 >> 8) & 255] ^ td3[s1 & 255] ^ k[i]
            t1 = td0[s1 >> 24] ^ td1[(s0 >> 16) & 255] ^ td2[(s3 >> 8) & 255] ^ td3[s2 & 255] ^ k[i + 1]
            t2 = td0[s2 >> 24] ^ td1[(s1 >> 16) & 255] ^ td2[(s0 >> 8) & 255] ^ td3[s3 & 255] ^ k[i + 2]
            t3 = td0[s3 >> 24] ^ td1[(s2 >> 16) & 255] ^ td2[(s1 >> 8) & 255] ^ td3[s0 & 255] ^ k[i + 3]
            s0, s1, s2, s3 = t0, t1, t2, t3
            i += 4
        a, b, c, d = _IS3, _IS2, _IS1, _INV_SBOX
        return ((a[s0 >> 24] | b[(s3 >> 16) & 255] | c[(s2 >> 8) & 255] | d[s1 & 255]) ^ k[i],
                (a[s1 >> 24] | b[(s0 >> 16) & 255] | c[(s3 >> 8) & 255] | d[s2 & 255]) ^ k[i + 1],
                (a[s2 >> 24] | b[(s1 >> 16) & 255] | c[(s0 >> 8) & 255] | d[s3 & 255]) ^ k[i + 2],
                (a[s3 >> 24] | b[(s2 >> 16) & 255] | c[(s1 >> 8) & 255] | d[s0 & 255]) ^ k[i + 3])

    def decrypt_blocks_np(self, words: np.ndarray) -> np.ndarray:
        """Decrypt many independent blocks at once: ``words`` is (n, 4) uint32 (big-endian words)."""
        if self._np_dk is None:
            self._np_dk = np.array(self.dk, dtype=np.uint32)
        k = self._np_dk
        td = [_NP_TD[j] for j in range(4)]
        s0 = words[:, 0] ^ k[0]
        s1 = words[:, 1] ^ k[1]
        s2 = words[:, 2] ^ k[2]
        s3 = words[:, 3] ^ k[3]
        i = 4
        m = np.uint32(255)
        for _ in range(self.nr - 1):
            b0 = [s0 >> 24, (s0 >> 16) & m, (s0 >> 8) & m, s0 & m]
            b1 = [s1 >> 24, (s1 >> 16) & m, (s1 >> 8) & m, s1 & m]
            b2 = [s2 >> 24, (s2 >> 16) & m, (s2 >> 8) & m, s2 & m]
            b3 = [s3 >> 24, (s3 >> 16) & m, (s3 >> 8) & m, s3 & m]
            t0 = td[0][b0[0]] ^ td[1][b3[1]] ^ td[2][b2[2]] ^ td[3][b1[3]] ^ k[i]
            t1 = td[0][b1[0]] ^ td[1][b0[1]] ^ td[2][b3[2]] ^ td[3][b2[3]] ^ k[i + 1]
            t2 = td[0][b2[0]] ^ td[1][b1[1]] ^ td[2][b0[2]] ^ td[3][b3[3]] ^ k[i + 2]
            t3 = td[0][b3[0]] ^ td[1][b2[1]] ^ td[2][b1[2]] ^ td[3][b0[3]] ^ k[i + 3]
            s0, s1, s2, s3 = t0, t1, t2, t3
            i += 4
        a, b, c, d = _NP_IS
        out = np.empty_like(words)
        out[:, 0] = (a[s0 >> 24] | b[(s3 >> 16) & m] | c[(s2 >> 8) & m] | d[s1 & m]) ^ k[i]
        out[:, 1] = (a[s1 >> 24] | b[(s0 >> 16) & m] | c[(s3 >> 8) & m] | d[s2 & m]) ^ k[i + 1]
        out[:, 2] = (a[s2 >> 24] | b[(s1 >> 16) & m] | c[(s0 >> 8) & m] | d[s3 & m]) ^ k[i + 2]
        out[:, 3] = (a[s3 >> 24] | b[(s2 >> 16) & m] | c[(s1 >> 8) & m] | d[s0 & m]) ^ k[i + 3]
        return out


_BLOCK = struct.Struct(">4I")
#: below this many blocks the pure-Python path is used (numpy set-up costs more than it saves)
_NP_MIN_BLOCKS = 64


def aes_encrypt_block(key: bytes, block: bytes) -> bytes:
    """Encrypt one 16-byte block (AES-128/192/256 by key length)."""
    if len(block) != 16:
        raise ValueError("an AES block has 16 bytes")
    return _BLOCK.pack(*_AESKey(bytes(key)).encrypt_words(*_BLOCK.unpack(block)))


def aes_decrypt_block(key: bytes, block: bytes) -> bytes:
    """Decrypt one 16-byte block (AES-128/192/256 by key length)."""
    if len(block) != 16:
        raise ValueError("an AES block has 16 bytes")
    return _BLOCK.pack(*_AESKey(bytes(key)).decrypt_words(*_BLOCK.unpack(block)))


def aes_cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """CBC encryption of ``data`` (a multiple of 16 bytes; no padding is added)."""
    if len(iv) != 16 or len(data) % 16:
        raise ValueError("CBC needs a 16-byte IV and data of a multiple of 16 bytes")
    ctx = _AESKey(bytes(key))
    c0, c1, c2, c3 = _BLOCK.unpack(iv)
    out = bytearray(len(data))
    unpack, pack_into, enc = _BLOCK.unpack_from, _BLOCK.pack_into, ctx.encrypt_words
    for pos in range(0, len(data), 16):
        p0, p1, p2, p3 = unpack(data, pos)
        c0, c1, c2, c3 = enc(p0 ^ c0, p1 ^ c1, p2 ^ c2, p3 ^ c3)
        pack_into(out, pos, c0, c1, c2, c3)
    return bytes(out)


def aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes | memoryview, *, vectorized: bool | None = None) -> bytes:
    """CBC decryption of ``data`` (a multiple of 16 bytes; padding is left in place).

    Blocks are independent in CBC decryption, so large inputs are decrypted all at once with numpy
    (``vectorized=None`` picks by size; True/False forces one path, for tests).
    """
    if len(iv) != 16 or len(data) % 16:
        raise ValueError("CBC needs a 16-byte IV and data of a multiple of 16 bytes")
    ctx = _AESKey(bytes(key))
    nblocks = len(data) // 16
    if vectorized is None:
        vectorized = nblocks >= _NP_MIN_BLOCKS
    if vectorized:
        cipher = np.frombuffer(data, dtype=">u4").reshape(nblocks, 4).astype(np.uint32)
        plain = ctx.decrypt_blocks_np(cipher)
        prev = np.empty_like(cipher)
        prev[0] = np.frombuffer(iv, dtype=">u4")
        prev[1:] = cipher[:-1]
        plain ^= prev
        return plain.astype(">u4").tobytes()
    p0, p1, p2, p3 = _BLOCK.unpack(iv)
    out = bytearray(len(data))
    unpack, pack_into, dec = _BLOCK.unpack_from, _BLOCK.pack_into, ctx.decrypt_words
    for pos in range(0, len(data), 16):
        c = unpack(data, pos)
        d0, d1, d2, d3 = dec(*c)
        pack_into(out, pos, d0 ^ p0, d1 ^ p1, d2 ^ p2, d3 ^ p3)
        p0, p1, p2, p3 = c
    return bytes(out)


def aes_decrypt(data: bytes | memoryview, key: bytes | None = None) -> bytes:
    """``AES_default`` decryption: IV(16) | AES-256-CBC ciphertext | plaintext length (8 bytes, big-endian)."""
    key = AES_DEFAULT_KEY if key is None else bytes(key)
    if len(key) < 32:
        raise LiteError(f"AES_default needs a 32-byte key, got {len(key)} bytes")
    size = len(data)
    if size < 24:
        raise ModelFormatError(f"invalid model format: {size} bytes is too short for an AES_default-encrypted "
                               f"model (16-byte IV + ciphertext + 8-byte length)")
    body = size - 24
    if body % 16:
        raise ModelFormatError(f"invalid model format: the AES_default ciphertext has {body} bytes, not a multiple "
                               f"of 16 (not encrypted with AES_default, or truncated)")
    length = int.from_bytes(data[size - 8:], "big")
    if length > body:
        raise ModelFormatError(f"invalid model format: the AES_default length field says {length} bytes but only "
                               f"{body} were encrypted (not encrypted with AES_default, or truncated)")
    plain = aes_cbc_decrypt(key[:32], bytes(data[:16]), memoryview(data)[16:size - 8])
    return plain[:length]


def aes_encrypt(data: bytes, key: bytes | None = None, iv: bytes | None = None) -> bytes:
    """Encrypt like the original's ``aes_encrypt.sh``: IV | AES-256-CBC(PKCS#7-padded data) | len (8 bytes BE).

    ``iv`` defaults to 16 random bytes (the script uses ``openssl rand``).
    """
    import os

    key = AES_DEFAULT_KEY if key is None else bytes(key)
    if len(key) < 32:
        raise LiteError(f"AES_default needs a 32-byte key, got {len(key)} bytes")
    iv = os.urandom(16) if iv is None else bytes(iv)
    if len(iv) != 16:
        raise ValueError("the IV has 16 bytes")
    data = bytes(data)
    pad = 16 - len(data) % 16
    body = aes_cbc_encrypt(key[:32], iv, data + bytes([pad]) * pad)
    return iv + body + len(data).to_bytes(8, "big")


# ====================================================================================================== RC4

def _rc4_run(s: list[int], i: int, j: int, n: int) -> tuple[bytearray, int, int]:
    """Advance the generator state ``s, i, j`` by ``n`` bytes; returns the bytes and the new ``i, j``."""
    out = bytearray(n)
    for k in range(n):
        i = (i + 1) & 255
        a = s[i]
        j = (j + a) & 255
        b = s[j]
        s[i] = b
        s[j] = a
        c = (s[((i << 5) ^ (j >> 3)) & 255] + s[((j << 5) ^ (i >> 3)) & 255]) & 255
        out[k] = ((s[(a + b) & 255] + s[c ^ 0xAA]) ^ s[(j + b) & 255]) & 255
    return out, i, j


def rc4_keystream(seed: int, n: int) -> bytes:
    """``n`` bytes of the original's RC4-like generator seeded with the 64-bit ``seed``.

    Key schedule: the 8 seed bytes (little-endian) repeated as the RC4 key; then 768 bytes are dropped, the
    next byte ``t`` is read and ``t`` more are dropped.
    """
    seed &= _M64
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + ((seed >> ((i & 7) * 8)) & 255)) & 255
        s[i], s[j] = s[j], s[i]
    _, i, j = _rc4_run(s, 0, 0, 768)
    t, i, j = _rc4_run(s, i, j, 1)
    _, i, j = _rc4_run(s, i, j, t[0])
    out, _, _ = _rc4_run(s, i, j, n)
    return bytes(out)


_HASH_MUL0 = 0x2127599BF4325C37
_HASH_MUL1 = 0x880355F21E6D1965


def fast_hash64(seed: int, words: np.ndarray | Iterable[int]) -> int:
    """The original's 64-bit FastHash over a sequence of uint64 words (seeded with ``seed``)."""
    w = np.asarray(words, dtype=np.uint64)
    w = w ^ (w >> np.uint64(23))
    w = w * np.uint64(_HASH_MUL0)          # wraps modulo 2**64
    w = w ^ (w >> np.uint64(47))
    h = seed & _M64
    m1 = _HASH_MUL1
    for v in w.tolist():
        h = ((h ^ v) * m1) & _M64
    return h


def _words(data: bytes | memoryview, count: int) -> np.ndarray:
    return np.frombuffer(data, dtype="<u8", count=count)


def _rc4_key_pair(key: bytes, name: str) -> tuple[int, int]:
    if len(key) < 16:
        raise LiteError(f"{name} needs a key of at least 16 bytes (hash key, stream key), got {len(key)} bytes")
    return _u64le(key, 0), _u64le(key, 8)


def _pad8(data: bytes) -> bytes:
    return data + bytes(-len(data) % 8)


def rc4_decrypt(data: bytes | memoryview, key: bytes | None = None) -> bytes:
    """``RC4_default`` decryption; returns ``len(data)`` bytes like the original."""
    hash_key, enc_key = _rc4_key_pair(RC4_DEFAULT_KEY if key is None else bytes(key), "RC4_default")
    n = len(data)
    if n < 8:
        raise ModelFormatError(f"invalid model format: {n} bytes is too short for an RC4_default-encrypted model")
    nwords = (n - 8) // 8
    enc = rc4_keystream(enc_key, n)
    body = np.frombuffer(data, dtype="<u8", count=nwords) ^ _words(enc, nwords)
    chained = fast_hash64(hash_key, body)
    plain_hash = _u64le(data, n - 8) ^ chained ^ _u64le(enc, 8 * nwords)
    return _xor_bytes(data, rc4_keystream(plain_hash, n), enc)


def rc4_encrypt(data: bytes, key: bytes | None = None) -> bytes:
    """``RC4_default`` encryption as the original's ``rc4_encryptor encrypt_rc4`` does it."""
    hash_key, enc_key = _rc4_key_pair(RC4_DEFAULT_KEY if key is None else bytes(key), "RC4_default")
    padded = _pad8(bytes(data))
    nwords = len(padded) // 8
    plain_hash = fast_hash64(hash_key, _words(padded, nwords))
    obfuscated = _xor_bytes(padded, rc4_keystream(plain_hash, len(padded)))
    chained = fast_hash64(hash_key, _words(obfuscated, nwords))
    outer = rc4_keystream(enc_key, len(padded) + 8)
    body = _xor_bytes(obfuscated, outer[:len(padded)])
    protected = plain_hash ^ chained ^ _u64le(outer, len(padded))
    return body + protected.to_bytes(8, "little")


_SFRC4_CHECKSUM_ERROR = ("The checksum of the file cannot be verified. The file may be encrypted in the wrong "
                         "algorithm or different keys.")


def sfrc4_decrypt(data: bytes | memoryview, key: bytes | None = None) -> bytes:
    """``SIMPLE_FAST_RC4_default`` decryption (checksum verified first); returns ``len(data)`` bytes."""
    hash_key, enc_key = _rc4_key_pair(SIMPLE_FAST_RC4_DEFAULT_KEY if key is None else bytes(key),
                                      "SIMPLE_FAST_RC4_default")
    n = len(data)
    if n < 8:
        raise ModelFormatError(f"invalid model format: {n} bytes is too short for a "
                               f"SIMPLE_FAST_RC4_default-encrypted model")
    nwords = (n - 8) // 8
    if fast_hash64(hash_key, np.frombuffer(data, dtype="<u8", count=nwords)) != _u64le(data, n - 8):
        raise LiteError(_SFRC4_CHECKSUM_ERROR)
    return _xor_bytes(data, rc4_keystream(enc_key, n))


def sfrc4_encrypt(data: bytes, key: bytes | None = None) -> bytes:
    """``SIMPLE_FAST_RC4_default`` encryption as the original's ``rc4_encryptor encrypt_sfrc4`` does it."""
    hash_key, enc_key = _rc4_key_pair(SIMPLE_FAST_RC4_DEFAULT_KEY if key is None else bytes(key),
                                      "SIMPLE_FAST_RC4_default")
    padded = _pad8(bytes(data))
    body = _xor_bytes(padded, rc4_keystream(enc_key, len(padded)))
    checksum = fast_hash64(hash_key, _words(body, len(padded) // 8))
    return body + checksum.to_bytes(8, "little")


# ====================================================================================================== keys

#: ``AES_default``'s key: 0x00 .. 0x1F.
AES_DEFAULT_KEY: bytes = bytes(range(32))
# the original assembles its two 64-bit RC4 keys byte by byte; these are those bytes, little-endian
_RC4_HASH_KEY = bytes([108, 105, 101, 106, 103, 102, 107, 104])
_RC4_ENC_KEY = bytes([124, 127, 126, 121, 120, 125, 123, 122])
#: ``RC4_default``'s key: 128 bytes, hash key (8, LE) + stream key (8, LE) + zeros.
RC4_DEFAULT_KEY: bytes = _RC4_HASH_KEY + _RC4_ENC_KEY + bytes(112)
#: ``SIMPLE_FAST_RC4_default``'s key (the same as RC4's).
SIMPLE_FAST_RC4_DEFAULT_KEY: bytes = RC4_DEFAULT_KEY


# ====================================================================================================== registry

class DecryptionFunc:
    """A user decryption function in the documented convention, made callable as ``f(data, key) -> bytes``."""

    __slots__ = ("func", "__wrapped__")

    def __init__(self, func: Callable[..., Any]):
        if not callable(func):
            raise TypeError(f"a decryption function must be callable, not {type(func).__name__}")
        self.func = func
        self.__wrapped__ = func

    def __call__(self, data: bytes | memoryview, key: bytes) -> bytes:
        in_arr = np.frombuffer(data, dtype=np.uint8)
        key_arr = np.frombuffer(key, dtype=np.uint8)
        size = self.func(in_arr, key_arr, None)
        try:
            size = operator.index(size)
        except TypeError:
            raise LiteError("a decryption function called with out_arr=None must return the output length in "
                            f"bytes (an int), got {type(size).__name__}") from None
        if size < 0:
            raise LiteError(f"a decryption function returned a negative output length ({size})")
        out_arr = np.zeros(size, dtype=np.uint8).view(_OutArray)
        self.func(in_arr, key_arr, out_arr)
        return out_arr.view(np.ndarray).tobytes()

    def __repr__(self) -> str:
        return f"decryption_func({self.func!r})"


class _OutArray(np.ndarray):
    """The output array handed to user functions: always true in a boolean context (``if not out_arr``)."""

    def __bool__(self) -> bool:
        return True


def decryption_func(func: Callable[..., Any]) -> DecryptionFunc:
    """Decorator for user decryption functions: ``func(in_arr, key_arr, out_arr)``.

    With ``out_arr`` None, return the decrypted length in bytes; otherwise fill ``out_arr`` (a writable
    ``numpy.uint8`` array of that length).  ``in_arr``/``key_arr`` are read-only ``numpy.uint8`` arrays.
    """
    return func if isinstance(func, DecryptionFunc) else DecryptionFunc(func)


_BuiltinFunc = Callable[[bytes | memoryview, bytes], bytes]

#: the built-in methods, name -> (function(data, key) -> bytes, default key)
BUILTIN_METHODS: dict[str, tuple[_BuiltinFunc, bytes]] = {
    "AES_default": (aes_decrypt, AES_DEFAULT_KEY),
    "RC4_default": (rc4_decrypt, RC4_DEFAULT_KEY),
    "SIMPLE_FAST_RC4_default": (sfrc4_decrypt, SIMPLE_FAST_RC4_DEFAULT_KEY),
}

_lock = threading.Lock()
_methods: dict[str, tuple[Callable[[Any, bytes], bytes], bytes]] = dict(BUILTIN_METHODS)


def register_decryption(name: str | bytes, func: Callable[..., Any], key: Any) -> None:
    """Register a decryption method under ``name`` (``LiteGlobal.register_decryption_and_key``).

    ``func`` is a :func:`decryption_func`-decorated function or a plain function in the same convention
    (it is wrapped).  A name already registered (built-ins included) raises
    LiteError "The decryption method <name> is already registered.".
    """
    name = _name_str(name)
    wrapped = decryption_func(func)
    key = _key_bytes(key)
    with _lock:
        if name in _methods:
            raise LiteError(f"The decryption method {name} is already registered.")
        _methods[name] = (wrapped, key)


def update_decryption(name: str | bytes, func: Callable[..., Any] | None = None, key: Any = b"") -> None:
    """Replace the function (if ``func`` is given) and/or the key (if non-empty) of a registered method.

    Unknown name: LiteError "The decryption method <name> is not registered.".
    """
    name = _name_str(name)
    wrapped = None if func is None else decryption_func(func)
    key = _key_bytes(key)
    with _lock:
        if name not in _methods:
            raise LiteError(f"The decryption method {name} is not registered.")
        old_func, old_key = _methods[name]
        _methods[name] = (old_func if wrapped is None else wrapped, key if key else old_key)


def update_decryption_key(name: str | bytes, key: Any) -> None:
    """Set the key of a registered method (``LiteGlobal.update_decryption_key``); an empty key changes nothing."""
    update_decryption(name, None, key)


def is_registered(name: str | bytes) -> bool:
    with _lock:
        return _name_str(name) in _methods


def registered_methods() -> list[str]:
    with _lock:
        return list(_methods)


def get_decryption_key(name: str | bytes) -> bytes:
    """The key currently registered for ``name``."""
    name = _name_str(name)
    with _lock:
        if name not in _methods:
            raise LiteError(f"The decryption method {name} is not registered.")
        return _methods[name][1]


def decrypt(name: str | bytes, data: bytes | bytearray | memoryview) -> bytes:
    """Decrypt ``data`` with the method registered as ``name`` and its current key.

    ``"NONE"`` and ``""`` return the data unchanged.  An unregistered name raises LiteError
    "The decryption method <name> is not registed yet." (sic, the original's text).  Structural problems
    (too short, bad length field) raise ModelFormatError ("invalid model format: ..."); a failed
    SIMPLE_FAST_RC4 checksum raises LiteError with the original's message; an exception inside a user
    function is re-raised as LiteError.  A wrong key for AES/RC4 cannot be detected here: the result is
    garbage, which the model loader rejects as "invalid model format".
    """
    name = _name_str(name)
    if name in ("", "NONE"):
        return bytes(data)
    with _lock:
        entry = _methods.get(name)
    if entry is None:
        raise LiteError(f"The decryption method {name} is not registed yet.")
    func, key = entry
    try:
        out = func(data, key)
    except LiteError:
        raise
    except Exception as exc:  # a user function failed
        raise LiteError(f"the decryption method {name} failed: {type(exc).__name__}: {exc}") from exc
    return bytes(out)


def _reset_registry() -> None:
    """Forget user-registered methods and restore the built-in keys (for tests)."""
    with _lock:
        _methods.clear()
        _methods.update(BUILTIN_METHODS)
