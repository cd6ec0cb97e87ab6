"""`python -m bench [NAME ...]`: run the benchmarks and print their results as one JSON document."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(Path(__file__).parent)])
        if not info.name.startswith("_")
    )


def main() -> int:
    names = available()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(names))
    selected = parser.parse_args().names or names
    unknown = sorted(set(selected) - set(names))
    if unknown:  # not argparse's choices=: Python 3.11 checks nargs="*"'s empty default too
        parser.error(f"unknown benchmark {', '.join(unknown)} (choose from {', '.join(names)})")
    results = {}
    for name in selected:
        print(f"running bench.{name} ...", file=sys.stderr)
        results[name] = importlib.import_module(f"bench.{name}").run()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
