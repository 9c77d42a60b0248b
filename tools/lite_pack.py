"""The writer of Lite packed models (``packed_model`` + FlatBuffer), for tests and fixture tools only.

The package reads packed models (:mod:`megenginelite.packed`); nothing in it writes them, so the writer lives here.
Import it as ``tools.lite_pack`` with the repository root on ``sys.path`` (the tests have it there).
"""

from __future__ import annotations

import json
import struct
from typing import Any

from megenginelite import crypto
from megenginelite.errors import LiteError
from megenginelite.packed import MAGIC


class _Builder:
    """A minimal front-to-back FlatBuffers writer: parents first, children after, offsets patched."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def align(self, n: int) -> None:
        self.buf.extend(bytes(-len(self.buf) % n))

    def patch_uoffset(self, at: int, target: int) -> None:
        struct.pack_into("<I", self.buf, at, target - at)

    def bytes_vector(self, data: bytes, nul: bool = False) -> int:
        self.align(4)
        pos = len(self.buf)
        self.buf.extend(struct.pack("<I", len(data)))
        self.buf.extend(data)
        if nul:
            self.buf.append(0)
        return pos

    def table(self, fields: list[tuple[str, Any] | None]) -> tuple[int, dict[int, int]]:
        """Write a vtable and a table; ``fields[i]`` is None (absent), ("ref", None) or ("bool", value).

        Returns the table position and, for each "ref" slot, the position of its uoffset to patch.
        """
        present = [(i, f) for i, f in enumerate(fields) if f is not None]
        # table body: soffset, then 4-byte refs, then 1-byte bools, padded to 4
        layout: dict[int, int] = {}
        off = 4
        for i, (kind, _) in present:
            if kind == "ref":
                layout[i] = off
                off += 4
        for i, (kind, _) in present:
            if kind == "bool":
                layout[i] = off
                off += 1
        size = off + (-off % 4)
        nslots = len(fields)
        while nslots and fields[nslots - 1] is None:
            nslots -= 1
        vt = struct.pack(f"<HH{nslots}H", 4 + 2 * nslots, size, *[layout.get(i, 0) for i in range(nslots)])
        # vtable directly before the table, the table 4-aligned
        self.align(2)
        if (len(self.buf) + len(vt)) % 4:
            self.buf.extend(b"\0\0")
        vt_pos = len(self.buf)
        self.buf.extend(vt)
        pos = len(self.buf)
        body = bytearray(size)
        struct.pack_into("<i", body, 0, pos - vt_pos)
        for i, (kind, value) in present:
            if kind == "bool":
                body[layout[i]] = 1 if value else 0
        self.buf.extend(body)
        return pos, {i: pos + layout[i] for i, (kind, _) in present if kind == "ref"}


def pack(model: bytes, *, name: str = "NONE", info: bytes | str | dict | None = None,
         model_decryption_method: str = "NONE", info_decryption_method: str = "NONE",
         info_parse_method: str = "LITE_default", info_cache_parse_method: str | None = "LITE_parse_cache",
         is_fast_run_cache: bool | None = True, algo_policy: bytes | None = None,
         binary_cache: bytes | None = None, encrypt: bool = False) -> bytes:
    """Build a packed model (``packed_model`` + FlatBuffer), like the original's packers.

    ``model``/``info`` are stored as given (already encrypted with the named methods), unless ``encrypt`` is
    true: then they are encrypted here with the built-in method of that name and its default key
    (``AES_default`` with a random IV).  ``info`` may be a dict (dumped as JSON).  ``info_cache_parse_method``
    None and ``is_fast_run_cache`` None leave those header fields out (as ``pack_model_and_info.py`` does).
    """
    if isinstance(info, dict):
        info = json.dumps(info)
    if isinstance(info, str):
        info = info.encode("utf-8")
    model = bytes(model)
    if encrypt:
        model = _encrypt_builtin(model_decryption_method, model)
        if info is not None:
            info = _encrypt_builtin(info_decryption_method, bytes(info))
    b = _Builder()
    b.buf.extend(bytes(4))                                  # root uoffset
    root, root_refs = b.table([("ref", None)])              # PackModel
    b.patch_uoffset(0, root)
    b.align(4)
    vec = len(b.buf)                                        # models: [Model], one offset (patched below)
    b.buf.extend(struct.pack("<II", 1, 0))
    b.patch_uoffset(root_refs[0], vec)
    m_pos, m_refs = b.table([("ref", None), ("ref", None) if (info is not None or algo_policy is not None
                                                             or binary_cache is not None) else None,
                             ("ref", None)])
    b.patch_uoffset(vec + 4, m_pos)
    header_fields: list[tuple[str, Any] | None] = [("ref", None)] * 4 + [
        None if info_cache_parse_method is None else ("ref", None),
        None if is_fast_run_cache is None else ("bool", is_fast_run_cache),
    ]
    h_pos, h_refs = b.table(header_fields)
    b.patch_uoffset(m_refs[0], h_pos)
    strings = [name, info_decryption_method, info_parse_method, model_decryption_method, info_cache_parse_method]
    for slot, text in enumerate(strings):
        if text is not None:
            b.patch_uoffset(h_refs[slot], b.bytes_vector(text.encode("utf-8"), nul=True))
    if 1 in m_refs:
        parts = [info, algo_policy, binary_cache]
        i_pos, i_refs = b.table([None if p is None else ("ref", None) for p in parts])
        b.patch_uoffset(m_refs[1], i_pos)
        for slot, part in enumerate(parts):
            if part is not None:
                b.patch_uoffset(i_refs[slot], b.bytes_vector(bytes(part)))
    d_pos, d_refs = b.table([("ref", None)])
    b.patch_uoffset(m_refs[2], d_pos)
    b.patch_uoffset(d_refs[0], b.bytes_vector(model))
    return MAGIC + bytes(b.buf)


def _encrypt_builtin(method: str, data: bytes) -> bytes:
    if method in ("", "NONE"):
        return data
    encrypt = {"AES_default": crypto.aes_encrypt, "RC4_default": crypto.rc4_encrypt,
               "SIMPLE_FAST_RC4_default": crypto.sfrc4_encrypt}.get(method)
    if encrypt is None:
        raise LiteError(f"cannot encrypt with {method}: only the built-in methods can encrypt")
    return encrypt(data, crypto.get_decryption_key(method))
