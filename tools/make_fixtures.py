#!/usr/bin/env python3
"""Generate the ``.mge`` test fixtures and their reference outputs.

Run this with a Python that has the *real* MegEngine 1.13.0 (and with it the real ``megenginelite``); from the
repository root::

    "$(../shared/tools/real-megengine)" tools/make_fixtures.py            # everything
    "$(../shared/tools/real-megengine)" tools/make_fixtures.py 'op_conv*'  # only fixtures matching a glob
    "$(../shared/tools/real-megengine)" tools/make_fixtures.py --list      # list fixture names

For every fixture it

1. builds a small model with ``megengine.module`` / ``megengine.functional`` and weights drawn from a seeded
   ``numpy.random.RandomState`` (MegEngine's own RNG is seeded as well),
2. traces it with ``megengine.jit.trace(symbolic=True, capture_as_const=True)`` and dumps
   ``tests/fixtures/<name>.mge``,
3. loads that file with the real ``megenginelite`` (``LiteNetwork().load``), feeds the reference inputs with
   ``set_data_by_copy``, runs ``forward()``/``wait()`` and reads the outputs with ``to_numpy()``,
4. writes ``tests/fixtures/<name>.npz`` (keys ``input:<name>`` and ``output:<name>``) and an entry of
   ``tests/fixtures/manifest.json``.

Each fixture is generated in its own subprocess (``--worker``), so that a crash of the native library on one
operator only loses that fixture; fixtures that cannot be produced are listed in ``unavailable.json`` and in the
README.  The output is deterministic: running the script twice gives byte-identical files.

The fixtures and the machinery live in the package ``tools/fixtures/``: a new fixture goes into the module of its
operator family (the package's docstring lists them); this script is the package's command line, ``--check-only``
checks the manifest against the files without MegEngine. It is a development tool: the project's tests only read
the committed fixtures and never need MegEngine.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from fixtures.driver import generate
from fixtures.manifest import check
from fixtures.registry import REGISTRY
from fixtures.worker import worker


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("patterns", nargs="*", help="fixture names or globs (default: all)")
    ap.add_argument("--list", action="store_true", help="list fixture names and exit")
    ap.add_argument("--jobs", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--check-only", action="store_true", help="only run the consistency check")
    ap.add_argument("--worker", nargs=2, metavar=("NAME", "OUT_JSON"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        try:
            worker(*args.worker)
        except Exception:
            traceback.print_exc()
            return 1
        return 0
    if args.list:
        for n, info in REGISTRY.items():
            print(f"{n:40s} {info['category']:6s} group {info['group']}")
        return 0
    if args.check_only:
        return check()
    return generate(args.patterns, args.jobs, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
