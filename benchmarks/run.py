"""Run every benchmark and print each figure beside its baseline.

    python benchmarks/run.py [--json PATH] [--only NAME ...] [--check]

Each ``benchmarks/bench_*.py`` module exposes ``BENCHMARKS``, a list of
functions returning a ``Figure``.  Baselines are measured in the same run,
because absolute times on these machines are not stable.  ``--check`` exits
1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _common import Figure  # noqa: E402


def discover() -> list:
    benchmarks = []
    for path in sorted(HERE.glob("bench_*.py")):
        module = importlib.import_module(path.stem)
        benchmarks.extend(module.BENCHMARKS)
    return benchmarks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", metavar="PATH", help="also write {name: {value, baseline, ratio, unit, goal}}")
    parser.add_argument("--only", nargs="*", default=None, help="run only these figures (by function name)")
    parser.add_argument("--check", action="store_true", help="exit 1 if any goal is missed")
    args = parser.parse_args(argv)

    figures: list[Figure] = []
    print(f"{'figure':<18} {'value':>14} {'baseline':>14} {'ratio':>8}  unit           goal")
    for bench in discover():
        short = bench.__name__.removeprefix("bench_")
        if args.only and short not in args.only and bench.__name__ not in args.only:
            continue
        figure = bench()
        figures.append(figure)
        mark = "ok  " if figure.ok else "MISS"
        print(
            f"{figure.name:<18} {figure.value:>14.6g} {figure.baseline:>14.6g} {figure.ratio:>8.3f}  "
            f"{figure.unit:<14} {mark} {figure.goal}" + (f"  ({figure.note})" if figure.note else ""),
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps({f.name: f.as_json() for f in figures}, indent=2))
    missed = [f.name for f in figures if not f.ok]
    if missed:
        print(f"goals missed: {', '.join(missed)}")
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
