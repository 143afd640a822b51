"""``llmgine-nb discord``: Darcy, the task assistant, as a Discord bot (needs the ``discord`` extra).

The token comes from ``DISCORD_TOKEN`` (the environment or ``--env-file``,
default ``.env``); it is handed to discord.py and never printed, logged or
stored.  The board and the chat sessions live in SQLite files, so a restart
resumes every user's session.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

HELP = "run the task assistant as a Discord bot (token from DISCORD_TOKEN)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--board", type=Path, default=Path("darcy-board.db"), help="the task board's SQLite file")
    parser.add_argument("--db", default=None,
                        help="the chat sessions' SQLite file or postgresql:// URL (default: LLMGINE_DB or the user's llmgine.db)")
    parser.add_argument("--demo", action="store_true",
                        help="seed the demo organisation into an empty board (its two demo links pre-confirmed)")
    parser.add_argument("--guild", type=int, default=None,
                        help="register the slash commands in this server only (instant); default: globally")
    parser.add_argument("--confirm-timeout", type=float, default=300.0,
                        help="seconds a Confirm/Cancel or 'did you mean' card waits before it expires (default 300)")
    parser.add_argument("--edit-interval", type=float, default=1.0,
                        help="least seconds between two edits of a streaming reply (default 1)")
    parser.add_argument("--admin", action="append", default=[], metavar="DISCORD_USER_ID",
                        help="may confirm email claims (besides members with Manage Server); repeatable")
    parser.add_argument("--trust-emails", action="store_true",
                        help="link a claimed email at once, without an admin (the seed design's behaviour)")
    parser.add_argument("--model", default=None, help="a litellm model (default: the offline planner)")
    parser.add_argument("--env-file", type=Path, default=Path(".env"), help="where DISCORD_TOKEN may be (default .env)")


def build_bot(args: argparse.Namespace) -> Any:
    """The ``DarcyBot`` these arguments describe (not started)."""
    from ..apps.tasks import seed_demo_board
    from ..apps.tasks.discord_bot import BotSettings, DarcyBot, ReviewedBoard, darcy_assistant
    from ..store import Store

    settings = BotSettings(
        guild_id=args.guild, confirm_timeout=args.confirm_timeout, edit_interval=args.edit_interval,
        admin_ids=frozenset(str(a) for a in args.admin),
    )
    board = ReviewedBoard(args.board, trust_claims=args.trust_emails)
    if args.demo and not board.users():
        seed_demo_board(board)
        for claim in board.pending_links():
            board.confirm_link(claim.platform, claim.platform_user_id, by="the demo seed")
    assistant = darcy_assistant(board, store=Store(args.db), settings=settings, model=args.model)
    return DarcyBot(assistant, settings)


def run(args: argparse.Namespace) -> int:
    try:
        from ..apps.tasks.discord_bot import MissingToken, discord_token, serve
    except ImportError:
        print("The Discord bot needs discord.py: pip install 'llmgine-nb[discord]'", file=sys.stderr)
        return 2
    try:
        token = discord_token(args.env_file)
        bot = build_bot(args)
    except (MissingToken, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(bot, token))
    except KeyboardInterrupt:
        pass
    return 0
