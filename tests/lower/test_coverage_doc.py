"""docs/operators.md is the table tools/gen_coverage.py generates from the registries and the fixture manifest."""

from __future__ import annotations

from tools import gen_coverage as gen


def test_committed_coverage_table_is_up_to_date():
    assert gen.DOC.read_text() == gen.render(), "docs/operators.md is stale: run python tools/gen_coverage.py"


def test_every_lowered_kind_is_in_the_table():
    text = gen.render()
    for kind in gen.LOWERINGS:
        assert f"| {kind} |" in text
