"""Fuzzing the loader: mutated real model files through the whole pipeline.

Every mutant goes through ``LiteNetwork().load(bytes)``, one ``forward()`` on zero inputs (inputs never set) and a
read of every output. It must either work, or raise a ``megenginelite.errors.LiteError`` (a ``RuntimeError``
subclass) whose message says what is wrong: no other exception type, no crash, no hang (each case runs under a
SIGALRM watchdog), and no allocation that the file does not justify: ``tracemalloc`` bounds what ``load`` allocates
by a multiple of the file size, what ``forward`` allocates by the input and output tensors the model declares, and
each case runs under a lowered ``RLIMIT_AS`` soft limit so that an allocation of gigabytes fails (cleanly) instead
of swapping.

The mutators are those of ``tools/fuzz_campaign.py`` (the long campaign, many thousands of cases in worker
processes; results in docs/reliability.md), here driven by hypothesis: derandomized, a fixed number of examples per
mutation family, no example database. One campaign run in subprocesses checks the RLIMIT_AS/worker path as well.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import resource
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megenginelite import LiteNetwork
from megenginelite.errors import LiteError, ModelFormatError
from tools import fuzz_campaign as fc

ROOT = fc.ROOT

CORPUS = fc.corpus("ci")
DATA = {p: p.read_bytes() for p in CORPUS}
SURVEYS = {p: fc.survey(DATA[p]) for p in CORPUS}
IDS = [str(p.relative_to(fc.FIXTURES)) for p in CORPUS]

CASE_SECONDS = 20  # watchdog per case (the slowest mutant of the CI runs takes about 2 s)
ADDRESS_SPACE_HEADROOM = 2 * 2**30  # RLIMIT_AS while a case runs: what the process maps already + this


class HypothesisDraw(fc.Draw):
    """The mutators' choices, drawn from hypothesis (so examples shrink to simple choices)."""

    def __init__(self, data):
        self.data = data

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def choice(self, seq):
        return self.data.draw(st.sampled_from(list(seq)))

    def bytes(self, n: int) -> bytes:
        if n <= 64:
            return self.data.draw(st.binary(min_size=n, max_size=n))
        return super().bytes(n)


@contextlib.contextmanager
def address_space_limit(headroom: int = ADDRESS_SPACE_HEADROOM):
    """Lower the soft RLIMIT_AS to the current mapped size plus ``headroom`` for the block, then restore it."""
    if not Path("/proc/self/statm").exists():  # not Linux: the tracemalloc budgets still apply
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * resource.getpagesize()
    limit = mapped + headroom
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY:
        limit = min(limit, soft)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@contextlib.contextmanager
def traced(peaks: dict, what: str):
    """Record in ``peaks[what]`` the peak of traced allocations in the block (also when it raises)."""
    tracemalloc.start()
    try:
        yield
    finally:
        peaks[what] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def load_budget(size: int) -> int:
    """What ``load`` may allocate (Python heap, numpy): the file a few times over (copies, decryption, the ONNX
    bytes holding the weights) and a fixed allowance for the graph objects. Seed files need 16-150 KB."""
    return 4 * 2**20 + 16 * size


def forward_budget(io_bytes: int) -> int:
    """What ``forward`` may allocate: the declared input and output tensors (zero inputs are allocated on first
    use) and a fixed allowance."""
    return 4 * 2**20 + 2 * io_bytes


