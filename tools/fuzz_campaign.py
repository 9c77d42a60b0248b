#!/usr/bin/env python
"""Fuzz the model loader: mutate real fixture files and run every mutant through the whole pipeline.

Each mutant goes through ``LiteNetwork().load(bytes)`` and one ``forward()`` on zero inputs (inputs never set, so
they are the zero-filled memory the network allocates), then every output is read. The only acceptable outcomes
are a correct load ("ok") or an exception that is a ``megenginelite.errors.LiteError`` (a ``RuntimeError``
subclass) with a message. Anything else is a finding: another exception type ("BAD:<type>"), a worker process
that dies ("crash", e.g. a segfault in native code), a case that outlives its time limit ("hang"), or a case that
makes the worker's resident memory jump ("rss").

Cases run in worker subprocesses under ``RLIMIT_AS`` (``--mem-mb``, address space: a length field that made us
allocate gigabytes fails with MemoryError instead of swapping) with a per-case ``SIGALRM`` watchdog
(``--timeout``) backed by a hard timeout in the parent (for hangs inside native code, where the alarm cannot
interrupt). A worker that dies or hangs is replaced and the campaign goes on with the next case.

Everything is deterministic: case ``i`` of seed ``s`` is always the same file and the same mutation.

    python tools/fuzz_campaign.py                        # 20000 cases over the full corpus, 2 workers
    python tools/fuzz_campaign.py --cases 2000 --corpus ci --json out.json
    python tools/fuzz_campaign.py --replay 1234          # rerun one case in this process, with its traceback
    python tools/fuzz_campaign.py --dump 1234 out.mge    # write case 1234's mutant to a file

The mutators (:data:`MUTATORS`) draw their choices from a ``Draw`` object, so ``tests/format/test_fuzz.py`` drives the
same mutators from hypothesis.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"

# ---------------------------------------------------------------------------------------------------- corpus

# Small models of every container and format: FBS V2 (mgv2), V1 (MGBC/MGBS), test-case containers (mgbtest0),
# packed Lite models (plain, AES, RC4, SIMPLE_FAST_RC4, with and without info / algo cache), and models with
# float16 IO, int inputs, user info, several inputs and outputs.
CI_FILES = [
    "formats/conv_bn_v2.mge", "formats/conv_bn_fbs.mge", "formats/conv_bn_mgbs.mge", "formats/conv_bn_testcase.mge",
    "formats/holder_v2.mge", "formats/holder_fbs.mge", "formats/holder_mgbs.mge", "formats/multi_out_fbs_names.mge",
    "formats/topk_v2.mge", "formats/topk_fbs.mge", "formats/two_input_testcase.mge",
    "formats/two_input_testcase_fbs.mge", "formats/two_input_testcase_assert.mge", "formats/deconv_fbs.mge",
    "formats/two_input_v1.mge",
    "crypto/two_in_two_out.packed_none.lite", "crypto/two_in_two_out.packed_aes.lite",
    "crypto/two_in_two_out.packed_rc4.lite", "crypto/two_in_two_out.packed_sfrc4.lite",
    "crypto/two_in_two_out.packed_cache.lite", "crypto/two_in_two_out.packed_noinfo.lite",
    "crypto/two_in_two_out.packed_pytool.lite", "crypto/two_in_two_out.packed_batch3.lite",
    "two_in_two_out.mge", "int32_input.mge", "uint8_input.mge", "format_user_info.mge", "format_ioc16.mge",
    "format_fbs_v1.mge", "op_elemwise_relu.mge",
]


def corpus(which: str = "full") -> list[Path]:
    """The seed files: ``ci`` (about 30 files of at most 12 KB) or ``full`` (every fixture of at most 64 KB except
    the operator fixtures, one operator fixture in four, and the 286 KB packed ResNet)."""
    files = [FIXTURES / name for name in CI_FILES if (FIXTURES / name).exists()]
    if which == "ci":
        return files
    extra = sorted(FIXTURES.glob("formats/*.mge")) + sorted(FIXTURES.glob("crypto/*.lite")) \
        + sorted(p for p in FIXTURES.glob("*.mge") if not p.name.startswith("op_") and p.stat().st_size <= 64 * 1024)
    extra += sorted(FIXTURES.glob("op_*.mge"))[::4]
    seen = set(files)
    for path in extra:
        if path not in seen and path.stat().st_size <= 300 * 1024:
            files.append(path)
            seen.add(path)
    return files


# ---------------------------------------------------------------------------------------------------- survey


@dataclass
class Survey:
    """Where the structures of a file lie, found by running the real decoders on it under instrumentation.

    Positions are byte offsets into the file. ``lengths`` are the u32 element counts of vectors (with the element
    size), ``offsets`` the u32 uoffset fields, ``ints`` the 4-byte elements of scalar vectors (shapes, var ids,
    dimshuffle patterns), ``scalars`` the (position, size) of table scalar fields that were read, ``weights`` the
    spans of tensor values.
    """

    size: int
    fmt: str
    prefix: int
    vtables: list[tuple[int, int]] = field(default_factory=list)
    tables: list[tuple[int, int]] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    lengths: list[tuple[int, int]] = field(default_factory=list)
    ints: list[int] = field(default_factory=list)
    scalars: list[tuple[int, int]] = field(default_factory=list)
    weights: list[tuple[int, int]] = field(default_factory=list)

    def region(self, name: str) -> list[tuple[int, int]]:
        """Spans (start, length) of a region kind, inside the file."""
        if name == "header":
            spans = [(0, self.prefix)]
        elif name == "vtables":
            spans = self.vtables
        elif name == "tables":
            spans = self.tables
        elif name == "offsets":
            spans = [(p, 4) for p in self.offsets]
        elif name == "lengths":
            spans = [(p, 4) for p, _ in self.lengths]
        elif name == "ints":
            spans = [(p, 4) for p in self.ints]
        elif name == "scalars":
            spans = self.scalars
        elif name == "weights":
            spans = self.weights
        else:
            spans = [(0, self.size)]
        return [(p, n) for p, n in spans if 0 <= p and n > 0 and p + n <= self.size] or [(0, self.size)]


def _address(obj) -> int:
    import numpy as np

    return int(np.frombuffer(obj, np.uint8).__array_interface__["data"][0]) if len(obj) else 0


def survey(data: bytes) -> Survey:
    """Decode ``data`` (unpacking a packed model, and its inner model when it lies in the file in plain) while
    recording every structure the decoders touch."""
    from megenginelite import packed
    from megenginelite.format import detect_format, flatbuf, read_model

    fmt = "packed_model" if packed.is_packed(data) else detect_format(data)
    prefix = {"mgv2": 12, "mgb1": 24 if data[:4] == b"MGBC" else 16, "mgbtest0": 12, "packed_model": 12}.get(fmt, 0)
    result = Survey(len(data), fmt, min(prefix, len(data)))
    bases: dict[int, int] = {}  # address of a buffer's first byte -> its file offset

    def file_pos(buf, pos: int) -> int | None:
        key = id(buf.data)
        if key not in bases:
            addr = _address(buf.data)
            bases[key] = addr - base_addr if base_addr <= addr < base_addr + len(data) else -1
        shift = bases[key]
        return None if shift < 0 else shift + pos

    saved = (None, flatbuf.Buffer.uoffset, flatbuf.Table.__init__, flatbuf.Table._vector_bytes,
             flatbuf.Table.scalar_vector, flatbuf.Table.scalar)

    def uoffset(self, pos, what):
        p = file_pos(self, pos)
        if p is not None:
            result.offsets.append(p)
        return saved[1](self, pos, what)

    def table_init(self, buf, pos, name):
        saved[2](self, buf, pos, name)
        p, vt = file_pos(buf, pos), file_pos(buf, self._vt)
        if p is not None and vt is not None:
            result.tables.append((p, max(self._size, 4)))
            result.vtables.append((vt, self._vt_len))

    def vector_bytes(self, vec, elem_size, what):
        raw = saved[3](self, vec, elem_size, what)
        p = file_pos(self.buf, vec)
        if p is not None:
            result.lengths.append((p, elem_size))
            if len(raw) >= 16 and elem_size == 1 and "bytes" in what:
                result.weights.append((p + 4, len(raw)))
        return raw

    def scalar_vector(self, slot, dtype):
        arr = saved[4](self, slot, dtype)
        vec = self._vector_header(slot)
        p = None if vec is None else file_pos(self.buf, vec)
        if p is not None and arr.itemsize == 4:
            result.ints.extend(p + 4 + 4 * i for i in range(min(len(arr), 64)))
        return arr

    def table_scalar(self, slot, kind, default=0):
        pos = self._field(slot)
        p = None if pos == 0 else file_pos(self.buf, pos)
        if p is not None:
            result.scalars.append((p, flatbuf.SCALARS[kind].size))
        return saved[5](self, slot, kind, default)

    base_addr = _address(data)
    flatbuf.Buffer.uoffset, flatbuf.Table.__init__ = uoffset, table_init
    flatbuf.Table._vector_bytes, flatbuf.Table.scalar_vector, flatbuf.Table.scalar = \
        vector_bytes, scalar_vector, table_scalar
    try:
        inner = data
        try:
            if fmt == "packed_model":
                inner = packed.unpack(data).model
            model = read_model(inner, "survey")
            inner_addr = _address(inner)
            for op in model.oprs:
                for t in op.tensors:
                    if t.data is not None and t.data.nbytes >= 8:
                        addr = int(t.data.__array_interface__["data"][0]) - inner_addr
                        result.weights.append((addr, int(t.data.nbytes)))
        except Exception:
            pass
        if inner is not data and len(inner) > 64:
            at = data.find(bytes(inner[:64]))
            if at >= 0:  # a plain inner model: survey it too, at its place in the file
                sub = survey(bytes(inner))
                for name in ("vtables", "tables", "lengths", "scalars", "weights"):
                    getattr(result, name).extend((p + at, n) for p, n in getattr(sub, name))
                result.offsets.extend(p + at for p in sub.offsets)
                result.ints.extend(p + at for p in sub.ints)
    finally:
        (_, flatbuf.Buffer.uoffset, flatbuf.Table.__init__, flatbuf.Table._vector_bytes,
         flatbuf.Table.scalar_vector, flatbuf.Table.scalar) = saved
    for name in ("vtables", "tables", "lengths", "scalars", "weights"):
        setattr(result, name, sorted(set(getattr(result, name))))
    result.offsets = sorted(set(result.offsets))
    result.ints = sorted(set(result.ints))
    return result


# ---------------------------------------------------------------------------------------------------- mutators


class Draw:
    """The source of a mutator's choices; :class:`RandomDraw` here, a hypothesis ``data.draw`` in the tests."""

    def int(self, lo: int, hi: int) -> int:  # inclusive bounds
        raise NotImplementedError

    def choice(self, seq: Sequence):
        return seq[self.int(0, len(seq) - 1)]

    def bytes(self, n: int) -> bytes:
        """``n`` random bytes (expanded from one drawn seed, so a hypothesis example stays small)."""
        return random.Random(self.int(0, 2**32 - 1)).randbytes(n)


