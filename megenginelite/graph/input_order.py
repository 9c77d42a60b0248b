"""Reproduce the order in which MegEngine Lite lists a model's inputs.

The native loader records every named ``Host2DeviceCopy`` tensor, in the file's operator order, with
``tensor_map[name] = tensor`` into ``GraphLoader::LoadResult::tensor_map``, a
``std::unordered_map<std::string, std::shared_ptr<HostTensorND>>``.  ``LiteNetwork.get_all_input_name()`` (and
``get_input_name(i)``, ``get_model_io_info``) simply walk that map, so the reported order is the iteration order of
a libstdc++ hash table filled in file order.  The map is later copied (``ret.tensor_map = m_tensor_map``) and
moved, which keeps the iteration order.

This module simulates the parts of libstdc++ (x86-64) that decide that order:

* ``std::hash<std::string>`` = ``std::_Hash_bytes(data, len, 0xc70f6907)`` (64-bit MurmurHash2 variant);
* ``_Prime_rehash_policy`` with ``max_load_factor() == 1.0`` (first insertion allocates 13 buckets, later growth
  picks the next prime of at least twice the bucket count);
* ``_Hashtable`` node placement: one singly linked list; a node whose bucket is empty goes to the very front, else
  right after its bucket's "before" node (i.e. at the front of its bucket's run); a rehash re-links the nodes in
  their current traversal order by the same rule.
"""

from __future__ import annotations

from bisect import bisect_left
from math import floor

__all__ = ["libstdcxx_string_hash", "original_input_order"]

_MASK64 = (1 << 64) - 1
_MUL = (0xC6A4A793 << 32) | 0x5BD1E995
_SEED = 0xC70F6907

# libstdc++'s _Prime_rehash_policy tables (src/shared/hashtable-aux.cc, 64-bit ``unsigned long``).
_FAST_BKT = (2, 2, 2, 3, 5, 5, 7, 7, 11, 11, 11, 11, 13, 13)
_PRIMES = (
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 103, 109, 113,
    127, 137, 139, 149, 157, 167, 179, 193, 199, 211, 227, 241, 257, 277, 293, 313, 337, 359, 383, 409, 439, 467,
    503, 541, 577, 619, 661, 709, 761, 823, 887, 953, 1031, 1109, 1193, 1289, 1381, 1493, 1613, 1741, 1879, 2029,
    2179, 2357, 2549, 2753, 2971, 3209, 3469, 3739, 4027, 4349, 4703, 5087, 5503, 5953, 6427, 6949, 7517, 8123,
    8783, 9497, 10273, 11113, 12011, 12983, 14033, 15173, 16411, 17749, 19183, 20753, 22447, 24281, 26267, 28411,
    30727, 33223, 35933, 38873, 42043, 45481, 49201, 53201, 57557, 62233, 67307, 72817, 78779, 85229, 92203, 99733,
    107897, 116731, 126271, 136607, 147793, 159871, 172933, 187091, 202409, 218971, 236897, 256279, 277261, 299951,
    324503, 351061, 379787, 410857, 444487, 480881, 520241, 562841, 608903, 658753, 712697, 771049, 834181, 902483,
    976369, 1056323, 1142821, 1236397, 1337629, 1447153, 1565659, 1693859, 1832561, 1982627, 2144977, 2320627,
    2510653, 2716249, 2938679, 3179303, 3439651, 3721303, 4026031, 4355707, 4712381, 5098259, 5515729, 5967347,
    6456007, 6984629, 7556579, 8175383, 8844859, 9569143, 10352717, 11200489, 12117689, 13109983, 14183539,
    15345007, 16601593, 17961079, 19431899, 21023161, 22744717, 24607243, 26622317, 28802401, 31160981, 33712729,
    36473443, 39460231, 42691603, 46187573, 49969847, 54061849, 58488943, 63278561, 68460391, 74066549, 80131819,
    86693767, 93793069, 101473717, 109783337, 118773397, 128499677, 139022417, 150406843, 162723577, 176048909,
    190465427, 206062531, 222936881, 241193053, 260944219, 282312799, 305431229, 330442829, 357502601, 386778277,
    418451333, 452718089, 489790921, 529899637, 573292817, 620239453, 671030513, 725980837, 785430967, 849749479,
    919334987, 994618837, 1076067617, 1164186217, 1259520799, 1362662261, 1474249943, 1594975441, 1725587117,
    1866894511, 2019773507, 2185171673, 2364114217, 2557710269, 2767159799, 2993761039, 3238918481, 3504151727,
    3791104843, 4101556399, 4294967291,
)  # fmt: skip