def check_mutant(mutant: bytes, label: str = "") -> str:
    """Run one mutant; 'ok' or the LiteError class name. Fails the test on anything else, and when load or forward
    allocated more than their budgets (checked whether they succeeded or raised)."""
    network = LiteNetwork()
    peaks: dict[str, int] = {}
    io_bytes = 0
    outcome = "ok"
    # backstop for a hang inside native code, where SIGALRM cannot interrupt: dump every thread's traceback and
    # end the run (a CI failure with the culprit's stack, not a silent hang)
    faulthandler.dump_traceback_later(3 * CASE_SECONDS, exit=True)
    try:
        with address_space_limit(), fc.Watchdog(CASE_SECONDS):
            try:
                with traced(peaks, "load"):
                    network.load(mutant)
                names = network.get_all_input_name() + network.get_all_output_name()
                io_bytes = sum(network.get_io_tensor(n).nbytes for n in names)
                with traced(peaks, "forward"):
                    network.forward()
                    network.wait()
                    for name in network.get_all_output_name():
                        network.get_io_tensor(name).get_data_by_share()
            except LiteError as exc:
                message = str(exc)
                assert len(message.strip()) >= 12 and any(c.isalpha() for c in message), \
                    f"{label}: {type(exc).__name__} with an uninformative message {message!r}"
                outcome = type(exc).__name__
    except fc.CaseTimeout:
        pytest.fail(f"{label}: a {len(mutant)}-byte mutant ran longer than {CASE_SECONDS} s")
    except AssertionError:
        raise
    except Exception as exc:  # noqa: BLE001 - the point of the test
        raise AssertionError(f"{label}: {type(exc).__name__} is not a LiteError: {exc}") from exc
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert peaks["load"] <= load_budget(len(mutant)), \
        f"{label}: load of a {len(mutant)}-byte file allocated {peaks['load']} bytes ({outcome})"
    if "forward" in peaks:
        assert peaks["forward"] <= forward_budget(io_bytes), \
            f"{label}: forward with {io_bytes} bytes of declared IO allocated {peaks['forward']} bytes ({outcome})"
    return outcome


FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])

# examples per mutation family (about 2 ms each on the CI corpus; the whole module runs in well under a minute)
FAMILIES = {"truncate": 150, "flip": 300, "huge_length": 200, "bad_offset": 200, "vtable": 200, "int_field": 300,
            "weights": 60, "ident_random": 100, "trailing": 60, "splice": 100, "empty": 20}


def _fuzz_test(family: str):
    @settings(FUZZ, max_examples=FAMILIES[family])
    @given(st.data())
    def test(data):
        path = data.draw(st.sampled_from(CORPUS), label="file")
        mutant, label = fc.MUTATORS[family](HypothesisDraw(data), DATA[path], SURVEYS[path])
        check_mutant(mutant, f"{path.name} {label}")

    test.__name__ = f"test_fuzz_{family}"
    test.__doc__ = f"{FAMILIES[family]} {family} mutants of the CI corpus: a load or a clean LiteError."
    return test


for _family in FAMILIES:
    globals()[f"test_fuzz_{_family}"] = _fuzz_test(_family)


# ---------------------------------------------------------------------------------------------------- exhaustive


def test_seed_files_are_what_the_mutators_start_from():
    """Every seed file loads and runs (except the assert container: AssertEqual has no lowering); the survey found
    the tables, vtables, offsets and lengths the mutators aim at."""
    for path in CORPUS:
        outcome = check_mutant(DATA[path], path.name)
        assert outcome == "ok" or (outcome == "UnsupportedOperatorError" and "assert" in path.name), path
        s = SURVEYS[path]
        assert s.vtables and s.tables and s.offsets and s.lengths, path


@pytest.mark.parametrize("name", ["two_in_two_out.mge", "formats/topk_fbs.mge", "formats/holder_mgbs.mge",
                                  "crypto/two_in_two_out.packed_none.lite"])
def test_every_truncation(name):
    """The file cut at every byte (every region: header, tables, vtables, weights, the tail)."""
    data = DATA[fc.FIXTURES / name]
    outcomes = {cut: check_mutant(data[:cut], f"{name}[:{cut}]") for cut in range(len(data))}
    assert set(outcomes.values()) <= {"ModelFormatError", "LiteError"}, \
        {cut: o for cut, o in outcomes.items() if o not in ("ModelFormatError", "LiteError")}


@pytest.mark.parametrize("name", ["two_in_two_out.mge", "formats/conv_bn_fbs.mge", "formats/two_input_testcase.mge",
                                  "crypto/two_in_two_out.packed_none.lite", "crypto/two_in_two_out.packed_cache.lite"])