class RandomDraw(Draw):
    def __init__(self, rng: random.Random):
        self.rng = rng

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def bytes(self, n: int) -> bytes:
        return self.rng.randbytes(n)


REGIONS = ["header", "vtables", "tables", "offsets", "lengths", "ints", "scalars", "weights", "any"]
U8 = [0, 1, 2, 0x7F, 0x80, 0xFE, 0xFF]
U16 = [0, 1, 2, 3, 4, 5, 0x7FFF, 0x8000, 0xFFFF]
U32 = [0, 1, 2, 3, 4, 7, 8, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF,
       0x40000000, 0x1000000]
U64 = [0, 1, 2**32, 2**63, 2**64 - 1, 2**40]


def _pos_in(d: Draw, s: Survey, region: str, width: int = 1) -> int:
    start, n = d.choice(s.region(region))
    return max(0, min(start + d.int(0, max(0, n - width)), s.size - width))


def _put(data: bytearray, pos: int, fmt: str, value: int) -> None:
    size = struct.calcsize(fmt)
    if 0 <= pos and pos + size <= len(data):
        struct.pack_into(fmt, data, pos, value & ((1 << (8 * size)) - 1))


def m_empty(d: Draw, data: bytes, s: Survey) -> tuple[bytes, str]:
    n = d.choice([0, 0, 1, 4, 8, 12, 16])
    return data[:n], f"empty/{n}"


