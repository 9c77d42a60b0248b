"""tools/fixtures/mgefile.py keeps its own copy of the Elemwise mode numbers: it runs under the real MegEngine, where
this repository's package cannot be imported (the name ``megenginelite`` is the real library's there). The copy
must name every mode as the package's table does."""

from __future__ import annotations

from megenginelite.graph.elemwise_modes import MODES
from tools.fixtures.mgefile import ELEMWISE_MODE_NAMES


def test_fixture_tool_mode_table_matches_the_package():
    assert ELEMWISE_MODE_NAMES == {value: name for value, (name, _, _) in MODES.items()}
