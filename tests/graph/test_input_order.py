"""``original_input_order`` must reproduce the input order reported by the real MegEngine Lite 1.13.

The cases in ``fixtures/input_order_cases.json`` were recorded with the real library by
``tools/record_input_order.py``; these tests do not need MegEngine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from megenginelite.graph.input_order import libstdcxx_string_hash, original_input_order

CASES_FILE = Path(__file__).parents[1] / "fixtures" / "input_order_cases.json"
CASES = json.loads(CASES_FILE.read_text())


def _case_id(case: dict) -> str:
    text = ",".join(case["file_order"])
    return f"{len(case['file_order'])}:{text[:40]}"


def test_enough_recorded_cases() -> None:
    assert len(CASES) >= 200
    sizes = {len(case["file_order"]) for case in CASES}
    assert set(range(1, 13)) <= sizes
    assert max(sizes) > 13  # at least one case where the table grows past its first 13 buckets


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_matches_real_library(case: dict) -> None:
    assert original_input_order(case["file_order"]) == case["lite_order"]


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_output_names_keep_dump_order(case: dict) -> None:
    # recorded fact about the real library: outputs are listed in the order given to ``dump``
    assert case["lite_output_order"] == case["output_names"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # values printed by std::hash<std::string> of x86-64 libstdc++
        ("", 6142509188972423790),
        ("a", 4993892634952068459),
        ("data", 14752253762927134915),
        ("arg_0", 4735867831226350015),
        ("abcdefgh", 8664279048047335611),
        ("abcdefghi", 13036955925923793583),
        ("attention_mask_0123", 5787836032820065475),
    ],
)
def test_string_hash_matches_libstdcxx(text: str, expected: int) -> None:
    assert libstdcxx_string_hash(text) == expected


def test_known_examples() -> None:
    assert original_input_order(["zeta", "alpha", "mid", "beta"]) == ["mid", "alpha", "beta", "zeta"]
    assert original_input_order(["b", "a"]) == ["a", "b"]
    assert original_input_order([]) == []
    assert original_input_order(["only"]) == ["only"]


def test_is_a_permutation_and_ignores_repeats() -> None:
    names = [f"in{i}" for i in range(50)]
    result = original_input_order(names)
    assert sorted(result) == sorted(names)
    assert original_input_order(["x", "y", "x"]) == original_input_order(["x", "y"])