def m_truncate(d: Draw, data: bytes, s: Survey) -> tuple[bytes, str]:
    region = d.choice(REGIONS)
    cut = _pos_in(d, s, region) + d.int(0, 3)
    cut = min(cut, len(data) - 1)
    return data[:cut], f"truncate/{region}"


def m_flip(d: Draw, data: bytes, s: Survey) -> tuple[bytes, str]:
    region = d.choice(REGIONS)
    out = bytearray(data)
    for _ in range(d.int(1, 4)):
        out[_pos_in(d, s, region)] ^= d.int(1, 255)
    return bytes(out), f"flip/{region}"


def m_huge_length(d: Draw, data: bytes, s: Survey) -> tuple[bytes, str]:
    if not s.lengths:
        return m_flip(d, data, s)
    pos, elem = d.choice(s.lengths)
    count = struct.unpack_from("<I", data, pos)[0]
    value = d.choice([0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 0x40000000, 0x10000000, 0x01000000, s.size,
                      s.size // max(elem, 1) + 1, count + 1, max(count, 1) * 1000, (s.size - pos) // max(elem, 1)])
    out = bytearray(data)
    _put(out, pos, "<I", value)
    return bytes(out), "huge_length"


def m_bad_offset(d: Draw, data: bytes, s: Survey) -> tuple[bytes, str]:
    if not s.offsets:
        return m_flip(d, data, s)
    pos = d.choice(s.offsets)
    value = d.choice([0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, s.size - pos, s.size - pos - 1, s.size - pos - 4,
                      s.size - pos + 4, 0, 1, 2, 3, (-pos) & 0xFFFFFFFF, d.int(0, 0xFFFFFFFF), d.int(0, 2 * s.size)])
    out = bytearray(data)
    _put(out, pos, "<I", value)
    return bytes(out), "bad_offset"


def m_vtable(d: Draw, data: bytes, s: Survey) -> tuple[bytes, str]:
    if not s.vtables:
        return m_flip(d, data, s)
    vt, vt_len = d.choice(s.vtables)
    out = bytearray(data)
    what = d.choice(["vt_len", "table_size", "field", "soffset"])
    if what == "vt_len":
        _put(out, vt, "<H", d.choice(U16 + [vt_len + 2, vt_len - 2, vt_len + 1]))
    elif what == "table_size":
        _put(out, vt + 2, "<H", d.choice(U16 + [s.size]))
    elif what == "field" and vt_len > 4:
        _put(out, vt + 4 + 2 * d.int(0, (vt_len - 4) // 2 - 1), "<H", d.choice(U16 + [d.int(0, 64)]))
    else:
        tables = [p for p, _ in s.tables] or [vt]
        pos = d.choice(tables)
        _put(out, pos, "<I", d.choice([0, 1, 4, -4, 2**31 - 1, -(2**31), pos + 1, pos - s.size, d.int(-64, 64)]))
    return bytes(out), f"vtable/{what}"


def m_int_field(d: Draw, data: bytes, s: Survey) -> tuple[bytes, str]:
    """Interesting values in shape dims, var ids, params and other scalar fields."""
    out = bytearray(data)
    if s.ints and d.int(0, 1):
        pos = d.choice(s.ints)
        _put(out, pos, "<I", d.choice(U32 + [d.int(0, 64), 224, 65535 * 3]))
        return bytes(out), "int_field/vector"
    if not s.scalars:
        return m_flip(d, data, s)
    pos, size = d.choice(s.scalars)
    fmt, values = {1: ("<B", U8), 2: ("<H", U16), 4: ("<I", U32), 8: ("<Q", U64)}[size]
    _put(out, pos, fmt, d.choice(values + [d.int(0, 32)]))
    return bytes(out), "int_field/scalar"


def m_weights(d: Draw, data: bytes, s: Survey) -> tuple[bytes, str]:
    """NaN/Inf/garbage in tensor values."""
    out = bytearray(data)
    pos = _pos_in(d, s, "weights", 4)
    pattern = d.choice([b"\x00\x00\xc0\x7f", b"\x00\x00\x80\x7f", b"\x00\x00\x80\xff", b"\xff\xff\xff\xff",
                        b"\xff\xff\x7f\x7f", b"\x00\x00\x00\x00"])
    for i in range(d.int(1, 16)):
        at = pos + 4 * i
        if at + 4 <= len(out):
            out[at:at + 4] = pattern
    return bytes(out), "weights"


IDENTIFIERS = [b"MGBC", b"MGBS", b"mgbtest0", b"packed_model"]


def m_ident_random(d: Draw, data: bytes, s: Survey) -> tuple[bytes, str]:
    """Random bytes behind a valid identifier (or behind a valid prefix of the file)."""
    kind = d.choice(["mgv2", "MGBC", "MGBS", "mgbtest0", "packed_model", "prefix"])
    n = d.choice([0, 1, 4, 8, 16, 64, 256, 1024, 4096])
    tail = d.bytes(n)
    if kind == "mgv2":
        head = d.choice([struct.pack("<II", n + 8, d.int(0, 64)), data[:8] if s.fmt == "mgv2" else bytes(8)])
        return head + b"mgv2" + tail, "ident/mgv2"
    if kind == "prefix":
        return data[:d.int(0, max(s.prefix, min(len(data), 64)))] + tail, "ident/prefix"
    return kind.encode() + tail, f"ident/{kind}"


def m_trailing(d: Draw, data: bytes, s: Survey) -> tuple[bytes, str]:
    kind = d.choice(["random", "zeros", "copy"])
    if kind == "copy":
        return data + data, "trailing/copy"
    n = d.choice([1, 3, 4, 16, 1000])
    return data + (d.bytes(n) if kind == "random" else bytes(n)), f"trailing/{kind}"


def m_splice(d: Draw, data: bytes, s: Survey) -> tuple[bytes, str]:
    n = d.int(1, min(64, len(data)))
    a, b = d.int(0, len(data) - n), d.int(0, len(data) - n)
    out = bytearray(data)
    out[b:b + n] = data[a:a + n]
    return bytes(out), "splice"


MUTATORS: dict[str, Callable[[Draw, bytes, Survey], tuple[bytes, str]]] = {
    "empty": m_empty, "truncate": m_truncate, "flip": m_flip, "huge_length": m_huge_length,
    "bad_offset": m_bad_offset, "vtable": m_vtable, "int_field": m_int_field, "weights": m_weights,
    "ident_random": m_ident_random, "trailing": m_trailing, "splice": m_splice,
}
# relative weights of the mutators in the campaign
WEIGHTS = {"empty": 1, "truncate": 6, "flip": 10, "huge_length": 5, "bad_offset": 5, "vtable": 5, "int_field": 10,
           "weights": 2, "ident_random": 3, "trailing": 2, "splice": 3}


def mutate(d: Draw, data: bytes, s: Survey, name: str | None = None) -> tuple[bytes, str]:
    if name is None:
        names = list(WEIGHTS)
        name = d.choice([n for n in names for _ in range(WEIGHTS[n])])
    return MUTATORS[name](d, data, s)


# ---------------------------------------------------------------------------------------------------- one case


class CaseTimeout(BaseException):
    """Raised by the SIGALRM watchdog (a BaseException, so no ``except Exception`` of the code under test eats it)."""


# A forward may take this long per byte of input and output tensors the model declares, on top of the per-case
# limit: a 1 KB file may legitimately declare a 2 GB output (a huge padding, say), which takes seconds to write.
SECONDS_PER_IO_BYTE = 1 / 2**26


def run_case(data: bytes, info: dict | None = None, watchdog: "Watchdog | None" = None) -> tuple[str, str]:
    """Load + forward on zero inputs + read every output. ("ok", "") or (LiteError subclass name, message).

    Any other exception propagates: it is a finding. ``info["io_bytes"]`` receives the bytes of the input and
    output tensors the loaded model declares (what a forward needs however small the file is); a ``watchdog`` is
    extended by ``SECONDS_PER_IO_BYTE`` per such byte before the forward.
    """
    from megenginelite import LiteNetwork
    from megenginelite.errors import LiteError

    try:
        network = LiteNetwork()
        network.load(data)
        if info is not None:
            names = network.get_all_input_name() + network.get_all_output_name()
            info["io_bytes"] = sum(network.get_io_tensor(n).nbytes for n in names)
            if watchdog is not None:
                watchdog.extend(info["io_bytes"] * SECONDS_PER_IO_BYTE)
        network.forward()
        network.wait()
        for name in network.get_all_output_name():
            network.get_io_tensor(name).to_numpy()
    except LiteError as exc:
        return type(exc).__name__, str(exc)
    return "ok", ""


def memory_budget(file_size: int, io_bytes: int) -> int:
    """Bytes of memory a case may add: a fixed allowance plus a few times the file and the declared IO tensors."""
    return 256 * 2**20 + 8 * file_size + 16 * io_bytes


def check_message(outcome: str, message: str) -> str | None:
    """Why a Lite error's message is not acceptable (None when it is): it must say what is wrong."""
    if outcome != "ok" and len(message.strip()) < 12:
        return f"{outcome} with an uninformative message {message!r}"
    return None


class Watchdog:
    """``with Watchdog(seconds):`` raises CaseTimeout in the main thread when the block runs too long."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def _fire(self, signum, frame):
        raise CaseTimeout(f"case ran longer than {self.seconds} s")

    def __enter__(self):
        self._old = signal.signal(signal.SIGALRM, self._fire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def extend(self, seconds: float) -> None:
        """Give the running block ``seconds`` more."""
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        seconds = min(seconds, 600.0)  # declared IO can be absurd (its allocation fails fast); timers have a range
        if left > 0 and seconds > 0:
            self.seconds += seconds
            signal.setitimer(signal.ITIMER_REAL, left + seconds)

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._old)
        return False


# ---------------------------------------------------------------------------------------------------- campaign


class Campaign:
    """Case ``i`` of a seed: a file and a mutation, both derived from ``(seed, i)`` only."""

    def __init__(self, seed: int, files: list[Path]):
        self.seed = seed
        self.files = files
        self._data: dict[int, bytes] = {}
        self._surveys: dict[int, Survey] = {}

    def seed_file(self, index: int) -> tuple[bytes, Survey]:
        if index not in self._data:
            data = self.files[index].read_bytes()
            self._data[index] = data
            self._surveys[index] = survey(data)
        return self._data[index], self._surveys[index]

    def case(self, i: int) -> tuple[Path, bytes, str]:
        rng = random.Random(f"{self.seed}:{i}")
        index = rng.randrange(len(self.files))
        data, s = self.seed_file(index)
        mutant, label = mutate(RandomDraw(rng), data, s)
        return self.files[index], mutant, label


def limit_memory(mem_mb: int) -> None:
    if mem_mb > 0:
        limit = mem_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(args) -> None:
    """Run the cases whose ids come on stdin, one JSON line per case on stdout."""
    limit_memory(args.mem_mb)
    campaign = Campaign(args.seed, corpus(args.corpus))
    out = sys.stdout
    # warm up (imports, ONNX Runtime) so the first case's RSS is not counted as its own
    try:
        run_case(campaign.seed_file(0)[0])
    except Exception:  # a finding of its own, reported by the cases on this file
        pass
    for line in sys.stdin:
        i = int(line)
        path, mutant, label = campaign.case(i)
        rss0 = _rss_mb()
        start = time.perf_counter()
        info: dict = {}
        try:
            with Watchdog(args.timeout) as watchdog:
                outcome, message = run_case(mutant, info, watchdog)
            bad = check_message(outcome, message)
            if bad:
                outcome, message = "BAD:message", bad
        except CaseTimeout as exc:
            outcome, message = "hang", str(exc)
        except BaseException as exc:  # noqa: BLE001 - every other exception is a finding
            outcome, message = f"BAD:{type(exc).__name__}", "".join(traceback.format_exception(exc))[-3000:]
        secs = time.perf_counter() - start
        rss = _rss_mb()
        budget = memory_budget(len(mutant), info.get("io_bytes", 0)) / 2**20
        # LiteMemoryError: the case asked for more than RLIMIT_AS allows (huge declared shapes) and was stopped
        # cleanly; what it had allocated before that is not a leak
        if outcome not in ("hang", "LiteMemoryError") and not outcome.startswith("BAD") and rss - rss0 > budget:
            outcome, message = "rss", (f"max RSS grew by {rss - rss0:.0f} MB, more than the {budget:.0f} MB the "
                                       f"file and its declared IO justify ({outcome}: {message[:200]})")
        out.write(json.dumps({"id": i, "file": str(path.relative_to(FIXTURES)), "mutation": label,
                              "size": len(mutant), "outcome": outcome, "message": message[:3000],
                              "secs": round(secs, 4), "rss_mb": round(rss, 1)}) + "\n")
        out.flush()


# The parent's own limit per case, beyond --timeout: the worker's watchdog is extended for large declared IO (at
# most RLIMIT_AS bytes of it, so by mem_mb * 2**20 * SECONDS_PER_IO_BYTE) and cannot fire inside native code.
HARD_EXTRA_SECONDS = 120


def _spawn(args) -> subprocess.Popen:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--seed", str(args.seed), "--corpus",
           args.corpus, "--timeout", str(args.timeout), "--mem-mb", str(args.mem_mb)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, bufsize=1)


def _drive(args, ids: list[int], results: list[dict], lock: threading.Lock) -> None:
    """Feed ``ids`` to a worker, restarting it after a crash or a hang."""
    pending = list(ids)
    while pending:
        proc = _spawn(args)
        stderr_tail: collections.deque = collections.deque(maxlen=50)
        threading.Thread(target=lambda: [stderr_tail.append(l) for l in proc.stderr], daemon=True).start()
        def feed(ids=tuple(pending), stdin=proc.stdin):  # from a thread: the pipe holds only 64 KiB
            try:
                stdin.write("".join(f"{i}\n" for i in ids))
                stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass

        threading.Thread(target=feed, daemon=True).start()
        startup = 60.0
        while pending:
            ready, _, _ = select.select([proc.stdout], [], [], startup + args.timeout + HARD_EXTRA_SECONDS)
            startup = 0.0
            line = proc.stdout.readline() if ready else None
            if line:
                record = json.loads(line)
                with lock:
                    results.append(record)
                pending.remove(record["id"])
                continue
            i = pending.pop(0)
            if line is None:  # no answer in time: a hang the alarm could not break (native code)
                proc.kill()
                proc.wait()
                outcome, message = "hang", f"no answer within {args.timeout + HARD_EXTRA_SECONDS} s (killed)"
            else:  # EOF: the worker died on this case
                code = proc.wait()
                outcome = "crash"
                message = f"worker exited with {code}" + (f" ({signal.Signals(-code).name})" if code < 0 else "")
                message += ": " + "".join(stderr_tail)[-2000:]
            path, mutant, label = Campaign(args.seed, corpus(args.corpus)).case(i)
            with lock:
                results.append({"id": i, "file": str(path.relative_to(FIXTURES)), "mutation": label,
                                "size": len(mutant), "outcome": outcome, "message": message, "secs": None})
            break
        else:
            proc.wait()


def campaign_main(args) -> int:
    files = corpus(args.corpus)
    start = time.perf_counter()
    ids = list(range(args.first, args.first + args.cases))
    results: list[dict] = []
    lock = threading.Lock()
    chunks = [ids[k::args.jobs] for k in range(args.jobs)]
    threads = [threading.Thread(target=_drive, args=(args, chunk, results, lock)) for chunk in chunks if chunk]
    for t in threads:
        t.start()
    last = time.perf_counter()
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(timeout=1.0)
        if args.progress and time.perf_counter() - last > 10:
            last = time.perf_counter()
            with lock:
                print(f"  {len(results)}/{len(ids)} cases, {last - start:.0f} s", file=sys.stderr, flush=True)
    wall = time.perf_counter() - start
    results.sort(key=lambda r: r["id"])
    report = summarize(results, files, wall, args)
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps({"report": report, "findings": [r for r in results if is_finding(r)]},
                                              indent=1))
    return 1 if report["findings"] else 0


def is_finding(record: dict) -> bool:
    return record["outcome"].startswith("BAD") or record["outcome"] in ("crash", "hang", "rss")


def summarize(results: list[dict], files: list[Path], wall: float, args) -> dict:
    by_outcome = collections.Counter(r["outcome"] for r in results)
    by_mutation: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in results:
        by_mutation[r["mutation"].split("/")[0]][r["outcome"]] += 1
    by_file = collections.Counter(r["file"] for r in results)
    times = sorted(r["secs"] for r in results if r["secs"] is not None)
    return {
        "seed": args.seed, "cases": len(results), "first": args.first, "corpus": args.corpus,
        "files": len(files), "jobs": args.jobs, "timeout_s": args.timeout, "mem_mb": args.mem_mb,
        "wall_s": round(wall, 1), "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                                             f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        "by_outcome": dict(by_outcome.most_common()),
        "by_mutation": {k: dict(v.most_common()) for k, v in sorted(by_mutation.items())},
        "cases_per_file": {"min": min(by_file.values(), default=0), "max": max(by_file.values(), default=0)},
        "case_seconds": {"median": times[len(times) // 2] if times else None, "max": times[-1] if times else None},
        "max_rss_mb": max((r.get("rss_mb") or 0 for r in results), default=0),
        "slowest": [{k: r[k] for k in ("id", "file", "mutation", "outcome", "secs")}
                    for r in sorted(results, key=lambda r: -(r["secs"] or 0))[:10]],
        "findings": [{k: r[k] for k in ("id", "file", "mutation", "outcome", "message")}
                     for r in results if is_finding(r)][:50],
    }


def format_report(rep: dict) -> str:
    lines = [f"fuzz campaign: seed {rep['seed']}, {rep['cases']} cases over {rep['files']} files ({rep['corpus']}), "
             f"{rep['jobs']} workers, {rep['wall_s']} s wall, per-case limit {rep['timeout_s']} s, "
             f"RLIMIT_AS {rep['mem_mb']} MB",
             f"machine: {rep['machine']}", "outcomes:"]
    for k, v in rep["by_outcome"].items():
        lines.append(f"  {k:28s} {v:7d}")
    lines.append("by mutation:")
    for k, v in rep["by_mutation"].items():
        lines.append(f"  {k:14s} " + ", ".join(f"{o} {n}" for o, n in v.items()))
    lines.append(f"case time: median {rep['case_seconds']['median']} s, max {rep['case_seconds']['max']} s; "
                 f"worker max RSS {rep['max_rss_mb']} MB")
    lines.append("slowest: " + ", ".join(f"#{r['id']} {r['file']} {r['mutation']} {r['outcome']} {r['secs']} s"
                                         for r in rep["slowest"][:5]))
    lines.append(f"findings: {len(rep['findings'])}")
    for f in rep["findings"][:20]:
        lines.append(f"  #{f['id']} {f['file']} {f['mutation']}: {f['outcome']}: {f['message'][-300:]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20000)
    parser.add_argument("--first", type=int, default=0, help="id of the first case")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--corpus", choices=["ci", "full"], default="full")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds per case (more for a forward of large declared tensors, see SECONDS_PER_IO_BYTE)")
    parser.add_argument("--mem-mb", type=int, default=3072, help="RLIMIT_AS of a worker, MB (0: none)")
    parser.add_argument("--json", help="write the report and the findings here")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--replay", type=int, help="run one case here, with its traceback")
    parser.add_argument("--dump", nargs=2, metavar=("ID", "FILE"), help="write case ID's mutant to FILE")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if args.replay is not None or args.dump:
        i = args.replay if args.replay is not None else int(args.dump[0])
        path, mutant, label = Campaign(args.seed, corpus(args.corpus)).case(i)
        print(f"case {i}: {path.relative_to(FIXTURES)} {label}, {len(mutant)} bytes")
        if args.dump:
            Path(args.dump[1]).write_bytes(mutant)
            return 0
        limit_memory(args.mem_mb)
        with Watchdog(args.timeout) as watchdog:
            print(run_case(mutant, {}, watchdog))
        return 0
    return campaign_main(args)


if __name__ == "__main__":
    sys.exit(main())
