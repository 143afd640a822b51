"""The ``llmgine-nb`` console script: one command, a subcommand per job.

Each subcommand lives in its own module, imported only when it runs, so
``llmgine-nb --help`` stays fast and one job's dependencies (uvicorn,
discord.py, the MCP SDK) never load for another.  A subcommand module
exposes ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main", "SUBCOMMANDS"]

# name -> module under llmgine_nb.cli.  Add a line here to add a subcommand.
SUBCOMMANDS: dict[str, str] = {
    "demo": "llmgine_nb.cli.demo",
    "mcp-serve": "llmgine_nb.cli.mcp_serve",
    "discord": "llmgine_nb.cli.discord",
    "serve": "llmgine_nb.cli.serve",
    "users": "llmgine_nb.cli.users",
    "chat": "llmgine_nb.cli.chat",
    "worker": "llmgine_nb.cli.worker",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmgine-nb",
        description="Run llmgine-nb applications outside a notebook.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(args._module.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
