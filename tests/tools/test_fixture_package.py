"""tools/fixtures/ imports without MegEngine (the tests' environment), registers exactly the committed fixtures, and
tools/make_fixtures.py's MegEngine-free commands work from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tools.fixtures.registry import REGISTRY  # importing the package registers every fixture

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def committed_names() -> list[str]:
    return [e["name"] for name in ("manifest.json", "unavailable.json")
            for e in json.loads((FIXTURES / name).read_text())]


def test_registry_holds_the_committed_fixtures():
    """No fixture lost or invented by the package (a new one is committed together with its files)."""
    committed = committed_names()
    assert len(committed) == len(set(committed))
    assert sorted(REGISTRY) == sorted(committed)


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "make_fixtures.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_list_without_megengine():
    proc = run_script("--list")
    assert proc.returncode == 0, proc.stderr
    assert sorted(line.split()[0] for line in proc.stdout.splitlines()) == sorted(committed_names())


def test_check_only_without_megengine():
    proc = run_script("--check-only")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 problems" in proc.stdout
