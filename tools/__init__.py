"""Development scripts: fixture generators (run with the real MegEngine), the coverage table, the fuzz campaign and
the packed-model writer. Not part of the installed package; importable as ``tools`` from the repository root (the
tests put the root on ``sys.path`` through pytest's ``pythonpath`` setting)."""
