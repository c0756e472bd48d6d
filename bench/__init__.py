"""Benchmarks that print figures and a one-line verdict (results in bench/results/).

Run one with ``python -m bench.<name> [--quick]``, or all of them and regenerate
docs/benchmarks.md with ``python -m bench.run_all [--quick]``.
"""
