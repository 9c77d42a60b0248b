"""Shared fixtures: the manifest of reference models recorded with real MegEngine 1.13 (tools/make_fixtures.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
BY_NAME = {entry["name"]: entry for entry in MANIFEST}


def reference(entry: dict) -> dict[str, np.ndarray]:
    """The recorded inputs and outputs of one fixture, keyed 'input:<name>' / 'output:<name>'."""
    with np.load(FIXTURES / f"{entry['name']}.npz") as data:
        return {key: data[key] for key in data.files}


def model_path(entry: dict) -> str:
    return str(FIXTURES / entry["file"])


@pytest.fixture
def shufflenet() -> dict:
    return BY_NAME["shufflenet_v2"]
