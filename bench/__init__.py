"""Benchmarks and long runs (latency against the real MegEngine Lite, serving, soak). Not part of the installed
package; importable as ``bench`` from the repository root."""
