"""The file-format layer: decoding real dumps, and clear errors for truncated, corrupted or foreign files."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import BY_NAME, model_path
from megenginelite import LiteNetwork
from megenginelite.errors import ModelFormatError
from megenginelite.format import detect_format, read_model

SMALL = BY_NAME["resnet18_small"]


def small_bytes() -> bytes:
    with open(model_path(SMALL), "rb") as f:
        return f.read()


def test_shufflenet_header_and_tables(shufflenet):
    model = read_model(open(model_path(shufflenet), "rb").read(), "shufflenet_v2.mge")
    assert model.format == "mgv2"
    assert model.mge_version == 101300
    assert model.model_version == 2
    assert [name for _, name in model.outputs] == ["Softmax"]
    inputs = [op for op in model.oprs if op.type == "Host2DeviceCopy"]
    assert [(t.name, t.shape) for op in inputs for t in op.tensors] == [("data", (1, 3, 224, 224))]
    assert {op.type for op in model.oprs} == set(shufflenet["ops"])


def test_pooling_defaults_are_the_schema_defaults(shufflenet):
    """Absent fields decode to the schema default (stride and window 2 for Pooling), not to zero."""
    model = read_model(open(model_path(shufflenet), "rb").read())
    pools = [op.params for op in model.oprs if op.type == "PoolingV1"]
    assert pools and all(p["stride_h"] > 0 and p["window_h"] > 0 for p in pools)


def test_constants_are_views_of_the_file_bytes():
    data = small_bytes()
    model = read_model(data)
    weights = [t.data for op in model.oprs for t in op.tensors if t.data is not None and t.data.size > 16]
    assert weights
    assert all(not w.flags.owndata for w in weights)


@pytest.mark.parametrize("blob,fmt", [(b"", "unknown"), (b"MGBC" + bytes(20), "mgb1"), (b"mgbtest0" + bytes(8), "mgbtest0"),
                                      (b"\x10\x00\x00\x00\x1c\x00\x00\x00mgv2", "mgv2"), (b"\x08\x01\x12\x00", "unknown")])
def test_detect_format(blob, fmt):
    assert detect_format(blob) == fmt


def test_garbage_and_empty_files_raise_runtime_errors(tmp_path):
    for content in (b"", b"hello world, not a model at all"):
        path = tmp_path / "bad.mge"
        path.write_bytes(content)
        with pytest.raises(RuntimeError, match="invalid model format") as info:
            LiteNetwork().load(str(path))
        assert "bad.mge" in str(info.value)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        LiteNetwork().load(str(tmp_path / "nope.mge"))


def _outcome(data: bytes) -> str:
    """'ok' when the bytes load, else the error class; anything but a ModelFormatError fails the test."""
    try:
        read_model(data, "mutant.mge")
    except ModelFormatError as exc:
        assert "mutant.mge" in str(exc)
        return "error"
    return "ok"


def test_every_truncation_is_a_clean_error():
    data = small_bytes()
    cuts = sorted(set(np.linspace(0, len(data) - 1, 300).astype(int).tolist()) | set(range(0, 64)))
    outcomes = [_outcome(data[:cut]) for cut in cuts]
    assert outcomes.count("error") == len(cuts)


def test_byte_flips_give_a_clean_error_or_a_load():
    """Flip random bytes in the tables (the first and last 4 KiB hold vtables, offsets and names)."""
    data = small_bytes()
    rng = np.random.RandomState(7)
    positions = np.concatenate([rng.randint(0, min(4096, len(data)), 300),
                                rng.randint(max(0, len(data) - 4096), len(data), 300)])
    seen = set()
    for pos in positions:
        mutant = bytearray(data)
        mutant[pos] ^= 1 << rng.randint(8)
        seen.add(_outcome(bytes(mutant)))
    assert seen <= {"ok", "error"}


def test_huge_vector_length_does_not_allocate():
    """A length field rewritten to 2**31 must be caught by the bounds check, not allocated."""
    data = bytearray(small_bytes())
    model_root = 4 + int.from_bytes(data[4:8], "little")
    # Overwrite every u32 in the first table area that looks like a small count with a huge one.
    hits = 0
    for pos in range(model_root, min(model_root + 512, len(data) - 4), 4):
        value = int.from_bytes(data[pos:pos + 4], "little")
        if 0 < value < 64:
            mutant = bytearray(data)
            mutant[pos:pos + 4] = (2**31).to_bytes(4, "little")
            assert _outcome(bytes(mutant)) in {"ok", "error"}
            hits += 1
    assert hits > 0