def test_every_length_field_made_huge(name):
    """Each vector length of the file set to 2**32-1, 2**31 and 2**28 in turn: a clean error or a load, and the load
    budget (a multiple of the file size) holds: no length field makes us allocate what it says."""
    path = fc.FIXTURES / name
    data, s = DATA[path], SURVEYS[path]
    assert len(s.lengths) > 5
    outcomes = set()
    for pos, _ in s.lengths:
        for value in (0xFFFFFFFF, 0x80000000, 0x10000000):
            mutant = bytearray(data)
            struct.pack_into("<I", mutant, pos, value)
            outcomes.add(check_mutant(bytes(mutant), f"{name} length at {pos} = {value:#x}"))
    assert "ModelFormatError" in outcomes


@pytest.mark.parametrize("name", ["two_in_two_out.mge", "formats/conv_bn_mgbs.mge",
                                  "crypto/two_in_two_out.packed_none.lite"])
def test_every_offset_pointing_outside(name):
    """Each uoffset of the file pointed past the end, to the last byte, and to a huge value."""
    path = fc.FIXTURES / name
    data, s = DATA[path], SURVEYS[path]
    assert len(s.offsets) > 5
    for pos in s.offsets:
        for value in (len(data) - pos, len(data) - pos - 1, 0xFFFFFFFF):
            mutant = bytearray(data)
            struct.pack_into("<I", mutant, pos, value & 0xFFFFFFFF)
            check_mutant(bytes(mutant), f"{name} offset at {pos} = {value:#x}")


@pytest.mark.parametrize("ident", [b"mgv2", b"MGBC", b"MGBS", b"mgbtest0", b"packed_model"])
@pytest.mark.parametrize("tail", [0, 1, 7, 64, 4096])
def test_random_bytes_behind_an_identifier(ident, tail):
    import random

    rng = random.Random(f"{ident!r}{tail}")
    for _ in range(20):
        head = struct.pack("<II", tail + 8, rng.randrange(64)) + ident if ident == b"mgv2" else ident
        mutant = head + rng.randbytes(tail)
        assert check_mutant(mutant, f"{ident!r} + {tail} random bytes") != "ok"


def test_empty_file_and_bare_identifiers():
    for blob in (b"", b"\0", b"mgv2", bytes(12), b"MGBC", b"MGBS", b"mgbtest0", b"packed_model"):
        with pytest.raises(ModelFormatError):
            LiteNetwork().load(blob)


def test_trailing_garbage_is_ignored():
    """Bytes after the model (the size prefix / offsets say where it ends) do not change what loads."""
    path = fc.FIXTURES / "two_in_two_out.mge"
    assert check_mutant(DATA[path] + b"\xff" * 1000, "trailing") == "ok"


# Campaign findings, fixed: (seed, case id, what it was). Each replays through the in-process check.
FINDINGS = [
    (20261124, 6173, "a float parameter beyond float32's range (OverflowError in the ONNX attribute writer)"),
    (20261125, 53402, "an empty constant with dims whose product overflows (ValueError from numpy)"),
    (20261125, 27618, "IO tensors of 4 EiB declared (the campaign's watchdog overflowed; must be LiteMemoryError)"),
]


@pytest.mark.parametrize("seed,case,what", FINDINGS, ids=[f"{s}:{c}" for s, c, _ in FINDINGS])
def test_campaign_findings_stay_fixed(seed, case, what):
    _, mutant, label = fc.Campaign(seed, fc.corpus("full")).case(case)
    check_mutant(mutant, label)


# ---------------------------------------------------------------------------------------------------- subprocess


def test_campaign_in_worker_processes(tmp_path):
    """A short run of the campaign tool itself: workers under RLIMIT_AS (1.5 GB) with per-case timeouts; a crash
    or a hang would show as a finding (the worker is replaced and the run goes on)."""
    out = tmp_path / "campaign.json"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "fuzz_campaign.py"), "--corpus", "ci", "--cases",
                           "1500", "--seed", "7", "--jobs", "2", "--mem-mb", "1536", "--timeout", "20", "--json",
                           str(out)], capture_output=True, text=True, timeout=300)
    result = json.loads(out.read_text())
    assert proc.returncode == 0 and not result["findings"], proc.stdout[-3000:] + proc.stderr[-3000:]
    outcomes = result["report"]["by_outcome"]
    assert sum(outcomes.values()) == 1500
    assert outcomes.get("ok", 0) > 100 and outcomes.get("ModelFormatError", 0) > 500
