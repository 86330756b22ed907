"""One benchmark case in a process of its own: ``python -m tests.benchmarks.case NAME``.

The runner starts it with the benchmark's environment (database, broker, settings); it
prints its figures as one JSON object on its last line of output.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import sys

import django


def own_peak_rss_mb() -> float:
    """This process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("case")
    parser.add_argument("--run", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.benchmarks.settings")
    django.setup()

    # The case's module is named by the first word of its name: staging_console is in
    # bench_staging.
    module = importlib.import_module(f"tests.benchmarks.bench_{args.case.split('_')[0]}")
    cases = module.CASES
    figures = cases[args.case](run=args.run)
    sys.stdout.write("\n" + json.dumps(figures) + "\n")


if __name__ == "__main__":
    main()
