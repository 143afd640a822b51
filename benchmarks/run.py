"""Run every benchmark and print each figure beside its baseline.

    python benchmarks/run.py [--json PATH] [--only NAME ...] [--check]

Each ``benchmarks/bench_*.py`` module exposes ``BENCHMARKS``, a list of
functions returning a ``Figure``.  Baselines are measured in the same run,
because absolute times on these machines are not stable.  ``--check`` exits
1 when a goal is missed.  A benchmark that raises is reported as failed
(with its error) and the rest still run: one broken figure must not hide
the others.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import traceback
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
    parser.add_argument(
        "--json", metavar="PATH", help="also write {name: {value, baseline, ratio, unit, goal}} ({name: {error}} for a failure)"
    )
    parser.add_argument("--only", nargs="*", default=None, help="run only these figures (by function name)")
    parser.add_argument("--check", action="store_true", help="exit 1 if any goal is missed")
    args = parser.parse_args(argv)

    figures: list[Figure] = []
    failed: dict[str, str] = {}
    print(f"{'figure':<18} {'value':>14} {'baseline':>14} {'ratio':>8}  unit           goal")
    for bench in discover():
        short = bench.__name__.removeprefix("bench_")
        if args.only and short not in args.only and bench.__name__ not in args.only:
            continue
        try:
            figure = bench()
        except Exception as error:  # noqa: BLE001 - report it and go on with the other figures
            failed[short] = f"{type(error).__name__}: {error}"
            print(f"{short:<18} FAILED: {failed[short]}", flush=True)
            traceback.print_exc(file=sys.stderr)
            continue
        figures.append(figure)
        mark = "ok  " if figure.ok else "MISS"
        print(
            f"{figure.name:<18} {figure.value:>14.6g} {figure.baseline:>14.6g} {figure.ratio:>8.3f}  "
            f"{figure.unit:<14} {mark} {figure.goal}" + (f"  ({figure.note})" if figure.note else ""),
            flush=True,
        )
    if args.json:
        results: dict[str, object] = {f.name: f.as_json() for f in figures}
        results.update({name: {"error": error} for name, error in failed.items()})
        Path(args.json).write_text(json.dumps(results, indent=2))
    missed = [f.name for f in figures if not f.ok]
    if missed:
        print(f"goals missed: {', '.join(missed)}")
    if failed:
        print(f"benchmarks that failed to run: {', '.join(failed)}")
    return 1 if (failed or (args.check and missed)) else 0


if __name__ == "__main__":
    raise SystemExit(main())
