"""``llmgine-nb demo``: the task assistant's flows end to end, offline (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

HELP = "play the task assistant's four flows with the offline model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=None, help="SQLite file to use and keep (default: a temporary one)")


def run(args: argparse.Namespace) -> int:
    from ..demo import main

    asyncio.run(main(args.db))
    return 0