def _shift_mix(v: int) -> int:
    return v ^ (v >> 47)


def libstdcxx_string_hash(name: str) -> int:
    """``std::hash<std::string>{}(name)`` of 64-bit libstdc++ (``std::_Hash_bytes`` on the UTF-8 bytes)."""
    data = name.encode("utf-8")
    size = len(data)
    aligned = size & ~7
    h = _SEED ^ ((size * _MUL) & _MASK64)
    for i in range(0, aligned, 8):
        word = int.from_bytes(data[i : i + 8], "little")
        h = ((h ^ ((_shift_mix((word * _MUL) & _MASK64) * _MUL) & _MASK64)) * _MUL) & _MASK64
    if size & 7:
        h = ((h ^ int.from_bytes(data[aligned:], "little")) * _MUL) & _MASK64
    h = (_shift_mix(h) * _MUL) & _MASK64
    return _shift_mix(h)


class _RehashPolicy:
    """``std::__detail::_Prime_rehash_policy`` with ``max_load_factor() == 1.0``."""

    def __init__(self) -> None:
        self.next_resize = 0

    def _next_bkt(self, n: int) -> int:
        if n < len(_FAST_BKT):
            if n == 0:
                return 1
            self.next_resize = _FAST_BKT[n]
            return _FAST_BKT[n]
        last = len(_PRIMES) - 1  # libstdc++ searches [prime_list + 6, last_prime)
        idx = bisect_left(_PRIMES, n, 6, last)
        self.next_resize = (1 << 64) - 1 if idx == last else _PRIMES[idx]
        return _PRIMES[idx]

    def need_rehash(self, n_bkt: int, n_elt: int, n_ins: int) -> int | None:
        """New bucket count if inserting ``n_ins`` more elements needs a rehash, else ``None``."""
        if n_elt + n_ins <= self.next_resize:
            return None
        min_bkts = max(n_elt + n_ins, 11 if self.next_resize == 0 else 0) / 1.0
        if min_bkts >= n_bkt:
            return self._next_bkt(max(floor(min_bkts) + 1, n_bkt * 2))
        self.next_resize = floor(n_bkt * 1.0)
        return None


def _place(order: list[tuple[str, int]], key: str, code: int, n_bkt: int) -> None:
    """Link a node into the traversal list as ``_M_insert_bucket_begin`` does."""
    bkt = code % n_bkt
    for i, (_, other) in enumerate(order):
        if other % n_bkt == bkt:
            order.insert(i, (key, code))  # right after the bucket's "before" node
            return
    order.insert(0, (key, code))  # empty bucket: front of the whole list


def original_input_order(names: list[str]) -> list[str]:
    """Return ``names`` (input names in file order) in the order MegEngine Lite 1.13 reports them.

    Simulates ``std::unordered_map<std::string, ...>::operator[]`` for each name in turn; a repeated name keeps
    its first position, as assignment to an existing key does not move the node.
    """
    policy = _RehashPolicy()
    n_bkt = 1
    order: list[tuple[str, int]] = []
    seen: set[str] = set()
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        code = libstdcxx_string_hash(name)
        new_bkt = policy.need_rehash(n_bkt, len(order), 1)
        if new_bkt is not None:
            n_bkt = new_bkt
            old, order = order, []
            for key, old_code in old:  # _M_rehash_aux re-links nodes in traversal order
                _place(order, key, old_code, n_bkt)
        _place(order, name, code, n_bkt)
    return [key for key, _ in order]
