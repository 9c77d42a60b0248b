#!/usr/bin/env python3
"""Record what the real MegEngine Lite 1.13 does in every scenario of ``tests/api/api_scenarios.py``.

Run with the Python that has the real MegEngine 1.13.0 (from anywhere, e.g. the repository root)::

    "$(../shared/tools/real-megengine)" tools/record_api_behaviour.py            # all scenarios
    "$(../shared/tools/real-megengine)" tools/record_api_behaviour.py 'net_*'    # some (names or globs), merged
    "$(../shared/tools/real-megengine)" tools/record_api_behaviour.py --list

Each scenario runs in its own subprocess (``python -I``, working directory a fresh temporary directory, so this
repository's ``megenginelite`` cannot shadow the real one; only ``tests/api/`` is put on ``sys.path`` to import the
scenarios).  The child prints its observation as one JSON line and leaves with ``os._exit`` (the original's
destructors can abort at interpreter exit).  A child killed by a signal is recorded as ``{"crashed": "SIGSEGV"}``,
one that hangs as ``{"timed_out": seconds}``.  The result goes to ``tests/fixtures/api_behaviour.json``
(``{scenario: observation}``, sorted by name).  This is a development tool: the tests only read the JSON.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fnmatch
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
FIXTURES = TESTS / "fixtures"
DEFAULT_OUT = FIXTURES / "api_behaviour.json"
MARK = "@@API_OBSERVATION@@"


def child(name: str) -> None:
    """Run one scenario under the real library and print its observation."""
    sys.path.insert(0, str(TESTS / "api"))
    import api_scenarios  # noqa: E402

    import megenginelite  # noqa: E402

    location = Path(megenginelite.__file__).resolve()
    if ROOT in location.parents:
        raise SystemExit(f"refusing to record: megenginelite was imported from this repository ({location})")
    obs = api_scenarios.SCENARIOS[name](megenginelite, str(FIXTURES))
    text = json.dumps(obs, sort_keys=True)
    sys.stdout.flush()
    sys.stdout.write(f"\n{MARK}{text}\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run_one(name: str, timeout: float) -> tuple[str, object, str]:
    import api_scenarios

    if name in api_scenarios.ORIGINAL_UNSAFE:
        return name, {"not_run_on_original": api_scenarios.ORIGINAL_UNSAFE[name]}, ""
    with tempfile.TemporaryDirectory(prefix="lite_api_rec_") as cwd:
        cmd = [sys.executable, "-I", str(Path(__file__).resolve()), "--child", name]
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        try:
            proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return name, {"timed_out": timeout}, ""
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return name, json.loads(line[len(MARK):]), proc.stderr
    if proc.returncode < 0:
        try:
            sig = signal.Signals(-proc.returncode).name
        except ValueError:
            sig = str(-proc.returncode)
        return name, {"crashed": sig}, proc.stderr
    return name, {"crashed": f"exit {proc.returncode}"}, proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("patterns", nargs="*", help="scenario names or globs (default: all)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--list", action="store_true", help="list the scenario names")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--verbose", action="store_true", help="print each child's stderr")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    sys.path.insert(0, str(TESTS / "api"))
    import api_scenarios  # noqa: E402  (scenario names only; no megenginelite import here)

    names = list(api_scenarios.SCENARIOS)
    if args.list:
        print("\n".join(names))
        return
    if args.patterns:
        chosen = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in args.patterns)]
        if not chosen:
            raise SystemExit(f"no scenario matches {args.patterns}")
    else:
        chosen = names
    results = json.loads(args.out.read_text()) if args.patterns and args.out.exists() else {}
    if not args.patterns:
        results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_one, n, args.timeout) for n in chosen]
        for fut in concurrent.futures.as_completed(futures):
            name, obs, err = fut.result()
            results[name] = obs
            status = "ok"
            if isinstance(obs, dict) and ("crashed" in obs or "timed_out" in obs):
                status = json.dumps(obs)
            print(f"{name}: {status}", flush=True)
            if args.verbose or status != "ok":
                tail = err.strip().splitlines()[-15:]
                if tail:
                    print("    " + "\n    ".join(tail), flush=True)
    missing_keys = []
    for name, obs in results.items():
        for path, exc in _exceptions(obs):
            key = exc.get("message_has")
            if key and key not in exc.get("message", ""):
                missing_keys.append(f"{name}{path}: key {key!r} not in {exc.get('message', '')[:200]!r}")
    stale = sorted(set(results) - set(names))
    for name in stale:
        del results[name]
    ordered = {k: results[k] for k in sorted(results)}
    args.out.write_text(json.dumps(ordered, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(ordered)} scenarios to {args.out}")
    for line in missing_keys:
        print("WARNING:", line)


def _exceptions(obs: object, path: str = ""):
    if isinstance(obs, dict):
        if "raises" in obs and "mro" in obs:
            yield path, obs
            return
        for k, v in obs.items():
            yield from _exceptions(v, f"{path}.{k}")
    elif isinstance(obs, list):
        for i, v in enumerate(obs):
            yield from _exceptions(v, f"{path}[{i}]")


if __name__ == "__main__":
    main()
