"""docs/operators.md is the table tools/gen_coverage.py generates from the registries and the fixture manifest."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_coverage", ROOT / "tools" / "gen_coverage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_coverage_table_is_up_to_date():
    gen = load_generator()
    assert gen.DOC.read_text() == gen.render(), "docs/operators.md is stale: run python tools/gen_coverage.py"


def test_every_lowered_kind_is_in_the_table():
    gen = load_generator()
    text = gen.render()
    for kind in gen.LOWERINGS:
        assert f"| {kind} |" in text
