"""tools/make_fixtures.py keeps its own copy of the Elemwise mode numbers: it runs under the real MegEngine, where
this repository's package cannot be imported (the name ``megenginelite`` is the real library's there). The copy
must name every mode as the package's table does."""

from __future__ import annotations

import ast
from pathlib import Path

from megenginelite.graph.elemwise_modes import MODES

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "make_fixtures.py"


def fixture_tool_table() -> dict[int, str]:
    """The literal ``ELEMWISE_MODE_NAMES`` of the script, read without importing it (importing it edits sys.path)."""
    for node in ast.parse(SCRIPT.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "ELEMWISE_MODE_NAMES" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"no ELEMWISE_MODE_NAMES in {SCRIPT}")


def test_fixture_tool_mode_table_matches_the_package():
    assert fixture_tool_table() == {value: name for value, (name, _, _) in MODES.items()}
