"""Benchmarks of the console, run by ``make bench`` (``python -m tests.benchmarks``).

Not tests: pytest collects ``test_*.py`` only, and nothing here is named so. Each case runs
in a fresh process (so its peak memory is its own), three times, interleaved with the
reference cases it is compared with; the runner writes the medians to docs/BENCHMARKS.md.
"""
